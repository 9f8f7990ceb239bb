/* Reserving an arena's shared memory up front (see arena_space.h).
 *
 * A tmpfs file mapped MAP_SHARED and grown with ftruncate alone is sparse:
 * its pages are allocated when first touched, and when the tmpfs is full
 * that touch raises SIGBUS, in whichever process touched it, long after
 * start. Docker's default /dev/shm is 64 MiB, so this is the common failure
 * of shared-memory runtimes in containers. posix_fallocate allocates every
 * page now (tmpfs supports fallocate since Linux 3.5), turning it into an
 * error at create. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include "shmrt/shm_dir.h"
#include "arena_space.h"
#include "fail.h"

#define MiB (UINT64_C(1) << 20)

uint64_t shmrt_shm_advised_mib(uint64_t bytes)
{
	uint64_t want = (bytes / 4 * 5 + MiB - 1) / MiB;
	if (want > 1024)
		return (want + 1023) / 1024 * 1024;
	uint64_t p = 64;
	while (p < want)
		p *= 2;
	return p;
}

void shmrt_shm_size_spellings(uint64_t mib, char docker[32], char k8s[32])
{
	if (mib % 1024 == 0) {
		snprintf(docker, 32, "%llug", (unsigned long long)(mib / 1024));
		snprintf(k8s, 32, "%lluGi", (unsigned long long)(mib / 1024));
	} else {
		snprintf(docker, 32, "%llum", (unsigned long long)mib);
		snprintf(k8s, 32, "%lluMi", (unsigned long long)mib);
	}
}

static int no_space(const char *name, uint64_t need, uint64_t total, uint64_t avail)
{
	/* What the directory holds now plus this arena. */
	uint64_t mib = shmrt_shm_advised_mib((total > avail ? total - avail : 0) + need);
	char docker[32], k8s[32];
	shmrt_shm_size_spellings(mib, docker, k8s);
	/* Needed rounds up and free rounds down: the figures never suggest it fits. */
	return shmrt_fail(ENOSPC,
			  "arena '%s' needs %llu MiB in %s but %llu MiB are free (of %llu MiB); give the "
			  "container more shared memory: Docker --shm-size=%s, Vertex AI sharedMemorySizeMb=%llu, "
			  "Kubernetes emptyDir medium: Memory sizeLimit: %s",
			  name, (unsigned long long)((need + MiB - 1) / MiB), shmrt_shm_dir(),
			  (unsigned long long)(avail / MiB), (unsigned long long)(total / MiB), docker,
			  (unsigned long long)mib, k8s);
}

static int space(int dirfd, uint64_t *total, uint64_t *avail)
{
	struct statvfs st;
	if (fstatvfs(dirfd, &st) != 0)
		return shmrt_fail(errno, "statvfs %s: %m", shmrt_shm_dir());
	*total = (uint64_t)st.f_blocks * st.f_frsize;
	*avail = (uint64_t)st.f_bavail * st.f_frsize;
	return 0;
}

int shmrt_arena_space_check(int dirfd, const char *name, uint64_t need)
{
	uint64_t total = 0, avail = 0;
	int rc = space(dirfd, &total, &avail);
	if (rc < 0)
		return rc;
	return need > avail ? no_space(name, need, total, avail) : 0;
}

int shmrt_arena_space_reserve(int fd, int dirfd, const char *name, uint64_t size)
{
	/* Returns the error number itself, not -1 and errno. */
	int err = posix_fallocate(fd, 0, (off_t)size);
	if (err == 0)
		return 0;
	uint64_t total = 0, avail = 0;
	if (err == ENOSPC && space(dirfd, &total, &avail) == 0)
		return no_space(name, size, total, avail);
	errno = err;
	return shmrt_fail(err, "arena '%s': allocating %llu bytes in %s: %m", name, (unsigned long long)size,
			  shmrt_shm_dir());
}

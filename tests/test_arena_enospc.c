/* A small /dev/shm: creating an arena that does not fit is -ENOSPC with
 * the figures and the setting to change, leaves no file behind, and a
 * created arena never raises SIGBUS, even when the file system fills up
 * afterwards. Needs to mount a tmpfs (we run as root); skipped (77) if
 * the mount is refused. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "arena_space.h"
#include "check.h"

#define MiB (UINT64_C(1) << 20)
#define TMPFS_MIB 8

static const char *dir;

static uint64_t free_bytes(void)
{
	struct statvfs st;
	CHECK(statvfs(dir, &st) == 0, "statvfs %s", dir);
	return (uint64_t)st.f_bavail * st.f_frsize;
}

static void check_empty(void)
{
	DIR *d = opendir(dir);
	CHECK(d, "opendir %s", dir);
	for (struct dirent *e; (e = readdir(d));)
		CHECK(!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."), "%s was left in %s", e->d_name, dir);
	closedir(d);
}

/* Creating an arena of `mib` MiB fails with -ENOSPC, names the needed and
 * free MiB and the advice, and leaves nothing behind. */
static void expect_no_space(uint64_t mib, const char *docker, const char *vertex, const char *k8s)
{
	struct shmrt_region_spec r = {"weights", (size_t)(mib * MiB), 0, -1};
	uint64_t bytes, before = free_bytes();
	CHECK_OK(shmrt_arena_footprint(&r, 1, &bytes));
	struct shmrt_arena *a;
	int rc = shmrt_arena_create(&a, "big", &r, 1);
	const char *msg = shmrt_last_error();
	CHECK(rc == -ENOSPC, "%llu MiB arena: %d (%s)", (unsigned long long)mib, rc, msg);
	char want[128];
	snprintf(want, sizeof(want), "needs %llu MiB in %s but %llu MiB are free", (unsigned long long)((bytes + MiB - 1) / MiB),
		 dir, (unsigned long long)(before / MiB));
	CHECK(strstr(msg, want), "message '%s' lacks '%s'", msg, want);
	snprintf(want, sizeof(want), "--shm-size=%s, Vertex AI sharedMemorySizeMb=%s", docker, vertex);
	CHECK(strstr(msg, want), "message '%s' lacks '%s'", msg, want);
	snprintf(want, sizeof(want), "sizeLimit: %s", k8s);
	CHECK(strstr(msg, want), "message '%s' lacks '%s'", msg, want);
	check_empty();
	CHECK(free_bytes() == before, "a failed create used space");
}

/* A file taking `bytes` of the tmpfs for real. */
static int filler(const char *name, uint64_t bytes)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0, "create %s", path);
	CHECK(bytes == 0 || posix_fallocate(fd, 0, (off_t)bytes) == 0, "fallocate %s", path);
	return fd;
}

static void remove_file(const char *name)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK(unlink(path) == 0, "unlink %s", path);
}

static void on_sigbus(int sig)
{
	(void)sig;
	_exit(42);
}

/* Writes every page of [p, p + len) in a child; returns its exit status
 * (42: it got SIGBUS). */
static int touch_in_child(unsigned char *p, size_t len)
{
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		struct sigaction sa = {.sa_handler = on_sigbus};
		sigaction(SIGBUS, &sa, NULL);
		for (size_t off = 0; off < len; off += 4096)
			p[off] = 1;
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status), "toucher died of signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

static void run(void)
{
	CHECK(free_bytes() > (TMPFS_MIB - 1) * MiB, "the tmpfs is not %d MiB", TMPFS_MIB);
	/* Refused by the free-space check: advice is (used + needed) + 25%,
	 * a power of two below 1 GiB (at least 64 MiB), whole GiB above. */
	expect_no_space(16, "64m", "64", "64Mi");
	expect_no_space(700, "1g", "1024", "1Gi");
	expect_no_space(3000, "4g", "4096", "4Gi");

	/* Refused by the allocation itself (the free-space check passed, and
	 * then the space went: here, it never was). */
	int fd = filler("direct", 0), dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	int rc = shmrt_arena_space_reserve(fd, dirfd, "direct", 2 * TMPFS_MIB * MiB);
	CHECK(rc == -ENOSPC && strstr(shmrt_last_error(), "needs 16 MiB"), "reserve: %d %s", rc, shmrt_last_error());
	close(fd);
	close(dirfd);
	remove_file("direct");

	/* Most of the tmpfs taken by someone else: a 4 MiB arena does not fit. */
	int fill = filler("other", 6 * MiB);
	struct shmrt_region_spec r4 = {"kv", 4 * MiB, 0, -1}, r1 = {"kv", 1 * MiB, 0, -1};
	struct shmrt_arena *a;
	CHECK(shmrt_arena_create(&a, "over", &r4, 1) == -ENOSPC, "4 MiB into ~2 MiB: %s", shmrt_last_error());

	/* 1 MiB fits. Then fill the tmpfs to the last page: touching every
	 * page of the arena must still work, its pages being allocated. */
	CHECK_OK(shmrt_arena_create(&a, "fits", &r1, 1));
	int rest = filler("rest", 0);
	for (uint64_t off = 0; posix_fallocate(rest, (off_t)off, 4096) == 0; off += 4096)
		;
	CHECK(free_bytes() < 4096, "tmpfs not full: %llu bytes free", (unsigned long long)free_bytes());
	void *p;
	size_t size;
	CHECK_OK(shmrt_arena_region(a, "kv", &p, &size));
	CHECK(touch_in_child(p, size) == 0, "SIGBUS touching a created arena");

	/* The reference: a sparse mapping (ftruncate alone) on the full tmpfs
	 * does raise SIGBUS, so the check above could have failed. */
	int naive = filler("naive", 0);
	CHECK(ftruncate(naive, (off_t)MiB) == 0, "ftruncate");
	unsigned char *np = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_SHARED, naive, 0);
	CHECK(np != MAP_FAILED, "mmap");
	CHECK(touch_in_child(np, MiB) == 42, "a sparse mapping on a full tmpfs did not SIGBUS");
	munmap(np, MiB);
	close(naive);
	close(rest);
	close(fill);
	CHECK_OK(shmrt_arena_destroy(a));
	remove_file("naive");
	remove_file("rest");
	remove_file("other");
	check_empty();
}

int main(void)
{
	char mnt[] = "/tmp/shmrt-enospc-XXXXXX";
	CHECK(mkdtemp(mnt), "mkdtemp");
	dir = mnt;
	/* A private mount namespace when we may: the tmpfs then vanishes with
	 * this process even if it is killed before unmounting. */
	if (unshare(CLONE_NEWNS) == 0)
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	char opts[32];
	snprintf(opts, sizeof(opts), "size=%dm", TMPFS_MIB);
	if (mount("tmpfs", mnt, "tmpfs", 0, opts) != 0) {
		int err = errno;
		rmdir(mnt);
		SKIP("cannot mount a tmpfs on %s: %s", mnt, strerror(err));
	}
	setenv("SHMRT_SHM_DIR", mnt, 1);

	/* The checks run in a child, so that the unmount below happens
	 * whatever becomes of them. */
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		run();
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	if (umount(mnt) != 0)
		umount2(mnt, MNT_DETACH);
	rmdir(mnt);
	CHECK(WIFEXITED(status), "checks died of signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

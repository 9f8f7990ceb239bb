/* Where arenas live: $SHMRT_SHM_DIR or /dev/shm (see shm_dir.h). */
#include <errno.h>
#include <stdlib.h>
#include <sys/statvfs.h>

#include "shmrt/shm_dir.h"
#include "fail.h"

const char *shmrt_shm_dir(void)
{
	const char *dir = getenv("SHMRT_SHM_DIR");
	return dir && *dir ? dir : "/dev/shm";
}

int shmrt_shm_space(uint64_t *total, uint64_t *avail)
{
	struct statvfs st;
	if (statvfs(shmrt_shm_dir(), &st) != 0)
		return shmrt_fail(errno, "statvfs %s: %m", shmrt_shm_dir());
	*total = (uint64_t)st.f_blocks * st.f_frsize;
	*avail = (uint64_t)st.f_bavail * st.f_frsize;
	return 0;
}

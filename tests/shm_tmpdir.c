/* A private SHMRT_SHM_DIR for one test program (shm_tmpdir.h). */
#include "shm_tmpdir.h"

static char shm_tmpdir_path[64];
static pid_t shm_tmpdir_maker;

static void shm_tmpdir_remove(void)
{
	if (getpid() != shm_tmpdir_maker)
		return;
	DIR *d = opendir(shm_tmpdir_path);
	if (d) {
		for (struct dirent *e; (e = readdir(d));)
			unlinkat(dirfd(d), e->d_name, 0); /* "." and "..": EISDIR, harmless */
		closedir(d);
	}
	rmdir(shm_tmpdir_path);
}

const char *shm_tmpdir(void)
{
	snprintf(shm_tmpdir_path, sizeof(shm_tmpdir_path), "/dev/shm/test-shmrt-XXXXXX");
	CHECK(mkdtemp(shm_tmpdir_path), "mkdtemp %s failed", shm_tmpdir_path);
	shm_tmpdir_maker = getpid();
	atexit(shm_tmpdir_remove);
	setenv("SHMRT_SHM_DIR", shm_tmpdir_path, 1);
	return shm_tmpdir_path;
}

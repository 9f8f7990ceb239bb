/* Reserved, allocated and touched bytes of a shared-memory file (shm_usage.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include "fail.h"
#include "shm_usage.h"

/* Whether an smaps mapping line ("start-end perms offset MAJ:MIN inode path")
 * is of the file with this device and inode. */
static int is_mapping_of(const char *line, dev_t dev, ino_t ino)
{
	unsigned maj, min;
	unsigned long long inode;
	char perms[8];
	if (sscanf(line, "%*x-%*x %7s %*x %x:%x %llu", perms, &maj, &min, &inode) != 4)
		return 0;
	return maj == major(dev) && min == minor(dev) && (ino_t)inode == ino;
}

/* Sum of the Pss lines (kB) of the mappings of the file in one process. */
static uint64_t pss_of(const char *pid, dev_t dev, ino_t ino, int *maps)
{
	char path[300], line[512];
	snprintf(path, sizeof(path), "/proc/%s/smaps", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0; /* gone, or not ours to read */
	uint64_t kb = 0;
	int in = 0;
	*maps = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;
		if (isxdigit((unsigned char)line[0]) && strchr(line, '-') && strchr(line, ' ') > strchr(line, '-')) {
			in = is_mapping_of(line, dev, ino);
			*maps += in;
		} else if (in && sscanf(line, "Pss: %llu kB", &v) == 1) {
			kb += v;
		}
	}
	fclose(f);
	return kb << 10;
}

int shm_usage_of(const char *path, struct shm_usage *u)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return shmrt_fail(errno, "stat %s: %m", path);
	*u = (struct shm_usage){.reserved = (uint64_t)st.st_size, .allocated = (uint64_t)st.st_blocks * 512};
	DIR *d = opendir("/proc");
	if (!d)
		return shmrt_fail(errno, "opendir /proc: %m");
	for (struct dirent *e; (e = readdir(d));) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		int maps = 0;
		u->touched += pss_of(e->d_name, st.st_dev, st.st_ino, &maps);
		u->mappers += maps > 0;
	}
	closedir(d);
	return 0;
}

int shm_fs_used(const char *dir, uint64_t *used)
{
	struct statvfs v;
	if (statvfs(dir, &v) != 0)
		return shmrt_fail(errno, "statvfs %s: %m", dir);
	*used = (uint64_t)(v.f_blocks - v.f_bfree) * v.f_frsize;
	return 0;
}

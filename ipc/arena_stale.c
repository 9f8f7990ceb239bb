/* Arena ownership and stale arenas (see arena_stale.h).
 *
 * The creator holds an open file description (OFD) write lock on the whole
 * file for as long as its handle is open; the arena is stale when anyone
 * else can take that lock. We chose the lock over the header's pid + start
 * time (kept for display) because:
 *  - the kernel drops it when the owner dies, however it dies, with no
 *    window in which a recycled pid looks alive;
 *  - it works across pid namespaces (containers sharing one /dev/shm) and
 *    under hidepid, where another process's /proc entry is not readable;
 *  - it also covers a creator that died before it had written any header.
 * OFD locks (Linux 3.15), not classic POSIX record locks: those belong to
 * the process and vanish when it closes *any* descriptor of the file, so a
 * `shmrt clean` or second attach in the owner's own process would drop it.
 * An OFD lock conflicts with every other open of the file, our own process
 * included. It is inherited over fork (the child keeps the arena alive
 * while it runs) but not over exec (O_CLOEXEC).
 *
 * Removal protocol: a cleaner takes the lock, re-checks that the name
 * still names the file it locked, and unlinks it while holding the lock.
 * A creator opens with O_EXCL, takes the lock, and re-checks the name the
 * same way: if a cleaner removed the brand-new (empty, unlocked) file in
 * between, the creator simply tries again. Since only a lock holder
 * unlinks, the name cannot change under a lock holder's feet. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmrt/shm_dir.h"
#include "arena_format.h"
#include "arena_stale.h"
#include "fail.h"

static struct flock whole_file(short type)
{
	/* l_start = l_len = 0: the whole file; l_pid must be 0 for OFD locks. */
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET};
	return fl;
}

int shmrt_arena_lock_owner(int fd)
{
	struct flock fl = whole_file(F_WRLCK);
	while (fcntl(fd, F_OFD_SETLKW, &fl) != 0)
		if (errno != EINTR)
			return shmrt_fail(errno, "locking the arena file in %s: %m", shmrt_shm_dir());
	return 0;
}

bool shmrt_arena_owner_locked(int fd)
{
	struct flock fl = whole_file(F_WRLCK);
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return true; /* cannot tell: never call an arena dead on a doubt */
	return fl.l_type != F_UNLCK;
}

bool shmrt_arena_same_file(int dirfd, const char *fname, int fd)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && fstatat(dirfd, fname, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* What the file holds: 1 an arena (info from its header if that
 * validates), 0 an arena whose creator never wrote the magic (still empty
 * or zero: nothing else starts so), -EBADMSG something else. */
static int identify(int fd, const char *name, uint64_t size, struct shmrt_arena_info *info)
{
	memset(info, 0, sizeof(*info));
	info->bytes = size;
	uint64_t magic = 0;
	int rc = 1;
	if (size == 0)
		rc = 0;
	else if (size < sizeof(magic) || pread(fd, &magic, sizeof(magic), 0) != sizeof(magic))
		rc = -EBADMSG;
	else if (magic == 0)
		rc = 0;
	else if (magic != SHMRT_ARENA_MAGIC)
		rc = -EBADMSG;
	if (rc == 1) {
		void *base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		struct shmrt_arena_layout l;
		if (base != MAP_FAILED && shmrt_arena_header_check(base, size, &l) == 0)
			shmrt_arena_info_fill(&l, base, info);
		if (base != MAP_FAILED)
			munmap(base, size);
	}
	/* The name people use is the file's, whatever the header says. */
	strcpy(info->name, name);
	return rc;
}

/* With the lock held: unlink fname if it still is fd's file. */
static int unlink_locked(int dirfd, const char *fname, int fd)
{
	if (!shmrt_arena_same_file(dirfd, fname, fd))
		return -ENOENT;
	if (unlinkat(dirfd, fname, 0) != 0)
		return shmrt_fail(errno, "removing %s/%s: %m", shmrt_shm_dir(), fname);
	return 1;
}

int shmrt_arena_remove_stale(int dirfd, const char *fname, struct shmrt_arena_info *info)
{
	int fd = openat(dirfd, fname, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		if (errno == ELOOP || errno == EISDIR)
			return -EBADMSG; /* a symlink or a directory: not ours */
		return shmrt_fail(errno, "opening %s/%s: %m", shmrt_shm_dir(), fname);
	}
	struct stat st;
	int rc = -EBADMSG;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		/* Taking the lock succeeds only when no owner holds it. */
		struct flock fl = whole_file(F_WRLCK);
		bool stale = fcntl(fd, F_OFD_SETLK, &fl) == 0;
		rc = identify(fd, fname + strlen(SHMRT_ARENA_PREFIX), (uint64_t)st.st_size, info);
		if (rc >= 0) {
			info->owner_alive = !stale;
			rc = stale ? unlink_locked(dirfd, fname, fd) : 0;
		}
	}
	close(fd); /* drops our lock, if we took it */
	return rc;
}

int shmrt_arena_clean(const char *name, shmrt_arena_clean_fn fn, void *arg)
{
	shmrt_clear_error();
	if (name && !shmrt_arena_name_ok(name, SHMRT_ARENA_NAME_MAX))
		return shmrt_fail(EINVAL, "arena name '%s' is not 1..%d characters of [A-Za-z0-9_.-]", name,
				  SHMRT_ARENA_NAME_MAX);
	DIR *d = opendir(shmrt_shm_dir());
	if (!d)
		return shmrt_fail(errno, "opening %s: %m", shmrt_shm_dir());
	const size_t plen = strlen(SHMRT_ARENA_PREFIX);
	int removed = 0;
	for (struct dirent *e; (e = readdir(d));) {
		const char *n = e->d_name;
		if (strncmp(n, SHMRT_ARENA_PREFIX, plen) || !shmrt_arena_name_ok(n + plen, SHMRT_ARENA_NAME_MAX))
			continue;
		if (name && strcmp(n + plen, name))
			continue;
		struct shmrt_arena_info info;
		int rc = shmrt_arena_remove_stale(dirfd(d), n, &info);
		if (rc == -ENOENT || rc == -EBADMSG) /* gone meanwhile, or not an arena */
			continue;
		if (rc < 0) { /* not ours to open: said, not skipped in silence */
			info = (struct shmrt_arena_info){0};
			snprintf(info.name, sizeof(info.name), "%s", n + plen);
			if (fn)
				fn(&info, rc, arg);
			continue;
		}
		removed += rc;
		if (fn)
			fn(&info, rc, arg);
	}
	closedir(d);
	shmrt_clear_error(); /* files we skipped are not a failure */
	return removed;
}

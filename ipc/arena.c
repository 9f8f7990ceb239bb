/* The arena: create, attach, regions, health (see shmrt/arena.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shmrt/arena.h"
#include "shmrt/error.h"
#include "shmrt/shm_dir.h"
#include "arena_format.h"
#include "arena_space.h"
#include "arena_stale.h"
#include "fail.h"
#include "numa.h"

/* Give up creating after this many rounds of racing with other creators
 * and cleaners over one name. */
#define CREATE_TRIES 8

struct shmrt_arena {
	unsigned char *base;
	int fd;
	bool owner; /* holds the owner's lock */
	char path[PATH_MAX];
	struct shmrt_arena_layout layout;
};

static struct shmrt_arena_header *header(const struct shmrt_arena *a)
{
	return (struct shmrt_arena_header *)a->base;
}

static int check_name(const char *name)
{
	if (!name || !shmrt_arena_name_ok(name, SHMRT_ARENA_NAME_MAX))
		return shmrt_fail(EINVAL, "arena name '%s' is not 1..%d characters of [A-Za-z0-9_.-]",
				  name ? name : "(null)", SHMRT_ARENA_NAME_MAX);
	return 0;
}

/* "name (uid N)", or "uid N" for a uid with no name. */
static void user_label(uid_t uid, char *buf, size_t cap)
{
	struct passwd pw, *found = NULL;
	char tmp[1024];
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &found) == 0 && found)
		snprintf(buf, cap, "%s (uid %u)", pw.pw_name, (unsigned)uid);
	else
		snprintf(buf, cap, "uid %u", (unsigned)uid);
}

/* A handle with its path set; fd -1, nothing mapped. */
static int new_handle(struct shmrt_arena **out, const char *name)
{
	struct shmrt_arena *a = calloc(1, sizeof(*a));
	if (!a)
		return shmrt_fail(ENOMEM, "out of memory");
	int n = snprintf(a->path, sizeof(a->path), "%s/" SHMRT_ARENA_PREFIX "%s", shmrt_shm_dir(), name);
	if (n < 0 || (size_t)n >= sizeof(a->path)) {
		free(a);
		return shmrt_fail(ENAMETOOLONG, "SHMRT_SHM_DIR %s is too long", shmrt_shm_dir());
	}
	a->fd = -1;
	a->base = MAP_FAILED;
	*out = a;
	return 0;
}

void shmrt_arena_detach(struct shmrt_arena *a)
{
	if (!a)
		return;
	if (a->base != MAP_FAILED)
		munmap(a->base, a->layout.total_size);
	if (a->fd >= 0)
		close(a->fd); /* the owner's lock goes with it */
	free(a);
}

int shmrt_arena_footprint(const struct shmrt_region_spec *regions, unsigned n, uint64_t *bytes)
{
	shmrt_clear_error();
	struct shmrt_arena_layout *l = malloc(sizeof(*l));
	if (!l)
		return shmrt_fail(ENOMEM, "out of memory");
	int rc = shmrt_arena_plan(l, NULL, regions, n);
	if (rc == 0)
		*bytes = l->total_size;
	free(l);
	return rc;
}

/* Opens a new, empty file for the arena under the owner's lock. A stale
 * arena of the same name is removed first (arena_stale.c tells why the
 * re-check after locking is needed). */
static int create_file(struct shmrt_arena *a, int dirfd, const char *fname)
{
	for (int tries = 0; tries < CREATE_TRIES; tries++) {
		int fd = openat(dirfd, fname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			if (errno != EEXIST)
				return shmrt_fail(errno, "creating %s: %m", a->path);
			struct shmrt_arena_info info;
			int rc = shmrt_arena_remove_stale(dirfd, fname, &info);
			char owner[160] = "";
			struct stat st;
			if (fstatat(dirfd, fname, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				char who[128];
				user_label(st.st_uid, who, sizeof(who));
				snprintf(owner, sizeof(owner), ", file of %s", who);
			}
			if (rc == 0 && info.owner_pid)
				return shmrt_fail(EEXIST, "arena '%s' exists in %s and its owner (pid %d%s) is alive",
						  a->layout.name, shmrt_shm_dir(), info.owner_pid, owner);
			if (rc == 0)
				return shmrt_fail(EEXIST, "arena '%s' exists in %s and is in use (being created, "
							  "or by another shmrt version%s)", a->layout.name, shmrt_shm_dir(),
						  owner);
			if (rc == -EACCES || rc == -EPERM)
				return shmrt_fail(EEXIST, "arena '%s' exists in %s and this user cannot open it (%s)",
						  a->layout.name, shmrt_shm_dir(), owner + 2);
			if (rc == -EBADMSG)
				return shmrt_fail(EEXIST, "%s exists and is not a shmrt arena; remove it by hand",
						  a->path);
			if (rc < 0 && rc != -ENOENT)
				return rc;
			continue; /* removed, or gone: try again */
		}
		int rc = shmrt_arena_lock_owner(fd);
		if (rc == 0 && shmrt_arena_same_file(dirfd, fname, fd)) {
			a->fd = fd;
			a->owner = true;
			return 0;
		}
		close(fd);
		if (rc < 0)
			return rc;
	}
	return shmrt_fail(EBUSY, "arena '%s': other processes keep creating and removing it", a->layout.name);
}

/* Sizes, maps, binds and allocates the new file, then writes the header. */
static int build(struct shmrt_arena *a, int dirfd)
{
	const struct shmrt_arena_layout *l = &a->layout;
	/* ftruncate only sets the size (sparse on tmpfs); binding comes before
	 * the allocation so that pages are born on their node. No page is
	 * touched before posix_fallocate has allocated them all. */
	if (ftruncate(a->fd, (off_t)l->total_size) != 0)
		return shmrt_fail(errno, "sizing %s: %m", a->path);
	void *base = mmap(NULL, l->total_size, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
	if (base == MAP_FAILED)
		return shmrt_fail(errno, "mapping %llu bytes of %s: %m", (unsigned long long)l->total_size, a->path);
	a->base = base;
	for (unsigned i = 0; i < l->n_regions; i++) {
		const struct shmrt_arena_region *r = &l->regions[i];
		int rc = r->numa_node < 0 ? 0 : shmrt_numa_bind(a->base + r->offset, r->size, r->numa_node);
		if (rc < 0)
			return rc;
	}
	int rc = shmrt_arena_space_reserve(a->fd, dirfd, l->name, l->total_size);
	if (rc < 0)
		return rc;
	shmrt_arena_header_write(a->base, l);
	return 0;
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int create_in(struct shmrt_arena *a, const char *name, const struct shmrt_region_spec *regions,
		     unsigned n)
{
	int rc = shmrt_arena_plan(&a->layout, name, regions, n);
	if (rc < 0)
		return rc;
	if ((rc = shmrt_proc_identify(0, &a->layout.owner)) < 0)
		return shmrt_fail(-rc, "reading /proc/self/stat: %s", strerror(-rc));
	a->layout.created_ns = realtime_ns();
	int dirfd = open(shmrt_shm_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return shmrt_fail(errno, "opening the shared-memory directory %s: %m", shmrt_shm_dir());
	const char *fname = strrchr(a->path, '/') + 1;
	/* Check the space first: a clear message before anything is made. */
	rc = shmrt_arena_space_check(dirfd, name, a->layout.total_size);
	if (rc == 0 && (rc = create_file(a, dirfd, fname)) == 0 && (rc = build(a, dirfd)) < 0)
		unlinkat(dirfd, fname, 0); /* ours: we hold the lock */
	close(dirfd);
	return rc;
}

int shmrt_arena_create(struct shmrt_arena **out, const char *name, const struct shmrt_region_spec *regions,
		       unsigned n)
{
	shmrt_clear_error();
	struct shmrt_arena *a = NULL;
	int rc = check_name(name);
	if (rc < 0 || (rc = new_handle(&a, name)) < 0)
		return rc;
	if ((rc = create_in(a, name, regions, n)) < 0) {
		shmrt_arena_detach(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* The owner $SHMRT_TRUSTED_OWNER names (a user name or uid): 1 and *uid,
 * 0 when unset, or -EINVAL. */
static int trusted_owner(uid_t *uid)
{
	const char *v = getenv("SHMRT_TRUSTED_OWNER");
	if (!v || !*v)
		return 0;
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	if (!*end && n <= UINT_MAX) {
		*uid = (uid_t)n;
		return 1;
	}
	struct passwd pw, *found = NULL;
	char tmp[1024];
	if (getpwnam_r(v, &pw, tmp, sizeof(tmp), &found) != 0 || !found)
		return shmrt_fail(EINVAL, "SHMRT_TRUSTED_OWNER=%s: no such user", v);
	*uid = pw.pw_uid;
	return 1;
}

/* Whoever can write the arena receives the prompts and chooses the
 * answers: it must be this user's, or the owner the caller names, and
 * not writable by others (nor by its group, unless its owner is named),
 * as OpenSSH and PostgreSQL judge their files. */
static int check_owner(const struct shmrt_arena *a, const struct stat *st)
{
	uid_t trusted = 0;
	int named = trusted_owner(&trusted);
	if (named < 0)
		return named;
	bool mine = st->st_uid == geteuid(), named_owner = named && st->st_uid == trusted;
	char owner[128];
	user_label(st->st_uid, owner, sizeof(owner));
	if (!mine && !named_owner)
		return shmrt_fail(EPERM, "%s belongs to %s, not to this user: refused (its owner would receive "
				  "the prompts and choose the answers); to trust it, set SHMRT_TRUSTED_OWNER to that "
				  "user (or pass --trust-owner)", a->path, owner);
	mode_t loose = named_owner ? S_IWOTH : S_IWGRP | S_IWOTH;
	if (st->st_mode & loose)
		return shmrt_fail(EPERM, "%s (owner %s) has mode %04o: %s may write it: refused", a->path, owner,
				  (unsigned)(st->st_mode & 07777), st->st_mode & S_IWOTH ? "every user" : "its group");
	return 0;
}

/* Maps fd and validates its header into a->layout. */
static int map_and_check(struct shmrt_arena *a, const char *name)
{
	struct stat st;
	if (fstat(a->fd, &st) != 0)
		return shmrt_fail(errno, "stat %s: %m", a->path);
	if (!S_ISREG(st.st_mode))
		return shmrt_fail(EBADMSG, "%s is not a regular file", a->path);
	int rc = check_owner(a, &st);
	if (rc < 0)
		return rc;
	if (st.st_size == 0)
		return shmrt_fail(EAGAIN, "arena '%s' is being created, or its creator died first (shmrt clean)",
				  name);
	void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
	if (base == MAP_FAILED)
		return shmrt_fail(errno, "mapping %s: %m", a->path);
	/* Acquire: pairs with the creator's release of the magic, so the
	 * header read below is complete. */
	(void)atomic_load_explicit(&((struct shmrt_arena_header *)base)->magic, memory_order_acquire);
	rc = shmrt_arena_header_check(base, (size_t)st.st_size, &a->layout);
	if (rc < 0) {
		munmap(base, (size_t)st.st_size);
		char why[256];
		snprintf(why, sizeof(why), "%s", shmrt_last_error());
		return shmrt_fail(-rc, "arena %s: %s", a->path, why);
	}
	a->base = base;
	return 0;
}

int shmrt_arena_attach(struct shmrt_arena **out, const char *name)
{
	shmrt_clear_error();
	struct shmrt_arena *a = NULL;
	int rc = check_name(name);
	if (rc < 0 || (rc = new_handle(&a, name)) < 0)
		return rc;
	a->fd = open(a->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (a->fd < 0)
		rc = errno == ENOENT ? shmrt_fail(ENOENT, "no arena '%s' in %s", name, shmrt_shm_dir())
				     : shmrt_fail(errno, "opening %s: %m", a->path);
	else
		rc = map_and_check(a, name);
	if (rc < 0) {
		shmrt_arena_detach(a);
		return rc;
	}
	*out = a;
	return 0;
}

int shmrt_arena_destroy(struct shmrt_arena *a)
{
	shmrt_clear_error();
	int rc = 0;
	/* Only if the name still is ours: a newer arena may have taken it. */
	if (shmrt_arena_same_file(AT_FDCWD, a->path, a->fd) && unlink(a->path) != 0)
		rc = shmrt_fail(errno, "removing %s: %m", a->path);
	shmrt_arena_detach(a);
	return rc;
}

int shmrt_arena_region(const struct shmrt_arena *a, const char *name, void **ptr, size_t *size)
{
	int i = shmrt_arena_layout_find(&a->layout, name);
	if (i < 0)
		return shmrt_fail(ENOENT, "arena '%s' has no region '%s'", a->layout.name, name);
	return shmrt_arena_region_at(a, (unsigned)i, NULL, ptr, size);
}

int shmrt_arena_region_at(const struct shmrt_arena *a, unsigned i, const char **name, void **ptr,
			  size_t *size)
{
	if (i >= a->layout.n_regions)
		return shmrt_fail(ENOENT, "arena '%s' has %u regions, not %u", a->layout.name, a->layout.n_regions,
				  i + 1);
	/* From our validated copy: always inside the mapping. */
	const struct shmrt_arena_region *r = &a->layout.regions[i];
	if (name)
		*name = r->name;
	*ptr = a->base + r->offset;
	*size = (size_t)r->size;
	return 0;
}

int shmrt_arena_health(const struct shmrt_arena *a, unsigned *progress)
{
	/* Acquire: pairs with the release in set_health. */
	uint32_t w = atomic_load_explicit(&header(a)->health, memory_order_acquire);
	unsigned state = w & 0xff, prog = w >> 8;
	if (state > SHMRT_HEALTH_FAILED || prog > SHMRT_HEALTH_PROGRESS_MAX)
		return shmrt_fail(EBADMSG, "arena '%s': health word %#x is not valid", a->layout.name, w);
	if (progress)
		*progress = prog;
	return (int)state;
}

int shmrt_arena_set_health(struct shmrt_arena *a, enum shmrt_health state, unsigned progress)
{
	if ((unsigned)state > SHMRT_HEALTH_FAILED || progress > SHMRT_HEALTH_PROGRESS_MAX)
		return shmrt_fail(EINVAL, "health %d with progress %u", (int)state, progress);
	/* Release: publishes this process's earlier writes to the arena. */
	atomic_store_explicit(&header(a)->health, shmrt_health_word(state, progress), memory_order_release);
	return 0;
}

const char *shmrt_health_name(enum shmrt_health state)
{
	static const char *const names[] = {"starting", "loading", "ready", "degraded", "failed"};
	return (unsigned)state <= SHMRT_HEALTH_FAILED ? names[state] : "invalid";
}

int shmrt_arena_info(const struct shmrt_arena *a, struct shmrt_arena_info *out)
{
	shmrt_arena_info_fill(&a->layout, a->base, out);
	/* Our own lock does not conflict with itself: the owner knows it lives. */
	out->owner_alive = a->owner || shmrt_arena_owner_locked(a->fd);
	return 0;
}

void shmrt_arena_mapping(const struct shmrt_arena *a, const void **base, size_t *size)
{
	*base = a->base;
	*size = a->layout.total_size;
}

int shmrt_arena_intact(const struct shmrt_arena *a)
{
	struct stat st;
	if (fstat(a->fd, &st) != 0)
		return shmrt_fail(errno, "stat %s: %m", a->path);
	if ((uint64_t)st.st_size < a->layout.total_size)
		return shmrt_fail(EFAULT, "the arena file %s was truncated to %lld bytes (of %llu) under the runtime",
				  a->path, (long long)st.st_size, (unsigned long long)a->layout.total_size);
	return 0;
}

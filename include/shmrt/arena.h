/* shmrt — the arena: one shared-memory file per runtime instance.
 *
 * The file /dev/shm/shmrt-NAME (or $SHMRT_SHM_DIR/shmrt-NAME) holds a header
 * and a table of named regions (rings, KV blocks, staging buffers, ...).
 * The supervisor creates it; every other process attaches by name.
 *
 * Creation reserves all of the file's memory up front (posix_fallocate), so
 * a /dev/shm that is too small is -ENOSPC at create, with the figures and the
 * container setting to change, and never a SIGBUS later. The header is
 * validated on every attach: a file that is not an arena, comes from another
 * ABI version, or whose region table points outside the file, is an error
 * (-EBADMSG, -EPROTO), never a crash.
 *
 * An arena lives as long as its creator's handle (children forked without
 * exec share it): once that process has died (or detached without
 * destroying it), the arena is stale, and both
 * shmrt_arena_clean() and a create of the same name remove it. An arena whose
 * creator lives is never removed.
 *
 * Functions return 0 or -errno; shmrt_last_error() says more. */
#ifndef SHMRT_ARENA_H
#define SHMRT_ARENA_H

#include "common.h"

/* Arena names: 1..SHMRT_ARENA_NAME_MAX characters of [A-Za-z0-9_.-]; the
 * file is "shmrt-NAME". Region names: the same characters, at most
 * SHMRT_REGION_NAME_MAX of them. */
#define SHMRT_ARENA_NAME_MAX 64
#define SHMRT_REGION_NAME_MAX 39
#define SHMRT_ARENA_MAX_REGIONS 64

/* The runtime's state, published in the arena for probes and peers. */
enum shmrt_health {
	SHMRT_HEALTH_STARTING = 0,
	SHMRT_HEALTH_LOADING = 1, /* with a progress value, per mille */
	SHMRT_HEALTH_READY = 2,
	SHMRT_HEALTH_DEGRADED = 3,
	SHMRT_HEALTH_FAILED = 4,
};
#define SHMRT_HEALTH_PROGRESS_MAX 1000

/* One region asked of shmrt_arena_create. */
struct shmrt_region_spec {
	const char *name;
	size_t size;  /* bytes, > 0 */
	size_t align; /* 0: a page; else a power of two up to a page (raised to
		       * 64, a cache line, so regions never share a line) */
	int numa_node; /* -1: wherever; else its pages are bound to this NUMA
			* node (no-op on a one-node machine); implies a page */
};

/* What an arena says about itself. */
struct shmrt_arena_info {
	char name[SHMRT_ARENA_NAME_MAX + 1];
	uint64_t bytes;      /* size of the file */
	unsigned n_regions;
	int owner_pid;       /* the creator; 0 if unknown (creation never finished) */
	int owner_alive;     /* 1 while the creator's handle is open */
	int64_t created_ns;  /* CLOCK_REALTIME, ns since the epoch */
	enum shmrt_health health;
	unsigned progress;   /* 0..SHMRT_HEALTH_PROGRESS_MAX */
};

struct shmrt_arena; /* a process-local handle */

/* Bytes of shared memory (the file's size) an arena with these regions
 * takes: header, region table, regions and their alignment padding. For
 * sizing advice before anything is created. 0 or -EINVAL. */
SHMRT_API int shmrt_arena_footprint(const struct shmrt_region_spec *regions, unsigned n,
				    uint64_t *bytes);

/* Creates arena `name` with n regions (zero-filled), health STARTING.
 * -EEXIST if an arena of that name has a live owner (a stale one is removed
 * first), -ENOSPC if the directory is too small, -EINVAL for bad names or
 * specs. */
SHMRT_API int shmrt_arena_create(struct shmrt_arena **out, const char *name,
				 const struct shmrt_region_spec *regions, unsigned n);

/* Maps an existing arena. -ENOENT if there is none, -EAGAIN while it is being
 * created, -EBADMSG or -EPROTO if its header does not validate, -EPERM if
 * its file belongs to another user (unless $SHMRT_TRUSTED_OWNER, a user
 * name or uid, names that owner) or others may write it (its group too,
 * unless its owner is named): whoever writes the arena serves the
 * requests. */
SHMRT_API int shmrt_arena_attach(struct shmrt_arena **out, const char *name);

/* Unmaps and frees the handle. When the creator detaches, the arena becomes
 * stale (removable) but stays in place until someone cleans it. */
SHMRT_API void shmrt_arena_detach(struct shmrt_arena *a);

/* Removes the arena's file (if it is still this arena's) and detaches.
 * Processes still attached keep their mapping. */
SHMRT_API int shmrt_arena_destroy(struct shmrt_arena *a);

/* The region called name: its address in this process and its size.
 * -ENOENT if there is none. */
SHMRT_API int shmrt_arena_region(const struct shmrt_arena *a, const char *name, void **ptr,
				 size_t *size);

/* The i-th region (0 .. n_regions-1, in address order); name may be NULL.
 * -ENOENT past the end. */
SHMRT_API int shmrt_arena_region_at(const struct shmrt_arena *a, unsigned i, const char **name,
				    void **ptr, size_t *size);

/* The health word. get returns the state (>= 0) and, if progress is not
 * NULL, the progress; -EBADMSG if the word holds no valid state. set
 * publishes with release order: what this process wrote to the arena before
 * setting READY is visible to whoever reads READY. */
SHMRT_API int shmrt_arena_health(const struct shmrt_arena *a, unsigned *progress);
SHMRT_API int shmrt_arena_set_health(struct shmrt_arena *a, enum shmrt_health state, unsigned progress);

/* "starting", "loading", "ready", "degraded", "failed"; "invalid" otherwise. */
SHMRT_API const char *shmrt_health_name(enum shmrt_health state);

/* Name, size, owner and health of an attached arena. */
SHMRT_API int shmrt_arena_info(const struct shmrt_arena *a, struct shmrt_arena_info *out);

/* Called by shmrt_arena_clean for every arena it finds: removed is 1 for a
 * stale one it deleted, 0 for a live one it left, -errno for one it could
 * not open (another user's: info holds only its name, shmrt_last_error()
 * says why). */
typedef void (*shmrt_arena_clean_fn)(const struct shmrt_arena_info *info, int removed, void *arg);

/* Removes the stale arenas of shmrt_shm_dir() (only `name` if not NULL).
 * Files that are not arenas are left alone. Returns how many were removed,
 * or -errno. fn may be NULL. */
SHMRT_API int shmrt_arena_clean(const char *name, shmrt_arena_clean_fn fn, void *arg);

#endif

/* Internal: the arena file's layout (ABI version 1), planning it, and
 * validating it. */
#ifndef SHMRT_ARENA_FORMAT_H
#define SHMRT_ARENA_FORMAT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmrt/arena.h"
#include "proc.h"

/* "SHMRTARN" as the first 8 bytes on a little-endian machine. */
#define SHMRT_ARENA_MAGIC UINT64_C(0x4e524154524d4853)
#define SHMRT_ARENA_ABI 1
#define SHMRT_ARENA_PREFIX "shmrt-"
/* Regions start on at least a cache line, so two never share one. */
#define SHMRT_ARENA_LINE 64
/* No region or arena beyond this (1 PiB): keeps offset sums far from overflow. */
#define SHMRT_ARENA_MAX_BYTES (UINT64_C(1) << 50)

/* One entry of the region table, as stored in the file. */
struct shmrt_arena_region {
	char name[SHMRT_REGION_NAME_MAX + 1]; /* NUL-terminated */
	uint64_t offset;                      /* from the start of the file */
	uint64_t size;
	uint32_t align;
	int32_t numa_node; /* -1: not bound */
};

/* The start of the file; the region table follows it. Native byte order:
 * an arena never leaves the machine that made it. */
struct shmrt_arena_header {
	_Atomic uint64_t magic; /* stored last, with release, by the creator */
	uint32_t abi_version;
	uint32_t header_size; /* bytes before the first region */
	uint64_t total_size;  /* the file's size */
	uint32_t n_regions;
	_Atomic uint32_t health; /* state | progress << 8 */
	int32_t owner_pid;
	uint32_t reserved;
	uint64_t owner_start_time; /* see proc.h */
	int64_t created_ns;        /* CLOCK_REALTIME */
	char name[SHMRT_ARENA_NAME_MAX + 1];
	struct shmrt_arena_region regions[];
};

/* A process-local copy of a header: what create planned, or what attach
 * validated. Lookups use this copy, never the shared header, so a peer that
 * scribbles on the header later cannot move a region outside the file. */
struct shmrt_arena_layout {
	char name[SHMRT_ARENA_NAME_MAX + 1];
	uint64_t total_size;
	uint32_t header_size;
	unsigned n_regions;
	struct shmrt_proc_id owner;
	int64_t created_ns;
	struct shmrt_arena_region regions[SHMRT_ARENA_MAX_REGIONS];
};

static inline uint32_t shmrt_health_word(unsigned state, unsigned progress)
{
	return (uint32_t)state | (uint32_t)progress << 8;
}

/* True when s is 1..max characters of [A-Za-z0-9_.-]. */
bool shmrt_arena_name_ok(const char *s, size_t max);

/* Lays out n regions (offsets, alignment, padding) into l; name may be NULL
 * (sizing only). 0 or -EINVAL / -EFBIG with a message. */
int shmrt_arena_plan(struct shmrt_arena_layout *l, const char *name,
		     const struct shmrt_region_spec *regions, unsigned n);

/* The index of region `name` in l, or -ENOENT. */
int shmrt_arena_layout_find(const struct shmrt_arena_layout *l, const char *name);

/* Writes l's header into a zero-filled mapping, publishing the magic last. */
void shmrt_arena_header_write(void *base, const struct shmrt_arena_layout *l);

/* Validates the len bytes at buf as a whole arena file and copies its
 * layout into out. Reads nothing outside buf[0 .. len). 0, -EAGAIN (magic
 * not yet written), -EBADMSG or -EPROTO, with a message. */
int shmrt_arena_header_check(const void *buf, size_t len, struct shmrt_arena_layout *out);

/* Fills info from a validated layout and the live health word at base
 * (owner_alive is left 0: the caller knows). */
void shmrt_arena_info_fill(const struct shmrt_arena_layout *l, const void *base,
			   struct shmrt_arena_info *info);

/* The handle's mapping (for a SIGBUS handler: is the address ours?). */
void shmrt_arena_mapping(const struct shmrt_arena *a, const void **base, size_t *size);

/* 0 while the file is as large as the mapping; -EFAULT, with the message
 * set, once someone truncated it: touching the lost pages is SIGBUS. */
int shmrt_arena_intact(const struct shmrt_arena *a);

#endif

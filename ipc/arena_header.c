/* The arena header: writing it, and validating one read from a file that
 * may be anything (see arena_format.h). */
#include <errno.h>
#include <string.h>

#include "arena_format.h"
#include "fail.h"

_Static_assert(sizeof(struct shmrt_arena_region) == 64, "region entry is ABI");
_Static_assert(sizeof(struct shmrt_arena_header) == 128, "header is ABI");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
	       "shared atomics must be lock-free to work across processes");

void shmrt_arena_header_write(void *base, const struct shmrt_arena_layout *l)
{
	struct shmrt_arena_header *h = base;
	h->abi_version = SHMRT_ARENA_ABI;
	h->header_size = l->header_size;
	h->total_size = l->total_size;
	h->n_regions = l->n_regions;
	h->owner_pid = l->owner.pid;
	h->owner_start_time = l->owner.start_time;
	h->created_ns = l->created_ns;
	memcpy(h->name, l->name, sizeof(h->name));
	memcpy(h->regions, l->regions, l->n_regions * sizeof(l->regions[0]));
	atomic_store_explicit(&h->health, shmrt_health_word(SHMRT_HEALTH_STARTING, 0), memory_order_relaxed);
	/* Release: whoever loads the magic with acquire (attach) sees all of
	 * the above. Until then the file reads as "being created". */
	atomic_store_explicit(&h->magic, SHMRT_ARENA_MAGIC, memory_order_release);
}

/* A name field must hold its NUL and only our characters. */
static bool field_ok(const char *field, size_t size, size_t max)
{
	return memchr(field, '\0', size) && shmrt_arena_name_ok(field, max);
}

static int check_region(const struct shmrt_arena_layout *l, unsigned i, uint64_t prev_end)
{
	const struct shmrt_arena_region *r = &l->regions[i];
	if (!field_ok(r->name, sizeof(r->name), SHMRT_REGION_NAME_MAX))
		return shmrt_fail(EBADMSG, "region %u: its name is not a terminated [A-Za-z0-9_.-] string", i);
	if (r->align < SHMRT_ARENA_LINE || (r->align & (r->align - 1)) || r->offset % r->align)
		return shmrt_fail(EBADMSG, "region '%s': offset %llu, alignment %u", r->name,
				  (unsigned long long)r->offset, r->align);
	if (r->numa_node < -1)
		return shmrt_fail(EBADMSG, "region '%s': NUMA node %d", r->name, (int)r->numa_node);
	if (r->size == 0 || r->offset > l->total_size || r->size > l->total_size - r->offset)
		return shmrt_fail(EBADMSG, "region '%s' (offset %llu, %llu bytes) lies outside the %llu-byte file",
				  r->name, (unsigned long long)r->offset, (unsigned long long)r->size,
				  (unsigned long long)l->total_size);
	if (r->offset < prev_end) {
		if (i == 0)
			return shmrt_fail(EBADMSG, "region '%s' (offset %llu) overlaps the %u-byte header", r->name,
					  (unsigned long long)r->offset, l->header_size);
		return shmrt_fail(EBADMSG, "region '%s' (offset %llu) overlaps region '%s'", r->name,
				  (unsigned long long)r->offset, l->regions[i - 1].name);
	}
	/* The first region of that name must be this one. find stops at the
	 * first match, at latest this entry: it never reads the later,
	 * unchecked ones. */
	if (shmrt_arena_layout_find(l, r->name) != (int)i)
		return shmrt_fail(EBADMSG, "two regions are called '%s'", r->name);
	return 0;
}

/* The fixed part: magic, version, sizes and the table's extent. */
static int check_fixed(const struct shmrt_arena_header *h, size_t len)
{
	uint64_t magic = atomic_load_explicit(&h->magic, memory_order_relaxed); /* our private copy */
	if (magic == 0)
		return shmrt_fail(EAGAIN, "not initialized: being created, or its creator died first "
					  "(shmrt clean removes it)");
	if (magic != SHMRT_ARENA_MAGIC)
		return shmrt_fail(EBADMSG, "not a shmrt arena (magic %#llx)", (unsigned long long)magic);
	if (h->abi_version != SHMRT_ARENA_ABI)
		return shmrt_fail(EPROTO, "arena ABI version %u; this library reads version %d", h->abi_version,
				  SHMRT_ARENA_ABI);
	if (h->total_size != len)
		return shmrt_fail(EBADMSG, "header says %llu bytes, the file has %zu", (unsigned long long)h->total_size,
				  len);
	if (h->n_regions > SHMRT_ARENA_MAX_REGIONS)
		return shmrt_fail(EBADMSG, "%u regions, more than %d", h->n_regions, SHMRT_ARENA_MAX_REGIONS);
	size_t table_end = sizeof(*h) + h->n_regions * sizeof(struct shmrt_arena_region);
	if (h->header_size < table_end || h->header_size > len || h->header_size % SHMRT_ARENA_LINE)
		return shmrt_fail(EBADMSG, "header size %u (the table of %u regions needs %zu)", h->header_size,
				  h->n_regions, table_end);
	if (!field_ok(h->name, sizeof(h->name), SHMRT_ARENA_NAME_MAX))
		return shmrt_fail(EBADMSG, "the arena's name is not a terminated [A-Za-z0-9_.-] string");
	if (h->owner_pid <= 0)
		return shmrt_fail(EBADMSG, "owner pid %d", (int)h->owner_pid);
	return 0;
}

int shmrt_arena_header_check(const void *buf, size_t len, struct shmrt_arena_layout *out)
{
	struct shmrt_arena_header h;
	if (len < sizeof(h))
		return shmrt_fail(EBADMSG, "%zu bytes, too small for an arena header (%zu)", len, sizeof(h));
	/* Check a private copy: another process may write the file meanwhile,
	 * and what we check must be what we use. */
	memcpy(&h, buf, sizeof(h));
	int rc = check_fixed(&h, len);
	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	memcpy(out->name, h.name, sizeof(out->name));
	out->total_size = h.total_size;
	out->header_size = h.header_size;
	out->n_regions = h.n_regions;
	out->owner.pid = h.owner_pid;
	out->owner.start_time = h.owner_start_time;
	out->created_ns = h.created_ns;
	memcpy(out->regions, (const char *)buf + sizeof(h), h.n_regions * sizeof(out->regions[0]));
	uint64_t prev_end = h.header_size;
	for (unsigned i = 0; i < out->n_regions; i++) {
		if ((rc = check_region(out, i, prev_end)) < 0)
			return rc;
		prev_end = out->regions[i].offset + out->regions[i].size;
	}
	return 0;
}

void shmrt_arena_info_fill(const struct shmrt_arena_layout *l, const void *base,
			   struct shmrt_arena_info *info)
{
	const struct shmrt_arena_header *h = base;
	/* Acquire: pairs with shmrt_arena_set_health's release. */
	uint32_t w = atomic_load_explicit(&h->health, memory_order_acquire);
	memset(info, 0, sizeof(*info));
	memcpy(info->name, l->name, sizeof(info->name));
	info->bytes = l->total_size;
	info->n_regions = l->n_regions;
	info->owner_pid = l->owner.pid;
	info->created_ns = l->created_ns;
	info->health = (enum shmrt_health)(w & 0xff);
	info->progress = w >> 8;
}

/* Planning an arena: where each region goes in the file (see arena_format.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "arena_format.h"
#include "fail.h"

bool shmrt_arena_name_ok(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '.' || c == '-';
		if (!ok || n == max)
			return false;
	}
	return n > 0;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* The alignment a region gets: a page by default and for NUMA binding
 * (mbind works on whole pages), otherwise at least a cache line. */
static int region_align(const struct shmrt_region_spec *r, unsigned i, uint64_t page, uint64_t *align)
{
	if (r->numa_node < -1)
		return shmrt_fail(EINVAL, "region '%s': NUMA node %d (use -1 for none)", r->name, r->numa_node);
	if (r->align && ((r->align & (r->align - 1)) || r->align > page))
		return shmrt_fail(EINVAL, "region %u '%s': alignment %zu is not a power of two up to a page (%llu)",
				  i, r->name, r->align, (unsigned long long)page);
	*align = r->align == 0 || r->numa_node >= 0 ? page : r->align;
	if (*align < SHMRT_ARENA_LINE)
		*align = SHMRT_ARENA_LINE;
	return 0;
}

static int check_spec(const struct shmrt_region_spec *regions, unsigned i)
{
	const struct shmrt_region_spec *r = &regions[i];
	if (!r->name || !shmrt_arena_name_ok(r->name, SHMRT_REGION_NAME_MAX))
		return shmrt_fail(EINVAL, "region %u: name '%s' is not 1..%d characters of [A-Za-z0-9_.-]", i,
				  r->name ? r->name : "(null)", SHMRT_REGION_NAME_MAX);
	for (unsigned j = 0; j < i; j++)
		if (!strcmp(regions[j].name, r->name))
			return shmrt_fail(EINVAL, "regions %u and %u are both called '%s'", j, i, r->name);
	if (r->size == 0 || r->size > SHMRT_ARENA_MAX_BYTES)
		return shmrt_fail(r->size ? EFBIG : EINVAL, "region '%s': size %zu is not 1 byte .. 1 PiB", r->name,
				  r->size);
	return 0;
}

int shmrt_arena_plan(struct shmrt_arena_layout *l, const char *name,
		     const struct shmrt_region_spec *regions, unsigned n)
{
	if (name && !shmrt_arena_name_ok(name, SHMRT_ARENA_NAME_MAX))
		return shmrt_fail(EINVAL, "arena name '%s' is not 1..%d characters of [A-Za-z0-9_.-]", name,
				  SHMRT_ARENA_NAME_MAX);
	if (n > SHMRT_ARENA_MAX_REGIONS || (n && !regions))
		return shmrt_fail(EINVAL, "%u regions: an arena holds 0..%d", n, SHMRT_ARENA_MAX_REGIONS);
	memset(l, 0, sizeof(*l));
	if (name)
		strcpy(l->name, name);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	l->n_regions = n;
	l->header_size = (uint32_t)align_up(sizeof(struct shmrt_arena_header) + n * sizeof(struct shmrt_arena_region), page);
	uint64_t cursor = l->header_size;
	for (unsigned i = 0; i < n; i++) {
		const struct shmrt_region_spec *r = &regions[i];
		uint64_t align = 0;
		int rc = check_spec(regions, i);
		if (rc < 0 || (rc = region_align(r, i, page, &align)) < 0)
			return rc;
		struct shmrt_arena_region *e = &l->regions[i];
		strcpy(e->name, r->name);
		e->offset = align_up(cursor, align);
		e->size = r->size;
		e->align = (uint32_t)align;
		e->numa_node = r->numa_node;
		cursor = e->offset + e->size;
		/* A bound region owns its last page too, so binding it moves no neighbour. */
		if (r->numa_node >= 0)
			cursor = align_up(cursor, page);
		/* Sizes are at most 2^50 each and there are at most 64: no overflow. */
		if (cursor > SHMRT_ARENA_MAX_BYTES)
			return shmrt_fail(EFBIG, "arena of more than 1 PiB");
	}
	l->total_size = align_up(cursor, page);
	return 0;
}

int shmrt_arena_layout_find(const struct shmrt_arena_layout *l, const char *name)
{
	for (unsigned i = 0; i < l->n_regions; i++)
		if (!strcmp(l->regions[i].name, name))
			return (int)i;
	return -ENOENT;
}

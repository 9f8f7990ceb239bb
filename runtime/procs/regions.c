/* The runtime's arena: its state region and rings (proto.h). */
#include <errno.h>
#include <string.h>

#include "shmrt/ring.h"
#include "shmrt/transport.h"
#include "fail.h"
#include "ring_layout.h"
#include "proto.h"
#include "sizing.h"
#include "array_size.h"

struct ring_def {
	const char *name;
	enum shmrt_ring_kind kind;
	/* Formatted again for a new family: the rings that link children,
	 * and submit, whose producers (the clients) stay registered; not the
	 * responses rings, which the clients read and keep their place in. */
	int again;
};

static const struct ring_def rings[] = {
	{"submit", SHMRT_RING_MPSC, 1}, {"tokens", SHMRT_RING_SPSC, 1},	  {"step", SHMRT_RING_BROADCAST, 1},
	{"sampled", SHMRT_RING_SPSC, 1}, {"events", SHMRT_RING_SPSC, 1}, {"responses", SHMRT_RING_SPSC, 0},
};

const char *rt_role_name(int i)
{
	return i == 0 ? "tokenizer" : i == 1 ? "scheduler" : "worker";
}

static bool within(int32_t v, int32_t lo, int32_t hi)
{
	return v >= lo && v <= hi;
}

/* The limits the processes size their memory and loops by, as the
 * supervisor wrote them, or near enough: a peer may have rewritten them,
 * and a zero block size divides, a negative count allocates. */
static bool limits_ok(const struct rt_state *st)
{
	return within(st->max_seqs, 1, 1 << 20) && within(st->max_batch_tokens, st->max_seqs, 1 << 26) &&
	       within(st->block_size, 1, 1 << 16) && within(st->num_blocks, 1, 1 << 30) &&
	       within(st->max_model_len, 1, 1 << 26) && within(st->model.vocab_size, 1, 1 << 26);
}

int rt_state_get(const struct shmrt_arena *a, struct rt_state **out)
{
	void *p = NULL;
	size_t size = 0;
	int rc = shmrt_arena_region(a, "state", &p, &size);
	if (rc)
		return rc;
	struct rt_state *st = p;
	/* the magic is stored last, with release (supervisor.c's create_arena) */
	if (size < sizeof(*st) || __atomic_load_n(&st->magic, __ATOMIC_ACQUIRE) != RT_STATE_MAGIC ||
	    st->n_workers < 1 || st->n_workers > RT_MAX_WORKERS || st->max_clients < 1 || st->max_clients > RT_MAX_CLIENTS)
		return shmrt_fail(EBADMSG, "the arena's state region is not a runtime's (or it is still starting)");
	if (!limits_ok(st))
		return shmrt_fail(EBADMSG, "the arena's limits are out of range (max_seqs %d, max_batch_tokens %d, "
				  "block_size %d, kv blocks %d, max_model_len %d, vocab %d)", st->max_seqs,
				  st->max_batch_tokens, st->block_size, st->num_blocks, st->max_model_len,
				  st->model.vocab_size);
	*out = st;
	return 0;
}

static const struct ring_def *find_def(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(rings); i++)
		if (!strcmp(rings[i].name, name))
			return &rings[i];
	return NULL;
}

/* The memory of ring `index` in region `name`: responses hold n equal
 * rings, the others one. */
static int ring_mem(const struct shmrt_arena *a, const struct ring_def *d, unsigned index, unsigned n_copies,
		    void **mem, size_t *size)
{
	void *p = NULL;
	size_t total = 0;
	int rc = shmrt_arena_region(a, d->name, &p, &total);
	if (rc)
		return rc;
	size_t per = total / n_copies / 64 * 64;
	if (index >= n_copies || per == 0)
		return shmrt_fail(EINVAL, "ring %s[%u]: no such ring", d->name, index);
	*mem = (char *)p + per * index;
	*size = per;
	return 0;
}

static unsigned copies(const struct rt_state *st, const struct ring_def *d)
{
	return !strcmp(d->name, "responses") ? st->max_clients : 1;
}

/* The memory of ring name[index] in an attached arena. */
static int named_ring_mem(const struct shmrt_arena *a, const char *name, unsigned index, void **mem, size_t *size)
{
	struct rt_state *st = NULL;
	const struct ring_def *d = find_def(name);
	int rc = rt_state_get(a, &st);
	if (!rc && !d)
		rc = shmrt_fail(EINVAL, "no ring %s", name);
	return rc ? rc : ring_mem(a, d, index, copies(st, d), mem, size);
}

int rt_ring_open(const struct shmrt_arena *a, const char *name, unsigned index, int role, unsigned reader,
		 struct shmrt_ring **out)
{
	void *mem = NULL;
	size_t size = 0;
	int rc = named_ring_mem(a, name, index, &mem, &size);
	return rc ? rc : shmrt_ring_open(out, mem, size, (enum shmrt_ring_role)role, reader);
}

static int xfer_format(struct shmrt_arena *a, const struct rt_state *st);

int rt_rings_format(struct shmrt_arena *a, const struct rt_state *st, int all)
{
	int rc = xfer_format(a, st);
	if (rc)
		return rc;
	for (size_t i = 0; i < ARRAY_SIZE(rings); i++) {
		const struct ring_def *d = &rings[i];
		if (!all && !d->again)
			continue;
		unsigned readers = d->kind == SHMRT_RING_BROADCAST ? st->n_workers : 1;
		unsigned producers = d->kind == SHMRT_RING_MPSC ? rt_submit_producers(st->max_clients) : 1;
		for (unsigned k = 0; k < copies(st, d); k++) {
			void *mem = NULL;
			size_t size = 0;
			if ((rc = ring_mem(a, d, k, copies(st, d), &mem, &size)))
				return rc;
			/* the largest capacity that fits: sizing.c made the region so */
			size_t cap = 4096;
			while (ring_footprint_n(d->kind, cap * 2, readers, producers) &&
			       ring_footprint_n(d->kind, cap * 2, readers, producers) <= size)
				cap *= 2;
			/* the submit ring's producers are the clients, alive across
			 * families; the others' are the children, all new */
			rc = all || d->kind != SHMRT_RING_MPSC
				     ? ring_format_n(mem, size, d->kind, cap, readers, producers)
				     : ring_reformat_n(mem, size, d->kind, cap, readers, producers);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* The workers' tensor-parallel group starts afresh with each family. */
static int xfer_format(struct shmrt_arena *a, const struct rt_state *st)
{
	void *mem = NULL;
	size_t size = 0;
	if (st->n_workers < 2)
		return 0;
	int rc = shmrt_arena_region(a, "xfer", &mem, &size);
	/* the chunk sizing.c made the region for (shmrt_sizing_fit may have
	 * grown or shrunk it with the shared memory given) */
	return rc ? rc
		  : shmrt_xfer_format(mem, size, (int)st->n_workers,
				      shmrt_sizing_chunk_of_region((int)st->n_workers, size));
}

int rt_ring_usage(const struct shmrt_arena *a, const char *name, unsigned index, uint64_t *used, uint64_t *cap)
{
	void *mem = NULL;
	size_t size = 0;
	int rc = named_ring_mem(a, name, index, &mem, &size);
	if (rc)
		return rc;
	const struct ring_shared *sh = mem;
	uint32_t n = sh->n_readers;
	if (n < 1 || n > SHMRT_RING_MAX_READERS || sizeof(*sh) + n * sizeof(sh->readers[0]) > size)
		return -EBADMSG;
	uint64_t head = atomic_load(&((struct ring_shared *)mem)->head), low = head;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t pos = atomic_load(&((struct ring_shared *)mem)->readers[i].pos);
		if ((int64_t)(pos - low) < 0)
			low = pos;
	}
	*cap = sh->capacity;
	*used = head - low < *cap ? head - low : *cap;
	return 0;
}

int rt_ring_lock_holder(const struct shmrt_arena *a, const char *name)
{
	void *mem = NULL;
	size_t size = 0;
	if (named_ring_mem(a, name, 0, &mem, &size) || size < sizeof(struct ring_shared))
		return 0;
	uint64_t id = atomic_load(&((struct ring_shared *)mem)->lock);
	return ring_peer_alive(id) ? (int)(id & RING_PID_MASK) : 0;
}

/* The runtime's arena, region by region (sizing.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/ring.h"
#include "shmrt/transport.h"
#include "arena_space.h"
#include "fail.h"
#include "ring_layout.h"
#include "proto.h"
#include "sizing.h"
#include "step_plan.h"

#define RING_REC_HEADER 16 /* ipc/ring_layout.h: a record's header, its alignment, and the terminator */
#define RING_MIN ((uint64_t)4096)
#define RING_MAX ((uint64_t)1 << 31)

/* The memory of this machine, or of its cgroup when that is less (a
 * container's limit: cgroup v2's memory.max, "max" when none). */
static uint64_t machine_memory(void)
{
	uint64_t mem = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE), limit;
	FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
	if (f) {
		if (fscanf(f, "%" SCNu64, &limit) == 1 && limit < mem)
			mem = limit;
		fclose(f);
	}
	return mem;
}

int shmrt_sizing_kv_blocks_in_memory(const struct shmrt_model_config *m, int block_size)
{
	uint64_t block = (uint64_t)m->num_layers * 2 * (uint64_t)m->num_kv_heads * (uint64_t)m->head_dim *
			 (uint64_t)block_size * 4;
	uint64_t n = machine_memory() / 4 / (block ? block : 1);
	return n > INT32_MAX ? INT32_MAX : (int)(n ? n : 1);
}

static uint64_t pow2_at_least(uint64_t x)
{
	uint64_t p = RING_MIN;
	while (p < x)
		p <<= 1;
	return p;
}

static struct shmrt_sizing_region *add(struct shmrt_sizing *s, const char *name)
{
	struct shmrt_sizing_region *r = &s->regions[s->n_regions++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	return r;
}

/* copies rings of one kind; each holds `records` of the largest record
 * (header and padding included) and at least floor bytes. */
static int add_ring(struct shmrt_sizing *s, const char *name, enum shmrt_ring_kind kind, unsigned readers,
		    uint64_t max_record, unsigned records, uint64_t floor, unsigned copies)
{
	uint64_t per = (max_record + RING_REC_HEADER - 1) / RING_REC_HEADER * RING_REC_HEADER + RING_REC_HEADER;
	/* + RING_REC_HEADER: the terminator after the last record (ring
	 * layout 3, ipc/ring_layout.h). */
	uint64_t want = per * records + RING_REC_HEADER > floor ? per * records + RING_REC_HEADER : floor;
	if (want > RING_MAX)
		return shmrt_fail(E2BIG, "sizing: the %s ring would need %llu MiB, more than a ring holds (%llu MiB); "
					 "lower --max-model-len, --max-seqs or --kv-blocks",
				  name, (unsigned long long)(want >> 20), (unsigned long long)(RING_MAX >> 20));
	struct shmrt_sizing_region *r = add(s, name);
	r->capacity = pow2_at_least(want);
	r->max_record = max_record;
	unsigned producers = kind == SHMRT_RING_MPSC ? rt_submit_producers((unsigned)s->p.max_clients) : 1;
	r->bytes = (uint64_t)ring_footprint_n(kind, (size_t)r->capacity, readers, producers) * copies;
	return 0;
}

/* The transport's chunk 0 (ipc/xfer.c): SHMRT_XFER_CHUNK, else the default. */
static size_t default_chunk(void)
{
	const char *v = getenv("SHMRT_XFER_CHUNK");
	char *end;
	unsigned long long x = v && *v ? strtoull(v, &end, 10) : 0;
	return x && !*end ? (size_t)x : SHMRT_XFER_DEFAULT_CHUNK;
}

static int fill_defaults(const struct shmrt_sizing_params *in, struct shmrt_sizing_params *p)
{
	*p = *in;
	if (!p->model)
		return shmrt_fail(EINVAL, "sizing: no model configuration");
	if (!p->tp)
		p->tp = 1;
	if (!p->max_batch_tokens)
		p->max_batch_tokens = SHMRT_SIZING_DEFAULT_MAX_BATCH_TOKENS;
	if (!p->max_seqs)
		p->max_seqs = SHMRT_SIZING_DEFAULT_MAX_SEQS;
	if (!p->max_model_len)
		p->max_model_len = p->model->max_context;
	if (!p->block_size)
		p->block_size = SHMRT_SIZING_DEFAULT_BLOCK_SIZE;
	if (!p->max_clients)
		p->max_clients = SHMRT_SIZING_DEFAULT_MAX_CLIENTS;
	if (p->tp < 1 || p->tp > SHMRT_XFER_MAX_WORLD || p->tp > SHMRT_RING_MAX_READERS)
		return shmrt_fail(EINVAL, "sizing: --tp %d outside 1 .. %d", p->tp, SHMRT_XFER_MAX_WORLD);
	/* The shard plan's rule (shard_plan.h): splits are head-aligned. */
	if (p->model->num_heads % p->tp || p->model->num_kv_heads % p->tp || p->model->intermediate_size % p->tp)
		return shmrt_fail(EINVAL, "sizing: --tp %d does not divide the model's %d heads, %d KV heads and "
					  "intermediate size %d",
				  p->tp, p->model->num_heads, p->model->num_kv_heads, p->model->intermediate_size);
	if (p->max_seqs < 1 || p->max_batch_tokens < p->max_seqs)
		return shmrt_fail(EINVAL, "sizing: --max-seqs %d must be >= 1 and --max-batch-tokens %d >= it",
				  p->max_seqs, p->max_batch_tokens);
	if (p->max_model_len < 1 || p->max_model_len > p->model->max_context)
		return shmrt_fail(EINVAL, "sizing: --max-model-len %d outside 1 .. the model's %d", p->max_model_len,
				  p->model->max_context);
	if (p->xfer_chunk && (p->xfer_chunk & (p->xfer_chunk - 1) || p->xfer_chunk < SHMRT_SIZING_MIN_CHUNK ||
			      p->xfer_chunk > SHMRT_SIZING_MAX_CHUNK))
		return shmrt_fail(EINVAL, "sizing: --xfer-chunk %zu is not a power of two in %zu .. %zu", p->xfer_chunk,
				  SHMRT_SIZING_MIN_CHUNK, SHMRT_SIZING_MAX_CHUNK);
	if (p->block_size < 1 || p->kv_blocks < 0 || p->max_clients < 1)
		return shmrt_fail(EINVAL, "sizing: --block-size %d, --kv-blocks %d, clients %d out of range",
				  p->block_size, p->kv_blocks, p->max_clients);
	/* A plan holds the tables of at most max_seqs sequences. */
	int64_t bound = (int64_t)p->max_seqs * ((p->max_model_len + p->block_size - 1) / p->block_size);
	if (!p->kv_blocks || p->kv_blocks > bound)
		p->kv_blocks = bound > INT32_MAX ? INT32_MAX : (int)bound;
	return 0;
}

int shmrt_sizing_compute(const struct shmrt_sizing_params *params, struct shmrt_sizing *s)
{
	memset(s, 0, sizeof(*s));
	int rc = fill_defaults(params, &s->p);
	if (rc)
		return rc;
	const struct shmrt_sizing_params *p = &s->p;
	uint64_t len = (uint64_t)p->max_model_len, seqs = (uint64_t)p->max_seqs;
	uint64_t step = shmrt_step_plan_max_record_size(p->max_seqs, p->max_batch_tokens, p->kv_blocks);
	const uint64_t MiB = (uint64_t)1 << 20, KiB = 1024;
	if ((rc = add_ring(s, "submit", SHMRT_RING_MPSC, 1,
			   SHMRT_SIZING_REQUEST_HEADER + len * SHMRT_SIZING_TEXT_BYTES_PER_TOKEN, 2, MiB, 1)) ||
	    (rc = add_ring(s, "tokens", SHMRT_RING_SPSC, 1, SHMRT_SIZING_REQUEST_HEADER + len * 4, 2, MiB, 1)) ||
	    (rc = add_ring(s, "step", SHMRT_RING_BROADCAST, (unsigned)p->tp, step, 2, 0, 1)) ||
	    (rc = add_ring(s, "sampled", SHMRT_RING_SPSC, 1, 32 + seqs * SHMRT_SIZING_SAMPLED_PER_SEQ, 2, 64 * KiB,
			   1)) ||
	    (rc = add_ring(s, "events", SHMRT_RING_SPSC, 1, 32 + seqs * SHMRT_SIZING_EVENT_BYTES, 4, 64 * KiB, 1)) ||
	    (rc = add_ring(s, "responses", SHMRT_RING_SPSC, 1, 0, 1, SHMRT_SIZING_RESPONSE_RING,
			   (unsigned)p->max_clients)))
		return rc;
	if (p->tp > 1) {
		struct shmrt_sizing_region *x = add(s, "xfer");
		x->bytes = shmrt_xfer_footprint(p->tp, p->xfer_chunk);
		if (!x->bytes)
			return shmrt_fail(EINVAL, "sizing: no xfer staging for tp %d with a %zu-byte chunk (is "
						  "SHMRT_XFER_CHUNK a multiple of 64 up to 16 MiB?)",
					  p->tp, p->xfer_chunk);
		s->xfer_chunk = p->xfer_chunk ? p->xfer_chunk : default_chunk();
	}
	add(s, "state")->bytes = SHMRT_SIZING_STATE_BYTES;

	struct shmrt_region_spec specs[SHMRT_SIZING_MAX_REGIONS];
	shmrt_sizing_specs(s, specs);
	if ((rc = shmrt_arena_footprint(specs, s->n_regions, &s->arena_bytes)))
		return rc;
	s->allreduce_bytes = (uint64_t)p->max_batch_tokens * (uint64_t)p->model->hidden_size * 4;
	s->min_mib = (s->arena_bytes + MiB - 1) / MiB;
	s->advised_mib = shmrt_shm_advised_mib(s->arena_bytes);
	return 0;
}

int shmrt_sizing_fit(const struct shmrt_sizing_params *params, uint64_t budget_bytes, struct shmrt_sizing *out)
{
	struct shmrt_sizing_params p = *params;
	if (p.tp <= 1)
		return shmrt_sizing_compute(&p, out);
	p.xfer_chunk = SHMRT_SIZING_MIN_CHUNK;
	int rc = shmrt_sizing_compute(&p, out);
	/* The arena grows with the chunk: double it while the next still fits. */
	while (!rc && p.xfer_chunk < SHMRT_SIZING_MAX_CHUNK) {
		struct shmrt_sizing next;
		p.xfer_chunk *= 2;
		if (shmrt_sizing_compute(&p, &next) || next.arena_bytes > budget_bytes)
			break;
		*out = next;
	}
	return rc;
}

size_t shmrt_sizing_chunk_of_region(int world, size_t size)
{
	if (shmrt_xfer_footprint(world, 0) == size)
		return 0;
	size_t best = 0;
	for (size_t c = SHMRT_SIZING_MIN_CHUNK; c <= SHMRT_SIZING_MAX_CHUNK; c *= 2)
		if (shmrt_xfer_footprint(world, c) && shmrt_xfer_footprint(world, c) <= size)
			best = c;
	return best;
}

int shmrt_sizing_nccl_shm(struct shmrt_nccl_shm *n)
{
	if (n->ranks < 2 || n->channels < 1)
		return shmrt_fail(EINVAL, "sizing: NCCL's SHM share needs 2 ranks or more and a channel (%d, %d)",
				  n->ranks, n->channels);
	uint64_t simple = n->buffsize ? n->buffsize : SHMRT_NCCL_DEFAULT_BUFFSIZE;
	uint64_t ll = n->ll_buffsize ? n->ll_buffsize : SHMRT_NCCL_DEFAULT_LL_BUFFSIZE;
	uint64_t ll128 = n->ll128_buffsize ? n->ll128_buffsize : SHMRT_NCCL_DEFAULT_LL128_BUFFSIZE;
	uint64_t r = (uint64_t)n->ranks;
	n->connections = (uint64_t)n->channels * (r + 2 * (r - 1));
	n->per_connection = 2 * SHMRT_NCCL_SEGMENT_HEADER + simple + ll + ll128;
	n->bytes = n->connections * n->per_connection;
	return 0;
}

/* The worst of a point's figures as a fraction of the best (figures not
 * measured, best <= 0, left out). */
static double worst_ratio(const struct shmrt_sizing_point *pt, const double *best)
{
	double w = 1;
	for (int k = 0; k < 3; k++)
		if (best[k] > 0 && pt->figures[k] / best[k] < w)
			w = pt->figures[k] / best[k];
	return w;
}

/* Whether a point (near, its worst ratio w, budget b) is a better knee
 * than the one (k_near, k_w, k_b) so far. */
static int better(int near, double w, uint64_t b, int k_near, double k_w, uint64_t k_b)
{
	if (near != k_near)
		return near;
	if (near)
		return b < k_b;
	return w > k_w || (w == k_w && b < k_b);
}

int shmrt_sizing_knee(const struct shmrt_sizing_point *pts, unsigned n, uint64_t *knee_mib)
{
	double best[3] = {0, 0, 0};
	for (unsigned i = 0; i < n; i++)
		for (int k = 0; k < 3 && pts[i].started; k++)
			if (pts[i].figures[k] > best[k])
				best[k] = pts[i].figures[k];
	/* The smallest budget near the best on every figure; when none is
	 * (noise, or figures that peak at different budgets), the smallest of
	 * those whose worst figure is the highest. */
	int found = 0, near = 0;
	double top = -1;
	for (unsigned i = 0; i < n; i++) {
		if (!pts[i].started)
			continue;
		double w = worst_ratio(&pts[i], best);
		int is_near = w >= SHMRT_SIZING_KNEE_FRACTION;
		if (!found || better(is_near, w, pts[i].budget_mib, near, top, *knee_mib)) {
			*knee_mib = pts[i].budget_mib;
			top = w;
			near = is_near;
			found = 1;
		}
	}
	return found ? 0 : shmrt_fail(ENOENT, "sizing: no budget of the curve started");
}

void shmrt_sizing_specs(const struct shmrt_sizing *s, struct shmrt_region_spec *specs)
{
	for (unsigned i = 0; i < s->n_regions; i++)
		specs[i] = (struct shmrt_region_spec){
			.name = s->regions[i].name, .size = s->regions[i].bytes, .align = 0, .numa_node = -1};
}

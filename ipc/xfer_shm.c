/* The shm transport: collectives through the staging area of a transport
 * region (xfer_layout.h), between processes on one machine.
 *
 * All-reduce, two steps per block (reduce-scatter, then all-gather): the
 * buffer is cut into blocks of world * chunk bytes, each block into world
 * slices (rank s owns slice s). For block b, rank r
 *   copy-in  copies its slices s != r into its "in" slot, publishes in_ready;
 *   reduce   sums slice r over every rank (its own from its buffer, the
 *            others' from their "in" slots), into its output and its "out"
 *            slot, publishes consumed and out_ready;
 *   gather   copies every other rank's reduced slice from its "out" slot
 *            into its output, publishes done.
 * A rank runs copy-in(b + 1), reduce(b), gather(b - 1) in turn, so a peer
 * is a step ahead when it is waited on: three blocks in flight, and with
 * XFER_SLOTS = 4 a slot's previous block is always read by the time it is
 * reused (the waits for consumed/done then return at once).
 *
 * Shared buffers (shmrt_xfer_buffer): a rank whose send lies in its buffer
 * skips copy-in, and its peers read its slices there; one whose recv does
 * keeps its reduced slice only there, and its peers gather from it. Each
 * rank says so in its send_off/recv_off before its first publish of the
 * call, and the others read them after acquiring that publish (at their
 * first reduce), when the rank cannot have moved on to a later call (it
 * gathers from them first). A rank writes into its buffer only what no
 * peer still reads: its own slice in reduce (peers read theirs), the
 * others' in gather (after their reduce, which read them, published
 * out_ready), and it returns once every peer has published done for the
 * last block (they have gathered its slices).
 *
 * Small all-reduces (W times their bytes at most oneshot_max, one block)
 * take one step:
 * each rank copies its whole buffer into its "in" slot and sums all of
 * them, which halves the synchronisations.
 *
 * Every element is summed in rank order 0..W-1 by one rank (or by each, the
 * same way), so all ranks get the same bits.
 *
 * Sequence numbers: every rank makes the same calls, so each keeps the same
 * count of in-steps (one per all-reduce block) and out-steps (one per
 * all-reduce block or all-gather chunk) and names slots by them. A slot of
 * step s is free again once every reader has published consumed/done
 * past s - XFER_SLOTS. Words are published with release, waited on with
 * acquire (xfer_wait.c): data written before a publish is visible to the
 * rank whose wait saw it, and a rank's reads of a slot happen before the
 * consumed/done that lets the slot's owner overwrite it.
 *
 * Device buffers (config device >= 0) go through xfer_shm_cuda.c: the same
 * steps, with cudaMemcpyAsync between the GPU and the staging. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt_config.h"
#include "fail.h"
#include "xfer_layout.h"
#include "xfer_shm.h"

#define WAIT_OTHERS XFER_WAIT_OTHERS
#define ME(r) (&(r)->ranks[(r)->rank])

/* Where one block of an all-reduce lies: elements [off, off + n) of the
 * buffer, slice s at s * slice (clipped to n). */
struct block {
	size_t off, n, slice;
	uint32_t in_step, out_step;
};

static size_t clip(size_t x, size_t hi)
{
	return x < hi ? x : hi;
}

/* Elements [lo, hi) of slice s of block k. */
static void slice_range(const struct block *k, int s, size_t *lo, size_t *hi)
{
	*lo = clip((size_t)s * k->slice, k->n);
	*hi = clip((size_t)(s + 1) * k->slice, k->n);
}

static struct block block_at(const struct shm_state *st, const struct shm_op *op, size_t b)
{
	size_t per_block = (size_t)st->r.world * st->r.chunk / op->es;
	struct block k = {.off = b * per_block, .in_step = op->in0 + (uint32_t)b, .out_step = op->out0 + (uint32_t)b};
	k.n = clip(op->count - k.off, per_block);
	/* Slices rounded up to a cache line, so that ranks never share one. */
	size_t line = XFER_LINE / op->es;
	k.slice = ((k.n + (size_t)st->r.world - 1) / (size_t)st->r.world + line - 1) / line * line;
	return k;
}

static int copy_in(struct shm_state *st, const struct shm_op *op, const struct block *k)
{
	struct xfer_region *r = &st->r;
	if (op->zc_in) { /* the peers read it where it is */
		xfer_publish(&ME(r)->in_ready, k->in_step + 1);
		return 0;
	}
	int rc = WAIT_OTHERS(r, consumed, k->in_step - XFER_SLOTS + 1);
	if (rc < 0)
		return rc;
	unsigned char *slot = xfer_in_slot(r, r->rank, k->in_step);
	for (int s = 0; s < r->world; s++) {
		size_t lo, hi;
		slice_range(k, s, &lo, &hi);
		if (s != r->rank && hi > lo &&
		    (rc = shm_to_host(st, slot + (size_t)s * r->chunk, op->send + (k->off + lo) * op->es,
				      (hi - lo) * op->es, op->stream)) < 0)
			return rc;
	}
	if ((rc = shm_flush(st, op->stream)) < 0)
		return rc;
	xfer_publish(&ME(r)->in_ready, k->in_step + 1);
	return 0;
}

/* Where a peer's shared buffer holds off + bytes, or NULL (XFER_PRIVATE);
 * the offset comes from shared memory and is checked. */
static int peer_buffer(struct xfer_region *r, int q, uint64_t off, size_t bytes, const unsigned char **out)
{
	*out = NULL;
	if (off == XFER_PRIVATE)
		return 0;
	if (off > r->buffer_bytes || bytes > r->buffer_bytes - off)
		return shmrt_fail(EBADMSG, "xfer shm: rank %d names %zu bytes at offset %llu of its %zu-byte "
				  "buffer", q, bytes, (unsigned long long)off, r->buffer_bytes);
	*out = r->buffers + (size_t)q * r->buffer_bytes + off;
	return 0;
}

/* After the first in_ready of the call from every peer (acquire). */
static int resolve_peers(struct shm_state *st, struct shm_op *op)
{
	struct xfer_region *r = &st->r;
	for (int q = 0; q < r->world; q++) {
		if (q == r->rank)
			continue;
		/* relaxed: ordered by the acquire of q's in_ready. */
		uint64_t so = atomic_load_explicit(&r->ranks[q].send_off, memory_order_relaxed);
		uint64_t ro = atomic_load_explicit(&r->ranks[q].recv_off, memory_order_relaxed);
		int rc = peer_buffer(r, q, so, op->count * op->es, &op->peer_in[q]);
		if (rc == 0)
			rc = peer_buffer(r, q, ro, op->count * op->es, &op->peer_out[q]);
		if (rc < 0)
			return xfer_break(r, -rc);
	}
	op->resolved = true;
	return 0;
}

static int reduce(struct shm_state *st, struct shm_op *op, const struct block *k)
{
	struct xfer_region *r = &st->r;
	int rc = WAIT_OTHERS(r, in_ready, k->in_step + 1);
	if (rc == 0 && !op->zc_out)
		rc = WAIT_OTHERS(r, done, k->out_step - XFER_SLOTS + 1);
	if (rc == 0 && !op->resolved)
		rc = resolve_peers(st, op);
	if (rc < 0)
		return rc;
	size_t lo, hi;
	slice_range(k, r->rank, &lo, &hi);
	size_t at = (k->off + lo) * op->es, bytes = (hi - lo) * op->es;
	const void *src[SHMRT_XFER_MAX_WORLD];
	for (int q = 0; q < r->world; q++)
		src[q] = op->peer_in[q] ? op->peer_in[q] + at
					: xfer_in_slot(r, q, k->in_step) + (size_t)r->rank * r->chunk;
	unsigned char *out = xfer_out_slot(r, r->rank, k->out_step);
	if (hi > lo) {
		if ((rc = shm_own_slice(st, &src[r->rank], op->send + at, bytes, op->stream)) < 0)
			return rc;
		/* Host buffers: straight into the output too (only there when
		 * it is shared); device ones get it from the out slot. */
		if (st->device < 0) {
			xfer_reduce(op->recv + at, op->zc_out ? NULL : out, src, r->world, hi - lo, op->dtype);
		} else {
			xfer_reduce(out, NULL, src, r->world, hi - lo, op->dtype);
			if ((rc = shm_from_host(st, op->recv + at, out, bytes, op->stream)) < 0)
				return rc;
		}
	}
	xfer_publish(&ME(r)->consumed, k->in_step + 1);
	xfer_publish(&ME(r)->out_ready, k->out_step + 1);
	return 0;
}

static int gather(struct shm_state *st, const struct shm_op *op, const struct block *k)
{
	struct xfer_region *r = &st->r;
	for (int s = 0; s < r->world; s++) {
		if (s == r->rank)
			continue;
		int rc = xfer_wait(r, &r->ranks[s].out_ready, k->out_step + 1, s);
		size_t lo, hi;
		slice_range(k, s, &lo, &hi);
		size_t at = (k->off + lo) * op->es;
		if (rc == 0 && hi > lo)
			rc = shm_from_host(st, op->recv + at,
					   op->peer_out[s] ? op->peer_out[s] + at : xfer_out_slot(r, s, k->out_step),
					   (hi - lo) * op->es, op->stream);
		if (rc < 0)
			return rc;
	}
	/* The copies out of the slots are done before their owners may
	 * overwrite them. */
	int rc = shm_flush(st, op->stream);
	if (rc == 0)
		xfer_publish(&ME(r)->done, k->out_step + 1);
	return rc;
}

static int two_step(struct shm_state *st, struct shm_op *op, size_t n_blocks)
{
	int rc = 0;
	struct block prev, cur = block_at(st, op, 0), next;
	rc = copy_in(st, op, &cur);
	for (size_t b = 0; rc == 0 && b < n_blocks; b++) {
		if (b + 1 < n_blocks) {
			next = block_at(st, op, b + 1);
			rc = copy_in(st, op, &next);
		}
		if (rc == 0)
			rc = reduce(st, op, &cur);
		if (rc == 0 && b > 0)
			rc = gather(st, op, &prev);
		prev = cur;
		cur = next;
	}
	if (rc == 0)
		rc = gather(st, op, &prev);
	/* The peers read this rank's recv in their gathers: wait for them. */
	if (rc == 0 && op->zc_out)
		rc = WAIT_OTHERS(&st->r, done, prev.out_step + 1);
	return rc;
}

/* Whether [p, p + bytes) lies in this rank's shared buffer; its offset. */
static uint64_t buffer_offset(const struct xfer_region *r, const void *p, size_t bytes)
{
	const unsigned char *mine = r->buffers + (size_t)r->rank * r->buffer_bytes, *c = p;
	if (!r->buffers || c < mine || c > mine + r->buffer_bytes || bytes > (size_t)(mine + r->buffer_bytes - c))
		return XFER_PRIVATE;
	return (uint64_t)(c - mine);
}

static int one_step(struct shm_state *st, const struct shm_op *op)
{
	struct xfer_region *r = &st->r;
	uint32_t step = op->in0;
	size_t bytes = op->count * op->es;
	unsigned char *mine = xfer_in_slot(r, r->rank, step);
	int rc = WAIT_OTHERS(r, consumed, step - XFER_SLOTS + 1);
	if (rc == 0)
		rc = shm_to_host(st, mine, op->send, bytes, op->stream);
	if (rc == 0)
		rc = shm_flush(st, op->stream);
	if (rc < 0)
		return rc;
	xfer_publish(&ME(r)->in_ready, step + 1);
	if ((rc = WAIT_OTHERS(r, in_ready, step + 1)) < 0)
		return rc;
	const void *src[SHMRT_XFER_MAX_WORLD];
	for (int q = 0; q < r->world; q++)
		src[q] = xfer_in_slot(r, q, step);
	if (st->device < 0) {
		src[r->rank] = op->send; /* the same bytes, warmer in this cache */
		xfer_reduce(op->recv, NULL, src, r->world, op->count, op->dtype);
	} else {
		/* The sum goes to the private bounce buffer (the peers are
		 * still reading this rank's slot), then to the GPU. */
		xfer_reduce(st->bounce, NULL, src, r->world, op->count, op->dtype);
		if ((rc = shm_from_host(st, op->recv, st->bounce, bytes, op->stream)) < 0 ||
		    (rc = shm_flush(st, op->stream)) < 0)
			return rc;
	}
	xfer_publish(&ME(r)->consumed, step + 1);
	return 0;
}

static int shm_all_reduce(void *state, const void *send, void *recv, size_t count, enum shmrt_dtype dtype,
			  void *stream)
{
	struct shm_state *st = state;
	size_t es = shmrt_dtype_size(dtype), block = (size_t)st->r.world * st->r.chunk;
	struct shm_op op = {.send = send, .recv = recv, .count = count, .es = es, .dtype = dtype,
			    .stream = stream, .in0 = st->in_step, .out0 = st->out_step};
	if (count == 0)
		return 0;
	int rc;
	if (count * es * (size_t)st->r.world <= st->r.oneshot_max && count * es <= block) {
		st->in_step++;
		rc = one_step(st, &op);
	} else {
		size_t n_blocks = (count * es + block - 1) / block;
		st->in_step += (uint32_t)n_blocks;
		st->out_step += (uint32_t)n_blocks;
		struct xfer_rank *me = ME(&st->r);
		uint64_t so = buffer_offset(&st->r, send, count * es), ro = buffer_offset(&st->r, recv, count * es);
		op.zc_in = so != XFER_PRIVATE;
		op.zc_out = ro != XFER_PRIVATE;
		/* relaxed: published by copy_in's in_ready (release). */
		atomic_store_explicit(&me->send_off, so, memory_order_relaxed);
		atomic_store_explicit(&me->recv_off, ro, memory_order_relaxed);
		rc = two_step(st, &op, n_blocks);
	}
	return rc;
}

/* All-gather: rank r's buffer in chunks, each through its "out" slot;
 * chunk c + 1 is put before chunk c is fetched from the others. */
static int put_chunk(struct shm_state *st, const struct shm_op *op, size_t c)
{
	struct xfer_region *r = &st->r;
	uint32_t step = op->out0 + (uint32_t)c;
	size_t bytes = op->count * op->es, off = c * r->chunk;
	int rc = WAIT_OTHERS(r, done, step - XFER_SLOTS + 1);
	if (rc == 0)
		rc = shm_to_host(st, xfer_out_slot(r, r->rank, step), op->send + off, clip(bytes - off, r->chunk),
				 op->stream);
	if (rc == 0)
		rc = shm_flush(st, op->stream);
	if (rc == 0)
		xfer_publish(&ME(r)->out_ready, step + 1);
	return rc;
}

static int get_chunk(struct shm_state *st, const struct shm_op *op, size_t c)
{
	struct xfer_region *r = &st->r;
	uint32_t step = op->out0 + (uint32_t)c;
	size_t bytes = op->count * op->es, off = c * r->chunk, n = clip(bytes - off, r->chunk);
	for (int s = 0; s < r->world; s++) {
		if (s == r->rank)
			continue;
		int rc = xfer_wait(r, &r->ranks[s].out_ready, step + 1, s);
		if (rc == 0)
			rc = shm_from_host(st, op->recv + (size_t)s * bytes + off, xfer_out_slot(r, s, step), n,
					   op->stream);
		if (rc < 0)
			return rc;
	}
	int rc = shm_flush(st, op->stream);
	if (rc == 0)
		xfer_publish(&ME(r)->done, step + 1);
	return rc;
}

static int shm_all_gather(void *state, const void *send, void *recv, size_t count, enum shmrt_dtype dtype,
			  void *stream)
{
	struct shm_state *st = state;
	size_t es = shmrt_dtype_size(dtype), bytes = count * es;
	struct shm_op op = {.send = send, .recv = recv, .count = count, .es = es, .dtype = dtype,
			    .stream = stream, .out0 = st->out_step};
	if (count == 0)
		return 0;
	size_t n = (bytes + st->r.chunk - 1) / st->r.chunk;
	st->out_step += (uint32_t)n;
	unsigned char *own = op.recv + (size_t)st->r.rank * bytes;
	int rc = own == op.send ? 0 : shm_copy_own(st, own, op.send, bytes, stream);
	if (rc == 0)
		rc = put_chunk(st, &op, 0);
	for (size_t c = 0; rc == 0 && c < n; c++) {
		if (c + 1 < n)
			rc = put_chunk(st, &op, c + 1);
		if (rc == 0)
			rc = get_chunk(st, &op, c);
	}
	return rc;
}

static int shm_barrier(void *state)
{
	struct shm_state *st = state;
	return xfer_barrier(&st->r, &st->barrier_step);
}

static int shm_init(void **state, const struct shmrt_xfer_config *cfg)
{
	struct shm_state *st = calloc(1, sizeof(*st));
	if (!st)
		return shmrt_fail(ENOMEM, "xfer shm: out of memory");
	int rc = xfer_region_map(&st->r, cfg);
	st->device = cfg->device;
	if (rc == 0 && cfg->device >= 0)
		rc = shm_cuda_init(st, cfg);
	if (rc < 0) {
		free(st);
		return rc;
	}
	*state = st;
	return 0;
}

static void shm_destroy(void *state)
{
	struct shm_state *st = state;
	if (st->device >= 0)
		shm_cuda_destroy(st);
	free(st);
}

const struct shmrt_transport xfer_shm_transport = {
	.name = "shm",
	.init = shm_init,
	.all_reduce = shm_all_reduce,
	.all_gather = shm_all_gather,
	.barrier = shm_barrier,
	.destroy = shm_destroy,
};

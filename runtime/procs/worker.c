/* A worker process: loads the model, runs each step plan of the step ring
 * (step_plan.h) through shmrt_model_forward, and rank 0 samples and sends
 * the tokens back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/error.h"
#include "shmrt/model.h"
#include "shmrt/ring.h"
#include "shmrt/transport.h"
#include "fail.h"
#include "placement.h"
#include "child.h"
#include "step_plan.h"

struct worker {
	struct rt_state *st;
	struct rt_proc *me;
	int rank, stride;
	struct shmrt_model *m;
	struct shmrt_kv_pool *pool;
	struct shmrt_ring *step, *sampled;
	struct shmrt_xfer *xfer; /* world > 1: the tensor-parallel group */
	struct shmrt_step_plan plan;
	int32_t *q_lens, *ctx_lens, *tables, *rows, *sampled_rec;
	struct shmrt_sample_params *params;
};

static int alloc_buffers(struct worker *w)
{
	const struct rt_state *st = w->st;
	int S = st->max_seqs;
	w->stride = (st->max_model_len + st->block_size - 1) / st->block_size;
	w->q_lens = calloc((size_t)S, sizeof(int32_t));
	w->ctx_lens = calloc((size_t)S, sizeof(int32_t));
	w->tables = calloc((size_t)S * (size_t)w->stride, sizeof(int32_t));
	w->rows = calloc((size_t)S, sizeof(int32_t));
	w->sampled_rec = calloc((size_t)S + sizeof(struct rt_sampled) / 4, sizeof(int32_t));
	w->params = calloc((size_t)S, sizeof(*w->params));
	if (!w->q_lens || !w->ctx_lens || !w->tables || !w->rows || !w->sampled_rec || !w->params)
		return shmrt_fail(ENOMEM, "no memory");
	return shmrt_step_plan_init(&w->plan, S, st->max_batch_tokens, st->num_blocks);
}

/* The plan in w->plan: forward, sample (every row: the kernel takes them
 * all; the rows of sequences that do not sample are dropped). */
static int run_plan(struct worker *w, int32_t *out)
{
	const struct shmrt_step_plan *p = &w->plan;
	int rc = shmrt_step_plan_tables(p, w->q_lens, w->ctx_lens, w->tables, w->stride);
	if (rc)
		return rc;
	struct shmrt_step s = {.n_seqs = p->n_seqs, .n_tokens = p->n_tokens, .tokens = p->tokens,
			       .q_lens = w->q_lens, .ctx_lens = w->ctx_lens, .block_tables = w->tables,
			       .block_table_stride = w->stride, .logits = SHMRT_LOGITS_LAST};
	int rows = shmrt_model_forward(w->m, w->pool, &s, NULL);
	if (rows < 0)
		return rows;
	if (w->rank != 0 || !p->n_samples)
		return 0;
	for (int i = 0; i < rows; i++)
		w->params[i] = p->seqs[i].sample ? p->seqs[i].params : (struct shmrt_sample_params){0};
	if ((rc = shmrt_model_sample(w->m, w->params, rows, w->rows)) < 0)
		return rc;
	int n = 0;
	for (int i = 0; i < rows; i++)
		if (p->seqs[i].sample)
			out[n++] = w->rows[i];
	return 0;
}

/* A step on the cache's block 0 before READY (shmrt probe --ready's
 * promise): every path of forward and sampling runs once. The slot it
 * writes is written again before any sequence reads it. */
static int warm_up(struct worker *w)
{
	int32_t tok = 0, q = 1, ctx = 1, table = 0, out;
	struct shmrt_step s = {.n_seqs = 1, .n_tokens = 1, .tokens = &tok, .q_lens = &q, .ctx_lens = &ctx,
			       .block_tables = &table, .block_table_stride = 1, .logits = SHMRT_LOGITS_LAST};
	struct shmrt_sample_params sp = {0};
	int rc = shmrt_model_forward(w->m, w->pool, &s, NULL);
	return rc < 0 ? rc : shmrt_model_sample(w->m, &sp, 1, &out) < 0 ? -EIO : 0;
}

static int serve(struct worker *w, struct shmrt_arena *a)
{
	const struct rt_state *st = w->st;
	struct shmrt_step_plan_limits lim = {.block_size = st->block_size, .vocab = st->model.vocab_size,
					     .max_ctx = st->max_model_len};
	int rc = rt_ring_open(a, "step", 0, SHMRT_RING_CONSUMER, (unsigned)w->rank, &w->step);
	if (!rc && w->rank == 0)
		rc = rt_ring_open(a, "sampled", 0, SHMRT_RING_PRODUCER, 0, &w->sampled);
	if (rc)
		return rc;
	atomic_store(&w->me->phase, RT_PHASE_READY);
	struct rt_sampled *h = (void *)w->sampled_rec;
	for (;;) {
		rt_beat(w->me);
		const void *rec;
		size_t len;
		rc = shmrt_ring_peek(w->step, &rec, &len, RT_BEAT_NS);
		int64_t recv = shmrt_now_ns();
		if (rc == -ETIMEDOUT)
			continue;
		if (rc || (rc = shmrt_step_plan_parse(rec, len, &lim, &w->plan)) || (rc = shmrt_ring_release(w->step)))
			return rc;
		int64_t t0 = shmrt_now_ns();
		if ((rc = run_plan(w, (int32_t *)(h + 1))))
			return rc;
		int64_t busy = shmrt_now_ns() - t0;
		atomic_fetch_add_explicit(&w->me->busy_ns, busy, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->me->work, 1, memory_order_relaxed);
		if (w->rank != 0)
			continue;
		*h = (struct rt_sampled){.step = w->plan.step, .n = w->plan.n_samples, .recv_ns = recv,
					 .busy_ns = busy, .sent_ns = shmrt_now_ns()};
		if ((rc = shmrt_ring_send(w->sampled, h, sizeof(*h) + (size_t)h->n * 4, SHMRT_WAIT_FOREVER)))
			return rc;
	}
}

/* Joins the workers' group on the arena's xfer region (formatted by the
 * supervisor for each family); waits for every rank. */
static int join_group(struct worker *w, struct shmrt_arena *a)
{
	void *mem;
	size_t size;
	int rc = shmrt_arena_region(a, "xfer", &mem, &size);
	if (rc)
		return rc;
	struct shmrt_xfer_config cfg = {.rank = w->rank, .world = (int)w->st->n_workers, .region = mem,
					.region_size = size, .device = -1};
	return shmrt_xfer_open(&w->xfer, NULL, &cfg);
}

/* A long step (a large prefill on a CPU) beats layer by layer: only a
 * layer that never ends is a hang. */
static void beat(void *proc)
{
	rt_beat(proc);
}

int rt_worker_run(struct shmrt_arena *a, struct rt_state *st, int rank)
{
	struct worker w = {.st = st, .me = &st->procs[RT_PROC_WORKER0 + rank], .rank = rank};
	atomic_store(&w.me->phase, RT_PHASE_LOADING);
	/* Its CPUs (and GPU) before anything is allocated, so that first touch
	 * puts its memory on its node; the CPU backend's threads follow the
	 * affinity (kernels/cpu/pool.c). */
	struct rt_placement where;
	char backend[sizeof(st->backend)], model_dir[sizeof(st->model_dir)];
	/* the shared strings copied once, bounded: a peer may rewrite them */
	snprintf(backend, sizeof(backend), "%.*s", (int)strnlen(st->backend, sizeof(backend) - 1), st->backend);
	snprintf(model_dir, sizeof(model_dir), "%.*s", (int)strnlen(st->model_dir, sizeof(model_dir) - 1),
		 st->model_dir);
	int rc = rt_placement_get(rank, (int)st->n_workers, shmrt_backend_device(backend) == SHMRT_DEVICE_CUDA, &where);
	if (!rc)
		rc = rt_placement_apply(&where);
	atomic_store(&w.me->progress, 100);
	struct shmrt_model_options mo = {.backend = backend, .rank = rank, .world = (int)st->n_workers,
					 .on_layer = beat, .on_layer_arg = w.me, .quantize_to = st->quantize_to};
	if (!rc)
		rc = alloc_buffers(&w);
	if (!rc && st->n_workers > 1)
		rc = join_group(&w, a);
	mo.xfer = w.xfer;
	if (!rc)
		rc = shmrt_model_load(model_dir, &mo, &w.m);
	if (!rc) {
		atomic_store(&w.me->progress, 700);
		rc = shmrt_kv_pool_new(w.m, st->num_blocks, st->block_size, &w.pool);
	}
	if (!rc)
		rc = warm_up(&w);
	if (!rc)
		rc = serve(&w, a);
	if (w.step)
		shmrt_ring_close(w.step);
	if (w.sampled)
		shmrt_ring_close(w.sampled);
	shmrt_kv_pool_free(w.pool);
	shmrt_model_free(w.m);
	if (w.xfer)
		shmrt_xfer_close(w.xfer);
	shmrt_step_plan_free(&w.plan);
	free(w.q_lens), free(w.ctx_lens), free(w.tables), free(w.rows), free(w.sampled_rec), free(w.params);
	return rc;
}

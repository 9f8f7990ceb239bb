/* Fast paged attention and cache write, f32 (q, out, cache).
 *
 * Work items are (sequence, kv head, tile of new tokens): all query heads
 * of a GQA group and up to ROWS query rows share each K/V block read, so
 * a block is fetched from memory once per item and then served from L1.
 * Each row keeps an online softmax (running max m, sum l, accumulator) in
 * fp32, FlashAttention style, over the blocks of keys it may see. Items
 * are handed out dynamically, largest first. The core is compiled per x86
 * level (cpu_isa.h). */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "args.h"
#include "cpu_isa.h"
#include "cpu_pool.h"
#include "dtype_conv.h"
#include "fail.h"
#include "vec.h"

#define ROWS 64   /* query rows (tokens x heads of a group) per item */
#define MAX_D 256 /* head_dim: a multiple of 16 up to this */

struct item {
	int seq, kv_head, j0, j1; /* new tokens j0 .. j1-1 of the sequence */
	int64_t cost;
};

struct scratch {
	float *q, *acc, *m, *l, *s; /* ROWS x D, ROWS x D, ROWS, ROWS, block */
};

struct job {
	const struct shmrt_attention_args *a;
	struct item *items;
	int n_items;
	_Atomic int next;
	_Atomic int no_memory;
	enum shmrt_cpu_isa isa;
};

/* Scores of one row against keys 0 .. n-1 of a block (k: n rows of D). */
VEC_INLINE void scores(const v16f *q, const float *k, int n, int D, float *s)
{
	for (int t = 0; t < n; t++, k += D) {
		v16f d = q[0] * VLOAD(v16f, k);
		for (int i = 1; i < D / 16; i++)
			d += q[i] * VLOAD(v16f, k + 16 * i);
		s[t] = v16_sum(d);
	}
}

/* One block for one row: online softmax update of (m, l, acc) with the
 * first n keys/values of the block. s has room for the block rounded up
 * to 16. */
VEC_INLINE void update_row(const float *qrow, const float *kb, const float *vb, int n, int D, float *s, float *m,
			   float *l, float *acc)
{
	v16f q[MAX_D / 16], o[MAX_D / 16];
	for (int i = 0; i < D / 16; i++)
		q[i] = VLOAD(v16f, qrow + 16 * i);
	scores(q, kb, n, D, s);
	float bmax = s[0];
	for (int t = 1; t < n; t++)
		bmax = s[t] > bmax ? s[t] : bmax;
	float m_new = bmax > *m ? bmax : *m;
	float corr = expf(*m - m_new); /* 0 on the first block (m = -inf) */
	int padded = (n + 15) & ~15;
	for (int t = n; t < padded; t++)
		s[t] = -INFINITY; /* exp gives 0 */
	v16f sum = {0};
	for (int t = 0; t < padded; t += 16) {
		v16f p = v16_exp(VLOAD(v16f, s + t) - m_new);
		VSTORE(s + t, p);
		sum += p;
	}
	*l = *l * corr + v16_sum(sum);
	*m = m_new;
	for (int i = 0; i < D / 16; i++)
		o[i] = VLOAD(v16f, acc + 16 * i) * corr;
	for (int t = 0; t < n; t++, vb += D) {
		v16f p = v16_splat(s[t]);
		for (int i = 0; i < D / 16; i++)
			o[i] += p * VLOAD(v16f, vb + 16 * i);
	}
	for (int i = 0; i < D / 16; i++)
		VSTORE(acc + 16 * i, o[i]);
}

/* Asks for a block's K and V ahead of their use: blocks lie anywhere in
 * the cache, and the hardware prefetchers would start over at each. */
VEC_INLINE void prefetch_block(const struct shmrt_kv_cache *c, int block, int kv_head)
{
	int64_t off = shmrt_kv_offset(c, block, kv_head, 0), n = (int64_t)c->block_size * c->head_dim;
	for (int64_t i = 0; i < n; i += 64 / sizeof(float)) {
		__builtin_prefetch((const float *)c->k + off + i);
		__builtin_prefetch((const float *)c->v + off + i);
	}
}

VEC_INLINE void attend_item(const struct shmrt_attention_args *a, const struct item *it, struct scratch *sc, int D)
{
	const struct shmrt_kv_cache *c = &a->cache;
	int G = a->n_heads / c->n_kv_heads, bs = c->block_size;
	int q0 = a->cu_q_lens[it->seq], q_len = a->cu_q_lens[it->seq + 1] - q0;
	int first_pos = a->ctx_lens[it->seq] - q_len; /* position of new token 0 */
	const int32_t *table = a->block_tables + (int64_t)it->seq * a->block_table_stride;
	int rows = (it->j1 - it->j0) * G;

	for (int r = 0; r < rows; r++) { /* row r: token j0 + r / G, head kv_head * G + r % G */
		const float *q = (const float *)a->q + (int64_t)(q0 + it->j0 + r / G) * a->q_stride +
				 (int64_t)(it->kv_head * G + r % G) * D;
		for (int d = 0; d < D; d++)
			sc->q[r * D + d] = q[d] * a->scale;
		memset(sc->acc + r * D, 0, sizeof(float) * D);
		sc->m[r] = -INFINITY;
		sc->l[r] = 0;
	}
	int n_keys = first_pos + it->j1; /* the last row sees keys 0 .. n_keys-1 */
	for (int b = 0; b * bs < n_keys; b++) {
		int t0 = b * bs;
		int64_t off = shmrt_kv_offset(c, table[b], it->kv_head, 0);
		const float *kb = (const float *)c->k + off, *vb = (const float *)c->v + off;
		if ((b + 1) * bs < n_keys)
			prefetch_block(c, table[b + 1], it->kv_head);
		for (int r = 0; r < rows; r++) {
			int visible = first_pos + it->j0 + r / G + 1 - t0; /* causal */
			int n = visible < bs ? visible : bs;
			if (n > 0)
				update_row(sc->q + r * D, kb, vb, n, D, sc->s, &sc->m[r], &sc->l[r], sc->acc + r * D);
		}
	}
	for (int r = 0; r < rows; r++) {
		float *out = (float *)a->out + (int64_t)(q0 + it->j0 + r / G) * a->n_heads * D +
			     (int64_t)(it->kv_head * G + r % G) * D;
		float inv = 1.0f / sc->l[r];
		for (int d = 0; d < D; d++)
			out[d] = sc->acc[r * D + d] * inv;
	}
}

/* Takes items until none are left; D folds to a constant for 64 and 128. */
VEC_INLINE void drain(struct job *j, struct scratch *sc)
{
	int D = j->a->cache.head_dim;
	for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n_items;) {
		if (D == 128)
			attend_item(j->a, &j->items[i], sc, 128);
		else if (D == 64)
			attend_item(j->a, &j->items[i], sc, 64);
		else
			attend_item(j->a, &j->items[i], sc, D);
	}
}

static void drain_generic(struct job *j, struct scratch *sc)
{
	drain(j, sc);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) static void drain_avx2(struct job *j, struct scratch *sc)
{
	drain(j, sc);
}

__attribute__((target("avx512f,avx2,fma"))) static void drain_avx512(struct job *j, struct scratch *sc)
{
	drain(j, sc);
}
#endif

static void run(void *ctx, int tid, int n_threads)
{
	(void)tid;
	(void)n_threads;
	struct job *j = ctx;
	int D = j->a->cache.head_dim, padded_bs = (j->a->cache.block_size + 15) & ~15;
	float *buf = malloc(sizeof(float) * ((size_t)2 * ROWS * D + 2 * ROWS + padded_bs));
	if (!buf) {
		atomic_store(&j->no_memory, 1);
		return;
	}
	struct scratch sc = {buf, buf + ROWS * D, buf + 2 * ROWS * D, buf + 2 * ROWS * D + ROWS,
			     buf + 2 * ROWS * D + 2 * ROWS};
#if defined(__x86_64__) || defined(__i386__)
	if (j->isa >= SHMRT_ISA_AVX512)
		drain_avx512(j, &sc);
	else if (j->isa == SHMRT_ISA_AVX2)
		drain_avx2(j, &sc);
	else
#endif
		drain_generic(j, &sc);
	free(buf);
}

static int by_cost(const void *x, const void *y)
{
	const struct item *a = x, *b = y;
	return (a->cost < b->cost) - (a->cost > b->cost);
}

/* The work items of the batch, largest first; *n_items and *work (the
 * multiply-adds, for sizing the run) set. NULL on no memory. */
static struct item *make_items(const struct shmrt_attention_args *a, int *n_items, int64_t *work)
{
	int G = a->n_heads / a->cache.n_kv_heads, tile = ROWS / G > 0 ? ROWS / G : 1, n = 0;
	for (int s = 0; s < a->n_seqs; s++)
		n += (a->cu_q_lens[s + 1] - a->cu_q_lens[s] + tile - 1) / tile * a->cache.n_kv_heads;
	struct item *items = malloc(sizeof(*items) * (n ? n : 1));
	if (!items)
		return NULL;
	n = 0;
	*work = 0;
	for (int s = 0; s < a->n_seqs; s++) {
		int q_len = a->cu_q_lens[s + 1] - a->cu_q_lens[s], first_pos = a->ctx_lens[s] - q_len;
		for (int j0 = 0; j0 < q_len; j0 += tile) {
			int j1 = j0 + tile < q_len ? j0 + tile : q_len;
			int64_t cost = (int64_t)(j1 - j0) * G * (first_pos + j1);
			for (int h = 0; h < a->cache.n_kv_heads; h++)
				items[n++] = (struct item){s, h, j0, j1, cost};
			*work += cost * a->cache.n_kv_heads * a->cache.head_dim;
		}
	}
	qsort(items, n, sizeof(*items), by_cost);
	*n_items = n;
	return items;
}

int shmrt_cpu_attention(void *stream, const struct shmrt_attention_args *a)
{
	(void)stream;
	int rc = shmrt_check_attention(a);
	if (rc || (rc = shmrt_cpu_check_seqs(a)))
		return rc;
	const struct shmrt_kv_cache *c = &a->cache;
	if (a->dtype != SHMRT_F32 || c->dtype != SHMRT_F32 || c->head_dim % 16 || c->head_dim > MAX_D)
		return shmrt_fail(ENOTSUP, "attention (cpu): needs f32 q and cache (not %s, %s), head_dim a "
					   "multiple of 16 up to %d (not %d)",
				  shmrt_dtype_name(a->dtype), shmrt_dtype_name(c->dtype), MAX_D, c->head_dim);
	struct job j = {.a = a, .isa = shmrt_cpu_isa()};
	int64_t work;
	if (!(j.items = make_items(a, &j.n_items, &work)))
		return shmrt_fail(ENOMEM, "attention: no memory for work items");
	shmrt_pool_run_sized(work, run, &j);
	free(j.items);
	if (atomic_load(&j.no_memory))
		return shmrt_fail(ENOMEM, "attention: no memory for scratch");
	return 0;
}

int shmrt_cpu_kv_write(void *stream, const struct shmrt_kv_write_args *a)
{
	(void)stream;
	int rc = shmrt_check_kv_write(a);
	if (rc || (rc = shmrt_cpu_check_slots(a)))
		return rc;
	const struct shmrt_kv_cache *c = &a->cache;
	if (c->dtype != SHMRT_F32)
		return shmrt_fail(ENOTSUP, "kv_write (cpu): the cache must be f32, not %s", shmrt_dtype_name(c->dtype));
	int D = c->head_dim;
	for (int t = 0; t < a->n_tokens; t++) {
		if (a->slots[t] < 0)
			continue;
		for (int h = 0; h < c->n_kv_heads; h++) {
			int64_t dst = shmrt_kv_offset(c, a->slots[t] / c->block_size, h, a->slots[t] % c->block_size);
			int64_t src_k = t * a->k_stride + (int64_t)h * D, src_v = t * a->v_stride + (int64_t)h * D;
			for (int d = 0; d < D; d++) {
				((float *)c->k)[dst + d] = shmrt_load(a->k, a->dtype, src_k + d);
				((float *)c->v)[dst + d] = shmrt_load(a->v, a->dtype, src_v + d);
			}
		}
	}
	return 0;
}

/* Paged attention and the cache write (kernel_test.h).
 *
 * 1. The reference backend against an independent formulation written
 *    here: per sequence, a dense contiguous copy of its keys and values
 *    (never paged) and the textbook softmax(scale q k^T + causal mask) v
 *    in double. This checks the reference's paging, slot mapping, GQA and
 *    causal offsets, and the cache layout documented in shmrt/backend.h
 *    (the cache is also read back here by that formula).
 * 2. The backend under test against the reference: kv_write must give the
 *    same cache bytes (rounding is deterministic), attention the same
 *    output within |o - o_ref| <= atol + ulp(out) * |o_ref| with |v| <= 1
 *    (one ulp of the output: kt_eps). f32: atol 2e-5, as scores and their
 *    exponentials carry ~1e-6 relative error and a weighted mean of v
 *    values keeps it. bf16: atol 2^-8, bf16's unit roundoff times max |v|:
 *    tensor-core kernels (CUDA's prefill, as FlashAttention) round the
 *    softmax weights p to bf16 before P V, moving each by up to 2^-8 of
 *    itself, so sum(p v) / sum(p) moves by up to 2^-8 max |v|.
 *
 * Batches are ragged (context lengths 1..2000), mixing decode (q_len 1),
 * fresh prefill (q_len = ctx) and chunked prefill after cached tokens;
 * block sizes 16 and 32, GQA ratios 1, 4, 8, head dims 64 and 128, a
 * shuffled block table, padding slots (-1), a padded q row stride. Sizes
 * stay small enough for the double-precision loops under ASan. */
#include "kernel_test.h"
#include "array_size.h"

struct seq {
	int q_len, ctx;
};

struct attn_case {
	int n_heads, n_kv_heads, head_dim, block_size;
	int n_seqs;
	struct seq seqs[8];
};

static double worst;

/* Dense reference for row (token j of sequence s, head h) into out[D]. */
static void dense_attend(const float *k, const float *v, const float *q, int ctx, int q_len, int j, int n_kv, int D,
			 int kvh, float scale, double *out)
{
	int visible = ctx - q_len + j + 1;
	double *p = malloc(sizeof(double) * visible), max = -INFINITY, sum = 0;
	CHECK(p, "no memory");
	for (int t = 0; t < visible; t++) {
		double s = 0;
		for (int d = 0; d < D; d++)
			s += (double)q[d] * k[((size_t)t * n_kv + kvh) * D + d];
		p[t] = s * scale;
		max = fmax(max, p[t]);
	}
	for (int t = 0; t < visible; t++)
		sum += p[t] = exp(p[t] - max);
	for (int d = 0; d < D; d++) {
		double o = 0;
		for (int t = 0; t < visible; t++)
			o += p[t] * v[((size_t)t * n_kv + kvh) * D + d];
		out[d] = o / sum;
	}
	free(p);
}

static void run_case(const struct kt *kt, const struct attn_case *c, enum shmrt_dtype dt, enum shmrt_dtype cache_dt)
{
	int H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, bs = c->block_size, S = c->n_seqs;
	int64_t q_stride = (int64_t)H * D + 8, kv_row = (int64_t)KV * D;
	float scale = 1.0f / sqrtf((float)D);

	/* Metadata: cu_q_lens, ctx_lens, a block table of shuffled blocks. */
	int32_t cu[9] = {0}, ctx[8];
	int max_q = 0, max_ctx = 0, n_blocks = 0, total_ctx = 0;
	for (int s = 0; s < S; s++) {
		cu[s + 1] = cu[s] + c->seqs[s].q_len;
		ctx[s] = c->seqs[s].ctx;
		max_q = c->seqs[s].q_len > max_q ? c->seqs[s].q_len : max_q;
		max_ctx = ctx[s] > max_ctx ? ctx[s] : max_ctx;
		n_blocks += (ctx[s] + bs - 1) / bs;
		total_ctx += ctx[s];
	}
	int T = cu[S], stride = (max_ctx + bs - 1) / bs + 1, num_blocks = n_blocks + 3;
	int32_t *perm = malloc(sizeof(int32_t) * num_blocks), *table = calloc((size_t)S * stride, sizeof(int32_t));
	CHECK(perm && table, "no memory");
	for (int i = 0; i < num_blocks; i++)
		perm[i] = i;
	for (int i = num_blocks - 1; i > 0; i--) {
		int j = kt_int(0, i), tmp = perm[i];
		perm[i] = perm[j], perm[j] = tmp;
	}
	for (int s = 0, next = 0; s < S; s++)
		for (int b = 0; b < (ctx[s] + bs - 1) / bs; b++)
			table[s * stride + b] = perm[next++];

	/* Every context token's K/V (dense, per sequence, stored in dt), the
	 * queries of the new tokens, and the slots: first the cached tokens
	 * (written by one kv_write, as earlier steps would have), then the new
	 * ones plus a padding row (slot -1) that must change nothing. */
	void *k_all = kt_random((size_t)total_ctx * kv_row, dt, -1, 1), *v_all = kt_random((size_t)total_ctx * kv_row, dt, -1, 1);
	void *q = kt_random((size_t)T * q_stride, dt, -1, 1);
	size_t esz = shmrt_dtype_size(dt);
	int n_old = total_ctx - T, n_new = T + 1;
	char *k_old = malloc(n_old * kv_row * esz + 1), *v_old = malloc(n_old * kv_row * esz + 1);
	char *k_new = calloc(n_new, kv_row * esz), *v_new = calloc(n_new, kv_row * esz);
	int32_t *slot_old = malloc(sizeof(int32_t) * (n_old + 1)), *slot_new = malloc(sizeof(int32_t) * n_new);
	CHECK(k_old && v_old && k_new && v_new && slot_old && slot_new, "no memory");
	for (int s = 0, base = 0, io = 0, in = 0; s < S; base += ctx[s], s++)
		for (int t = 0; t < ctx[s]; t++) {
			int is_new = t >= ctx[s] - c->seqs[s].q_len, i = is_new ? in++ : io++;
			char *kd = is_new ? k_new : k_old, *vd = is_new ? v_new : v_old;
			memcpy(kd + i * kv_row * esz, (char *)k_all + (size_t)(base + t) * kv_row * esz, kv_row * esz);
			memcpy(vd + i * kv_row * esz, (char *)v_all + (size_t)(base + t) * kv_row * esz, kv_row * esz);
			(is_new ? slot_new : slot_old)[i] = table[s * stride + t / bs] * bs + t % bs;
		}
	slot_new[n_new - 1] = -1;

	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *out[2], *kc[2];
	size_t cache_elems = (size_t)num_blocks * bs * kv_row;
	for (int i = 0; i < 2; i++) {
		const struct shmrt_backend *b = be[i];
		struct shmrt_kv_cache cache = {.dtype = cache_dt, .num_blocks = num_blocks, .block_size = bs,
					       .n_kv_heads = KV, .head_dim = D};
		cache.k = kt_upload(b, NULL, cache_elems * shmrt_dtype_size(cache_dt));
		cache.v = kt_upload(b, NULL, cache_elems * shmrt_dtype_size(cache_dt));
		void *d_kold = kt_upload(b, k_old, n_old * kv_row * esz), *d_vold = kt_upload(b, v_old, n_old * kv_row * esz);
		void *d_knew = kt_upload(b, k_new, n_new * kv_row * esz), *d_vnew = kt_upload(b, v_new, n_new * kv_row * esz);
		void *d_sold = kt_upload(b, slot_old, sizeof(int32_t) * (n_old + 1));
		void *d_snew = kt_upload(b, slot_new, sizeof(int32_t) * n_new);
		void *d_q = kt_upload(b, q, (size_t)T * q_stride * esz), *d_out = kt_upload(b, NULL, (size_t)T * H * D * esz);
		void *d_cu = kt_upload(b, cu, sizeof(int32_t) * (S + 1)), *d_ctx = kt_upload(b, ctx, sizeof(int32_t) * S);
		void *d_table = kt_upload(b, table, sizeof(int32_t) * S * stride);

		struct shmrt_kv_write_args w = {.n_tokens = n_old, .k = d_kold, .v = d_vold, .k_stride = kv_row,
						.v_stride = kv_row, .dtype = dt, .slots = d_sold, .cache = cache};
		int rc = b->kv_write(NULL, &w);
		if (rc == -ENOTSUP && i == 0) {
			fprintf(stderr, "%s: kv_write with %s rows into a %s cache not implemented\n", b->name,
				shmrt_dtype_name(dt), shmrt_dtype_name(cache_dt));
			exit(0); /* a whole dtype pair: the caller orders them */
		}
		CHECK_OK(rc);
		w.n_tokens = n_new, w.k = d_knew, w.v = d_vnew, w.slots = d_snew;
		CHECK_OK(b->kv_write(NULL, &w));
		struct shmrt_attention_args a = {
			.n_seqs = S, .n_tokens = T, .max_q_len = max_q, .max_ctx_len = max_ctx, .n_heads = H,
			.scale = scale, .cu_q_lens = d_cu, .ctx_lens = d_ctx, .block_tables = d_table,
			.block_table_stride = stride, .q = d_q, .q_stride = q_stride, .dtype = dt, .out = d_out,
			.cache = cache};
		CHECK_OK(b->attention(NULL, &a));
		out[i] = kt_download(b, d_out, (size_t)T * H * D, dt);
		kc[i] = kt_download(b, cache.k, cache_elems, cache_dt);
		float *vc = kt_download(b, cache.v, cache_elems, cache_dt);

		/* The cache holds each token's K/V where shmrt/backend.h says. */
		for (int s = 0, base = 0; s < S; base += ctx[s], s++)
			for (int t = 0; t < ctx[s]; t++)
				for (int h = 0; h < KV; h++)
					for (int d = 0; d < D; d++) {
						size_t at = (((size_t)table[s * stride + t / bs] * KV + h) * bs + t % bs) * D + d;
						size_t src = (size_t)(base + t) * kv_row + (size_t)h * D + d;
						float kw = kt_round(cache_dt, shmrt_load(k_all, dt, src));
						float vw = kt_round(cache_dt, shmrt_load(v_all, dt, src));
						CHECK(kc[i][at] == kw && vc[at] == vw,
						      "%s: cache of sequence %d token %d head %d dim %d is %g/%g, want %g/%g",
						      b->name, s, t, h, d, kc[i][at], vc[at], kw, vw);
					}
		free(vc);
		void *bufs[] = {cache.k, cache.v, d_kold, d_vold, d_knew, d_vnew, d_sold, d_snew, d_q, d_out, d_cu, d_ctx, d_table};
		for (size_t j = 0; j < ARRAY_SIZE(bufs); j++)
			b->free(bufs[j]);
	}

	/* 1: the reference against the dense formulation (fp32 data: tight). */
	double *o = malloc(sizeof(double) * D);
	float *qrow = malloc(sizeof(float) * D), *kd = NULL, *vd = NULL;
	CHECK(o && qrow, "no memory");
	for (int s = 0, base = 0; s < S; base += ctx[s], s++) {
		free(kd), free(vd);
		kd = malloc(sizeof(float) * ctx[s] * kv_row), vd = malloc(sizeof(float) * ctx[s] * kv_row);
		CHECK(kd && vd, "no memory");
		for (int64_t i = 0; i < ctx[s] * kv_row; i++) {
			kd[i] = kt_round(cache_dt, shmrt_load(k_all, dt, base * kv_row + i));
			vd[i] = kt_round(cache_dt, shmrt_load(v_all, dt, base * kv_row + i));
		}
		for (int j = 0; j < c->seqs[s].q_len; j++)
			for (int h = 0; h < H; h++) {
				for (int d = 0; d < D; d++)
					qrow[d] = shmrt_load(q, dt, (cu[s] + j) * q_stride + (int64_t)h * D + d);
				dense_attend(kd, vd, qrow, ctx[s], c->seqs[s].q_len, j, KV, D, h / (H / KV), scale, o);
				for (int d = 0; d < D; d++) {
					float want = (float)o[d], got = out[1][((size_t)(cu[s] + j) * H + h) * D + d];
					char what[128];
					snprintf(what, sizeof(what), "%s vs dense: seq %d token %d head %d dim %d",
						 kt->ref->name, s, j, h, d);
					kt_compare(what, &got, &want, 1, 1e-6, kt_eps(dt));
				}
			}
	}
	free(kd), free(vd), free(o), free(qrow);

	/* 2: the backend under test against the reference. */
	CHECK(memcmp(kc[0], kc[1], cache_elems * sizeof(float)) == 0, "%s and %s wrote different K caches",
	      kt->test->name, kt->ref->name);
	char what[160];
	snprintf(what, sizeof(what), "attention H=%d KV=%d D=%d bs=%d %s/%s cache", H, KV, D, bs, shmrt_dtype_name(dt),
		 shmrt_dtype_name(cache_dt));
	double atol = dt == SHMRT_BF16 ? 0x1p-8 : 2e-5;
	worst = fmax(worst, kt_compare(what, out[0], out[1], (size_t)T * H * D, atol, kt_eps(dt)));

	free(out[0]), free(out[1]), free(kc[0]), free(kc[1]);
	free(perm), free(table), free(k_all), free(v_all), free(q), free(k_old), free(v_old), free(k_new), free(v_new);
	free(slot_old), free(slot_new);
}

int main(int argc, char **argv)
{
	struct kt kt;
	kt_init(&kt, argc, argv);
	static const struct attn_case fixed[] = {
		/* GQA 1, d 64, bs 16: tiny, block edges, a long decode */
		{4, 4, 64, 16, 6, {{1, 1}, {1, 16}, {1, 17}, {5, 5}, {3, 40}, {1, 2000}}},
		/* GQA 4, d 128, bs 32: prefill, chunked prefill after 984 cached, decodes, an idle sequence */
		{8, 2, 128, 32, 5, {{33, 33}, {16, 1000}, {1, 1999}, {1, 64}, {0, 10}}},
		/* GQA 8, d 128, bs 16 */
		{16, 2, 128, 16, 5, {{100, 100}, {7, 1207}, {1, 31}, {1, 32}, {1, 33}}},
		/* GQA 8, d 64, bs 32, one kv head */
		{8, 1, 64, 32, 3, {{64, 64}, {1, 500}, {40, 300}}},
	};
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		run_case(&kt, &fixed[i], SHMRT_F32, SHMRT_F32);

	/* Random ragged batches: contexts 1..2000, q_len 1, whole or a chunk. */
	static const int shapes[][4] = {{4, 4, 64, 32}, {8, 2, 128, 16}, {8, 1, 128, 32}, {4, 1, 64, 16}};
	for (int r = 0; r < 4; r++) {
		struct attn_case c = {shapes[r][0], shapes[r][1], shapes[r][2], shapes[r][3], 6, {{0}}};
		for (int s = 0; s < c.n_seqs; s++) {
			int ctx = kt_int(1, 2000), kind = kt_int(0, 3);
			int q_len = kind < 2 ? 1 : kind == 2 ? (ctx < 48 ? ctx : kt_int(1, 48)) : (ctx < 64 ? ctx : 1);
			c.seqs[s] = (struct seq){q_len, ctx};
		}
		run_case(&kt, &c, SHMRT_F32, SHMRT_F32);
	}
	fprintf(stderr, "%s vs %s, f32: worst error %.3f of the bound\n", kt.test->name, kt.ref->name, worst);

	/* bf16 activations into a bf16 cache (the GPU's format): the CPU
	 * backend implements f32 only and stops here. */
	worst = 0;
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		run_case(&kt, &fixed[i], SHMRT_BF16, SHMRT_BF16);
	fprintf(stderr, "%s vs %s, bf16: worst error %.3f of the bound\n", kt.test->name, kt.ref->name, worst);
	return 0;
}

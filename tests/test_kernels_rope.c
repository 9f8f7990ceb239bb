/* RoPE (kernel_test.h).
 * 1. shmrt_rope_inv_freq (kernels/rope_freq.h, shared by all backends)
 *    against values computed independently (Python, float64) from Hugging
 *    Face transformers' _compute_default_rope_parameters and
 *    _compute_llama3_parameters (modeling_rope_utils.py) for Llama 3.1 8B
 *    (theta 500000, factor 8, low 1, high 4, original 8192, head_dim 128)
 *    and for theta 10000, head_dim 64.
 * 2. The reference against properties of a rotation: norms are kept, and
 *    q.k after rotating q to position p + d and k to p equals the value
 *    for positions d and 0 (attention sees relative positions only).
 * 3. The backend under test against the reference: positions up to 2^17,
 *    q and k (or q alone) with padded strides, head dims 64 and 128, both
 *    scalings. Angles are the same fp32 products in both; the tolerance
 *    |y - y_ref| <= 2e-6 + ulp(y) * |y_ref| (|x| <= 1) covers cos/sin in
 *    fp32 against double. */
#include "kernel_test.h"
#include "rope_freq.h"
#include "array_size.h"

static const struct shmrt_rope_config llama31 = {500000.0f, SHMRT_ROPE_LLAMA3, 8.0f, 1.0f, 4.0f, 8192};
static const struct shmrt_rope_config plain = {10000.0f, SHMRT_ROPE_DEFAULT, 0, 0, 0, 0};

static void check_inv_freq(void)
{
	static const struct {
		int i;
		double want;
	} l3[] = {{0, 1.0}, {10, 0.12868737343265052}, {20, 0.016560440080994446}, {28, 0.0032114459947525913},
		  {29, 0.002166570763503359}, {30, 0.0013718935677611381}, {35, 9.556212353964683e-05},
		  {40, 3.428102195952591e-05}, {63, 3.068925988914511e-07}},
	  d[] = {{0, 1.0}, {1, 0.7498942093324559}, {16, 0.01}, {31, 0.0001333521432163324}};
	for (size_t j = 0; j < ARRAY_SIZE(l3); j++) {
		double got = shmrt_rope_inv_freq(&llama31, 128, l3[j].i);
		CHECK(fabs(got - l3[j].want) <= 1e-6 * l3[j].want, "llama3 inv_freq[%d] = %.9g, want %.9g", l3[j].i, got,
		      l3[j].want);
	}
	for (size_t j = 0; j < ARRAY_SIZE(d); j++) {
		double got = shmrt_rope_inv_freq(&plain, 64, d[j].i);
		CHECK(fabs(got - d[j].want) <= 1e-6 * d[j].want, "inv_freq[%d] = %.9g, want %.9g", d[j].i, got, d[j].want);
	}
}

/* Rotates one head of q (and one of k) with ref at the given positions. */
static void rotate_pair(const struct shmrt_backend *b, const struct shmrt_rope_config *cfg, int D, float *q, float *k,
			int32_t pq, int32_t pk)
{
	float *buf[2] = {q, k};
	int32_t pos[2] = {pq, pk};
	for (int i = 0; i < 2; i++) {
		void *dx = kt_upload(b, buf[i], sizeof(float) * D), *dp = kt_upload(b, &pos[i], sizeof(int32_t));
		struct shmrt_rope_args a = {.n_tokens = 1, .n_heads = 1, .head_dim = D, .q = dx, .q_stride = D,
					    .dtype = SHMRT_F32, .positions = dp, .cfg = *cfg};
		CHECK_OK(b->rope(NULL, &a));
		float *got = kt_download(b, dx, D, SHMRT_F32);
		memcpy(buf[i], got, sizeof(float) * D);
		free(got), b->free(dx), b->free(dp);
	}
}

static double dot(const float *a, const float *b, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

static void check_rotation(const struct shmrt_backend *ref, const struct shmrt_rope_config *cfg, int D)
{
	float q0[128], k0[128], q1[128], k1[128], q2[128], k2[128];
	for (int i = 0; i < D; i++)
		q0[i] = kt_uniform(-1, 1), k0[i] = kt_uniform(-1, 1);
	static const int32_t p[] = {1, 100, 5000};
	for (size_t j = 0; j < 3; j++) {
		int32_t dist = (int32_t)(j * 7 + 3);
		memcpy(q1, q0, sizeof(q1)), memcpy(k1, k0, sizeof(k1)), memcpy(q2, q0, sizeof(q2)), memcpy(k2, k0, sizeof(k2));
		rotate_pair(ref, cfg, D, q1, k1, p[j] + dist, p[j]);
		rotate_pair(ref, cfg, D, q2, k2, dist, 0);
		CHECK(fabs(sqrt(dot(q1, q1, D)) - sqrt(dot(q0, q0, D))) < 1e-5, "rope changed a norm");
		CHECK(fabs(dot(q1, k1, D) - dot(q2, k2, D)) < 1e-3, "q.k at positions (%d, %d) is %g, at (%d, 0) %g",
		      p[j] + dist, p[j], dot(q1, k1, D), dist, dot(q2, k2, D));
	}
}

static double worst;

static int run_case(const struct kt *kt, int T, int H, int KV, int D, int with_k, const struct shmrt_rope_config *cfg,
		    enum shmrt_dtype dt)
{
	int64_t qs = (int64_t)H * D + 3, ks = (int64_t)KV * D + 5;
	void *q = kt_random((size_t)T * qs, dt, -1, 1), *k = kt_random((size_t)T * ks, dt, -1, 1);
	int32_t *pos = malloc(sizeof(int32_t) * T);
	CHECK(pos, "no memory");
	for (int t = 0; t < T; t++)
		pos[t] = t < 3 ? t : kt_int(0, 1 << 17);
	const struct shmrt_backend *be[2] = {kt->test, kt->ref};
	float *outq[2], *outk[2];
	for (int i = 0; i < 2; i++) {
		size_t esz = shmrt_dtype_size(dt);
		void *dq = kt_upload(be[i], q, T * qs * esz), *dk = kt_upload(be[i], k, T * ks * esz);
		void *dp = kt_upload(be[i], pos, sizeof(int32_t) * T);
		struct shmrt_rope_args a = {.n_tokens = T, .n_heads = H, .n_kv_heads = KV, .head_dim = D, .q = dq,
					    .q_stride = qs, .k = with_k ? dk : NULL, .k_stride = ks, .dtype = dt,
					    .positions = dp, .cfg = *cfg};
		int rc = be[i]->rope(NULL, &a);
		if (rc == -ENOTSUP && i == 0) {
			be[0]->free(dq), be[0]->free(dk), be[0]->free(dp);
			free(q), free(k), free(pos);
			return 0;
		}
		CHECK_OK(rc);
		outq[i] = kt_download(be[i], dq, T * qs, dt);
		outk[i] = kt_download(be[i], dk, T * ks, dt);
		be[i]->free(dq), be[i]->free(dk), be[i]->free(dp);
	}
	char what[128];
	snprintf(what, sizeof(what), "rope T=%d H=%d KV=%d D=%d k %d scaling %d %s: q", T, H, KV, D, with_k, cfg->scaling,
		 shmrt_dtype_name(dt));
	worst = fmax(worst, kt_compare(what, outq[0], outq[1], T * qs, 2e-6, kt_eps(dt)));
	strcat(what, "/k");
	worst = fmax(worst, kt_compare(what, outk[0], outk[1], T * ks, 2e-6, kt_eps(dt)));
	free(outq[0]), free(outq[1]), free(outk[0]), free(outk[1]), free(q), free(k), free(pos);
	return 1;
}

int main(int argc, char **argv)
{
	struct kt kt;
	kt_init(&kt, argc, argv);
	check_inv_freq();
	check_rotation(kt.ref, &plain, 64);
	check_rotation(kt.ref, &llama31, 128);
	static const int shapes[][5] = {{1, 1, 1, 64, 1}, {5, 4, 4, 64, 1}, {33, 8, 2, 128, 1}, {7, 32, 8, 128, 0},
					{100, 4, 1, 64, 1}};
	int ran = 0;
	for (size_t s = 0; s < ARRAY_SIZE(shapes); s++)
		for (int c = 0; c < 2; c++)
			for (int d = 0; d < 2; d++)
				ran += run_case(&kt, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4],
						c ? &llama31 : &plain, d ? SHMRT_BF16 : SHMRT_F32);
	fprintf(stderr, "%d cases (worst error %.3f of the bound)\n", ran, worst);
	CHECK(ran > 0, "the backend implements no dtype");
	return 0;
}

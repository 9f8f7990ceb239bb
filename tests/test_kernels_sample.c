/* Sampling (kernel_test.h; the definition is in shmrt/backend.h).
 * 1. Philox4x32-10 (kernels/philox.h, shared by all backends) against
 *    Random123's known-answer vectors (its kat_vectors file), and the
 *    uniform draw's range and mean.
 * 2. The backend under test against the reference on rows of many sizes
 *    and shapes (ties from bf16-quantised logits, -inf entries, a flat
 *    row) under greedy, temperature, top-k and top-p settings: the same
 *    tokens (CPU backends: all of them; others: greedy rows all, the rest
 *    at least 99%, as a u within rounding of a boundary may go either way).
 * 3. Seeded determinism: the same call twice gives the same tokens; other
 *    seeds give other tokens.
 * 4. Distributions: 20000 draws (steps 0..19999) from a fixed 10-token row
 *    per setting; no token outside the top-k / top-p set is ever drawn and
 *    the counts pass a chi-square test at p = 0.001 against the
 *    renormalised probabilities computed here. */
#include "kernel_test.h"
#include "philox.h"
#include "array_size.h"

static void check_philox(void)
{
	static const uint32_t kat[3][10] = {
		{0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
		{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
		 0xa20bc7c6, 0x6d5451fd},
		{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
		 0x5001e420, 0x24126ea1},
	};
	for (int i = 0; i < 3; i++) {
		uint32_t out[4];
		shmrt_philox4x32_10(kat[i], kat[i] + 4, out);
		CHECK(!memcmp(out, kat[i] + 6, sizeof(out)), "philox known answer %d: %08x %08x %08x %08x", i, out[0],
		      out[1], out[2], out[3]);
	}
	double sum = 0;
	for (uint64_t s = 0; s < 100000; s++) {
		float u = shmrt_rng_uniform(1234, s % 7, s);
		CHECK(u >= 0 && u < 1, "uniform draw %g outside [0, 1)", u);
		sum += u;
	}
	CHECK(fabs(sum / 100000 - 0.5) < 0.005, "uniform mean %g", sum / 100000);
}

/* Runs b's sampler on n rows of vocab logits (dtype dt) with params. */
static int32_t *sample(const struct shmrt_backend *b, const void *logits, enum shmrt_dtype dt, int n, int vocab,
		       const struct shmrt_sample_params *params)
{
	void *dl = kt_upload(b, logits, (size_t)n * vocab * shmrt_dtype_size(dt));
	void *dp = kt_upload(b, params, sizeof(*params) * n), *dtok = kt_upload(b, NULL, sizeof(int32_t) * n);
	struct shmrt_sample_args a = {.n_seqs = n, .vocab = vocab, .logits = dl, .logits_stride = vocab, .dtype = dt,
				      .params = dp, .tokens = dtok};
	int rc = b->sample(NULL, &a);
	int32_t *tokens = NULL;
	if (rc != -ENOTSUP) {
		CHECK_OK(rc);
		tokens = malloc(sizeof(int32_t) * n);
		CHECK(tokens, "no memory");
		CHECK_OK(b->synchronize(NULL));
		CHECK_OK(b->copy_from_device(NULL, tokens, dtok, sizeof(int32_t) * n));
	}
	b->free(dl), b->free(dp), b->free(dtok);
	return tokens;
}

static const float temps[] = {0, 0.3f, 1, 2};
static const int top_ks[] = {0, 1, 3, 50, 1000};
static const float top_ps[] = {1, 0.95f, 0.5f, 0.1f};

static void compare_case(const struct kt *kt, int vocab, float spread, int kind, enum shmrt_dtype dt, int exact)
{
	enum { N = 48 };
	void *logits = kt_random((size_t)N * vocab, dt, -spread, spread);
	for (int r = 0; r < N; r++)
		for (int i = 0; i < vocab; i++) {
			int64_t at = (int64_t)r * vocab + i;
			if (kind == 1) /* flat: every token ties */
				shmrt_store(logits, dt, at, 0.5f);
			else if (kind == 2 && i % 3 == 0) /* masked entries */
				shmrt_store(logits, dt, at, -INFINITY);
			else if (kind == 3) /* coarse values: many ties */
				shmrt_store(logits, dt, at, roundf(shmrt_load(logits, dt, at)));
		}
	struct shmrt_sample_params p[N];
	for (int r = 0; r < N; r++)
		p[r] = (struct shmrt_sample_params){.temperature = temps[r % 4], .top_k = top_ks[(r / 4) % 5],
						    .top_p = top_ps[(r / 20 + r) % 4], .seed = 99 + r, .seq_id = r,
						    .step = 1000 + r};
	int32_t *got = sample(kt->test, logits, dt, N, vocab, p);
	if (!got) {
		free(logits);
		return;
	}
	int32_t *want = sample(kt->ref, logits, dt, N, vocab, p), mismatches = 0;
	CHECK(want, "the reference lacks dtype %s", shmrt_dtype_name(dt));
	for (int r = 0; r < N; r++) {
		CHECK(got[r] >= 0 && got[r] < vocab, "token %d outside the vocabulary", got[r]);
		if (got[r] != want[r]) {
			CHECK(!exact && p[r].temperature > 0,
			      "vocab %d kind %d %s row %d (T %g k %d p %g): %s chose %d, %s %d", vocab, kind,
			      shmrt_dtype_name(dt), r, p[r].temperature, p[r].top_k, p[r].top_p, kt->test->name, got[r],
			      kt->ref->name, want[r]);
			mismatches++;
		}
	}
	CHECK(mismatches * 100 <= N, "%d of %d rows differ", mismatches, N);

	/* 3: determinism, and the seed matters */
	int32_t *again = sample(kt->test, logits, dt, N, vocab, p);
	CHECK(!memcmp(again, got, sizeof(int32_t) * N), "the same call gave other tokens");
	if (kind == 0 && vocab >= 1000) {
		for (int r = 0; r < N; r++)
			p[r].seed += 1000;
		int32_t *other = sample(kt->test, logits, dt, N, vocab, p);
		CHECK(memcmp(other, got, sizeof(int32_t) * N), "other seeds gave the same %d tokens", N);
		free(other);
	}
	free(again), free(got), free(want), free(logits);
}

/* Expected probabilities of the kept set, computed from the definition. */
static void expected(const float *z, int vocab, const struct shmrt_sample_params *sp, double *prob)
{
	int order[16];
	double p[16], max = -INFINITY, kept = 0;
	for (int i = 0; i < vocab; i++)
		max = fmax(max, z[i]);
	for (int i = 0; i < vocab; i++)
		p[i] = exp((z[i] - max) / sp->temperature), order[i] = i;
	for (int i = 0; i < vocab; i++) /* selection sort by p, descending (distinct values) */
		for (int j = i + 1; j < vocab; j++)
			if (p[order[j]] > p[order[i]]) {
				int t = order[i];
				order[i] = order[j], order[j] = t;
			}
	int k = sp->top_k > 0 && sp->top_k < vocab ? sp->top_k : vocab;
	for (int r = 0; r < k; r++)
		kept += p[order[r]];
	double acc = 0;
	int keep = k;
	for (int r = 0; r < k; r++)
		if ((acc += p[order[r]]) >= sp->top_p * kept) {
			keep = r + 1;
			break;
		}
	double mass = 0;
	for (int r = 0; r < keep; r++)
		mass += p[order[r]];
	for (int i = 0; i < vocab; i++)
		prob[i] = 0;
	for (int r = 0; r < keep; r++)
		prob[order[r]] = p[order[r]] / mass;
}

static void distribution_case(const struct kt *kt, float temperature, int top_k, float top_p)
{
	enum { V = 10, N = 20000 };
	/* distinct values, ids not in rank order, no cumulative sum near a top_p used below */
	static const float row[V] = {0.5f, 2.0f, -1.0f, 1.4f, 0.0f, 1.5f, -2.0f, 0.3f, 1.0f, -0.5f};
	static const double chi2_crit[V] = {0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877};
	float *logits = malloc(sizeof(float) * N * V);
	struct shmrt_sample_params *p = malloc(sizeof(*p) * N);
	CHECK(logits && p, "no memory");
	for (int r = 0; r < N; r++) {
		memcpy(logits + r * V, row, sizeof(row));
		p[r] = (struct shmrt_sample_params){.temperature = temperature, .top_k = top_k, .top_p = top_p,
						    .seed = 20240601, .seq_id = 5, .step = r};
	}
	int32_t *tok = sample(kt->test, logits, SHMRT_F32, N, V, p);
	CHECK(tok, "%s cannot sample f32 logits", kt->test->name);
	double prob[V], chi2 = 0;
	int counts[V] = {0}, df = -1;
	expected(row, V, &p[0], prob);
	for (int r = 0; r < N; r++)
		counts[tok[r]]++;
	for (int i = 0; i < V; i++) {
		if (prob[i] == 0) {
			CHECK(counts[i] == 0, "T %g k %d p %g: token %d is outside the kept set, drawn %d times",
			      temperature, top_k, top_p, i, counts[i]);
			continue;
		}
		double e = prob[i] * N;
		chi2 += (counts[i] - e) * (counts[i] - e) / e;
		df++;
	}
	if (df > 0)
		CHECK(chi2 < chi2_crit[df], "T %g k %d p %g: chi-square %g >= %g (%d degrees of freedom)", temperature,
		      top_k, top_p, chi2, chi2_crit[df], df);
	fprintf(stderr, "T %.1f top_k %d top_p %.2f: %d tokens kept, chi-square %.2f (critical %.2f)\n", temperature,
		top_k, top_p, df + 1, chi2, df > 0 ? chi2_crit[df] : 0);
	free(tok), free(logits), free(p);
}

int main(int argc, char **argv)
{
	struct kt kt;
	kt_init(&kt, argc, argv);
	check_philox();
	int exact = !strncmp(kt.test->name, "cpu", 3);
	static const int vocabs[] = {1, 7, 1000, 32000};
	for (size_t v = 0; v < ARRAY_SIZE(vocabs); v++)
		for (int kind = 0; kind < 4; kind++) {
			compare_case(&kt, vocabs[v], kind == 3 ? 8 : v % 2 ? 20 : 3, kind, SHMRT_F32, exact);
			compare_case(&kt, vocabs[v], 3, kind, SHMRT_BF16, exact);
		}
	distribution_case(&kt, 1.0f, 0, 1.0f);
	distribution_case(&kt, 0.7f, 4, 1.0f);
	distribution_case(&kt, 1.0f, 0, 0.8f);
	distribution_case(&kt, 1.3f, 6, 0.9f);
	distribution_case(&kt, 1.0f, 1, 1.0f);
	return 0;
}

/* Fast sampling: the definition of shmrt/backend.h (spelled out in
 * ref_sample.c) without sorting the vocabulary. The top-k / top-p set is
 * found among the candidates above a probability threshold, lowered until
 * the candidates provably contain it: a set closed upwards (all tokens
 * above a threshold) holds the first k of the ranking once it has k
 * members, and the top-p prefix once its own prefix reaches the mass.
 * Masses are summed in the same order as the reference, so the two pick
 * the same token. Rows over the pool. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cpu_kernels.h"
#include "args.h"
#include "cpu_pool.h"
#include "dtype_conv.h"
#include "fail.h"
#include "philox.h"
#include "sample_rank.h"

/* The reference's top-p loop over the ranked candidates c[0 .. n): 0 when
 * it would need a candidate past n, else 1 with *keep set. */
static int top_p_cut(const struct cand *c, int n, int k, double target, int *keep)
{
	double acc = 0;
	int r = 0;
	while (r < k - 1) {
		if (r >= n)
			return 0;
		if ((acc += c[r].p) >= target)
			break;
		r++;
	}
	*keep = r + 1;
	return *keep <= n;
}

/* The last kept token in rank order; c has room for vocab. */
static struct cand kept_last(const float *p, struct cand *c, int vocab, const struct shmrt_sample_params *sp)
{
	int k = sp->top_k > 0 && sp->top_k < vocab ? sp->top_k : vocab;
	if (k == vocab && !(sp->top_p < 1)) {
		struct cand last = {INFINITY, vocab - 1};
		for (int i = 0; i < vocab; i++)
			if (p[i] <= last.p)
				last = (struct cand){p[i], i}; /* lowest p, highest id among equals */
		return last;
	}
	for (float thr = 0x1p-10f;; thr = thr > 0x1p-100f ? thr * 0x1p-10f : 0) {
		int n = 0;
		for (int i = 0; i < vocab; i++)
			if (p[i] >= thr)
				c[n++] = (struct cand){p[i], i};
		if (n < k && thr > 0)
			continue;
		qsort(c, n, sizeof(*c), sample_by_rank);
		int keep = k;
		if (sp->top_p < 1) {
			double mass = k < vocab ? sample_mass_upto(p, vocab, c[k - 1]) : sample_mass_upto(p, vocab, (struct cand){0, vocab});
			if (!top_p_cut(c, n, k, sp->top_p * mass, &keep) && thr > 0)
				continue;
		}
		return c[keep - 1];
	}
}

static int sample_row(float *p, struct cand *c, int vocab, const struct shmrt_sample_params *sp)
{
	if (!(sp->temperature > 0))
		return sample_argmax(p, vocab);
	sample_softmax(p, vocab, sp->temperature);
	return sample_draw(p, vocab, kept_last(p, c, vocab, sp), sp);
}

struct job {
	const struct shmrt_sample_args *a;
	_Atomic int no_memory;
};

static void run(void *ctx, int tid, int n_threads)
{
	struct job *j = ctx;
	const struct shmrt_sample_args *a = j->a;
	int64_t s0, s1;
	shmrt_pool_part(a->n_seqs, tid, n_threads, &s0, &s1);
	if (s0 == s1)
		return;
	float *p = malloc(sizeof(*p) * a->vocab);
	struct cand *c = malloc(sizeof(*c) * a->vocab);
	if (!p || !c) {
		atomic_store(&j->no_memory, 1);
	} else {
		for (int64_t s = s0; s < s1; s++) {
			for (int i = 0; i < a->vocab; i++)
				p[i] = shmrt_load(a->logits, a->dtype, s * a->logits_stride + i);
			a->tokens[s] = sample_row(p, c, a->vocab, &a->params[s]);
		}
	}
	free(p);
	free(c);
}

int shmrt_cpu_sample(void *stream, const struct shmrt_sample_args *a)
{
	(void)stream;
	int rc = shmrt_check_sample(a);
	if (rc)
		return rc;
	struct job j = {.a = a};
	shmrt_pool_run_sized((int64_t)a->n_seqs * a->vocab * 8, run, &j);
	if (atomic_load(&j.no_memory))
		return shmrt_fail(ENOMEM, "sample: no memory for a vocabulary of %d", a->vocab);
	return 0;
}

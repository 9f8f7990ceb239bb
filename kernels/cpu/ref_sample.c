/* Reference sampling: the definition in shmrt/backend.h spelled out with a
 * full sort of every row. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "cpu_kernels.h"
#include "args.h"
#include "dtype_conv.h"
#include "fail.h"
#include "philox.h"

struct cand {
	float p;
	int id;
};

/* Most probable first, then lower id. */
static int by_rank(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	if (a->p != b->p)
		return a->p > b->p ? -1 : 1;
	return (a->id > b->id) - (a->id < b->id);
}

/* Is token i ranked at or before `last` (sorted order above)? */
static int ranks_before(const float *p, int i, struct cand last)
{
	return p[i] > last.p || (p[i] == last.p && i <= last.id);
}

static int argmax(const float *z, int vocab)
{
	int best = 0;
	for (int i = 1; i < vocab; i++)
		if (z[i] > z[best])
			best = i;
	return best;
}

static int sample_row(float *p, struct cand *c, int vocab, const struct shmrt_sample_params *sp)
{
	if (!(sp->temperature > 0))
		return argmax(p, vocab);
	float max = -INFINITY;
	for (int i = 0; i < vocab; i++)
		max = fmaxf(max, p[i]);
	for (int i = 0; i < vocab; i++) {
		p[i] = expf((p[i] - max) / sp->temperature);
		if (isnan(p[i]))
			p[i] = 0;
		c[i] = (struct cand){p[i], i};
	}
	qsort(c, vocab, sizeof(*c), by_rank);

	/* top-k, then the top-p prefix of it; masses summed in id order. */
	int k = sp->top_k > 0 && sp->top_k < vocab ? sp->top_k : vocab;
	if (sp->top_p < 1) {
		double mass = 0, acc = 0;
		for (int i = 0; i < vocab; i++)
			if (ranks_before(p, i, c[k - 1]))
				mass += p[i];
		int r = 0;
		while (r < k - 1 && (acc += c[r].p) < sp->top_p * mass)
			r++;
		k = r + 1;
	}

	/* Inverse CDF over the kept tokens in id order. */
	struct cand last = c[k - 1];
	double mass = 0, acc = 0;
	for (int i = 0; i < vocab; i++)
		if (ranks_before(p, i, last))
			mass += p[i];
	double target = shmrt_rng_uniform(sp->seed, sp->seq_id, sp->step) * mass;
	int token = last.id;
	for (int i = 0; i < vocab; i++)
		if (ranks_before(p, i, last) && (acc += p[i]) > target) {
			token = i;
			break;
		}
	return token;
}

int shmrt_ref_sample(void *stream, const struct shmrt_sample_args *a)
{
	(void)stream;
	int rc = shmrt_check_sample(a);
	if (rc)
		return rc;
	float *p = malloc(sizeof(*p) * a->vocab);
	struct cand *c = malloc(sizeof(*c) * a->vocab);
	if (!p || !c) {
		free(p);
		free(c);
		return shmrt_fail(ENOMEM, "sample: no memory for a vocabulary of %d", a->vocab);
	}
	for (int s = 0; s < a->n_seqs; s++) {
		for (int i = 0; i < a->vocab; i++)
			p[i] = shmrt_load(a->logits, a->dtype, s * a->logits_stride + i);
		a->tokens[s] = sample_row(p, c, a->vocab, &a->params[s]);
	}
	free(p);
	free(c);
	return 0;
}

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
#include "sample_rank.h"

static int sample_row(float *p, struct cand *c, int vocab, const struct shmrt_sample_params *sp)
{
	if (!(sp->temperature > 0))
		return sample_argmax(p, vocab);
	sample_softmax(p, vocab, sp->temperature);
	for (int i = 0; i < vocab; i++)
		c[i] = (struct cand){p[i], i};
	qsort(c, vocab, sizeof(*c), sample_by_rank);

	/* top-k, then the top-p prefix of it; masses summed in id order. */
	int k = sp->top_k > 0 && sp->top_k < vocab ? sp->top_k : vocab;
	if (sp->top_p < 1) {
		double mass = sample_mass_upto(p, vocab, c[k - 1]), acc = 0;
		int r = 0;
		while (r < k - 1 && (acc += c[r].p) < sp->top_p * mass)
			r++;
		k = r + 1;
	}

	/* Inverse CDF over the kept tokens in id order. */
	return sample_draw(p, vocab, c[k - 1], sp);
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

/* Internal: what the two CPU samplers (ref_sample.c, sample.c) share, so
 * that they rank, weigh and draw the same way: the ranking of tokens (most
 * probable first, then lower id), the softmax at a temperature, the masses
 * summed in id order and the inverse-CDF draw over the kept tokens. */
#ifndef SHMRT_SAMPLE_RANK_H
#define SHMRT_SAMPLE_RANK_H

#include <math.h>

#include "shmrt/backend.h"
#include "philox.h"

struct cand {
	float p;
	int id;
};

/* Most probable first, then lower id (a qsort comparator). */
static inline int sample_by_rank(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	if (a->p != b->p)
		return a->p > b->p ? -1 : 1;
	return (a->id > b->id) - (a->id < b->id);
}

/* Is token i ranked at or before `last` (the order above)? */
static inline int sample_ranks_before(const float *p, int i, struct cand last)
{
	return p[i] > last.p || (p[i] == last.p && i <= last.id);
}

/* The first token of the highest logit (temperature 0). */
static inline int sample_argmax(const float *z, int vocab)
{
	int best = 0;
	for (int i = 1; i < vocab; i++)
		if (z[i] > z[best])
			best = i;
	return best;
}

/* Logits to unnormalised probabilities exp((z - max) / temperature), in
 * place; libm's expf in both samplers, NaN as 0. */
static inline void sample_softmax(float *p, int vocab, float temperature)
{
	float max = -INFINITY;
	for (int i = 0; i < vocab; i++)
		max = fmaxf(max, p[i]);
	for (int i = 0; i < vocab; i++) {
		p[i] = expf((p[i] - max) / temperature);
		if (isnan(p[i]))
			p[i] = 0;
	}
}

/* Sum of p over the tokens ranked at or before last, in id order. */
static inline double sample_mass_upto(const float *p, int vocab, struct cand last)
{
	double mass = 0;
	for (int i = 0; i < vocab; i++)
		if (sample_ranks_before(p, i, last))
			mass += p[i];
	return mass;
}

/* Inverse CDF over the kept tokens (those ranked at or before last) in id
 * order, with the sequence's counter-based uniform. */
static inline int sample_draw(const float *p, int vocab, struct cand last, const struct shmrt_sample_params *sp)
{
	double target = shmrt_rng_uniform(sp->seed, sp->seq_id, sp->step) * sample_mass_upto(p, vocab, last), acc = 0;
	for (int i = 0; i < vocab; i++)
		if (sample_ranks_before(p, i, last) && (acc += p[i]) > target)
			return i;
	return last.id;
}

#endif

/* shmrt_model_step(): a step over shmrt_kv_seq's, which grow their block
 * tables as tokens arrive (model.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "model_impl.h"

/* Host arrays of the step built from the sequences. */
struct seq_step {
	int32_t *tokens, *q_lens, *ctx_lens, *tables;
	int stride;
};

static int build(const struct shmrt_seq_input *in, int n, int n_tokens, struct seq_step *b)
{
	for (int i = 0; i < n; i++)
		b->stride = in[i].seq->n_blocks > b->stride ? in[i].seq->n_blocks : b->stride;
	b->tokens = malloc(((size_t)n_tokens + 1) * sizeof(int32_t));
	b->q_lens = malloc(((size_t)n + 1) * sizeof(int32_t));
	b->ctx_lens = malloc(((size_t)n + 1) * sizeof(int32_t));
	b->tables = calloc((size_t)n * (size_t)b->stride + 1, sizeof(int32_t));
	if (!b->tokens || !b->q_lens || !b->ctx_lens || !b->tables)
		return shmrt_fail(ENOMEM, "step: no memory for %d sequences", n);
	for (int i = 0, at = 0; i < n; i++) {
		const struct shmrt_kv_seq *s = in[i].seq;
		if (in[i].n)
			memcpy(b->tokens + at, in[i].tokens, (size_t)in[i].n * sizeof(int32_t));
		at += in[i].n;
		b->q_lens[i] = in[i].n;
		b->ctx_lens[i] = s->len + in[i].n;
		if (s->n_blocks)
			memcpy(b->tables + (size_t)i * b->stride, s->blocks, (size_t)s->n_blocks * sizeof(int32_t));
	}
	return 0;
}

/* Gives back the blocks reserved by this step (n_blocks before it: old[]). */
static void unreserve(struct shmrt_kv_pool *p, const struct shmrt_seq_input *in, int n, const int *old)
{
	for (int i = 0; i < n; i++) {
		struct shmrt_kv_seq *s = in[i].seq;
		shmrt_kv_pool_release(p, s->blocks + old[i], s->n_blocks - old[i]);
		s->n_blocks = old[i];
	}
}

int shmrt_model_step(struct shmrt_model *m, struct shmrt_kv_pool *p, const struct shmrt_seq_input *in,
		     int n_seqs, enum shmrt_logits_mode logits, float *logits_out)
{
	shmrt_clear_error();
	if (n_seqs < 0 || (n_seqs && !in))
		return shmrt_fail(EINVAL, "step: bad n_seqs %d", n_seqs);
	int n_tokens = 0, rc = 0;
	for (int i = 0; i < n_seqs; i++) {
		if (!in[i].seq || in[i].n < 0 || (in[i].n && !in[i].tokens) || in[i].n > (1 << 30) - n_tokens)
			return shmrt_fail(EINVAL, "step: sequence %d: bad input (%d tokens)", i, in[i].n);
		n_tokens += in[i].n;
	}
	int *old = malloc(((size_t)n_seqs + 1) * sizeof(int));
	if (!old)
		return shmrt_fail(ENOMEM, "step: no memory");
	int reserved = 0;
	for (; reserved < n_seqs && rc == 0; reserved++) {
		struct shmrt_kv_seq *s = in[reserved].seq;
		old[reserved] = s->n_blocks;
		rc = shmrt_kv_seq_reserve(p, s, s->len + in[reserved].n);
	}
	struct seq_step b = {0};
	if (rc == 0)
		rc = build(in, n_seqs, n_tokens, &b);
	if (rc == 0) {
		struct shmrt_step st = {.n_seqs = n_seqs, .n_tokens = n_tokens, .tokens = b.tokens,
					.q_lens = b.q_lens, .ctx_lens = b.ctx_lens, .block_tables = b.tables,
					.block_table_stride = b.stride, .logits = logits};
		rc = shmrt_model_forward(m, p, &st, logits_out);
	}
	if (rc < 0)
		unreserve(p, in, reserved, old);
	else
		for (int i = 0; i < n_seqs; i++)
			in[i].seq->len += in[i].n;
	free(b.tokens);
	free(b.q_lens);
	free(b.ctx_lens);
	free(b.tables);
	free(old);
	return rc;
}

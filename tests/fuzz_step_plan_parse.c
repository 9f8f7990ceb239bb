/* libFuzzer target: a step ring record as a worker receives it
 * (runtime/engine/step_plan.c, shmrt_step_plan_parse). Garbage must be refused
 * cleanly; a record that is accepted must describe a plan a worker can run
 * without reading or writing outside its arrays or the cache: every
 * sequence's tokens and block table inside the plan's, block ids inside
 * the cache and in one table only, tokens inside the vocabulary, positions
 * as the kernels derive them. And the format is canonical: serializing the
 * parsed plan gives back the same bytes.
 *
 * Seeds (tests/corpus/step_plan/, written by `test_step_plan --write-corpus`
 * and checked by test_step_plan): valid plans (decodes, a prompt chunk
 * beside decodes, the empty plan) and broken ones, one fault each. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "step_plan.h"
#include "step_plan_corpus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const struct shmrt_step_plan *p, const uint8_t *data, size_t size)
{
	static uint8_t used[CORPUS_BLOCKS];
	static int32_t slots[CORPUS_TOKENS];
	static uint8_t again[1 << 20];
	memset(used, 0, sizeof(used));
	int32_t tok = 0, blk = 0;
	for (int i = 0; i < p->n_seqs; i++) {
		const struct shmrt_step_seq *s = &p->seqs[i];
		if (s->q_start != tok || s->bt_start != blk || s->q_len < 1 || s->ctx_len < s->q_len ||
		    s->ctx_len > CORPUS_MAX_CTX || s->n_blocks != (s->ctx_len + CORPUS_BLOCK_SIZE - 1) / CORPUS_BLOCK_SIZE)
			abort();
		for (int j = 0; j < s->q_len; j++)
			if (p->positions[tok + j] != s->ctx_len - s->q_len + j)
				abort();
		tok += s->q_len;
		blk += s->n_blocks;
	}
	if (tok != p->n_tokens || blk != p->n_blocks || p->n_tokens > CORPUS_TOKENS)
		abort();
	for (int i = 0; i < p->n_tokens; i++)
		if (p->tokens[i] < 0 || p->tokens[i] >= CORPUS_VOCAB)
			abort();
	for (int i = 0; i < p->n_blocks; i++) {
		int32_t b = p->block_ids[i];
		if (b < 0 || b >= CORPUS_BLOCKS || used[b]++)
			abort();
	}
	shmrt_step_plan_slots(p, slots);
	for (int i = 0; i < p->n_tokens; i++)
		if (slots[i] < 0 || slots[i] >= CORPUS_BLOCKS * CORPUS_BLOCK_SIZE)
			abort();
	size_t len;
	if (shmrt_step_plan_serialize(p, again, sizeof(again), &len) || len != size || memcmp(again, data, size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shmrt_step_plan p;
	static bool ready;
	if (!ready) {
		if (shmrt_step_plan_init(&p, CORPUS_SEQS, CORPUS_TOKENS, CORPUS_BLOCKS))
			abort();
		ready = true;
	}
	const struct shmrt_step_plan_limits lim = {
		.block_size = CORPUS_BLOCK_SIZE, .vocab = CORPUS_VOCAB, .max_ctx = CORPUS_MAX_CTX};
	if (shmrt_step_plan_parse(data, size, &lim, &p) != 0) {
		if (p.n_seqs || p.n_tokens || p.n_blocks)
			abort(); /* a refused record leaves no plan */
		return 0;
	}
	check_accepted(&p, data, size);
	return 0;
}

/* libFuzzer target: the forward step of a batch described by arbitrary
 * bytes (runtime/model/forward.c, shmrt_model_forward), as a worker would get it
 * from a buggy or hostile scheduler through shared memory: sequence counts,
 * q and context lengths, block tables and token ids. It must run the step
 * or refuse it with -EINVAL; never read or write outside the cache, the
 * scratch or the metadata (AddressSanitizer), and a step it runs gives
 * finite logits. The model is the tiny preset, made once per process.
 *
 * Input: n_seqs, logits mode, block_table_stride, then per sequence q_len,
 * ctx_len - q_len + 4 and its block table (signed bytes), then n_tokens -
 * sum(q_len) + 1 and the token ids (two bytes each, little-endian, minus
 * 64). Seeds in tests/corpus/model_step/. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/model.h"
#include "shmrt/error.h"
#include "shmrt/mkmodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEQS 6
#define MAX_STRIDE 5
#define MAX_TOKENS 160

static struct shmrt_model *model;
static struct shmrt_kv_pool *pool;
static char dir[64];

static void cleanup(void)
{
	shmrt_kv_pool_free(pool);
	shmrt_model_free(model);
	const char *files[] = {"config.json", "model.safetensors", "tokenizer.json"};
	char p[128];
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fuzz-model-XXXXXX");
	struct shmrt_model_options mo = {.backend = "cpu"};
	if (!mkdtemp(dir) || shmrt_mkmodel("tiny", 1, dir) < 0 || shmrt_model_load(dir, &mo, &model) < 0 ||
	    shmrt_kv_pool_new(model, 8, 16, &pool) < 0) {
		fprintf(stderr, "fuzz_model_step: cannot make the model: %s\n", shmrt_last_error());
		abort();
	}
	atexit(cleanup);
}

struct reader {
	const uint8_t *p;
	size_t n;
};

static uint8_t byte(struct reader *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!model)
		setup();
	struct reader r = {data, size};
	int32_t q_lens[MAX_SEQS], ctx_lens[MAX_SEQS], tables[MAX_SEQS * MAX_STRIDE], tokens[MAX_TOKENS];
	int n_seqs = byte(&r) % (MAX_SEQS + 1), mode = byte(&r) % 4, n_tokens = 0;
	int stride = byte(&r) % (MAX_STRIDE + 1);
	for (int s = 0; s < n_seqs; s++) {
		q_lens[s] = byte(&r) % 40;
		ctx_lens[s] = q_lens[s] + byte(&r) - 4;
		for (int b = 0; b < stride; b++)
			tables[s * stride + b] = (int8_t)byte(&r);
		n_tokens += q_lens[s];
	}
	/* the total may disagree with the lengths: the step must notice */
	n_tokens += (int)(byte(&r) % 3) - 1;
	if (n_tokens < 0 || n_tokens > MAX_TOKENS)
		n_tokens = 0;
	for (int t = 0; t < n_tokens; t++)
		tokens[t] = (int32_t)(byte(&r) | byte(&r) << 8) - 64;
	int V = shmrt_model_config(model)->vocab_size;
	float *logits = malloc(((size_t)n_tokens + 1) * V * sizeof(float));
	struct shmrt_step st = {.n_seqs = n_seqs, .n_tokens = n_tokens, .tokens = tokens, .q_lens = q_lens,
				.ctx_lens = ctx_lens, .block_tables = tables, .block_table_stride = stride,
				.logits = (enum shmrt_logits_mode)mode};
	int rows = shmrt_model_forward(model, pool, &st, logits);
	if (rows < 0 && rows != -EINVAL) {
		fprintf(stderr, "fuzz_model_step: %d (%s)\n", rows, shmrt_last_error());
		abort();
	}
	if (rows > n_tokens)
		abort();
	for (size_t i = 0; rows > 0 && i < (size_t)rows * V; i++)
		if (!isfinite(logits[i]))
			abort();
	free(logits);
	return 0;
}

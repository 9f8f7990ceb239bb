/* Generation for one sequence: prefill (in chunks if asked), then decode
 * one token a step until max_tokens or an eos id (model.h). */
#include <errno.h>
#include <time.h>

#include "fail.h"
#include "model_impl.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int is_eos(const struct shmrt_model_config *c, int32_t t)
{
	for (int i = 0; i < c->n_eos; i++)
		if (c->eos_token_ids[i] == t)
			return 1;
	return 0;
}

/* Runs the prompt through the cache; the last chunk leaves its logits. */
static int prefill(struct shmrt_model *m, struct shmrt_kv_pool *p, struct shmrt_kv_seq *seq, const int32_t *prompt,
		   int n, int chunk)
{
	if (chunk <= 0)
		chunk = n;
	for (int at = 0; at < n; at += chunk) {
		int len = n - at < chunk ? n - at : chunk;
		struct shmrt_seq_input in = {.seq = seq, .tokens = prompt + at, .n = len};
		int rc = shmrt_model_step(m, p, &in, 1, at + len == n ? SHMRT_LOGITS_LAST : SHMRT_LOGITS_NONE, NULL);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int run(struct shmrt_model *m, struct shmrt_kv_pool *p, const int32_t *prompt, int n_prompt,
	       const struct shmrt_gen_options *o, int max_tokens, int32_t *out, struct shmrt_gen_stats *st)
{
	struct shmrt_kv_seq seq = {0};
	struct shmrt_sample_params sp = {.temperature = o->temperature, .top_p = o->top_p > 0 ? o->top_p : 1.0f,
					 .top_k = o->top_k, .seed = o->seed};
	double t0 = now();
	int rc = prefill(m, p, &seq, prompt, n_prompt, o->prefill_chunk), n = 0;
	st->prefill_seconds = now() - t0;
	t0 = now();
	while (rc >= 0 && n < max_tokens) {
		int32_t tok;
		sp.step = (uint64_t)n;
		if ((rc = shmrt_model_sample(m, &sp, 1, &tok)) < 0)
			break;
		out[n++] = tok;
		if (o->on_token && (rc = o->on_token(o->ctx, tok)) != 0)
			break; /* < 0: an error, returned; > 0: stop */
		if (!o->ignore_eos && is_eos(&m->cfg, tok)) {
			st->stopped_by_eos = 1;
			break;
		}
		if (n == max_tokens)
			break;
		struct shmrt_seq_input in = {.seq = &seq, .tokens = &tok, .n = 1};
		rc = shmrt_model_step(m, p, &in, 1, SHMRT_LOGITS_LAST, NULL);
	}
	st->decode_seconds = now() - t0;
	st->new_tokens = n;
	shmrt_kv_seq_reset(p, &seq);
	return rc < 0 ? rc : n;
}

int shmrt_generate(struct shmrt_model *m, const int32_t *prompt, int n_prompt, const struct shmrt_gen_options *opt,
		   int32_t *out, int cap, struct shmrt_gen_stats *stats)
{
	shmrt_clear_error();
	static const struct shmrt_gen_options defaults;
	struct shmrt_gen_stats local = {0};
	struct shmrt_gen_stats *st = stats ? stats : &local;
	*st = (struct shmrt_gen_stats){.prompt_tokens = n_prompt};
	const struct shmrt_gen_options *o = opt ? opt : &defaults;
	int max_tokens = o->max_tokens > 0 ? o->max_tokens : 16;
	if (max_tokens > cap)
		max_tokens = cap;
	int ctx = m->cfg.max_context;
	if (n_prompt <= 0 || !prompt)
		return shmrt_fail(EINVAL, "generate: the prompt is empty");
	if (n_prompt >= ctx)
		return shmrt_fail(EINVAL, "generate: a prompt of %d tokens leaves no room in the model's context of %d",
				  n_prompt, ctx);
	if (max_tokens <= 0 || !out)
		return shmrt_fail(EINVAL, "generate: no room for output tokens");
	if (max_tokens > ctx - n_prompt)
		max_tokens = ctx - n_prompt;
	struct shmrt_kv_pool *p;
	int bs = 16, rc = shmrt_kv_pool_new(m, (n_prompt + max_tokens + bs - 1) / bs, bs, &p);
	if (rc < 0)
		return rc;
	rc = run(m, p, prompt, n_prompt, o, max_tokens, out, st);
	shmrt_kv_pool_free(p);
	return rc;
}

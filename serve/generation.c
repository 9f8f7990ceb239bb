/* One HTTP request's work in the runtime: n choices of one prompt, read
 * chunk by chunk, with OpenAI's stop strings applied here (the runtime
 * stops on token ids only): the text is cut before the first match and the
 * choice is cancelled in the runtime, which frees its KV blocks. */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "serve.h"

/* How long a cancelled choice may take to send its last chunk. */
#define DRAIN_NS ((int64_t)5 * 1000000000)

int64_t serve_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

const char *finish_name(enum finish_kind f)
{
	static const char *names[] = {"length", "stop", "abort", "error"};
	return (unsigned)f < FINISH_COUNT ? names[f] : "error";
}

static int refuse(int *http, int status, char *err, size_t cap, const char *msg)
{
	*http = status;
	snprintf(err, cap, "%s", msg);
	return -1;
}

/* Fits the request into the model's context, as vLLM and OpenAI word it. */
static int check_length(struct gen *g, const struct shmrt_runtime_info *info, int *http, char *err, size_t cap)
{
	int ctx = info->max_model_len;
	if (g->p.max_tokens == 0)
		g->p.max_tokens = ctx - g->n_ids;
	if (g->n_ids >= ctx || g->p.max_tokens < 1 || (long long)g->n_ids + g->p.max_tokens > ctx) {
		*http = MHD_HTTP_BAD_REQUEST;
		snprintf(err, cap,
			 "This model's maximum context length is %d tokens. However, you requested %lld tokens "
			 "(%d in the prompt, %d for the completion). Please reduce the length of the prompt or "
			 "max_tokens.",
			 ctx, (long long)g->n_ids + (g->p.max_tokens > 0 ? g->p.max_tokens : 0), g->n_ids,
			 g->p.max_tokens > 0 ? g->p.max_tokens : 0);
		return -1;
	}
	return 0;
}

static int submit_one(struct gen *g, int i, int *http, char *err, size_t cap)
{
	struct gen_choice *c = &g->c[i];
	uint64_t seed = g->p.seed + (uint64_t)i;
	if (!g->p.has_seed && getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)serve_now_ns() * 0x9E3779B97F4A7C15ull + (uint64_t)i;
	struct shmrt_request r = {.tokens = g->ids, .n_tokens = g->n_ids, .max_tokens = g->p.max_tokens,
				  .temperature = (float)g->p.temperature, .top_p = (float)g->p.top_p,
				  .top_k = g->p.top_k, .seed = seed, .ignore_eos = g->p.ignore_eos};
	int rc = shmrt_client_submit(g->s->link.client, &r, &c->id);
	if (rc == 0) {
		c->submitted = 1;
		c->t_last = serve_now_ns();
		return 0;
	}
	*http = rc == -EAGAIN || rc == -EPIPE || rc == -ETIMEDOUT ? MHD_HTTP_SERVICE_UNAVAILABLE
		: rc == -EINVAL || rc == -E2BIG ? MHD_HTTP_BAD_REQUEST
						: MHD_HTTP_INTERNAL_SERVER_ERROR;
	snprintf(err, cap, "the runtime refused the request: %s", shmrt_last_error());
	return -1;
}

int gen_submit(struct gen *g, struct serve *s, int32_t *ids, int n_ids, const struct gen_params *p, int *http,
	       char *err, size_t cap)
{
	memset(g, 0, sizeof(*g));
	g->s = s;
	g->ids = ids;
	g->n_ids = n_ids;
	g->p = *p;
	g->n = p->n;
	g->t_start = serve_now_ns();
	g->locked = 1; /* the caller's link_hold, released by gen_free */
	if (!(g->c = calloc((size_t)g->n, sizeof(*g->c))))
		return refuse(http, MHD_HTTP_INTERNAL_SERVER_ERROR, err, cap, "out of memory");
	if (check_length(g, &s->link.info, http, err, cap))
		return -1;
	/* The bounded queue: a full one answers 503 at once, never a backlog. */
	if (atomic_fetch_add(&s->pending, g->n) + g->n > s->opt.max_pending) {
		atomic_fetch_sub(&s->pending, g->n);
		atomic_fetch_add(&s->metrics.rejected_full, 1);
		snprintf(err, cap, "the server has %d requests in flight, its limit: retry later", s->opt.max_pending);
		*http = MHD_HTTP_SERVICE_UNAVAILABLE;
		return -1;
	}
	for (int i = 0; i < g->n; i++)
		if (submit_one(g, i, http, err, cap)) {
			atomic_fetch_sub(&s->pending, g->n - i); /* the unsubmitted; gen_free ends the rest */
			return -1;
		}
	return 0;
}

static int append(struct gen_choice *c, const char *text, size_t len)
{
	if (c->len + len + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 256;
		while (cap < c->len + len + 1)
			cap *= 2;
		char *t = realloc(c->text, cap);
		if (!t)
			return -ENOMEM;
		c->text = t;
		c->cap = cap;
	}
	memcpy(c->text + c->len, text, len);
	c->len += len;
	c->text[c->len] = '\0';
	return 0;
}

/* The earliest stop string in text that ends after `from`: its offset, or -1. */
static long find_stop(const struct gen_params *p, const struct gen_choice *c, size_t from)
{
	long best = -1;
	for (int k = 0; k < p->n_stop; k++) {
		size_t sl = strlen(p->stop[k]);
		size_t start = from >= sl - 1 ? from - (sl - 1) : 0;
		if (start >= c->len)
			continue;
		const char *m = memmem(c->text + start, c->len - start, p->stop[k], sl);
		if (m && (best < 0 || m - c->text < best))
			best = m - c->text;
	}
	return best;
}

size_t gen_emittable(const struct gen *g, int i)
{
	const struct gen_choice *c = &g->c[i];
	if (c->ended)
		return c->len;
	/* Hold back a tail that may be the start of a stop string. */
	size_t hold = 0;
	for (int k = 0; k < g->p.n_stop; k++) {
		size_t sl = strlen(g->p.stop[k]);
		for (size_t n = sl - 1; n > hold; n--)
			if (n <= c->len && !memcmp(c->text + c->len - n, g->p.stop[k], n)) {
				hold = n;
				break;
			}
	}
	return c->len - hold;
}

static void end_choice(struct gen *g, struct gen_choice *c, enum finish_kind f)
{
	struct serve_metrics *m = &g->s->metrics;
	c->ended = 1;
	c->finish = f;
	atomic_fetch_sub(&g->s->pending, 1);
	atomic_fetch_add(&m->finished[f], 1);
	atomic_fetch_add(&m->prompt_tokens, (uint64_t)c->n_prompt);
	histogram_observe(&m->e2e, (double)(serve_now_ns() - g->t_start) * 1e-9);
}

/* Waits for the last chunk of a choice the runtime was told to cancel. */
static void drain(struct gen *g, struct gen_choice *c)
{
	struct shmrt_response out;
	int64_t deadline = serve_now_ns() + DRAIN_NS;
	while (serve_now_ns() < deadline) {
		int rc = shmrt_client_next(g->s->link.client, c->id, &out, 100 * 1000000);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc < 0 || out.finish != SHMRT_CLIENT_RUNNING)
			return;
	}
}

static enum finish_kind finish_of(const struct shmrt_response *out)
{
	switch (out->finish) {
	case SHMRT_CLIENT_LENGTH: return FINISH_LENGTH;
	case SHMRT_CLIENT_STOP: return FINISH_STOP;
	case SHMRT_CLIENT_CANCELLED: return FINISH_ABORT;
	default: return FINISH_ERROR;
	}
}

int gen_step(struct gen *g, int i, int64_t timeout_ns)
{
	struct gen_choice *c = &g->c[i];
	if (c->ended || !c->submitted)
		return 1;
	struct shmrt_response out;
	int rc = shmrt_client_next(g->s->link.client, c->id, &out, timeout_ns);
	if (rc == -ETIMEDOUT)
		return 0;
	if (rc < 0) {
		c->status = rc;
		snprintf(c->error, sizeof(c->error), "%s", shmrt_last_error());
		end_choice(g, c, FINISH_ERROR);
		return 1;
	}
	int64_t now = serve_now_ns();
	if (out.token >= 0) {
		struct serve_metrics *m = &g->s->metrics;
		atomic_fetch_add(&m->generation_tokens, 1);
		histogram_observe(c->n_generated ? &m->itl : &m->ttft,
				  (double)(now - (c->n_generated ? c->t_last : g->t_start)) * 1e-9);
		c->t_last = now;
		c->n_generated++;
	}
	size_t old = c->len;
	if (out.text_len && append(c, out.text, out.text_len) < 0) {
		out.finish = SHMRT_CLIENT_ERROR;
		out.status = -ENOMEM;
	}
	c->n_prompt = out.n_prompt;
	if (out.finish != SHMRT_CLIENT_RUNNING) {
		c->n_generated = out.n_generated;
		c->status = out.status;
		if (out.status)
			snprintf(c->error, sizeof(c->error), "%s", shmrt_last_error());
	}
	long at = find_stop(&g->p, c, old);
	if (at >= 0) {
		c->len = (size_t)at;
		c->text[c->len] = '\0';
		if (out.finish == SHMRT_CLIENT_RUNNING) {
			shmrt_client_cancel(g->s->link.client, c->id);
			drain(g, c);
		}
		end_choice(g, c, FINISH_STOP);
	} else if (out.finish != SHMRT_CLIENT_RUNNING) {
		end_choice(g, c, finish_of(&out));
	}
	return 1;
}

int gen_run(struct gen *g)
{
	for (int i = 0; i < g->n; i++)
		while (!g->c[i].ended && g->c[i].submitted) {
			if (atomic_load(&g->s->stopping) && serve_now_ns() > g->s->drain_deadline_ns) {
				gen_cancel(g);
				break;
			}
			int rc = gen_step(g, i, 1000 * 1000000);
			if (rc < 0)
				return rc;
		}
	return 0;
}

void gen_cancel(struct gen *g)
{
	for (int i = 0; i < g->n; i++)
		if (g->c[i].submitted && !g->c[i].ended)
			shmrt_client_cancel(g->s->link.client, g->c[i].id);
	for (int i = 0; i < g->n; i++) {
		struct gen_choice *c = &g->c[i];
		if (c->submitted && !c->ended) {
			drain(g, c);
			end_choice(g, c, FINISH_ABORT);
		}
	}
}

void gen_free(struct gen *g)
{
	if (g->c) {
		gen_cancel(g);
		for (int i = 0; i < g->n; i++)
			free(g->c[i].text);
	}
	free(g->c);
	free(g->ids);
	gen_params_free(&g->p);
	if (g->locked)
		link_release(&g->s->link);
	memset(g, 0, sizeof(*g));
}

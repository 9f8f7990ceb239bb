/* /metrics in Prometheus' text format (version 0.0.4). Names follow
 * Prometheus' practice (an application prefix, base units, counters end in
 * _total) and vLLM's choice of figures (docs/SERVING.md, "Metrics"):
 * shmrt_time_to_first_token_seconds where vLLM has
 * vllm:time_to_first_token_seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

/* Bucket bounds in seconds: vLLM's for time to first token and inter-token
 * latency are close to these; one set serves the three histograms. */
static const double latency_bounds[HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08,
						    0.1,   0.25,   0.5,   1.0,  2.5,  5.0,  10.0, 30.0};

void metrics_init(struct serve_metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->ttft.bounds = m->itl.bounds = m->e2e.bounds = latency_bounds;
}

void histogram_observe(struct histogram *h, double seconds)
{
	int b = 0;
	while (b < HIST_BUCKETS && seconds > h->bounds[b])
		b++;
	atomic_fetch_add(&h->counts[b], 1);
	atomic_fetch_add(&h->sum_us, (uint64_t)(seconds > 0 ? seconds * 1e6 : 0));
}

static void histogram_write(FILE *f, const char *name, const char *help, struct histogram *h)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	uint64_t cum = 0;
	for (int b = 0; b <= HIST_BUCKETS; b++) {
		cum += atomic_load(&h->counts[b]);
		if (b < HIST_BUCKETS)
			fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[b], (unsigned long long)cum);
		else
			fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name, (double)atomic_load(&h->sum_us) * 1e-6, name,
		(unsigned long long)cum);
}

static void one(FILE *f, const char *name, const char *type, const char *help, double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static void rings(FILE *f, const struct shmrt_runtime_stats *st)
{
	static const char *names[] = {"submit", "tokens", "step", "sampled", "events", "responses"};
	const struct shmrt_ring_usage *u[] = {&st->rings.submit,  &st->rings.tokens, &st->rings.step,
					      &st->rings.sampled, &st->rings.events, &st->rings.responses};
	fprintf(f, "# HELP shmrt_ring_used_bytes Bytes queued in each ring of the arena (responses: this server's).\n"
		   "# TYPE shmrt_ring_used_bytes gauge\n");
	for (int i = 0; i < 6; i++)
		fprintf(f, "shmrt_ring_used_bytes{ring=\"%s\"} %llu\n", names[i], (unsigned long long)u[i]->used);
	fprintf(f, "# HELP shmrt_ring_capacity_bytes Capacity of each ring of the arena.\n"
		   "# TYPE shmrt_ring_capacity_bytes gauge\n");
	for (int i = 0; i < 6; i++)
		fprintf(f, "shmrt_ring_capacity_bytes{ring=\"%s\"} %llu\n", names[i],
			(unsigned long long)u[i]->capacity);
}

static void http_counts(FILE *f, struct serve_metrics *m)
{
	static const char *routes[] = {"health", "live", "predict", "completions", "chat_completions", "models",
				       "metrics", "other"};
	fprintf(f, "# HELP shmrt_http_requests_total HTTP requests answered, by route and status class.\n"
		   "# TYPE shmrt_http_requests_total counter\n");
	for (int r = 0; r < ROUTE_COUNT; r++)
		for (int c = 1; c <= 5; c++) {
			uint64_t n = atomic_load(&m->http[r][c]);
			if (n)
				fprintf(f, "shmrt_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n", routes[r], c,
					(unsigned long long)n);
		}
}

char *metrics_render(struct serve_metrics *m, const struct shmrt_runtime_stats *st,
		     const struct shmrt_runtime_info *info, int pending, int linked)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	one(f, "shmrt_up", "gauge", "1 when the server is attached to its runtime.", linked);
	one(f, "shmrt_health_state", "gauge",
	    "The runtime's health: 0 starting, 1 loading, 2 ready, 3 degraded, 4 failed.", st->health);
	one(f, "shmrt_requests_running", "gauge", "Sequences in the running batch.", st->running);
	one(f, "shmrt_requests_waiting", "gauge", "Sequences waiting for the batch.", st->waiting);
	one(f, "shmrt_server_requests_pending", "gauge", "Choices this server has in the runtime.", pending);
	one(f, "shmrt_prompt_tokens_total", "counter", "Prompt tokens of finished requests.",
	    (double)atomic_load(&m->prompt_tokens));
	one(f, "shmrt_generation_tokens_total", "counter", "Tokens generated.", (double)atomic_load(&m->generation_tokens));
	fprintf(f, "# HELP shmrt_request_success_total Requests (choices) ended, by finish reason.\n"
		   "# TYPE shmrt_request_success_total counter\n");
	for (int k = 0; k < FINISH_COUNT; k++)
		fprintf(f, "shmrt_request_success_total{finished_reason=\"%s\"} %llu\n", finish_name(k),
			(unsigned long long)atomic_load(&m->finished[k]));
	one(f, "shmrt_requests_rejected_total", "counter", "Requests answered 503 because the queue was full.",
	    (double)atomic_load(&m->rejected_full));
	histogram_write(f, "shmrt_time_to_first_token_seconds", "Time from the request to its first token.", &m->ttft);
	histogram_write(f, "shmrt_inter_token_latency_seconds", "Time between two tokens of a request.", &m->itl);
	histogram_write(f, "shmrt_e2e_request_latency_seconds", "Time from the request to its end.", &m->e2e);
	one(f, "shmrt_kv_blocks_used", "gauge", "KV cache blocks in use.", st->kv_blocks_used);
	one(f, "shmrt_kv_blocks_free", "gauge", "KV cache blocks free.", st->kv_blocks_free);
	int total = st->kv_blocks_used + st->kv_blocks_free;
	one(f, "shmrt_kv_cache_usage_ratio", "gauge", "KV cache blocks in use, 0 to 1.",
	    total ? (double)st->kv_blocks_used / total : 0);
	one(f, "shmrt_steps_total", "counter", "Batched steps the scheduler ran.", (double)st->steps);
	one(f, "shmrt_preemptions_total", "counter", "Sequences preempted (recomputed later).", (double)st->preemptions);
	one(f, "shmrt_restarts_total", "counter", "Times the runtime started a new family of processes.",
	    st->restarts);
	one(f, "shmrt_shm_arena_bytes", "gauge", "Shared memory the runtime's arena reserves in /dev/shm.",
	    (double)info->arena_bytes);
	rings(f, st);
	http_counts(f, m);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* shmrt bench serve: the HTTP server's cost, as a ratio against the same
 * load through the C client API, on one runtime in one run (bench/serve.c);
 * the HTTP load generator is libcurl's multi interface (bench/serve_http.c). */
#ifndef SHMRT_BENCH_SERVE_H
#define SHMRT_BENCH_SERVE_H

#include <stdint.h>

#include "clock.h"

/* Seconds on the runtime's clock (CLOCK_MONOTONIC). */
static inline double serve_now_s(void)
{
	return (double)shmrt_now_ns() * 1e-9;
}

struct serve_load {
	int streams, max_tokens;
	double seconds;
	const char *prompt;
};

/* What one load measured: from the first request to the last end. */
struct serve_result {
	double seconds;
	uint64_t requests, tokens, errors;
	double *ttft; /* seconds, one per request */
	size_t n_ttft, cap_ttft;
};

int serve_result_add_ttft(struct serve_result *r, double s);
void serve_result_free(struct serve_result *r);

/* The load over HTTP: `streams` concurrent streaming completions against
 * url, each issuing the next until `seconds` have passed. */
int serve_http_load(const char *url, const struct serve_load *l, struct serve_result *out);

/* Opens up to n idle TCP connections to port (fds malloc'd): how many. */
int serve_idle_open(int port, int n, int **fds);
/* Sends GET /live on each and closes it: how many answered 200. */
int serve_idle_answer(int *fds, int n);

#endif

/* shmrt bench serve: N concurrent streaming clients for a bounded time,
 * over HTTP (shmrt serve, loopback, libcurl) and through the C client API
 * against the same runtime, alternated in one run: requests/s, tokens/s,
 * time to first token p50/p99, and the HTTP layer's cost as the ratio of
 * the two. Then a thousand idle connections held while a load runs, each
 * served afterwards. Target (issue 9): HTTP >= 0.95 of the C client's
 * tokens/s at 64 streams, and 1,000 idle connections with no error. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "bench.h"
#include "serve.h"

#define MAX_ROUNDS 8
static const char prompt[] = "The model reads the text and writes a long answer";

struct args {
	const char *model, *preset;
	int streams, max_tokens, rounds, idle, workers, json;
	double seconds;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt bench serve [--model DIR | --preset NAME] [--streams N] [--seconds S]\n"
		   "                         [--max-tokens N] [--rounds N] [--idle N] [--workers W] [--json]\n\n"
		   "Starts shmrt serve on the model, then alternates the same load through HTTP\n"
		   "(streaming /v1/completions over loopback, libcurl) and through the C client API\n"
		   "on the same runtime: N streams, each asking the next completion (max-tokens\n"
		   "tokens, ignore_eos) until S seconds have passed. Prints requests/s, tokens/s,\n"
		   "time to first token p50/p99 and HTTP's tokens/s as a fraction of the C API's;\n"
		   "then holds --idle connections open through one more HTTP load and checks that\n"
		   "each is served.\n\n"
		   "  --model DIR     a checkpoint with tokenizer.json (default: --preset)\n"
		   "  --preset NAME   mkmodel preset in a temporary directory (default small)\n"
		   "  --streams N     concurrent streams (default 64)\n"
		   "  --seconds S     each load's length (default 20)\n"
		   "  --max-tokens N  tokens per completion (default 64)\n"
		   "  --rounds N      C API / HTTP pairs (default 2)\n"
		   "  --idle N        idle connections (default 1000; 0: skip)\n"
		   "  --workers W     the runtime's workers (default 1)\n");
}

static int parse(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},	   {"preset", required_argument, 0, 'P'},
		{"streams", required_argument, 0, 'n'},	   {"seconds", required_argument, 0, 's'},
		{"max-tokens", required_argument, 0, 't'}, {"rounds", required_argument, 0, 'r'},
		{"idle", required_argument, 0, 'i'},	   {"workers", required_argument, 0, 'w'},
		{"json", no_argument, 0, 'j'},		   {"help", no_argument, 0, 'h'},
		{0}};
	for (int c; (c = getopt_long(argc, argv, "m:P:n:s:t:r:i:w:jh", opts, NULL)) != -1;) {
		char *end = NULL;
		long v = 0;
		if (strchr("ntriw", c)) {
			v = strtol(optarg, &end, 10);
			if (*end || v < (c == 'i' ? 0 : 1) || v > (c == 'i' ? 100000 : c == 'r' ? MAX_ROUNDS : 4096)) {
				fprintf(stderr, "shmrt bench serve: bad %s '%s'\n", argv[optind - 1], optarg);
				return 2;
			}
		}
		switch (c) {
		case 'm': a->model = optarg; break;
		case 'P': a->preset = optarg; break;
		case 'n': a->streams = (int)v; break;
		case 't': a->max_tokens = (int)v; break;
		case 'r': a->rounds = (int)v; break;
		case 'i': a->idle = (int)v; break;
		case 'w': a->workers = (int)v; break;
		case 'j': a->json = 1; break;
		case 's':
			a->seconds = strtod(optarg, &end);
			if (*end || !(a->seconds > 0 && a->seconds <= 3600)) {
				fprintf(stderr, "shmrt bench serve: bad --seconds '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || (a->model && a->preset)) {
		usage(stderr);
		return 2;
	}
	return -1;
}

/* ---- the C client API's load ---------------------------------------------- */

struct c_load {
	struct shmrt_client *c;
	const struct serve_load *l;
	double deadline, last_end;
	pthread_mutex_t mu;
	struct serve_result *res;
};

static void *c_stream(void *arg)
{
	struct c_load *cl = arg;
	struct shmrt_request r = {.text = cl->l->prompt, .text_len = strlen(cl->l->prompt), .add_special = 1,
				  .max_tokens = cl->l->max_tokens, .ignore_eos = 1};
	while (serve_now_s() < cl->deadline) {
		double t0 = serve_now_s(), first = 0;
		uint64_t id;
		struct shmrt_response out = {0};
		int rc = shmrt_client_submit(cl->c, &r, &id);
		while (rc == 0) {
			if ((rc = shmrt_client_next(cl->c, id, &out, SHMRT_WAIT_FOREVER)) < 0)
				break;
			if (out.token >= 0 && first == 0)
				first = serve_now_s();
			if (out.finish)
				break;
		}
		pthread_mutex_lock(&cl->mu);
		cl->res->requests++;
		if (rc < 0 || out.status || first == 0) {
			cl->res->errors++;
		} else {
			cl->res->tokens += (uint64_t)out.n_generated;
			serve_result_add_ttft(cl->res, first - t0);
		}
		if (serve_now_s() > cl->last_end)
			cl->last_end = serve_now_s();
		pthread_mutex_unlock(&cl->mu);
	}
	return NULL;
}

static int c_api_load(struct shmrt_client *c, const struct serve_load *l, struct serve_result *out)
{
	memset(out, 0, sizeof(*out));
	double t0 = serve_now_s();
	struct c_load cl = {.c = c, .l = l, .deadline = t0 + l->seconds, .last_end = t0, .res = out};
	pthread_mutex_init(&cl.mu, NULL);
	pthread_t *t = calloc((size_t)l->streams, sizeof(*t));
	if (!t)
		return -ENOMEM;
	int n = 0;
	for (; n < l->streams; n++)
		if (pthread_create(&t[n], NULL, c_stream, &cl))
			break;
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
	out->seconds = cl.last_end - t0;
	return n == l->streams ? 0 : -EAGAIN;
}

/* ---- the server ---------------------------------------------------------------- */

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int port = -1;
	if (s >= 0 && !bind(s, (struct sockaddr *)&a, sizeof(a)) && !getsockname(s, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static pid_t start_server(const struct args *a, const char *model, const char *name, int port, const char *log)
{
	char p[16], seqs[16], pending[16], workers[16];
	snprintf(p, sizeof(p), "%d", port);
	snprintf(seqs, sizeof(seqs), "%d", a->streams);
	snprintf(pending, sizeof(pending), "%d", 4 * a->streams + 64);
	snprintf(workers, sizeof(workers), "%d", a->workers);
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "w", stderr);
		(void)f;
		dup2(2, 1);
		execl("/proc/self/exe", "shmrt", "serve", "--model", model, "--name", name, "--host", "127.0.0.1",
		      "--port", p, "--max-seqs", seqs, "--max-pending", pending, "--workers", workers, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int wait_healthy(int port, pid_t pid, double timeout_s)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", port);
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	double deadline = serve_now_s() + timeout_s;
	while (serve_now_s() < deadline) {
		long status = 0;
		if (curl_easy_perform(h) == CURLE_OK && curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
		    status == 200) {
			curl_easy_cleanup(h);
			return 0;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		struct timespec t = {0, 100 * 1000000};
		nanosleep(&t, NULL);
	}
	curl_easy_cleanup(h);
	return -1;
}

/* ---- report -------------------------------------------------------------------- */

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

static double pct(struct serve_result *r, double q)
{
	if (!r->n_ttft)
		return 0;
	qsort(r->ttft, r->n_ttft, sizeof(double), cmp_double);
	size_t i = (size_t)(q * (double)(r->n_ttft - 1) + 0.5);
	return r->ttft[i];
}

static json_t *result_json(const char *path, int round, struct serve_result *r)
{
	return json_pack("{s:s, s:i, s:f, s:I, s:I, s:I, s:f, s:f, s:f, s:f}", "path", path, "round", round, "seconds",
			 r->seconds, "requests", (json_int_t)r->requests, "tokens", (json_int_t)r->tokens, "errors",
			 (json_int_t)r->errors, "requests_per_s", r->seconds > 0 ? (double)r->requests / r->seconds : 0.0,
			 "tokens_per_s", r->seconds > 0 ? (double)r->tokens / r->seconds : 0.0, "ttft_p50_s", pct(r, 0.5),
			 "ttft_p99_s", pct(r, 0.99));
}

static void print_row(const char *path, int round, struct serve_result *r)
{
	printf("%-6s %5d %8.1f %10.2f %10.1f %9.1f %9.1f %7llu\n", path, round, r->seconds,
	       r->seconds > 0 ? (double)r->requests / r->seconds : 0, r->seconds > 0 ? (double)r->tokens / r->seconds : 0,
	       pct(r, 0.5) * 1e3, pct(r, 0.99) * 1e3, (unsigned long long)r->errors);
}

static double tps(const struct serve_result *r)
{
	return r->seconds > 0 ? (double)r->tokens / r->seconds : 0;
}

/* The runs: rounds of (C API, HTTP), then the idle connections. */
static int measure(const struct args *a, struct shmrt_client *c, int port, json_t *rows, double *ratios,
		   int *idle_opened, int *idle_answered, uint64_t *idle_errors)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	struct serve_load l = {.streams = a->streams, .max_tokens = a->max_tokens, .seconds = a->seconds,
			       .prompt = prompt};
	if (!a->json)
		printf("%-6s %5s %8s %10s %10s %9s %9s %7s\n", "path", "round", "seconds", "requests/s", "tokens/s",
		       "ttft p50", "ttft p99", "errors");
	for (int r = 0; r < a->rounds; r++) {
		struct serve_result capi, http;
		if (c_api_load(c, &l, &capi) || serve_http_load(url, &l, &http))
			return -1;
		ratios[r] = tps(&capi) > 0 ? tps(&http) / tps(&capi) : 0;
		if (!a->json) {
			print_row("c-api", r, &capi);
			print_row("http", r, &http);
		}
		json_array_append_new(rows, result_json("c-api", r, &capi));
		json_array_append_new(rows, result_json("http", r, &http));
		serve_result_free(&capi);
		serve_result_free(&http);
	}
	*idle_opened = *idle_answered = 0;
	*idle_errors = 0;
	if (a->idle) {
		int *fds;
		*idle_opened = serve_idle_open(port, a->idle, &fds);
		if (*idle_opened < 0)
			return -1;
		struct serve_load short_load = l;
		short_load.seconds = a->seconds / 4;
		struct serve_result held;
		serve_http_load(url, &short_load, &held);
		*idle_errors = held.errors;
		serve_result_free(&held);
		*idle_answered = serve_idle_answer(fds, *idle_opened);
	}
	return 0;
}

int bench_serve(int argc, char **argv)
{
	struct args a = {.streams = 64, .max_tokens = 64, .rounds = 2, .idle = 1000, .workers = 1, .seconds = 20};
	int rc = parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	char dir[] = "/tmp/shmrt-bench-serve-XXXXXX", log[PATH_MAX], name[64];
	if (!mkdtemp(dir)) {
		perror("shmrt bench serve: mkdtemp");
		return 1;
	}
	if (!a.model) {
		if (shmrt_mkmodel(a.preset ? a.preset : "small", 0, dir) < 0) {
			fprintf(stderr, "shmrt bench serve: mkmodel: %s\n", shmrt_last_error());
			return 1;
		}
		a.model = dir;
	}
	snprintf(log, sizeof(log), "%s/serve.log", dir);
	snprintf(name, sizeof(name), "bench-serve-%d", (int)getpid());
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int port = free_port();
	pid_t srv = start_server(&a, a.model, name, port, log);
	struct shmrt_client *c = NULL;
	json_t *rows = json_array();
	double ratios[MAX_ROUNDS] = {0};
	int idle_opened = 0, idle_answered = 0, status = 1;
	uint64_t idle_errors = 0;
	if (srv < 0 || wait_healthy(port, srv, 600)) {
		fprintf(stderr, "shmrt bench serve: the server did not become healthy (log: %s)\n", log);
	} else if (shmrt_client_attach(&c, name) < 0) {
		fprintf(stderr, "shmrt bench serve: attach: %s\n", shmrt_last_error());
	} else if (measure(&a, c, port, rows, ratios, &idle_opened, &idle_answered, &idle_errors) == 0) {
		status = 0;
	}
	if (c)
		shmrt_client_detach(c);
	if (srv > 0) {
		kill(srv, SIGTERM);
		waitpid(srv, NULL, 0);
	}
	double sorted[MAX_ROUNDS];
	memcpy(sorted, ratios, sizeof(sorted));
	qsort(sorted, (size_t)a.rounds, sizeof(double), cmp_double);
	double median = sorted[(a.rounds - 1) / 2];
	if (status == 0 && a.json) {
		json_t *doc = json_pack("{s:s, s:i, s:i, s:f, s:o, s:f, s:{s:i, s:i, s:i, s:I}}", "model", a.model,
					"streams", a.streams, "max_tokens", a.max_tokens, "seconds", a.seconds, "rows",
					rows, "http_over_c_api_tokens_per_s", median, "idle", "asked", a.idle, "opened",
					idle_opened, "answered", idle_answered, "load_errors", (json_int_t)idle_errors);
		rows = NULL;
		json_dumpf(doc, stdout, JSON_PRESERVE_ORDER | JSON_INDENT(1));
		putchar('\n');
		json_decref(doc);
	} else if (status == 0) {
		printf("\nHTTP tokens/s / C API tokens/s (median of %d alternated rounds): %.3f (target >= 0.95)\n",
		       a.rounds, median);
		if (a.idle)
			printf("idle connections: %d asked, %d opened, %d served after a load with them held "
			       "(%llu load errors)\n",
			       a.idle, idle_opened, idle_answered, (unsigned long long)idle_errors);
	}
	json_decref(rows);
	curl_global_cleanup();
	if (a.model == dir) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "shmrt bench serve: could not remove %s\n", dir);
	} else {
		unlink(log);
		rmdir(dir);
	}
	return status;
}

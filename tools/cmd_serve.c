/* shmrt serve: the HTTP model server (serve/), in the foreground until
 * SIGTERM or SIGINT. With --model it runs the runtime itself (as `shmrt
 * start` does); with --name it fronts a runtime already running, or one
 * that starts later (/health is 503 until then). Vertex AI's AIP_*
 * variables set the port, the routes and the model (docs/SERVING.md). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "../serve/serve.h"
#include "cmd.h"
#include "runtime_flags.h"
#include "token_list.h"

/* Vertex AI's shared public endpoints take requests up to 1.5 MB. */
#define DEFAULT_MAX_BODY 1500000

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt serve (--model DIR | --name NAME) [--host H] [--port P]\n"
		   "                   [--served-model-name ID] [--max-body BYTES] [--max-pending N]\n"
		   "                   [--drain-seconds S] [runtime flags as shmrt start]\n\n"
		   "Serves a model over HTTP: the Vertex AI predict route, an OpenAI-compatible API\n"
		   "(/v1/completions, /v1/chat/completions, /v1/models; stream: true as server-sent\n"
		   "events), /health (200 once the model is loaded and warm, else 503), /live and\n"
		   "/metrics (Prometheus). The port opens at once; SIGTERM or SIGINT stops taking\n"
		   "requests, lets those in flight finish for --drain-seconds, then stops.\n\n"
		   "  --model DIR          run the runtime on this checkpoint (default: $AIP_STORAGE_URI\n"
		   "                       or $AIP_MODEL_DIR, a local path: gs:// is not fetched)\n"
		   "  --name NAME          the runtime's name (with --model: default serve-PID);\n"
		   "                       without --model, front a runtime `shmrt start` runs\n"
		   "  --host H             the address to listen on (default 0.0.0.0; :: for IPv6)\n"
		   "  --port P             (default $AIP_HTTP_PORT, else 8080)\n"
		   "  --served-model-name ID  the model's id in the API (default: the directory's name)\n"
		   "  --max-body BYTES     larger request bodies get 413 (default 1500000: Vertex's limit)\n"
		   "  --max-pending N      requests in flight before 503 with Retry-After\n"
		   "                       (default: 4 x the runtime's --max-seqs)\n"
		   "  --drain-seconds S    (default 10)\n"
		   "Routes: $AIP_HEALTH_ROUTE (default /health) and $AIP_PREDICT_ROUTE (default /predict).\n\n"
		   "Runtime flags (with --model):\n");
	runtime_flags_usage(f);
}

struct serve_args {
	struct shmrt_runtime_options rt;
	struct serve_options http;
	const char *served_name;
	long drain_s;
	int explicit_pending;
};

/* The model directory Vertex AI names: AIP_STORAGE_URI (the artifactUri's
 * copy), else AIP_MODEL_DIR. Only a local path is served. */
static int model_from_env(struct serve_args *a)
{
	const char *vars[] = {"AIP_STORAGE_URI", "AIP_MODEL_DIR"};
	for (int i = 0; i < 2; i++) {
		const char *v = getenv(vars[i]);
		if (!v || !*v)
			continue;
		if (strstr(v, "://")) {
			fprintf(stderr,
				"shmrt serve: $%s is %s: shmrt does not fetch from object storage; copy the model "
				"into the image or a mounted volume and give its local path (--model DIR)\n",
				vars[i], v);
			return -1;
		}
		a->rt.model_dir = v;
		return 0;
	}
	return 0;
}

static int env_port(int *port)
{
	const char *v = getenv("AIP_HTTP_PORT");
	long p;
	if (!v || !*v)
		return 0;
	return parse_int_arg("serve", "$AIP_HTTP_PORT", v, 1, 65535, &p) ? -1 : (*port = (int)p, 0);
}

static int parse(int argc, char **argv, struct serve_args *a)
{
	struct option opts[RUNTIME_FLAGS_COUNT + 11] = {
		{"model", required_argument, 0, 'm'},		 {"name", required_argument, 0, 'N'},
		{"host", required_argument, 0, 'A'},		 {"port", required_argument, 0, 'P'},
		{"served-model-name", required_argument, 0, 'S'}, {"max-body", required_argument, 0, 'M'},
		{"max-pending", required_argument, 0, 'Q'},	 {"drain-seconds", required_argument, 0, 'd'},
		{"help", no_argument, 0, 'h'}};
	memcpy(opts + 9, runtime_flag_options, sizeof(runtime_flag_options));
	if (env_port(&a->http.port) || model_from_env(a))
		return 2;
	for (int c; (c = getopt_long(argc, argv, "m:N:A:P:S:M:Q:d:h" RUNTIME_FLAGS_SHORT, opts, NULL)) != -1;) {
		int ours = runtime_flag("serve", c, optarg, &a->rt);
		if (ours < 0)
			return 2;
		if (ours)
			continue;
		long v = 0;
		switch (c) {
		case 'm': a->rt.model_dir = optarg; break;
		case 'N': a->rt.name = optarg; break;
		case 'A': a->http.host = optarg; break;
		case 'S': a->served_name = optarg; break;
		case 'P':
			if (parse_int_arg("serve", "--port", optarg, 1, 65535, &v))
				return 2;
			a->http.port = (int)v;
			break;
		case 'M':
			if (parse_int_arg("serve", "--max-body", optarg, 1, 1L << 30, &v))
				return 2;
			a->http.max_body = (size_t)v;
			break;
		case 'Q':
			if (parse_int_arg("serve", "--max-pending", optarg, 1, 1 << 20, &v))
				return 2;
			a->http.max_pending = (int)v;
			a->explicit_pending = 1;
			break;
		case 'd':
			if (parse_int_arg("serve", "--drain-seconds", optarg, 0, 3600, &a->drain_s))
				return 2;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || (!a->rt.model_dir && !a->rt.name)) {
		fprintf(stderr, "shmrt serve: give --model DIR (or $AIP_STORAGE_URI), or --name NAME of a running runtime\n");
		return usage(stderr), 2;
	}
	return -1;
}

/* A thousand idle connections need a thousand descriptors: take the hard
 * limit (1024 is the usual soft one). */
static void raise_fd_limit(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

static void log_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "shmrt serve: runtime: %s\n", line);
}

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

/* Waits for SIGTERM/SIGINT, or the owned runtime's failure: the signal, or 0. */
static int wait_for_stop(sigset_t *sigs, struct shmrt_runtime *rt)
{
	for (;;) {
		struct timespec tick = {0, 100 * 1000000};
		int sig = sigtimedwait(sigs, NULL, &tick);
		if (sig > 0)
			return sig;
		if (rt && shmrt_runtime_health(rt, NULL) == SHMRT_HEALTH_FAILED)
			return 0;
	}
}

static void drain(struct serve *s, struct shmrt_runtime *rt, long drain_s)
{
	serve_stop(s);
	if (rt) {
		/* the runtime lets requests in flight finish, then ends the rest */
		shmrt_runtime_stop(rt, drain_s * 1000000000);
		return;
	}
	while (atomic_load(&s->pending) > 0 && serve_now_ns() < s->drain_deadline_ns) {
		struct timespec t = {0, 20 * 1000000};
		nanosleep(&t, NULL);
	}
}

int cmd_serve(int argc, char **argv)
{
	static struct serve s; /* big; one per process */
	struct serve_args a = {.rt = {.exe = "/proc/self/exe", .log = log_line},
			       .http = {.host = "0.0.0.0", .port = 8080, .max_body = DEFAULT_MAX_BODY},
			       .drain_s = 10};
	int rc = parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	static char exe[PATH_MAX], name[64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		a.rt.exe = exe;
	}
	if (!a.rt.name) {
		snprintf(name, sizeof(name), "serve-%d", (int)getpid());
		a.rt.name = name;
	}
	if (!a.explicit_pending)
		a.http.max_pending = 4 * (a.rt.max_seqs ? a.rt.max_seqs : 256);
	a.http.health_route = env_or("AIP_HEALTH_ROUTE", "/health");
	a.http.predict_route = env_or("AIP_PREDICT_ROUTE", "/predict");
	a.http.drain_ns = a.drain_s * 1000000000;
	s.opt = a.http;
	s.link.name = a.rt.name;
	s.link.served_name = a.served_name;

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before any thread starts */
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	/* The port first: Vertex AI's liveness check is a TCP connect. */
	if (serve_start(&s))
		return 1;
	struct shmrt_runtime *rt = NULL;
	if (a.rt.model_dir && shmrt_runtime_start(&rt, &a.rt) < 0) {
		fprintf(stderr, "shmrt serve: %s\n", shmrt_last_error());
		serve_close(&s);
		return 1;
	}
	if (link_start(&s.link)) {
		fprintf(stderr, "shmrt serve: cannot start a thread\n");
		if (rt)
			shmrt_runtime_stop(rt, 0);
		serve_close(&s);
		return 1;
	}
	fprintf(stderr, "shmrt serve: listening on http://%s:%d (health %s, predict %s), runtime '%s'%s\n",
		a.http.host, a.http.port, a.http.health_route, a.http.predict_route, a.rt.name,
		rt ? "" : " (started elsewhere)");
	int sig = wait_for_stop(&sigs, rt);
	if (sig)
		fprintf(stderr, "shmrt serve: %s: draining for up to %ld s, then stopping\n", strsignal(sig), a.drain_s);
	else
		fprintf(stderr, "shmrt serve: the runtime failed: stopping\n");
	drain(&s, rt, a.drain_s);
	serve_close(&s);
	link_stop(&s.link);
	fprintf(stderr, "shmrt serve: stopped\n");
	return sig ? 0 : 1;
}

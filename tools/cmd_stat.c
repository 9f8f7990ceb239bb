/* shmrt stat: a running runtime's health, processes, rings, queues, KV
 * blocks, step time and tokens/s, read from its arena. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "../bench/shm_usage.h"
#include "arena_format.h"
#include "cmd.h"
#include "clock.h"
#include "proto.h"
#include "utf8.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt stat --name NAME [--json] [--trust-owner USER]\n\n"
		   "Health, every process (role, pid, heartbeat age, work done), ring occupancy,\n"
		   "waiting and running sequences, KV blocks used, step time and tokens/s of the\n"
		   "runtime NAME, and its shared memory: reserved (the arena file, allocated whole\n"
		   "at start) and touched (pages the live processes have mapped: the sum of their\n"
		   "Pss in /proc/PID/smaps). --json: one JSON document. --trust-owner: the runtime\n"
		   "may be USER's (by default only this user's; as $SHMRT_TRUSTED_OWNER).\n");
}

/* Text for the document: bounded by its field's size (a string of the
 * shared state may lack its NUL), ill-formed UTF-8 replaced by U+FFFD
 * (jansson takes UTF-8 only: one such byte used to lose the document). */
static json_t *text_json(const char *s, size_t size)
{
	struct tok_buf b = {0};
	size_t used;
	json_t *j = tok_utf8_lossy(s, strnlen(s, size), true, &b, &used) ? NULL : json_stringn(b.p ? b.p : "", b.n);
	tok_buf_free(&b);
	return j;
}

/* A count of the shared state, read once and kept within its array. */
static unsigned bounded(const uint32_t *shared, unsigned max)
{
	unsigned n = *(const volatile uint32_t *)shared;
	return n < max ? n : max;
}

static json_t *procs_json(const struct rt_state *st, unsigned n_workers, int64_t now)
{
	json_t *arr = json_array();
	for (unsigned i = 0; i < RT_PROC_WORKER0 + n_workers; i++) {
		const struct rt_proc *p = &st->procs[i];
		uint32_t ph = atomic_load(&p->phase);
		json_array_append_new(
			arr, json_pack("{s:s, s:i, s:i, s:s, s:f, s:I, s:f}", "role", rt_role_name((int)i), "rank",
				       i < RT_PROC_WORKER0 ? 0 : (int)(i - RT_PROC_WORKER0), "pid",
				       (int)atomic_load(&p->pid), "phase",
				       ph == RT_PHASE_READY ? "ready" : ph == RT_PHASE_LOADING ? "loading" : "none",
				       "heartbeat_age_s", (double)(now - atomic_load(&p->heartbeat_ns)) * 1e-9, "work",
				       (json_int_t)atomic_load(&p->work), "busy_s",
				       (double)atomic_load(&p->busy_ns) * 1e-9));
	}
	return arr;
}

static json_t *rings_json(const struct shmrt_arena *a, const struct rt_state *st)
{
	static const char *names[] = {"submit", "tokens", "step", "sampled", "events"};
	json_t *obj = json_object();
	uint64_t used, cap;
	for (int i = 0; i < 5; i++)
		if (rt_ring_usage(a, names[i], 0, &used, &cap) == 0)
			json_object_set_new(obj, names[i], json_pack("{s:I, s:I}", "used", (json_int_t)used,
								     "capacity", (json_int_t)cap));
	json_t *clients = json_array();
	for (unsigned i = 0, n = bounded(&st->max_clients, RT_MAX_CLIENTS); i < n; i++) {
		uint64_t owner = atomic_load(&st->clients[i].owner);
		if (owner && rt_ring_usage(a, "responses", i, &used, &cap) == 0)
			json_array_append_new(clients, json_pack("{s:i, s:I, s:I, s:I, s:I}", "slot", (int)i, "pid",
								 (json_int_t)owner, "used", (json_int_t)used,
								 "capacity", (json_int_t)cap, "dropped",
								 (json_int_t)atomic_load(&st->clients[i].dropped)));
	}
	json_object_set_new(obj, "responses", clients);
	/* A producer stuck in the submit ring's claim lock blocks every
	 * client: the same holder seen twice, 20 ms apart (a hold lasts a few
	 * stores), is named. */
	int holder = rt_ring_lock_holder(a, "submit");
	if (holder) {
		usleep(20000);
		if (rt_ring_lock_holder(a, "submit") == holder)
			json_object_set_new(json_object_get(obj, "submit"), "lock_holder", json_integer(holder));
	}
	return obj;
}

static json_t *document(const struct shmrt_arena *a, const struct shmrt_arena_info *info, const struct rt_state *st)
{
	const struct rt_sched_figures *f = &st->sched;
	uint64_t steps = atomic_load(&f->steps), tokens = atomic_load(&f->tokens);
	int64_t sum = atomic_load(&f->step_ns_sum);
	json_t *sched = json_pack(
		"{s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:f, s:f, s:f}", "waiting", (int)atomic_load(&f->n_waiting),
		"running", (int)atomic_load(&f->n_running), "kv_blocks_used", (int)atomic_load(&f->blocks_used),
		"kv_blocks_free", (int)atomic_load(&f->blocks_free), "steps", (json_int_t)steps, "tokens",
		(json_int_t)tokens, "preemptions", (json_int_t)atomic_load(&f->preemptions), "finished",
		(json_int_t)atomic_load(&f->finished), "last_step_ms", (double)atomic_load(&f->last_step_ns) * 1e-6,
		"mean_step_ms", steps ? (double)sum * 1e-6 / (double)steps : 0.0, "tokens_per_s_stepping",
		sum ? (double)tokens / ((double)sum * 1e-9) : 0.0);
	unsigned n_workers = bounded(&st->n_workers, RT_MAX_WORKERS);
	return json_pack("{s:o, s:s, s:i, s:o, s:i, s:o, s:i, s:i, s:I, s:I, s:o, s:i, s:o, s:o, s:o}", "name",
			 text_json(info->name, sizeof(info->name)), "health", shmrt_health_name(info->health),
			 "progress", (int)info->progress, "reason", text_json(st->reason, sizeof(st->reason)),
			 "supervisor_pid", info->owner_pid, "model", text_json(st->model_dir, sizeof(st->model_dir)),
			 "workers", (int)n_workers, "restarts", (int)atomic_load(&st->restarts), "requests_in",
			 (json_int_t)atomic_load(&st->requests_in), "requests_out",
			 (json_int_t)atomic_load(&st->requests_out), "backend", text_json(st->backend, sizeof(st->backend)),
			 "epoch", (int)atomic_load(&st->epoch), "processes", procs_json(st, n_workers, shmrt_now_ns()),
			 "rings", rings_json(a, st), "scheduler", sched);
}

/* The arena's shared memory: reserved (the file, all allocated at start)
 * and touched (the pages the live processes have mapped, this one too). */
static json_t *shm_json(const struct shmrt_arena_info *info)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/" SHMRT_ARENA_PREFIX "%s", shmrt_shm_dir(), info->name);
	struct shm_usage u;
	if (shm_usage_of(path, &u) < 0)
		return json_pack("{s:o, s:I, s:o}", "path", text_json(path, sizeof(path)), "reserved_bytes",
				 (json_int_t)info->bytes, "error", text_json(shmrt_last_error(), SIZE_MAX));
	return json_pack("{s:o, s:I, s:I, s:I, s:i}", "path", text_json(path, sizeof(path)), "reserved_bytes",
			 (json_int_t)u.reserved, "allocated_bytes", (json_int_t)u.allocated, "touched_bytes",
			 (json_int_t)u.touched, "mapped_by", u.mappers);
}

static void print_text(json_t *d)
{
	printf("%s: %s (%lld/1000)%s%s, supervisor pid %lld, restarts %lld\n", json_string_value(json_object_get(d, "name")),
	       json_string_value(json_object_get(d, "health")), json_integer_value(json_object_get(d, "progress")),
	       *json_string_value(json_object_get(d, "reason")) ? ": " : "",
	       json_string_value(json_object_get(d, "reason")), json_integer_value(json_object_get(d, "supervisor_pid")),
	       json_integer_value(json_object_get(d, "restarts")));
	size_t i;
	json_t *v;
	printf("\n%-10s %4s %8s %-8s %10s %10s %9s\n", "process", "rank", "pid", "phase", "beat ago", "work", "busy s");
	json_array_foreach(json_object_get(d, "processes"), i, v)
		printf("%-10s %4lld %8lld %-8s %8.0fms %10lld %9.3f\n", json_string_value(json_object_get(v, "role")),
		       json_integer_value(json_object_get(v, "rank")), json_integer_value(json_object_get(v, "pid")),
		       json_string_value(json_object_get(v, "phase")),
		       json_real_value(json_object_get(v, "heartbeat_age_s")) * 1e3,
		       json_integer_value(json_object_get(v, "work")), json_real_value(json_object_get(v, "busy_s")));
	printf("\n%-10s %12s %12s\n", "ring", "used B", "capacity B");
	const char *k;
	json_object_foreach(json_object_get(d, "rings"), k, v) {
		if (json_is_array(v)) {
			size_t j;
			json_t *c;
			json_array_foreach(v, j, c)
				printf("resp[%lld] %12lld %12lld  (client pid %lld, %lld chunks dropped)\n",
				       json_integer_value(json_object_get(c, "slot")),
				       json_integer_value(json_object_get(c, "used")),
				       json_integer_value(json_object_get(c, "capacity")),
				       json_integer_value(json_object_get(c, "pid")),
				       json_integer_value(json_object_get(c, "dropped")));
		} else {
			printf("%-10s %12lld %12lld", k, json_integer_value(json_object_get(v, "used")),
			       json_integer_value(json_object_get(v, "capacity")));
			json_t *holder = json_object_get(v, "lock_holder");
			if (holder)
				printf("  (claim lock held by pid %lld: its clients wait)", json_integer_value(holder));
			putchar('\n');
		}
	}
	json_t *m = json_object_get(d, "shm");
	printf("\nshared memory: %.2f MiB reserved (%s), %.2f MiB touched by %lld processes\n",
	       (double)json_integer_value(json_object_get(m, "reserved_bytes")) / (1 << 20),
	       json_string_value(json_object_get(m, "path")),
	       (double)json_integer_value(json_object_get(m, "touched_bytes")) / (1 << 20),
	       json_integer_value(json_object_get(m, "mapped_by")));
	json_t *s = json_object_get(d, "scheduler");
	printf("\nrequests in %lld, out %lld; waiting %lld, running %lld; KV blocks %lld used, %lld free\n"
	       "steps %lld, tokens %lld, preemptions %lld; step %.3f ms (mean %.3f ms), %.1f tokens/s while stepping\n",
	       json_integer_value(json_object_get(d, "requests_in")), json_integer_value(json_object_get(d, "requests_out")),
	       json_integer_value(json_object_get(s, "waiting")), json_integer_value(json_object_get(s, "running")),
	       json_integer_value(json_object_get(s, "kv_blocks_used")), json_integer_value(json_object_get(s, "kv_blocks_free")),
	       json_integer_value(json_object_get(s, "steps")), json_integer_value(json_object_get(s, "tokens")),
	       json_integer_value(json_object_get(s, "preemptions")), json_real_value(json_object_get(s, "last_step_ms")),
	       json_real_value(json_object_get(s, "mean_step_ms")), json_real_value(json_object_get(s, "tokens_per_s_stepping")));
}

int cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, 0, 'n'}, {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
		{"trust-owner", required_argument, 0, 'O'}, {0}};
	const char *name = NULL;
	int json = 0;
	for (int c; (c = getopt_long(argc, argv, "n:jh", opts, NULL)) != -1;) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'O': setenv("SHMRT_TRUSTED_OWNER", optarg, 1); break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!name || optind < argc) {
		fprintf(stderr, "shmrt stat: --name is required\n");
		return usage(stderr), 2;
	}
	struct shmrt_arena *a;
	struct shmrt_arena_info info;
	struct rt_state *st;
	if (shmrt_arena_attach(&a, name) < 0 || shmrt_arena_info(a, &info) < 0 || rt_state_get(a, &st) < 0) {
		fprintf(stderr, "shmrt stat: %s\n", shmrt_last_error());
		return 1;
	}
	json_t *d = document(a, &info, st);
	if (!d || json_object_set_new(d, "shm", shm_json(&info))) {
		fprintf(stderr, "shmrt stat: cannot make the document (out of memory)\n");
		json_decref(d);
		shmrt_arena_detach(a);
		return 1;
	}
	if (json) {
		json_dumpf(d, stdout, JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		print_text(d);
	}
	json_decref(d);
	shmrt_arena_detach(a);
	return 0;
}

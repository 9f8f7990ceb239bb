/* The supervisor (runtime.h): creates the arena, spawns the children,
 * watches them, publishes health, restarts, stops. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmrt/backend.h"
#include "shmrt/checkpoint.h"
#include "shmrt/error.h"
#include "shmrt/runtime.h"
#include "shmrt/ring.h"
#include "arena_format.h"
#include "fail.h"
#include "clock.h"
#include "ring_layout.h"
#include "proto.h"
#include "placement.h"
#include "sizing.h"

struct child {
	pid_t pid; /* 0: none */
	int pidfd; /* -1: none (pidfd_open unavailable: we poll) */
	int64_t hung_ns; /* > 0: we killed it, silent that long */
};

struct shmrt_runtime {
	struct shmrt_arena *arena;
	struct rt_state *st;
	struct shmrt_ring *submit_hold; /* keeps the submit ring's producers alive */
	char exe[PATH_MAX];
	void (*log)(void *, const char *);
	void *log_arg;
	int n_procs;
	struct child kids[RT_MAX_PROCS];
	pthread_t thread;
	_Atomic int stopping;
	_Atomic int thread_done;
	int ever_ready;
	/* This process's own copies: the state's may be rewritten by a peer. */
	int restart, max_restarts;
	/* the state's configuration as created: each restart writes it back,
	 * so a peer's rewrite of the limits lasts one family at most */
	unsigned char config[RT_STATE_CONFIG_BYTES];
	int64_t hang_timeout_ns;
	unsigned crash_loop; /* restarts in a row that did not get READY */
	/* The arena file was truncated: its lost pages fault (SIGBUS), so
	 * nothing here touches the mapping again. */
	_Atomic int truncated;
	int64_t restart_at;  /* > 0: when the next family starts (a backoff) */
};

/* The n-th restart in a row without READY waits: none for the first (a
 * one-off death), then 0.5 s doubling to 30 s, as Kubernetes' crash loop
 * back-off (10 s to 5 min) but for a family that loads in seconds. */
static int64_t backoff_ns(unsigned n)
{
	int64_t ns = n == 0 ? 0 : (int64_t)500000000 << (n - 1 < 6 ? n - 1 : 6);
	return ns < (int64_t)30 * 1000000000 ? ns : (int64_t)30 * 1000000000;
}

static void say(struct shmrt_runtime *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct shmrt_runtime *rt, const char *fmt, ...)
{
	if (!rt->log)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	rt->log(rt->log_arg, line);
}

static void proc_label(int i, char *buf, size_t cap)
{
	if (i >= RT_PROC_WORKER0)
		snprintf(buf, cap, "worker %d", i - RT_PROC_WORKER0);
	else
		snprintf(buf, cap, "%s", rt_role_name(i));
}

/* fork + exec of `EXE __child ROLE RANK NAME`; see runtime.h for why exec. */
static int spawn(struct shmrt_runtime *rt, int i, const char *name)
{
	char role[16], rank[16];
	snprintf(role, sizeof(role), "%d", i < RT_PROC_WORKER0 ? i : RT_ROLE_WORKER);
	snprintf(rank, sizeof(rank), "%d", i < RT_PROC_WORKER0 ? 0 : i - RT_PROC_WORKER0);
	char *argv[] = {rt->exe, "__child", role, rank, (char *)name, NULL};
	pid_t parent = getpid();
	struct rt_proc *p = &rt->st->procs[i];
	atomic_store(&p->phase, RT_PHASE_NONE);
	atomic_store(&p->progress, 0);
	atomic_store(&p->heartbeat_ns, shmrt_now_ns());
	pid_t pid = fork();
	if (pid < 0)
		return shmrt_fail(errno, "cannot fork a child: %m");
	if (pid == 0) {
		/* Only async-signal-safe calls until exec. The signal comes when
		 * the forking thread (the watcher) ends. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL); /* `shmrt start` blocks SIGTERM for sigwait */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		execvp(argv[0], argv);
		_exit(127);
	}
	rt->kids[i].pid = pid;
	rt->kids[i].pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	atomic_store(&p->pid, pid);
	return 0;
}

/* Whether the arena is lost (truncated): checked, with fstat, before the
 * watcher and the caller's calls touch it. */
static bool arena_lost(const struct shmrt_runtime *rt)
{
	return atomic_load(&rt->truncated) || shmrt_arena_intact(rt->arena) != 0;
}

static void reap(struct shmrt_runtime *rt, int i)
{
	if (rt->kids[i].pidfd >= 0)
		close(rt->kids[i].pidfd);
	rt->kids[i] = (struct child){0, -1, 0};
	if (atomic_load(&rt->truncated))
		return;
	atomic_store(&rt->st->procs[i].pid, 0);
	atomic_store(&rt->st->procs[i].phase, RT_PHASE_NONE);
}

/* Stops every child: SIGTERM, then SIGKILL after grace_ns. */
static void stop_all(struct shmrt_runtime *rt, int64_t grace_ns)
{
	for (int i = 0; i < rt->n_procs; i++)
		if (rt->kids[i].pid)
			kill(rt->kids[i].pid, grace_ns > 0 ? SIGTERM : SIGKILL);
	int64_t end = shmrt_now_ns() + grace_ns;
	for (int i = 0; i < rt->n_procs; i++) {
		if (!rt->kids[i].pid)
			continue;
		while (waitpid(rt->kids[i].pid, NULL, WNOHANG) == 0) {
			if (shmrt_now_ns() >= end) {
				kill(rt->kids[i].pid, SIGKILL);
				waitpid(rt->kids[i].pid, NULL, 0);
				break;
			}
			usleep(2000);
		}
		reap(rt, i);
	}
}

static void set_reason(struct rt_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(struct rt_state *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
	va_end(ap);
}

/* Ends the current epoch: clients end its requests with the reason. */
static void end_epoch(struct rt_state *st)
{
	atomic_store(&st->accepting, 0);
	atomic_fetch_add_explicit(&st->epoch, 1, memory_order_release);
	atomic_store(&st->requests_out, atomic_load(&st->requests_in));
}

static int spawn_all(struct shmrt_runtime *rt, const char *name)
{
	for (int i = 0; i < rt->n_procs; i++) {
		int rc = spawn(rt, i, name);
		if (rc)
			return rc;
	}
	return 0;
}

/* What a restart will do, for the reason: when, or why not. */
static void restart_plan(const struct shmrt_runtime *rt, int restart, char *buf, size_t cap)
{
	if (!restart && rt->crash_loop)
		snprintf(buf, cap, "; gave up after %u restarts in a row that did not get ready (--max-restarts)",
			 rt->crash_loop);
	else if (restart && rt->crash_loop)
		snprintf(buf, cap, "; restarting in %.1f s (restart %u in a row that did not get ready)",
			 (double)backoff_ns(rt->crash_loop) * 1e-9, rt->crash_loop + 1);
	else
		snprintf(buf, cap, "%s", restart ? "; restarting" : "");
}

static void on_death(struct shmrt_runtime *rt, int i, int status)
{
	struct rt_state *st = rt->st;
	char who[32], plan[128];
	proc_label(i, who, sizeof(who));
	int restart = rt->restart && rt->ever_ready &&
		      (rt->max_restarts < 0 || rt->crash_loop < (unsigned)rt->max_restarts);
	restart_plan(rt, restart, plan, sizeof(plan));
	if (rt->kids[i].hung_ns > 0)
		set_reason(st, "the %s (pid %d) was hung: no heartbeat for %.1f s (hang timeout %.1f s); killed%s", who,
			   rt->kids[i].pid, (double)rt->kids[i].hung_ns * 1e-9, (double)rt->hang_timeout_ns * 1e-9,
			   plan);
	else if (WIFSIGNALED(status))
		set_reason(st, "the %s (pid %d) was killed by signal %d (%s)%s", who, rt->kids[i].pid,
			   WTERMSIG(status), strsignal(WTERMSIG(status)), plan);
	else
		set_reason(st, "the %s (pid %d) exited with status %d%s%s", who, rt->kids[i].pid,
			   WEXITSTATUS(status), WEXITSTATUS(status) == 127 ? " (cannot run the shmrt program)" : "",
			   plan);
	shmrt_arena_set_health(rt->arena, restart ? SHMRT_HEALTH_DEGRADED : SHMRT_HEALTH_FAILED, 0);
	end_epoch(st);
	say(rt, "%s", st->reason);
	reap(rt, i);
	stop_all(rt, 0);
	if (!restart)
		return;
	rt->restart_at = shmrt_now_ns() + backoff_ns(rt->crash_loop);
	atomic_store(&st->crash_loop, ++rt->crash_loop);
}

/* A new family, once its back-off has passed: the configuration written
 * back and the rings formatted again (the submit ring too: a corrupt one
 * failed every family). */
static void restart_family(struct shmrt_runtime *rt, const char *name)
{
	struct rt_state *st = rt->st;
	rt->restart_at = 0;
	atomic_fetch_add(&st->restarts, 1);
	memcpy(st, rt->config, sizeof(rt->config)); /* no child runs now */
	int rc = rt_rings_format(rt->arena, st, 0);
	if (!rc) {
		shmrt_arena_set_health(rt->arena, SHMRT_HEALTH_LOADING, 0);
		rc = spawn_all(rt, name);
	}
	if (rc) {
		set_reason(st, "cannot restart: %s", shmrt_last_error());
		shmrt_arena_set_health(rt->arena, SHMRT_HEALTH_FAILED, 0);
		say(rt, "%s", st->reason);
		stop_all(rt, 0);
	}
}

/* LOADING -> READY once every child is ready; progress meanwhile. */
static void update_health(struct shmrt_runtime *rt)
{
	unsigned progress;
	int h = shmrt_arena_health(rt->arena, &progress);
	if (h != SHMRT_HEALTH_STARTING && h != SHMRT_HEALTH_LOADING)
		return;
	unsigned sum = 0, ready = 0;
	for (int i = 0; i < rt->n_procs; i++) {
		struct rt_proc *p = &rt->st->procs[i];
		int r = atomic_load(&p->phase) == RT_PHASE_READY;
		ready += (unsigned)r;
		sum += r ? SHMRT_HEALTH_PROGRESS_MAX : atomic_load(&p->progress);
	}
	if (ready == (unsigned)rt->n_procs) {
		rt->ever_ready = 1;
		rt->crash_loop = 0;
		atomic_store(&rt->st->crash_loop, 0);
		rt->st->reason[0] = '\0';
		atomic_store(&rt->st->accepting, 1);
		shmrt_arena_set_health(rt->arena, SHMRT_HEALTH_READY, SHMRT_HEALTH_PROGRESS_MAX);
		say(rt, "ready (%d processes)", rt->n_procs);
	} else {
		shmrt_arena_set_health(rt->arena, SHMRT_HEALTH_LOADING, sum / (unsigned)rt->n_procs);
	}
}

/* A READY child that has not beaten its heart for the hang timeout (a
 * deadlock, a stopped process, a kernel that never returns) is killed; its
 * death then takes the usual way, with the hang as its reason. Children
 * still loading are not judged: a large checkpoint takes what it takes. */
static void check_hangs(struct shmrt_runtime *rt)
{
	int64_t limit = rt->hang_timeout_ns, now = shmrt_now_ns();
	if (limit <= 0)
		return;
	for (int i = 0; i < rt->n_procs; i++) {
		struct rt_proc *p = &rt->st->procs[i];
		int64_t silent = now - atomic_load(&p->heartbeat_ns);
		if (!rt->kids[i].pid || rt->kids[i].hung_ns || atomic_load(&p->phase) != RT_PHASE_READY ||
		    silent <= limit)
			continue;
		char who[32];
		proc_label(i, who, sizeof(who));
		say(rt, "the %s (pid %d) gave no heartbeat for %.1f s: killing it as hung", who, rt->kids[i].pid,
		    (double)silent * 1e-9);
		rt->kids[i].hung_ns = silent;
		kill(rt->kids[i].pid, SIGKILL);
	}
}

/* A death takes its peers along within milliseconds (they see the rings'
 * peer gone and exit with status 1): collect them all, and name as the
 * cause the one killed by a signal, if any, rather than the first seen. */
static void check_deaths(struct shmrt_runtime *rt)
{
	int status[RT_MAX_PROCS], dead[RT_MAX_PROCS] = {0}, any = 0, signaled = 0;
	/* A killed process may take a while to become waitable (its memory is
	 * torn down first) while its peers already saw it gone: up to 200 ms
	 * for a signaled one when only exits are seen. */
	for (int pass = 0; pass < 10 && !signaled; pass++) {
		for (int i = 0; i < rt->n_procs; i++)
			if (rt->kids[i].pid && !dead[i] && waitpid(rt->kids[i].pid, &status[i], WNOHANG) == rt->kids[i].pid) {
				dead[i] = any = 1;
				signaled |= WIFSIGNALED(status[i]);
			}
		if (!any)
			return;
		if (!signaled)
			usleep(20000);
	}
	int root = -1;
	for (int i = 0; i < rt->n_procs; i++)
		if (dead[i] && (root < 0 || (WIFSIGNALED(status[i]) && !WIFSIGNALED(status[root]))))
			root = i;
	for (int i = 0; i < rt->n_procs; i++)
		if (dead[i] && i != root)
			reap(rt, i);
	on_death(rt, root, status[root]);
}

static void *watch(void *arg)
{
	struct shmrt_runtime *rt = arg;
	struct shmrt_arena_info info;
	shmrt_arena_info(rt->arena, &info);
	int rc = spawn_all(rt, info.name);
	if (rc) {
		set_reason(rt->st, "%s", shmrt_last_error());
		shmrt_arena_set_health(rt->arena, SHMRT_HEALTH_FAILED, 0);
		say(rt, "%s", rt->st->reason);
	} else {
		shmrt_arena_set_health(rt->arena, SHMRT_HEALTH_LOADING, 0);
		for (int i = 0; i < rt->n_procs; i++) {
			char who[32];
			proc_label(i, who, sizeof(who));
			say(rt, "started the %s (pid %d)", who, rt->kids[i].pid);
		}
	}
	while (!atomic_load(&rt->stopping)) {
		struct pollfd pf[RT_MAX_PROCS];
		int n = 0;
		for (int i = 0; i < rt->n_procs; i++)
			if (rt->kids[i].pid && rt->kids[i].pidfd >= 0)
				pf[n++] = (struct pollfd){.fd = rt->kids[i].pidfd, .events = POLLIN};
		/* 50 ms: a stop request, and children without a pidfd */
		poll(pf, (nfds_t)n, 50);
		/* first: a child that exits may be telling of it */
		if (arena_lost(rt)) {
			say(rt, "%s: the runtime stops (start it again)", shmrt_last_error());
			atomic_store(&rt->truncated, 1);
			break;
		}
		if (!atomic_load(&rt->stopping)) {
			check_hangs(rt);
			check_deaths(rt);
			if (rt->restart_at && shmrt_now_ns() >= rt->restart_at)
				restart_family(rt, info.name);
		}
		update_health(rt);
	}
	stop_all(rt, (int64_t)2 * 1000000000);
	atomic_store(&rt->thread_done, 1);
	return NULL;
}

static int fill_state(struct rt_state *st, const struct shmrt_runtime_options *o, const struct shmrt_sizing *sz)
{
	if (strlen(o->model_dir) >= sizeof(st->model_dir))
		return shmrt_fail(ENAMETOOLONG, "model directory name too long");
	snprintf(st->model_dir, sizeof(st->model_dir), "%s", o->model_dir);
	snprintf(st->backend, sizeof(st->backend), "%s", o->backend ? o->backend : "cpu");
	st->quantize_to = o->quantize_to;
	st->model = *sz->p.model;
	st->n_workers = (uint32_t)sz->p.tp;
	st->max_clients = (uint32_t)sz->p.max_clients;
	st->max_seqs = sz->p.max_seqs;
	st->max_batch_tokens = sz->p.max_batch_tokens;
	st->block_size = sz->p.block_size;
	st->num_blocks = sz->p.kv_blocks;
	if (!o->kv_blocks) { /* the default: what memory holds (sizing.h) */
		int fit = shmrt_sizing_kv_blocks_in_memory(sz->p.model, sz->p.block_size);
		if (fit < st->num_blocks)
			st->num_blocks = fit;
	}
	st->max_model_len = sz->p.max_model_len;
	st->restart = o->restart;
	st->log_refusals = o->log != NULL;
	st->hang_timeout_ns = o->hang_timeout_ns ? o->hang_timeout_ns : SHMRT_HANG_TIMEOUT_DEFAULT_NS;
	st->supervisor_pid = getpid();
	return 0;
}

static int create_arena(struct shmrt_runtime *rt, const struct shmrt_runtime_options *o)
{
	struct shmrt_model_config cfg;
	int rc = shmrt_model_path_config(o->model_dir, &cfg);
	if (rc)
		return rc;
	struct shmrt_sizing_params sp = {.model = &cfg, .tp = o->workers, .max_batch_tokens = o->max_batch_tokens,
					 .max_seqs = o->max_seqs, .max_model_len = o->max_model_len,
					 .block_size = o->block_size, .kv_blocks = o->kv_blocks,
					 .max_clients = o->max_clients, .xfer_chunk = o->xfer_chunk};
	struct shmrt_sizing sz;
	if ((rc = shmrt_sizing_compute(&sp, &sz)))
		return rc;
	if (sz.p.max_clients > RT_MAX_CLIENTS)
		return shmrt_fail(EINVAL, "at most %d clients", RT_MAX_CLIENTS);
	struct shmrt_region_spec specs[SHMRT_SIZING_MAX_REGIONS];
	shmrt_sizing_specs(&sz, specs);
	/* The workers touch the arena most (step ring, transport staging): on
	 * their node when they all share one. */
	int node = rt_placement_common_node(sz.p.tp, o->backend && shmrt_backend_device(o->backend) == SHMRT_DEVICE_CUDA);
	for (unsigned i = 0; i < sz.n_regions; i++)
		specs[i].numa_node = node;
	if ((rc = shmrt_arena_create(&rt->arena, o->name, specs, sz.n_regions)))
		return rc;
	void *p;
	size_t size;
	if ((rc = shmrt_arena_region(rt->arena, "state", &p, &size)))
		return rc;
	if (size < sizeof(struct rt_state))
		return shmrt_fail(EINVAL, "the state region is too small (%zu < %zu bytes)", size,
				  sizeof(struct rt_state));
	rt->st = p;
	if ((rc = fill_state(rt->st, o, &sz)) || (rc = rt_rings_format(rt->arena, rt->st, 1)))
		return rc;
	memcpy(rt->config, rt->st, sizeof(rt->config));
	const uint32_t magic = RT_STATE_MAGIC; /* the copy's; the shared one is set last */
	memcpy(rt->config + offsetof(struct rt_state, magic), &magic, sizeof(magic));
	/* Last: a client that attaches meanwhile finds no runtime yet (rather
	 * than rings not yet formatted). */
	__atomic_store_n(&rt->st->magic, RT_STATE_MAGIC, __ATOMIC_RELEASE);
	return rt_ring_open(rt->arena, "submit", 0, SHMRT_RING_PRODUCER, 0, &rt->submit_hold);
}

static void free_rt(struct shmrt_runtime *rt)
{
	if (rt->submit_hold && atomic_load(&rt->truncated))
		ring_forget(rt->submit_hold);
	else if (rt->submit_hold)
		shmrt_ring_close(rt->submit_hold);
	if (rt->arena)
		shmrt_arena_destroy(rt->arena);
	free(rt);
}

int shmrt_runtime_start(struct shmrt_runtime **out, const struct shmrt_runtime_options *o)
{
	shmrt_clear_error();
	*out = NULL;
	if (!o || !o->model_dir || !o->name)
		return shmrt_fail(EINVAL, "runtime: a model directory and a name are required");
	int workers = o->workers ? o->workers : 1;
	if (workers < 1 || workers > RT_MAX_WORKERS)
		return shmrt_fail(EINVAL, "runtime: --workers %d outside 1 .. %d", workers, RT_MAX_WORKERS);
	struct shmrt_runtime *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return shmrt_fail(ENOMEM, "runtime: no memory");
	const char *exe = o->exe ? o->exe : getenv("SHMRT_EXE");
	snprintf(rt->exe, sizeof(rt->exe), "%s", exe && *exe ? exe : "shmrt");
	rt->log = o->log;
	rt->log_arg = o->log_arg;
	rt->restart = o->restart;
	rt->max_restarts = o->max_restarts ? o->max_restarts : SHMRT_MAX_RESTARTS_DEFAULT;
	rt->hang_timeout_ns = o->hang_timeout_ns ? o->hang_timeout_ns : SHMRT_HANG_TIMEOUT_DEFAULT_NS;
	rt->n_procs = RT_PROC_WORKER0 + workers;
	for (int i = 0; i < RT_MAX_PROCS; i++)
		rt->kids[i] = (struct child){0, -1, 0};
	struct shmrt_runtime_options oo = *o;
	oo.workers = workers;
	int rc = create_arena(rt, &oo);
	if (!rc && (rc = -pthread_create(&rt->thread, NULL, watch, rt)))
		shmrt_fail(-rc, "runtime: cannot start the watching thread");
	if (rc) {
		free_rt(rt);
		return rc;
	}
	*out = rt;
	return 0;
}

int shmrt_runtime_health(const struct shmrt_runtime *rt, unsigned *progress)
{
	if (arena_lost(rt)) {
		if (progress)
			*progress = 0;
		return SHMRT_HEALTH_FAILED;
	}
	return shmrt_arena_health(rt->arena, progress);
}

int shmrt_runtime_child_pid(const struct shmrt_runtime *rt, int i)
{
	if (i < 0 || i >= rt->n_procs || arena_lost(rt))
		return -ENOENT;
	int pid = atomic_load(&rt->st->procs[i].pid);
	return pid > 0 ? pid : -ENOENT;
}

int shmrt_runtime_wait_ready(struct shmrt_runtime *rt, int64_t timeout_ns)
{
	int64_t end = timeout_ns < 0 ? INT64_MAX : shmrt_now_ns() + timeout_ns;
	for (;;) {
		int h = shmrt_runtime_health(rt, NULL);
		if (h == SHMRT_HEALTH_READY)
			return 0;
		if (h == SHMRT_HEALTH_FAILED && arena_lost(rt))
			return shmrt_fail(EPIPE, "runtime failed: the arena file was truncated");
		if (h == SHMRT_HEALTH_FAILED)
			return shmrt_fail(EPIPE, "runtime failed: %s", rt->st->reason);
		if (shmrt_now_ns() >= end)
			return shmrt_fail(ETIMEDOUT, "runtime not ready in time (%s)", shmrt_health_name(h));
		usleep(5000);
	}
}

int shmrt_runtime_stop(struct shmrt_runtime *rt, int64_t drain_ns)
{
	struct rt_state *st = rt->st;
	if (arena_lost(rt)) { /* the watcher stops the children; nothing to tell through the arena */
		atomic_store(&rt->truncated, 1);
		atomic_store(&rt->stopping, 1);
		pthread_join(rt->thread, NULL);
		free_rt(rt);
		return 0;
	}
	atomic_store(&st->accepting, 0);
	set_reason(st, "the runtime is stopping");
	int64_t end = shmrt_now_ns() + (drain_ns > 0 ? drain_ns : 0);
	while (atomic_load(&st->requests_out) < atomic_load(&st->requests_in) &&
	       shmrt_arena_health(rt->arena, NULL) == SHMRT_HEALTH_READY && shmrt_now_ns() < end)
		usleep(2000);
	shmrt_arena_set_health(rt->arena, SHMRT_HEALTH_FAILED, 0);
	set_reason(st, "the runtime stopped");
	end_epoch(st);
	atomic_store(&rt->stopping, 1);
	pthread_join(rt->thread, NULL);
	free_rt(rt);
	return 0;
}

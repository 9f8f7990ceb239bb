/* The shared-memory trust boundary (issue 18): a peer that writes into a
 * live runtime's arena may make its own requests fail, never crash, hang
 * or corrupt another process. The hostile peer is this program: it maps
 * the arena and writes fields through the layout of runtime/procs/proto.h.
 *
 *   test_trust SHMRT CASE
 *     max_clients  the state's max_clients raised to 65535 and a request
 *                  for client slot 300: the tokenizer drops it (it used to
 *                  index its 256-entry arrays with the shared value)
 *     payload_len  submit records whose payload_len is rewritten while the
 *                  tokenizer reads them: it uses the length it checked
 *     reason       a prompt longer than the context, an id beyond the
 *                  vocabulary: the client's shmrt_last_error() says why,
 *                  and the children's log (stderr) too
 *     scheduler_fails  a corrupted tokens ring, ten times: the tokenizer
 *                  joins its thread before it unmaps the arena
 *     stat_strings the state's strings without a NUL and not UTF-8:
 *                  `shmrt stat` (text and --json) shows them, bounded
 *     held_lock    a live process holds the submit ring's claim lock:
 *                  submit gives up at its timeout, sleeping, naming it
 *     many_clients --clients 70: 70 clients attach, the 71st is told
 *                  that every client slot is taken
 *     crash_loop   a corrupted submit ring is repaired by the restart; a
 *                  tokenizer that cannot load: restarts back off, probe
 *                  --live fails, the runtime gives up (FAILED)
 *     other_owner  (root; 77 otherwise) nobody's arena in a shared
 *                  directory: attach refuses it unless its owner is
 *                  trusted, start and clean say whose it is
 *     truncated    the arena file of a `shmrt start` truncated: its
 *                  processes exit, none by a signal
 *     bad_limits   the state's limits out of range, then a restart: it
 *                  writes them back; a peer that keeps rewriting them:
 *                  the new processes refuse them, none dies by a signal
 *     fuzz         random values into the shared state and the ring
 *                  headers for 5 s: no death by a signal or sanitizer
 *                  report, then a request gets an answer or a clear error
 *     reason       a prompt longer than the context, an id beyond the
 *                  vocabulary: the client's shmrt_last_error() says why
 *
 * Each case checks afterwards that no child died (the restart counter)
 * and that a client is still served. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "command_output.h"
#include "json_document.h"
#include "shm_tmpdir.h"
#include "ring_layout.h"
#include "proc.h"
#include "proto.h"
#include "array_size.h"

#define MAX_CLIENTS 8
#define MANY_CLIENTS 70 /* more than a ring's default 64 producers */
#define CONTEXT 128

static const char *exe;
static char model_dir[64];
static char child_log[96]; /* the children's stderr */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The runtime's log lines, kept for the checks. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char runtime_log[1 << 16];

static void log_line(void *arg, const char *line)
{
	(void)arg;
	pthread_mutex_lock(&log_mu);
	size_t n = strlen(runtime_log);
	snprintf(runtime_log + n, sizeof(runtime_log) - n, "%s\n", line);
	pthread_mutex_unlock(&log_mu);
}

/* Whether a line of the runtime's log holds s. */
static int runtime_logged(const char *s)
{
	pthread_mutex_lock(&log_mu);
	int found = strstr(runtime_log, s) != NULL;
	pthread_mutex_unlock(&log_mu);
	return found;
}

static void wait_ready(struct shmrt_runtime *rt)
{
	int64_t end = now_ns() + (int64_t)60 * 1000000000;
	while (shmrt_runtime_health(rt, NULL) != SHMRT_HEALTH_READY) {
		CHECK(now_ns() < end, "not READY again in 60 s");
		usleep(10000);
	}
}

static struct shmrt_runtime *start(const char *name, int max_clients, int max_restarts)
{
	struct shmrt_runtime_options o = {.model_dir = model_dir, .name = name, .exe = exe, .restart = 1,
					  .max_seqs = 8, .max_batch_tokens = 256, .kv_blocks = 64,
					  .max_model_len = CONTEXT, .max_clients = max_clients, .log = log_line,
					  .max_restarts = max_restarts};
	struct shmrt_runtime *rt;
	CHECK_OK(shmrt_runtime_start(&rt, &o));
	CHECK_OK(shmrt_runtime_wait_ready(rt, (int64_t)60 * 1000000000));
	return rt;
}

/* stderr, this program's and so every child's (restarted ones too), goes
 * to child_log; the original, kept here, shows it at exit. */
static int real_stderr = -1;

static void log_stderr(void)
{
	snprintf(child_log, sizeof(child_log), "%s/children.log", model_dir);
	int fd = open(child_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	real_stderr = dup(2);
	CHECK(real_stderr >= 0 && fd >= 0 && dup2(fd, 2) == 2, "redirecting stderr");
	close(fd);
}

/* The log, up to 1 MiB. */
static char *read_log(void)
{
	static char buf[1 << 20];
	FILE *f = fopen(child_log, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

/* What this program and the children said (sanitizer reports included). */
static void show_log(void)
{
	const char *s = read_log();
	if (real_stderr >= 0 && *s && write(real_stderr, s, strlen(s)) < 0)
		return;
	*child_log = '\0'; /* once */
}

/* The hostile peer's view of the arena. */
struct peer {
	struct shmrt_arena *a;
	struct rt_state *st;
	struct shmrt_ring *submit;
};

static void peer_attach(struct peer *p, const char *name)
{
	CHECK_OK(shmrt_arena_attach(&p->a, name));
	CHECK_OK(rt_state_get(p->a, &p->st));
	CHECK_OK(rt_ring_open(p->a, "submit", 0, SHMRT_RING_PRODUCER, 0, &p->submit));
}

static void peer_detach(struct peer *p)
{
	if (p->submit)
		shmrt_ring_close(p->submit);
	shmrt_arena_detach(p->a);
}

/* Commits a request record as a client would, and returns where it lies
 * (the peer may go on writing it). */
static struct rt_req *peer_submit(struct peer *p, uint32_t kind, uint64_t id, const void *payload, uint32_t len)
{
	struct rt_req h = {.kind = kind, .epoch = atomic_load(&p->st->epoch), .id = id, .max_tokens = 1,
			   .payload_len = len};
	void *buf;
	CHECK_OK(shmrt_ring_reserve(p->submit, sizeof(h) + len, &buf, (int64_t)5 * 1000000000));
	memcpy(buf, &h, sizeof(h));
	memcpy((char *)buf + sizeof(h), payload, len);
	CHECK_OK(shmrt_ring_commit(p->submit, buf, sizeof(h) + len));
	return buf;
}

/* Waits until the tokenizer has taken `n` more submit records than `base`. */
static void wait_intake(const struct peer *p, uint64_t base, uint64_t n)
{
	int64_t end = now_ns() + (int64_t)30 * 1000000000;
	while (atomic_load(&p->st->procs[0].work) < base + n) {
		CHECK(now_ns() < end, "the tokenizer took %llu of %llu records in 30 s",
		      (unsigned long long)(atomic_load(&p->st->procs[0].work) - base), (unsigned long long)n);
		usleep(1000);
	}
}

/* No child died but those the case made die (restarts), and a request
 * is served. */
static void check_served(struct shmrt_runtime *rt, struct shmrt_client *c, const struct peer *p, int tok_pid,
			 unsigned restarts)
{
	CHECK(atomic_load(&p->st->restarts) == restarts && (restarts || shmrt_runtime_child_pid(rt, 0) == tok_pid),
	      "%u restarts (%u expected), reason: %s", atomic_load(&p->st->restarts), restarts, p->st->reason);
	/* a child that crashed while the supervisor stopped it dies unseen:
	 * its sanitizer report is the trace */
	CHECK(!strstr(read_log(), "Sanitizer") && !strstr(read_log(), "runtime error"),
	      "a sanitizer report in the children's stderr");
	int32_t prompt[3] = {1, 2, 3};
	struct shmrt_request r = {.tokens = prompt, .n_tokens = 3, .max_tokens = 2, .ignore_eos = 1};
	uint64_t id;
	CHECK_OK(shmrt_client_submit(c, &r, &id));
	struct shmrt_response out;
	do
		CHECK_OK(shmrt_client_next(c, id, &out, (int64_t)30 * 1000000000));
	while (!out.finish);
	CHECK(out.finish == SHMRT_CLIENT_LENGTH && out.n_generated == 2, "finish %d status %d: %s", out.finish,
	      out.status, shmrt_last_error());
}

static unsigned case_max_clients(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	(void)c;
	uint64_t base = atomic_load(&p->st->procs[0].work);
	*(volatile uint32_t *)&p->st->max_clients = 65535;
	int32_t ids[3] = {1, 2, 3};
	peer_submit(p, RT_REQ_IDS, (uint64_t)300 << 48 | 1, ids, sizeof(ids));
	wait_intake(p, base, 1);
	usleep(500000); /* the time to run it and respond, where it was accepted */
	*(volatile uint32_t *)&p->st->max_clients = MAX_CLIENTS;
	(void)rt;
	return 0;
}

/* Rewrites a record's payload_len between its true value and one far
 * beyond the mapping until the tokenizer has taken it. */
static unsigned case_payload_len(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	(void)rt;
	(void)c;
	char text[1024];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "ab c"[i % 4];
	int64_t end = now_ns() + (int64_t)5 * 1000000000;
	int n = 0;
	for (; n < 2000 && now_ns() < end; n++) {
		uint64_t base = atomic_load(&p->st->procs[0].work);
		/* ids of slot 0, this program's client, which drops answers it
		 * did not ask for (a slot with no reader would fill and stall) */
		struct rt_req *rq = peer_submit(p, RT_REQ_TEXT, (uint64_t)1 << 40 | (uint64_t)(n + 1), text, sizeof(text));
		volatile uint32_t *len = &rq->payload_len;
		for (uint32_t k = 0; atomic_load(&p->st->procs[0].work) == base && now_ns() < end; k++)
			*len = k & 1 ? 0x7ffffff0u : (uint32_t)sizeof(text);
		*len = sizeof(text);
	}
	fprintf(stderr, "payload_len: %d records rewritten while read\n", n);
	return 0;
}

/* A corrupted tokens ring makes the scheduler fail, and the tokenizer,
 * seeing it gone, exit: it stops its intake thread before it unmaps the
 * arena (the thread used to wake into the unmapped ring: SEGV, 1-6 times
 * in 10). The runtime restarts each time; no process dies by a signal. */
static unsigned case_scheduler_fails(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	(void)c;
	void *mem;
	size_t size;
	CHECK_OK(shmrt_arena_region(p->a, "tokens", &mem, &size));
	struct ring_shared *sh = mem;
	for (int i = 0; i < 10; i++) {
		uint32_t epoch = atomic_load(&p->st->epoch);
		atomic_fetch_add(&sh->head, 3); /* not a record boundary */
		int64_t end = now_ns() + (int64_t)30 * 1000000000;
		while (atomic_load(&p->st->epoch) == epoch) {
			CHECK(now_ns() < end, "the scheduler did not fail on a corrupted ring");
			usleep(1000);
		}
		wait_ready(rt);
	}
	pthread_mutex_lock(&log_mu);
	fprintf(stderr, "%s", runtime_log);
	pthread_mutex_unlock(&log_mu);
	CHECK(!runtime_logged("signal"), "a process died by a signal");
	return 10;
}

/* The final chunk of a request: its status and the client's message. */
static int refused(struct shmrt_client *c, const struct shmrt_request *r, char *msg, size_t cap)
{
	uint64_t id;
	CHECK_OK(shmrt_client_submit(c, r, &id));
	struct shmrt_response out;
	do
		CHECK_OK(shmrt_client_next(c, id, &out, (int64_t)30 * 1000000000));
	while (!out.finish);
	CHECK(out.finish == SHMRT_CLIENT_ERROR, "finish %d", out.finish);
	snprintf(msg, cap, "%s", shmrt_last_error());
	fprintf(stderr, "reason: status %d: %s\n", out.status, msg);
	return out.status;
}

static unsigned case_reason(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	(void)rt;
	(void)p;
	char msg[512], want[128];
	int32_t long_prompt[CONTEXT + 10];
	for (int i = 0; i < CONTEXT + 10; i++)
		long_prompt[i] = 1 + i % 50;
	struct shmrt_request r = {.tokens = long_prompt, .n_tokens = CONTEXT + 10, .max_tokens = 4};
	CHECK(refused(c, &r, msg, sizeof(msg)) == -E2BIG, "status of a long prompt");
	snprintf(want, sizeof(want), "a prompt of %d tokens leaves no room in the model's context of %d",
		 CONTEXT + 10, CONTEXT);
	CHECK(strstr(msg, want), "the long prompt's message: %s", msg);
	usleep(200000);
	CHECK(strstr(read_log(), want), "the start log lacks the reason: %s", want);

	int32_t bad[2] = {1, 1 << 30};
	r = (struct shmrt_request){.tokens = bad, .n_tokens = 2, .max_tokens = 4};
	CHECK(refused(c, &r, msg, sizeof(msg)) == -EINVAL, "status of an id beyond the vocabulary");
	CHECK(strstr(msg, "1073741824") && strstr(msg, "vocabulary"), "the bad id's message: %s", msg);

	/* text: the tokenizer's refusal */
	char text[CONTEXT * 4 + 1];
	for (int i = 0; i < CONTEXT * 4; i++)
		text[i] = "ab "[i % 3];
	r = (struct shmrt_request){.text = text, .text_len = CONTEXT * 4, .max_tokens = 4};
	CHECK(refused(c, &r, msg, sizeof(msg)) == -E2BIG, "status of a long text");
	CHECK(strstr(msg, "context of 128"), "the long text's message: %s", msg);
	return 0;
}

/* The state's strings made what a peer may leave there: no NUL, bytes
 * that are not UTF-8. `shmrt stat` prints them bounded, with U+FFFD for
 * what is not UTF-8 (it crashed, and --json printed an empty line). */
static unsigned case_stat_strings(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	(void)rt;
	(void)c;
	struct rt_state *st = p->st;
	char model[sizeof(st->model_dir)], backend[sizeof(st->backend)];
	memcpy(model, st->model_dir, sizeof(model));
	memcpy(backend, st->backend, sizeof(backend));
	memset(st->reason, 0xff, sizeof(st->reason));
	memset(st->backend, 'b', sizeof(st->backend));
	snprintf(st->model_dir, sizeof(st->model_dir), "/tmp/m-\xff\xfe");
	char cmd[256];
	int status;
	snprintf(cmd, sizeof(cmd), "%s stat --name trust", exe);
	char *out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(out, "\xef\xbf\xbd"),
	      "stat: status %#x, output:\n%s", status, out);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s stat --name trust --json", exe);
	out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "stat --json: status %#x", status);
	json_t *d = json_document(out);
	const char *reason = json_string_value(json_object_get(d, "reason"));
	const char *be = json_string_value(json_object_get(d, "backend"));
	const char *m = json_string_value(json_object_get(d, "model"));
	CHECK(reason && strlen(reason) == 3 * sizeof(st->reason) && !strncmp(reason, "\xef\xbf\xbd", 3),
	      "reason: %s", reason ? reason : "(none)");
	CHECK(be && strlen(be) == sizeof(st->backend) && be[0] == 'b', "backend: %s", be ? be : "(none)");
	CHECK(m && !strcmp(m, "/tmp/m-\xef\xbf\xbd\xef\xbf\xbd"), "model: %s", m ? m : "(none)");
	json_decref(d);
	free(out);
	memcpy(st->model_dir, model, sizeof(model));
	memcpy(st->backend, backend, sizeof(backend));
	st->reason[0] = '\0';
	return 0;
}

struct submit_try {
	struct shmrt_client *c;
	int rc;
	char msg[512];
	int64_t wall_ns, cpu_ns;
	_Atomic int done;
};

static void *try_submit(void *arg)
{
	struct submit_try *t = arg;
	int32_t prompt[2] = {1, 2};
	struct shmrt_request r = {.tokens = prompt, .n_tokens = 2, .max_tokens = 1};
	uint64_t id;
	struct timespec c0, c1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	int64_t t0 = now_ns();
	t->rc = shmrt_client_submit(t->c, &r, &id);
	t->wall_ns = now_ns() - t0;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	t->cpu_ns = (int64_t)(c1.tv_sec - c0.tv_sec) * 1000000000 + (c1.tv_nsec - c0.tv_nsec);
	snprintf(t->msg, sizeof(t->msg), "%s", shmrt_last_error());
	atomic_store(&t->done, 1);
	return NULL;
}

/* A live process holds the submit ring's claim lock (a producer stopped
 * inside it, or a peer that wrote the word): a client's submit ends with
 * its 5 s timeout, having slept rather than spun, and names the holder;
 * so does `shmrt stat`. It used to spin at full CPU forever. */
static unsigned case_held_lock(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	(void)rt;
	pid_t holder = fork();
	CHECK(holder >= 0, "fork");
	if (holder == 0) {
		pause();
		_exit(0);
	}
	struct shmrt_proc_id who;
	CHECK_OK(shmrt_proc_identify(holder, &who));
	void *mem;
	size_t size;
	CHECK_OK(shmrt_arena_region(p->a, "submit", &mem, &size));
	struct ring_shared *sh = mem;
	atomic_store(&sh->lock, ring_peer_pack(who.pid, who.start_time));

	struct submit_try t = {.c = c};
	pthread_t th;
	CHECK(pthread_create(&th, NULL, try_submit, &t) == 0, "pthread_create");
	int64_t end = now_ns() + (int64_t)60 * 1000000000;
	while (!atomic_load(&t.done)) {
		CHECK(now_ns() < end, "submit still waits on the held lock after 60 s");
		usleep(10000);
	}
	pthread_join(th, NULL);
	char pid_text[32];
	snprintf(pid_text, sizeof(pid_text), "process %d", (int)holder);
	fprintf(stderr, "held lock: submit returned %d in %.2f s (%.2f s of CPU): %s\n", t.rc, t.wall_ns * 1e-9,
		t.cpu_ns * 1e-9, t.msg);
	CHECK(t.rc == -EAGAIN && strstr(t.msg, pid_text), "submit: %d, %s", t.rc, t.msg);
	CHECK(t.cpu_ns < t.wall_ns / 2, "it spun: %.2f s of CPU in %.2f s", t.cpu_ns * 1e-9, t.wall_ns * 1e-9);

	char cmd[256];
	int status;
	snprintf(cmd, sizeof(cmd), "%s stat --name trust", exe);
	char *out = command_output(cmd, &status);
	snprintf(pid_text, sizeof(pid_text), "held by pid %d", (int)holder);
	CHECK(status == 0 && strstr(out, pid_text), "stat does not name the holder:\n%s", out);
	free(out);

	atomic_store(&sh->lock, 0);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	return 0;
}

/* --clients 70: 70 clients attach (each process handle a producer of the
 * submit ring beside the supervisor's), the 71st hears that every client
 * slot is taken. The 63rd used to fail: "all 64 producer slots are taken". */
static unsigned case_many_clients(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	(void)rt;
	shmrt_ring_close(p->submit); /* this peer's producer would be one too many */
	p->submit = NULL;
	static struct shmrt_client *more[MANY_CLIENTS];
	for (int i = 0; i < MANY_CLIENTS - 1; i++) /* c is the first */
		CHECK_OK(shmrt_client_attach(&more[i], "trust"));
	struct shmrt_client *extra;
	CHECK(shmrt_client_attach(&extra, "trust") == -EBUSY && strstr(shmrt_last_error(), "every client slot"),
	      "client %d: %s", MANY_CLIENTS + 1, shmrt_last_error());
	/* the last one is served */
	int32_t prompt[3] = {1, 2, 3};
	struct shmrt_request r = {.tokens = prompt, .n_tokens = 3, .max_tokens = 2, .ignore_eos = 1};
	uint64_t id;
	CHECK_OK(shmrt_client_submit(more[MANY_CLIENTS - 2], &r, &id));
	struct shmrt_response out;
	do
		CHECK_OK(shmrt_client_next(more[MANY_CLIENTS - 2], id, &out, (int64_t)30 * 1000000000));
	while (!out.finish);
	CHECK(out.finish == SHMRT_CLIENT_LENGTH, "the 70th client: finish %d: %s", out.finish, shmrt_last_error());
	for (int i = 0; i < MANY_CLIENTS - 1; i++)
		shmrt_client_detach(more[i]);
	(void)c;
	return 0;
}

/* `shmrt probe --live`: 0 alive, 1 not, its stderr in why. */
static int probe_live(char *why, size_t cap)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "%s probe --name trust --live 2>&1", exe);
	int status;
	char *out = command_output(cmd, &status);
	snprintf(why, cap, "%s", out);
	free(out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A corrupted submit ring is formatted again with the new family (every
 * family used to fail on it, about 3 restarts a second, forever). Then a
 * tokenizer that cannot load: restarts back off, `probe --live` reports
 * the crash loop, and after 4 restarts the runtime gives up, FAILED with
 * the reason. */
static unsigned case_crash_loop(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	(void)c;
	void *mem;
	size_t size;
	CHECK_OK(shmrt_arena_region(p->a, "submit", &mem, &size));
	uint32_t epoch = atomic_load(&p->st->epoch);
	atomic_fetch_add(&((struct ring_shared *)mem)->head, 3);
	int64_t end = now_ns() + (int64_t)30 * 1000000000;
	while (atomic_load(&p->st->epoch) == epoch) {
		CHECK(now_ns() < end, "the tokenizer did not fail on a corrupted submit ring");
		usleep(1000);
	}
	wait_ready(rt);
	CHECK(atomic_load(&p->st->restarts) == 1, "%u restarts for one corrupted ring", atomic_load(&p->st->restarts));

	char tok[128], moved[160], why[1024];
	snprintf(tok, sizeof(tok), "%s/tokenizer.json", model_dir);
	snprintf(moved, sizeof(moved), "%s.moved", tok);
	CHECK(rename(tok, moved) == 0, "rename");
	int64_t t0 = now_ns();
	CHECK(kill(shmrt_runtime_child_pid(rt, 0), SIGKILL) == 0, "kill");
	int loop_seen = 0;
	end = now_ns() + (int64_t)120 * 1000000000;
	while (shmrt_runtime_health(rt, NULL) != SHMRT_HEALTH_FAILED) {
		CHECK(now_ns() < end, "still restarting after 120 s: %s", p->st->reason);
		if (!loop_seen && probe_live(why, sizeof(why)) == 1 && strstr(why, "crash loop"))
			loop_seen = shmrt_runtime_health(rt, NULL) != SHMRT_HEALTH_FAILED;
		usleep(50000);
	}
	double took = (double)(now_ns() - t0) * 1e-9;
	fprintf(stderr, "crash loop: FAILED after %.1f s: %s\n", took, p->st->reason);
	CHECK(strstr(p->st->reason, "gave up after 4 restarts"), "reason: %s", p->st->reason);
	CHECK(atomic_load(&p->st->restarts) == 1 + 4, "%u restarts", atomic_load(&p->st->restarts));
	/* backed off: 0 + 0.5 + 1 + 2 s at least between the four */
	CHECK(took >= 3.4, "four restarts in %.1f s", took);
	CHECK(loop_seen, "probe --live never reported the crash loop");
	CHECK(probe_live(why, sizeof(why)) == 1, "probe --live on a FAILED runtime");
	CHECK(rename(moved, tok) == 0, "rename back");
	return UINT_MAX;
}

/* Becomes nobody (a forked child of root). */
static void become_nobody(void)
{
	struct passwd *pw = getpwnam("nobody");
	if (!pw || setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid))
		_exit(126);
}

/* `test_trust --squat NAME FD`, run as nobody: creates arena NAME, says
 * so on FD, and keeps it until killed. */
static int squat(const char *name, int fd)
{
	struct shmrt_region_spec spec = {.name = "state", .size = 4096, .numa_node = -1};
	struct shmrt_arena *a;
	if (shmrt_arena_create(&a, name, &spec, 1) < 0)
		return fprintf(stderr, "squat: %s\n", shmrt_last_error()), 1;
	if (write(fd, "s", 1) != 1)
		return 1;
	pause();
	return 0;
}

/* Another user's arena in a directory every user may write (as
 * /dev/shm): attach refuses it, naming its owner, unless that owner is
 * named as trusted; never when every user may write it; `start` says
 * whose the name is, and `clean` run by another user says which arenas
 * it could not open. A client used to attach to whatever it could open. */
static unsigned case_other_owner(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	(void)rt;
	(void)c;
	(void)p;
	if (geteuid() != 0)
		SKIP("a second user needs root");
	const char *dir = getenv("SHMRT_SHM_DIR");
	CHECK(chmod(dir, 01777) == 0, "chmod %s", dir);
	int fds[2];
	CHECK(pipe(fds) == 0, "pipe");
	pid_t squatter = fork();
	CHECK(squatter >= 0, "fork");
	if (squatter == 0) {
		become_nobody();
		char fd[16];
		snprintf(fd, sizeof(fd), "%d", fds[1]);
		execl("/proc/self/exe", "test_trust", "--squat", "squat", fd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char b;
	CHECK(read(fds[0], &b, 1) == 1, "the squatter made no arena");
	close(fds[0]);

	struct shmrt_arena *a;
	CHECK(shmrt_arena_attach(&a, "squat") == -EPERM && strstr(shmrt_last_error(), "nobody") &&
		      strstr(shmrt_last_error(), "SHMRT_TRUSTED_OWNER"),
	      "attach to nobody's arena: %s", shmrt_last_error());
	fprintf(stderr, "other owner: %s\n", shmrt_last_error());
	setenv("SHMRT_TRUSTED_OWNER", "nobody", 1);
	CHECK_OK(shmrt_arena_attach(&a, "squat"));
	shmrt_arena_detach(a);
	char path[256];
	snprintf(path, sizeof(path), "%s/shmrt-squat", dir);
	CHECK(chmod(path, 0666) == 0, "chmod");
	CHECK(shmrt_arena_attach(&a, "squat") == -EPERM && strstr(shmrt_last_error(), "every user may write"),
	      "attach to a mode 0666 arena: %s", shmrt_last_error());
	unsetenv("SHMRT_TRUSTED_OWNER");
	struct shmrt_region_spec spec = {.name = "state", .size = 4096, .numa_node = -1};
	CHECK(shmrt_arena_create(&a, "squat", &spec, 1) == -EEXIST && strstr(shmrt_last_error(), "nobody"),
	      "start on nobody's name: %s", shmrt_last_error());

	/* clean, run by nobody, cannot open this runtime's arena: it says so */
	char out[256], cmd[512];
	snprintf(out, sizeof(out), "%s/clean.out", dir);
	snprintf(cmd, sizeof(cmd), "%s clean > %s 2>&1", exe, out);
	pid_t cleaner = fork();
	CHECK(cleaner >= 0, "fork");
	if (cleaner == 0) {
		become_nobody();
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	int status;
	CHECK(waitpid(cleaner, &status, 0) == cleaner && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "clean as nobody: status %#x", status);
	FILE *f = fopen(out, "r");
	char text[4096] = "";
	CHECK(f && fread(text, 1, sizeof(text) - 1, f) > 0, "no output from clean");
	fclose(f);
	CHECK(strstr(text, "shmrt-trust") && strstr(text, "cannot be opened"), "clean as nobody said:\n%s", text);
	unlink(out);
	kill(squatter, SIGKILL);
	waitpid(squatter, NULL, 0);
	return 0;
}

/* The arena file truncated under a running `shmrt start` (only its owner
 * can): no process dies by a signal; the children exit, the supervisor
 * says the file was truncated and `shmrt start` exits 1. Every process
 * used to die by SIGBUS. No client here: one reading its ring may still
 * meet the SIGBUS (README, "Trust model"). */
static unsigned case_truncated(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	(void)rt;
	(void)c;
	(void)p;
	char log[128], cmd[512], why[1024];
	snprintf(log, sizeof(log), "%s/start.log", model_dir);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execl(exe, "shmrt", "start", "--model", model_dir, "--name", "trunc", "--restart", "--max-model-len",
		      "128", "--max-seqs", "8", "--clients", "4", (char *)NULL);
		_exit(127);
	}
	snprintf(cmd, sizeof(cmd), "%s probe --name trunc --ready > /dev/null 2>&1", exe);
	int64_t end = now_ns() + (int64_t)60 * 1000000000;
	while (system(cmd) != 0) {
		CHECK(now_ns() < end, "shmrt start not ready in 60 s");
		usleep(100000);
	}
	char path[256];
	snprintf(path, sizeof(path), "%s/shmrt-trunc", getenv("SHMRT_SHM_DIR"));
	CHECK(truncate(path, 4096) == 0, "truncate");
	int status = 0;
	end = now_ns() + (int64_t)30 * 1000000000;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		CHECK(now_ns() < end, "shmrt start still runs 30 s after the truncation");
		usleep(20000);
	}
	FILE *f = fopen(log, "r");
	size_t n = f ? fread(why, 1, sizeof(why) - 1, f) : 0;
	why[n] = '\0';
	if (f)
		fclose(f);
	fprintf(stderr, "truncated: shmrt start: status %#x, said:\n%s", status, why);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "shmrt start: status %#x", status);
	CHECK(strstr(why, "was truncated") && !strstr(why, "signal") && !strstr(why, "Sanitizer"),
	      "shmrt start said:\n%s", why);
	return 0;
}

static void corrupt_tokens_ring(struct peer *p)
{
	void *mem;
	size_t size;
	CHECK_OK(shmrt_arena_region(p->a, "tokens", &mem, &size));
	atomic_fetch_add(&((struct ring_shared *)mem)->head, 3); /* the scheduler exits: a restart */
}

static void write_bad_limits(struct peer *p)
{
	*(volatile int32_t *)&p->st->block_size = 0;
	*(volatile int32_t *)&p->st->max_seqs = -1;
}

/* Limits in the state rewritten out of range (a zero block size, a
 * negative max_seqs), then a corrupted ring. Once: the restart writes the
 * supervisor's own copy back and the new family serves. A peer that keeps
 * rewriting them: each new family's processes refuse them, cleanly, until
 * the runtime gives up. The worker divided by the block size (SIGFPE), the
 * scheduler allocated a negative count, and a restart used to keep them. */
static unsigned case_bad_limits(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	int32_t block_size = p->st->block_size, max_seqs = p->st->max_seqs;
	write_bad_limits(p);
	corrupt_tokens_ring(p);
	int64_t end = now_ns() + (int64_t)60 * 1000000000;
	while (atomic_load(&p->st->restarts) < 1 || shmrt_runtime_health(rt, NULL) != SHMRT_HEALTH_READY) {
		CHECK(now_ns() < end, "not READY 60 s after one rewrite: %s", p->st->reason);
		usleep(10000);
	}
	CHECK(p->st->block_size == block_size && p->st->max_seqs == max_seqs,
	      "the restart kept the rewritten limits (block size %d, max_seqs %d)", p->st->block_size,
	      p->st->max_seqs);
	check_served(rt, c, p, 0, 1);

	end = now_ns() + (int64_t)120 * 1000000000;
	while (shmrt_runtime_health(rt, NULL) != SHMRT_HEALTH_FAILED) {
		CHECK(now_ns() < end, "still restarting after 120 s: %s", p->st->reason);
		write_bad_limits(p); /* again, after each restart wrote them back */
		if (shmrt_runtime_health(rt, NULL) == SHMRT_HEALTH_READY) /* a family started before us */
			corrupt_tokens_ring(p);
		usleep(20);
	}
	fprintf(stderr, "bad limits: %s\n%s", p->st->reason, read_log());
	CHECK(!runtime_logged("signal"), "a process died by a signal");
	CHECK(strstr(read_log(), "limits are out of range"), "no process named the limits");
	/* the state says it accepts (a lie): the client goes by the health */
	atomic_store(&p->st->accepting, 1);
	int32_t prompt[3] = {1, 2, 3};
	struct shmrt_request r = {.tokens = prompt, .n_tokens = 3, .max_tokens = 2};
	uint64_t id;
	int rc = shmrt_client_submit(c, &r, &id);
	CHECK(rc == -EAGAIN && strstr(shmrt_last_error(), "failed"), "submit to a FAILED runtime: %d %s", rc,
	      shmrt_last_error());
	return UINT_MAX;
}

/* Random values into every field of the shared state and of the ring
 * headers of the live runtime, for 5 s: no process dies by a signal or
 * with a sanitizer report, and a client afterwards gets an answer or a
 * clear error. The seed is printed ($TRUST_FUZZ_SEED replays one). */
static unsigned case_fuzz(struct shmrt_runtime *rt, struct shmrt_client *c, struct peer *p)
{
	static const char *regions[] = {"state", "submit", "tokens", "step", "sampled", "events", "responses"};
	const char *env = getenv("TRUST_FUZZ_SEED");
	unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)now_ns();
	fprintf(stderr, "fuzz: seed %u\n", seed);
	int64_t end = now_ns() + (int64_t)5 * 1000000000;
	unsigned writes = 0;
	for (; now_ns() < end; writes++) {
		void *mem;
		size_t size;
		unsigned r = (unsigned)rand_r(&seed) % ARRAY_SIZE(regions);
		CHECK_OK(shmrt_arena_region(p->a, regions[r], &mem, &size));
		/* the state whole; a ring's header, readers and first records */
		size_t span = r == 0 ? sizeof(struct rt_state) : size < 8192 ? size : 8192;
		size_t off = ((size_t)rand_r(&seed) % span) & ~(size_t)7;
		uint64_t v = (uint64_t)rand_r(&seed) << 33 ^ (uint64_t)rand_r(&seed) << 2 ^ (uint64_t)rand_r(&seed);
		int width = 1 << (rand_r(&seed) % 4); /* 1, 2, 4 or 8 bytes */
		memcpy((char *)mem + off, &v, (size_t)width);
		usleep(200);
	}
	fprintf(stderr, "fuzz: %u writes\n", writes);
	/* READY again (restarts back off) or FAILED: either way, an answer */
	end = now_ns() + (int64_t)90 * 1000000000;
	int h;
	while ((h = shmrt_runtime_health(rt, NULL)) != SHMRT_HEALTH_READY && h != SHMRT_HEALTH_FAILED) {
		CHECK(now_ns() < end, "neither READY nor FAILED 90 s after the fuzzing: %s", shmrt_health_name(h));
		usleep(10000);
	}
	int32_t prompt[3] = {1, 2, 3};
	struct shmrt_request q = {.tokens = prompt, .n_tokens = 3, .max_tokens = 2};
	uint64_t id;
	int rc = shmrt_client_submit(c, &q, &id);
	if (rc == 0) {
		struct shmrt_response out;
		do
			rc = shmrt_client_next(c, id, &out, (int64_t)30 * 1000000000);
		while (rc == 0 && !out.finish);
		CHECK(rc == 0, "no end of the request in 30 s: %s", shmrt_last_error());
		rc = out.status;
	}
	CHECK(rc == 0 || *shmrt_last_error(), "a failure without a message (%d)", rc);
	fprintf(stderr, "fuzz: afterwards %s; a request: %d %s\n", shmrt_health_name(h), rc,
		rc ? shmrt_last_error() : "");
	CHECK(!runtime_logged("signal"), "a process died by a signal");
	return UINT_MAX; /* whatever became of the runtime */
}

struct test_case {
	const char *name;
	/* returns how many restarts it caused (UINT_MAX: it made it FAIL) */
	unsigned (*run)(struct shmrt_runtime *, struct shmrt_client *, struct peer *);
	int max_clients; /* 0: MAX_CLIENTS */
	int max_restarts;
};

static const struct test_case cases[] = {
	{"max_clients", case_max_clients, 0, 0},
	{"payload_len", case_payload_len, 0, 0},
	{"reason", case_reason, 0, 0},
	{"scheduler_fails", case_scheduler_fails, 0, 0},
	{"stat_strings", case_stat_strings, 0, 0},
	{"held_lock", case_held_lock, 0, 0},
	{"many_clients", case_many_clients, MANY_CLIENTS, 0},
	{"crash_loop", case_crash_loop, 0, 4},
	{"other_owner", case_other_owner, 0, 0},
	{"truncated", case_truncated, 0, 0},
	{"bad_limits", case_bad_limits, 0, 0},
	{"fuzz", case_fuzz, 0, 0},
};

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--squat"))
		return squat(argv[2], atoi(argv[3]));
	CHECK(argc == 3, "usage: test_trust SHMRT CASE");
	exe = argv[1];
	const struct test_case *tc = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (!strcmp(argv[2], cases[i].name))
			tc = &cases[i];
	CHECK(tc, "no case %s", argv[2]);
	shm_tmpdir();
	snprintf(model_dir, sizeof(model_dir), "/tmp/test-trust-XXXXXX");
	CHECK(mkdtemp(model_dir), "mkdtemp");
	CHECK_OK(shmrt_mkmodel("tiny", 1, model_dir));

	log_stderr();
	atexit(show_log);
	struct shmrt_runtime *rt = start("trust", tc->max_clients ? tc->max_clients : MAX_CLIENTS, tc->max_restarts);
	struct shmrt_client *c;
	CHECK_OK(shmrt_client_attach(&c, "trust"));
	struct peer p;
	peer_attach(&p, "trust");
	int tok_pid = shmrt_runtime_child_pid(rt, 0);
	unsigned restarts = tc->run(rt, c, &p);
	if (restarts != UINT_MAX) /* the case's runtime FAILED on purpose */
		check_served(rt, c, &p, tok_pid, restarts);
	CHECK(!strstr(read_log(), "Sanitizer") && !strstr(read_log(), "runtime error"),
	      "a sanitizer report in the children's stderr");
	peer_detach(&p);
	shmrt_client_detach(c);
	CHECK_OK(shmrt_runtime_stop(rt, 0));
	show_log();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", model_dir);
	CHECK(system(cmd) == 0, "rm");
	return 0;
}

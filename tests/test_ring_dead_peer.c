/* Rings whose peer is killed (SIGKILL) while we wait on it: the waiting
 * call returns an error within a second of the kill, never hangs.
 *   - a producer killed mid-stream: the consumer drains what it sent, then
 *     -EPIPE (MPSC: or -EOWNERDEAD, if the kill fell between reserve and
 *     commit);
 *   - a consumer killed: a producer blocked on the full ring gets -EPIPE
 *     (broadcast: one reader killed, the other alive);
 *   - an MPSC producer killed between reserve and commit: -EOWNERDEAD, the
 *     record can be released and the ring goes on;
 *   - an MPSC producer killed inside the reservation lock: the lock is
 *     taken over. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "clock.h"
#include "proc.h"
#include "ring_layout.h"

#define CAP 4096
#define MS (1000 * 1000LL)
#define FOREVER SHMRT_WAIT_FOREVER

static const char *kind_name(enum shmrt_ring_kind k)
{
	return k == SHMRT_RING_SPSC ? "spsc" : k == SHMRT_RING_MPSC ? "mpsc" : "broadcast";
}

/* A ring in shared memory that children inherit. */
struct ring_mem {
	void *mem;
	size_t size;
};

static struct ring_mem ring_new(enum shmrt_ring_kind kind, unsigned n_readers)
{
	struct ring_mem m = {.size = shmrt_ring_footprint(kind, CAP, n_readers)};
	m.mem = mmap(NULL, m.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(m.mem != MAP_FAILED, "mmap: %m");
	CHECK_OK(shmrt_ring_format(m.mem, m.size, kind, CAP, n_readers));
	return m;
}

static struct shmrt_ring *ring_open(struct ring_mem *m, enum shmrt_ring_role role, unsigned reader)
{
	struct shmrt_ring *r;
	CHECK_OK(shmrt_ring_open(&r, m->mem, m->size, role, reader));
	return r;
}

/* A child runs fn, which writes one byte to `ready` when it has reached
 * the state to be killed in. */
static pid_t child(void (*fn)(struct ring_mem *, int), struct ring_mem *m, int *ready_fd)
{
	int p[2];
	CHECK(pipe(p) == 0, "pipe: %m");
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %m");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		fn(m, p[1]);
		for (;;)
			pause();
	}
	close(p[1]);
	*ready_fd = p[0];
	return pid;
}

static void ready(int fd)
{
	CHECK(write(fd, "r", 1) == 1, "write: %m");
}

static void wait_ready(int fd)
{
	char c;
	CHECK(read(fd, &c, 1) == 1, "the child died before it was ready");
	close(fd);
}

/* Kills pid after delay, from a thread, while the test blocks in a call. */
struct killer {
	pthread_t thread;
	pid_t pid;
	int64_t delay_ns;
	int64_t killed_at; /* read after join */
};

static void *killer_run(void *arg)
{
	struct killer *k = arg;
	struct timespec ts = {.tv_sec = k->delay_ns / 1000000000, .tv_nsec = k->delay_ns % 1000000000};
	nanosleep(&ts, NULL);
	k->killed_at = shmrt_now_ns();
	kill(k->pid, SIGKILL);
	return NULL;
}

static void killer_start(struct killer *k, pid_t pid, int64_t delay_ns)
{
	*k = (struct killer){.pid = pid, .delay_ns = delay_ns};
	CHECK(pthread_create(&k->thread, NULL, killer_run, k) == 0, "pthread_create");
}

/* Joins the killer and reaps the child: how long after the kill `now` was. */
static int64_t killer_finish(struct killer *k, int64_t now)
{
	pthread_join(k->thread, NULL);
	int status;
	CHECK(waitpid(k->pid, &status, 0) == k->pid, "waitpid: %m");
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child was not killed (status %#x)", status);
	return now - k->killed_at;
}

static void check_soon(int64_t late, const char *what)
{
	CHECK(late > 0, "%s: returned before the kill", what);
	CHECK(late < 1000 * MS, "%s: noticed %.3f s after the kill", what, late / 1e9);
	printf("%-44s noticed %6.1f ms after the kill\n", what, late / 1e6);
}

/* --- a producer killed mid-stream ---------------------------------------- */

static void stream_forever(struct ring_mem *m, int fd)
{
	struct shmrt_ring *p = ring_open(m, SHMRT_RING_PRODUCER, 0);
	ready(fd);
	for (uint64_t seq = 0;; seq++) {
		unsigned char rec[64] = {0};
		memcpy(rec, &seq, sizeof(seq));
		CHECK_OK(shmrt_ring_send(p, rec, 8 + seq % 56, FOREVER));
	}
}

static void producer_killed(enum shmrt_ring_kind kind)
{
	struct ring_mem m = ring_new(kind, 1);
	struct shmrt_ring *c = ring_open(&m, SHMRT_RING_CONSUMER, 0);
	int fd;
	pid_t pid = child(stream_forever, &m, &fd);
	wait_ready(fd);
	struct killer k;
	killer_start(&k, pid, 200 * MS);
	uint64_t next = 0;
	int rc;
	for (;;) {
		const void *buf;
		size_t len;
		rc = shmrt_ring_peek(c, &buf, &len, FOREVER);
		if (rc < 0)
			break;
		uint64_t seq;
		CHECK(len == 8 + next % 56, "%s: record %llu has %zu bytes", kind_name(kind), (unsigned long long)next,
		      len);
		memcpy(&seq, buf, sizeof(seq));
		CHECK(seq == next, "%s: record %llu came when %llu was due", kind_name(kind), (unsigned long long)seq,
		      (unsigned long long)next);
		next++;
		CHECK_OK(shmrt_ring_release(c));
	}
	int64_t late = killer_finish(&k, shmrt_now_ns());
	CHECK(rc == -EPIPE || (kind == SHMRT_RING_MPSC && rc == -EOWNERDEAD), "%s: peek returned %d (%s)",
	      kind_name(kind), rc, shmrt_last_error());
	CHECK(next > 0, "%s: nothing came before the kill", kind_name(kind));
	char what[64];
	snprintf(what, sizeof(what), "%s producer killed mid-stream: %s", kind_name(kind),
		 rc == -EPIPE ? "EPIPE" : "EOWNERDEAD");
	check_soon(late, what);
	shmrt_ring_close(c);
	munmap(m.mem, m.size);
}

/* --- a consumer killed --------------------------------------------------- */

static void read_nothing(struct ring_mem *m, int fd)
{
	ring_open(m, SHMRT_RING_CONSUMER, 0);
	ready(fd);
}

static void read_everything(struct ring_mem *m, int fd)
{
	struct shmrt_ring *c = ring_open(m, SHMRT_RING_CONSUMER, 1);
	ready(fd);
	unsigned char buf[CAP];
	size_t len;
	while (shmrt_ring_recv(c, buf, sizeof(buf), &len, FOREVER) == 0)
		;
	_exit(0);
}

static void consumer_killed(enum shmrt_ring_kind kind)
{
	unsigned n = kind == SHMRT_RING_BROADCAST ? 2 : 1;
	struct ring_mem m = ring_new(kind, n);
	int fd, fd2;
	pid_t pid = child(read_nothing, &m, &fd);
	pid_t other = n == 2 ? child(read_everything, &m, &fd2) : 0;
	wait_ready(fd);
	if (other)
		wait_ready(fd2);
	struct shmrt_ring *p = ring_open(&m, SHMRT_RING_PRODUCER, 0);
	struct killer k;
	killer_start(&k, pid, 200 * MS);
	unsigned char rec[100] = {0};
	int rc;
	unsigned sent = 0;
	while ((rc = shmrt_ring_send(p, rec, sizeof(rec), FOREVER)) == 0)
		sent++;
	int64_t late = killer_finish(&k, shmrt_now_ns());
	CHECK(rc == -EPIPE, "%s: send returned %d (%s)", kind_name(kind), rc, shmrt_last_error());
	CHECK(sent >= CAP / 128 - 1, "%s: only %u records before the ring was full", kind_name(kind), sent);
	char what[64];
	snprintf(what, sizeof(what), "%s consumer killed: EPIPE", kind_name(kind));
	check_soon(late, what);
	shmrt_ring_close(p);
	if (other) {
		int status;
		CHECK(waitpid(other, &status, 0) == other, "waitpid: %m");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the live reader failed");
	}
	munmap(m.mem, m.size);
}

/* --- MPSC: killed between reserve and commit ----------------------------- */

static void reserve_and_stop(struct ring_mem *m, int fd)
{
	struct shmrt_ring *p = ring_open(m, SHMRT_RING_PRODUCER, 0);
	for (int i = 0; i < 3; i++)
		CHECK_OK(shmrt_ring_send(p, "before", 6, 0));
	void *buf;
	CHECK_OK(shmrt_ring_reserve(p, 100, &buf, 0));
	memcpy(buf, "never committed", 15);
	ready(fd);
}

static void killed_in_reservation(void)
{
	struct ring_mem m = ring_new(SHMRT_RING_MPSC, 1);
	struct shmrt_ring *c = ring_open(&m, SHMRT_RING_CONSUMER, 0);
	/* A live producer that stays, so that -EPIPE is not the answer. */
	struct shmrt_ring *live = ring_open(&m, SHMRT_RING_PRODUCER, 0);
	int fd;
	pid_t pid = child(reserve_and_stop, &m, &fd);
	wait_ready(fd);
	/* A record reserved after the dead one, committed first. */
	CHECK_OK(shmrt_ring_send(live, "after", 5, 0));
	struct killer k;
	killer_start(&k, pid, 200 * MS);
	const void *buf;
	size_t len;
	for (int i = 0; i < 3; i++) {
		CHECK_OK(shmrt_ring_peek(c, &buf, &len, FOREVER));
		CHECK(len == 6 && !memcmp(buf, "before", 6), "mpsc: record %d", i);
		CHECK_OK(shmrt_ring_release(c));
	}
	int rc = shmrt_ring_peek(c, &buf, &len, FOREVER);
	int64_t late = killer_finish(&k, shmrt_now_ns());
	CHECK(rc == -EOWNERDEAD, "mpsc: peek at a dead reservation returned %d (%s)", rc, shmrt_last_error());
	check_soon(late, "mpsc producer killed after reserve: EOWNERDEAD");
	/* Discard it; the ring goes on. */
	CHECK_OK(shmrt_ring_release(c));
	CHECK_OK(shmrt_ring_peek(c, &buf, &len, 0));
	CHECK(len == 5 && !memcmp(buf, "after", 5), "mpsc: the record after the dead one");
	CHECK_OK(shmrt_ring_release(c));
	shmrt_ring_close(live);
	CHECK(shmrt_ring_peek(c, &buf, &len, FOREVER) == -EPIPE, "mpsc: all producers gone");
	shmrt_ring_close(c);
	munmap(m.mem, m.size);
}

/* --- MPSC: killed holding the reservation lock --------------------------- */

static void lock_and_stop(struct ring_mem *m, int fd)
{
	/* The few stores inside the lock are too quick to kill in: take the
	 * lock as mpsc_lock does and stay. */
	struct shmrt_ring *p = ring_open(m, SHMRT_RING_PRODUCER, 0);
	struct ring_shared *sh = m->mem;
	uint64_t free_lock = 0;
	CHECK(atomic_compare_exchange_strong(&sh->lock, &free_lock, p->id), "lock taken");
	ready(fd);
}

static void killed_in_lock(void)
{
	struct ring_mem m = ring_new(SHMRT_RING_MPSC, 1);
	struct shmrt_ring *c = ring_open(&m, SHMRT_RING_CONSUMER, 0);
	struct shmrt_ring *p = ring_open(&m, SHMRT_RING_PRODUCER, 0);
	int fd;
	pid_t pid = child(lock_and_stop, &m, &fd);
	wait_ready(fd);
	struct killer k;
	killer_start(&k, pid, 200 * MS);
	int rc = shmrt_ring_send(p, "through", 7, FOREVER);
	int64_t late = killer_finish(&k, shmrt_now_ns());
	CHECK(rc == 0, "mpsc: send after the lock holder died: %d (%s)", rc, shmrt_last_error());
	check_soon(late, "mpsc producer killed holding the lock: taken");
	const void *buf;
	size_t len;
	CHECK_OK(shmrt_ring_peek(c, &buf, &len, 0));
	CHECK(len == 7 && !memcmp(buf, "through", 7), "mpsc: the record sent after the takeover");
	CHECK_OK(shmrt_ring_release(c));
	shmrt_ring_close(p);
	shmrt_ring_close(c);
	munmap(m.mem, m.size);
}

int main(void)
{
	const enum shmrt_ring_kind kinds[] = {SHMRT_RING_SPSC, SHMRT_RING_MPSC, SHMRT_RING_BROADCAST};
	for (int i = 0; i < 3; i++) {
		producer_killed(kinds[i]);
		consumer_killed(kinds[i]);
	}
	killed_in_reservation();
	killed_in_lock();
	return 0;
}

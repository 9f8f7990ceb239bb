/* An idle consumer costs (almost) nothing: a thread blocked in peek for a
 * second uses under 1% of a core (its own getrusage), and a record sent
 * then wakes it, by the futex rather than at the end of its sleep slice. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "clock.h"

#define CAP 4096
#define MS (1000 * 1000LL)
#define ROUNDS 9

struct consumer {
	struct shmrt_ring *ring;
	int64_t idle_ns; /* how long the first peek waited */
	int64_t cpu_ns;  /* CPU time this thread used meanwhile */
	int64_t woke_at[ROUNDS];
	int rc;
	char text[64];
};

static int64_t thread_cpu_ns(void)
{
	struct rusage ru;
	CHECK(getrusage(RUSAGE_THREAD, &ru) == 0, "getrusage: %m");
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static void *consume(void *arg)
{
	struct consumer *c = arg;
	int64_t cpu0 = thread_cpu_ns(), t0 = shmrt_now_ns();
	size_t len;
	c->rc = shmrt_ring_recv(c->ring, c->text, sizeof(c->text) - 1, &len, SHMRT_WAIT_FOREVER);
	c->idle_ns = shmrt_now_ns() - t0;
	c->cpu_ns = thread_cpu_ns() - cpu0;
	if (c->rc == 0)
		c->text[len] = '\0';
	/* Then short sleeps, each ended by a record. */
	for (int i = 0; i < ROUNDS && c->rc == 0; i++) {
		char b[8];
		c->rc = shmrt_ring_recv(c->ring, b, sizeof(b), &len, SHMRT_WAIT_FOREVER);
		c->woke_at[i] = shmrt_now_ns();
	}
	return NULL;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
	nanosleep(&ts, NULL);
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int main(void)
{
	size_t size = shmrt_ring_footprint(SHMRT_RING_SPSC, CAP, 1);
	static _Alignas(64) unsigned char mem[8192];
	CHECK(size <= sizeof(mem), "footprint %zu", size);
	CHECK_OK(shmrt_ring_format(mem, size, SHMRT_RING_SPSC, CAP, 1));
	struct shmrt_ring *p;
	struct consumer c = {0};
	CHECK_OK(shmrt_ring_open(&p, mem, size, SHMRT_RING_PRODUCER, 0));
	CHECK_OK(shmrt_ring_open(&c.ring, mem, size, SHMRT_RING_CONSUMER, 0));
	pthread_t t;
	CHECK(pthread_create(&t, NULL, consume, &c) == 0, "pthread_create");
	sleep_ns(1000 * MS);
	CHECK_OK(shmrt_ring_send(p, "wake up", 7, 0));
	int64_t sent_at[ROUNDS];
	for (int i = 0; i < ROUNDS; i++) {
		sleep_ns(60 * MS); /* past the spin, asleep on the futex */
		sent_at[i] = shmrt_now_ns();
		CHECK_OK(shmrt_ring_send(p, "again", 5, 0));
	}
	pthread_join(t, NULL);
	CHECK(c.rc == 0, "recv returned %d (%s)", c.rc, shmrt_last_error());
	CHECK(!strcmp(c.text, "wake up"), "received '%s'", c.text);
	double share = (double)c.cpu_ns / c.idle_ns;
	printf("blocked %.3f s, used %.3f ms of CPU: %.3f%% of a core\n", c.idle_ns / 1e9, c.cpu_ns / 1e6,
	       100 * share);
	CHECK(c.idle_ns > 900 * MS, "woke after %.3f s, before the record", c.idle_ns / 1e9);
	CHECK(share < 0.01, "an idle consumer used %.2f%% of a core", 100 * share);

	/* A lost wake-up would leave the consumer asleep until its slice ends
	 * (50 ms, the liveness check period): half of that on average. The
	 * median of several is robust to a loaded machine. */
	int64_t lat[ROUNDS];
	for (int i = 0; i < ROUNDS; i++)
		lat[i] = c.woke_at[i] - sent_at[i];
	qsort(lat, ROUNDS, sizeof(lat[0]), cmp64);
	printf("wake-up after a send: median %.3f ms, worst %.3f ms\n", lat[ROUNDS / 2] / 1e6, lat[ROUNDS - 1] / 1e6);
	CHECK(lat[ROUNDS / 2] < 10 * MS, "the futex wake-up seems lost: median %.3f ms", lat[ROUNDS / 2] / 1e6);
	shmrt_ring_close(c.ring);
	shmrt_ring_close(p);
	return 0;
}

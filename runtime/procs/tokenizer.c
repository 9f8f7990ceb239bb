/* The tokenizer process: requests from clients encoded for the scheduler
 * (intake thread), and the scheduler's events detokenized, as streams,
 * into each client's response ring (this thread). Two threads, each with
 * its own tokenizer handle (tokenizer.h: one thread per handle). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/checkpoint.h"
#include "shmrt/error.h"
#include "shmrt/ring.h"
#include "shmrt/tokenizer.h"
#include "fail.h"
#include "child.h"
#include "id_map.h"

struct tok_proc {
	struct shmrt_arena *a;
	struct rt_state *st;
	struct rt_proc *me;
	struct shmrt_tokenizer *enc, *dec;
	/* Limits read once from the shared state at start and checked: a peer
	 * that rewrites the state later cannot move them (proto.h). */
	unsigned max_clients;
	int max_model_len;
	bool log_refusals;
	_Atomic int failed;   /* the intake thread stopped on an error */
	_Atomic int stopping; /* the intake thread is told to return */
	char intake_error[256];
};

static int load(const struct rt_state *st, struct shmrt_tokenizer **tok)
{
	char dir[sizeof(st->model_dir) + 1], path[sizeof(st->model_dir) + 16];
	snprintf(dir, sizeof(dir), "%.*s", (int)strnlen(st->model_dir, sizeof(st->model_dir)), st->model_dir);
	int rc = shmrt_model_path_tokenizer(dir, path, sizeof(path));
	return rc ? rc : shmrt_tokenizer_load(path, NULL, tok);
}

/* The prompt of a TEXT or IDS record into ids: how many, or -errno with
 * the reason (RT_REASON_MAX bytes) for the client. */
static int prompt_ids(struct tok_proc *t, const struct rt_req *rq, const void *payload, int32_t *ids, int cap,
		      char *reason)
{
	int n = (int)(rq->payload_len / 4);
	if (rq->kind == RT_REQ_TEXT) {
		unsigned flags = (rq->flags & RT_REQ_ADD_SPECIAL ? SHMRT_ENCODE_ADD_SPECIAL : 0) |
				 SHMRT_ENCODE_SPECIAL_AS_TEXT;
		n = shmrt_tokenizer_encode(t->enc, payload, rq->payload_len, flags, ids, (size_t)cap);
		if (n < 0) {
			snprintf(reason, RT_REASON_MAX, "the prompt cannot be encoded: %s", shmrt_last_error());
			return n;
		}
		if (n == 0) {
			snprintf(reason, RT_REASON_MAX, "an empty prompt: its text encodes to no tokens");
			return -EINVAL;
		}
	}
	if (n >= t->max_model_len) {
		snprintf(reason, RT_REASON_MAX, "a prompt of %d tokens leaves no room in the model's context of %d",
			 n, t->max_model_len);
		return -E2BIG;
	}
	if (rq->kind == RT_REQ_IDS)
		memcpy(ids, payload, (size_t)n * 4);
	return n;
}

/* One submit record to the tokens ring: ids encoded from text (or as
 * they came), or the refusal with its reason, or a cancel as it is. */
static int forward(struct tok_proc *t, struct shmrt_ring *out, const struct rt_req *rq, const void *payload,
		   int32_t *ids, int cap)
{
	struct rt_req h = *rq;
	char reason[RT_REASON_MAX];
	const void *body = ids;
	int n = rq->kind == RT_REQ_CANCEL ? 0 : prompt_ids(t, rq, payload, ids, cap, reason);
	h.kind = rq->kind == RT_REQ_CANCEL ? RT_REQ_CANCEL : RT_REQ_IDS;
	h.status = n < 0 ? n : 0;
	h.payload_len = n < 0 ? (uint32_t)strlen(reason) : (uint32_t)n * 4;
	if (n < 0)
		body = reason;
	void *buf;
	int rc;
	/* a wait with an end: the process may be stopping (rt_tokenizer_run) */
	while ((rc = shmrt_ring_reserve(out, sizeof(h) + h.payload_len, &buf, RT_BEAT_NS)) == -ETIMEDOUT &&
	       !atomic_load(&t->stopping))
		;
	if (rc)
		return rc;
	memcpy(buf, &h, sizeof(h));
	memcpy((char *)buf + sizeof(h), body, h.payload_len);
	return shmrt_ring_commit(out, buf, sizeof(h) + h.payload_len);
}

/* Whether a submit record, copied out of the ring, is one to forward. */
static bool acceptable(const struct tok_proc *t, const struct rt_req *rq, size_t len)
{
	return rq->payload_len == len - sizeof(*rq) &&
	       rq->epoch == atomic_load_explicit(&t->st->epoch, memory_order_acquire) &&
	       RT_ID_SLOT(rq->id) < t->max_clients && rq->kind >= RT_REQ_TEXT && rq->kind <= RT_REQ_CANCEL;
}

static int intake(struct tok_proc *t, struct shmrt_ring *in, struct shmrt_ring *out)
{
	int cap = t->max_model_len + 1;
	size_t rec_cap = shmrt_ring_max_record(in);
	int32_t *ids = malloc((size_t)cap * sizeof(int32_t));
	char *copy = malloc(rec_cap);
	int rc = ids && copy ? 0 : -ENOMEM;
	while (!rc && !atomic_load(&t->stopping)) {
		const void *rec;
		size_t len;
		rc = shmrt_ring_peek(in, &rec, &len, RT_BEAT_NS);
		if (rc == -ETIMEDOUT || rc == -EOWNERDEAD || rc == -EPIPE) {
			if (rc == -EOWNERDEAD) /* a client died in mid-record */
				shmrt_ring_release(in);
			if (rc == -EPIPE) /* no client attached: the supervisor keeps one, so rare */
				usleep(10000);
			rc = 0;
			continue;
		}
		if (rc)
			break;
		/* The record lies in memory every client may write: copied once,
		 * then checked and used from the copy only, so that a peer that
		 * rewrites it after the check (payload_len) changes nothing. A
		 * hostile or broken client: drop what does not parse. */
		struct rt_req rq;
		if (len >= sizeof(rq) && len <= rec_cap) {
			memcpy(copy, rec, len);
			memcpy(&rq, copy, sizeof(rq));
			if (acceptable(t, &rq, len))
				rc = forward(t, out, &rq, copy + sizeof(rq), ids, cap);
		}
		atomic_fetch_add_explicit(&t->me->work, 1, memory_order_relaxed);
		if (!rc)
			rc = shmrt_ring_release(in);
	}
	free(copy);
	free(ids);
	return rc;
}

static void *intake_thread(void *arg)
{
	struct tok_proc *t = arg;
	struct shmrt_ring *in = NULL, *out = NULL;
	int rc = rt_ring_open(t->a, "submit", 0, SHMRT_RING_CONSUMER, 0, &in);
	if (!rc)
		rc = rt_ring_open(t->a, "tokens", 0, SHMRT_RING_PRODUCER, 0, &out);
	if (!rc)
		rc = intake(t, in, out);
	snprintf(t->intake_error, sizeof(t->intake_error), "intake: %s", shmrt_last_error());
	if (in)
		shmrt_ring_close(in);
	if (out)
		shmrt_ring_close(out);
	atomic_store(&t->failed, rc ? rc : -EPIPE);
	return NULL;
}

/* ---- output: events to text ------------------------------------------------ */

struct output {
	struct tok_proc *t;
	struct shmrt_ring *resp[RT_MAX_CLIENTS]; /* opened on first use */
	bool stalled[RT_MAX_CLIENTS];            /* its ring was full a second: no more waits */
	struct rt_map streams;                   /* id -> struct shmrt_detok_stream */
	char *text;
	size_t text_cap;
};

static int append(struct output *o, size_t *len, const char *s, int n)
{
	if (*len + (size_t)n + 1 > o->text_cap) {
		size_t cap = (*len + (size_t)n + 1) * 2;
		char *p = realloc(o->text, cap);
		if (!p)
			return -ENOMEM;
		o->text = p;
		o->text_cap = cap;
	}
	memcpy(o->text + *len, s, (size_t)n);
	*len += (size_t)n;
	return 0;
}

/* The response of one event: the text its token completes (and, at the
 * end, what the stream held back), or why its request failed (reason,
 * reason_len bytes). */
static int respond(struct output *o, const struct rt_event *ev, const char *reason, uint32_t reason_len)
{
	unsigned slot = RT_ID_SLOT(ev->id);
	if (slot >= o->t->max_clients)
		return 0;
	struct shmrt_detok_stream *s = rt_map_get(&o->streams, ev->id);
	int rc = 0;
	if (!s && (rc = shmrt_detok_stream_new(o->t->dec, SHMRT_DECODE_SKIP_SPECIAL, &s)) == 0 &&
	    (rc = rt_map_put(&o->streams, ev->id, s)) != 0)
		shmrt_detok_stream_free(s);
	if (rc)
		return rc;
	size_t len = 0;
	const char *piece;
	int n;
	if (ev->token >= 0 && (n = shmrt_detok_stream_push(s, ev->token, &piece)) > 0)
		rc = append(o, &len, piece, n);
	if (ev->finish) {
		if (!rc && (n = shmrt_detok_stream_flush(s, &piece)) > 0)
			rc = append(o, &len, piece, n);
		shmrt_detok_stream_free(rt_map_del(&o->streams, ev->id));
		atomic_fetch_add(&o->t->st->requests_out, 1);
	}
	if (rc)
		return rc;
	if (reason_len && o->t->log_refusals)
		fprintf(stderr, "shmrt tokenizer: request %llu of client %u failed: %.*s\n",
			(unsigned long long)(ev->id & ((UINT64_C(1) << 48) - 1)), slot, (int)reason_len, reason);
	if (!o->resp[slot] && rt_ring_open(o->t->a, "responses", slot, SHMRT_RING_PRODUCER, 0, &o->resp[slot])) {
		/* the slot's ring is broken: its client learns of the drop
		 * (and repairs the ring, client.c) */
		atomic_fetch_add_explicit(&o->t->st->clients[slot].dropped, 1, memory_order_release);
		return 0;
	}
	struct rt_resp r = {.id = ev->id, .token = ev->token, .finish = ev->finish, .status = ev->status,
			    .n_prompt = ev->n_prompt, .n_generated = ev->n_generated, .text_len = (uint32_t)len,
			    .reason_len = reason_len};
	void *buf;
	/* A client whose ring stays full (its process stopped or starved: its
	 * reader thread drains the ring into memory) costs one wait of 1 s,
	 * against a 256 KiB ring of ~4,000 chunks; then its chunks are dropped
	 * at once, so the other clients go on, until its ring has room again.
	 * It learns of the drop from `dropped` and ends its requests. */
	int64_t wait = o->stalled[slot] ? 0 : 1000000000;
	if (shmrt_ring_reserve(o->resp[slot], sizeof(r) + len + reason_len, &buf, wait) == 0) {
		memcpy(buf, &r, sizeof(r));
		if (len)
			memcpy((char *)buf + sizeof(r), o->text, len);
		if (reason_len)
			memcpy((char *)buf + sizeof(r) + len, reason, reason_len);
		shmrt_ring_commit(o->resp[slot], buf, sizeof(r) + len + reason_len);
		o->stalled[slot] = false;
	} else {
		o->stalled[slot] = true;
		atomic_fetch_add_explicit(&o->t->st->clients[slot].dropped, 1, memory_order_release);
	}
	return 0;
}

/* The responses of one events record: each event and its reason copied
 * out of the ring once, then checked. */
static int respond_all(struct output *o, const char *rec, size_t len)
{
	struct rt_events h;
	if (len < sizeof(h))
		return shmrt_fail(EBADMSG, "a malformed events record (%zu bytes)", len);
	memcpy(&h, rec, sizeof(h));
	if (h.n > (len - sizeof(h)) / sizeof(struct rt_event))
		return shmrt_fail(EBADMSG, "a malformed events record (%zu bytes, %u events)", len, h.n);
	const char *reasons = rec + sizeof(h) + (size_t)h.n * sizeof(struct rt_event);
	size_t left = len - (size_t)(reasons - rec);
	int rc = 0;
	for (uint32_t i = 0; i < h.n && !rc; i++) {
		struct rt_event ev;
		char reason[RT_REASON_MAX];
		memcpy(&ev, rec + sizeof(h) + (size_t)i * sizeof(ev), sizeof(ev));
		if (ev.reason_len >= RT_REASON_MAX || ev.reason_len > left)
			return shmrt_fail(EBADMSG, "a malformed events record (a reason of %u bytes)", ev.reason_len);
		memcpy(reason, reasons, ev.reason_len);
		reasons += ev.reason_len;
		left -= ev.reason_len;
		rc = respond(o, &ev, reason, ev.reason_len);
	}
	return rc;
}

static int output(struct output *o, struct shmrt_ring *events)
{
	int rc = 0;
	while (!rc && !atomic_load(&o->t->failed)) {
		const void *rec;
		size_t len;
		rt_beat(o->t->me);
		rc = shmrt_ring_peek(events, &rec, &len, RT_BEAT_NS);
		if (rc == -ETIMEDOUT) {
			rc = 0;
			continue;
		}
		if (rc)
			return rc; /* the scheduler is gone: the supervisor restarts us all */
		rc = respond_all(o, rec, len);
		if (!rc)
			rc = shmrt_ring_release(events);
	}
	return rc ? rc : atomic_load(&o->t->failed);
}

static int limits(struct tok_proc *t)
{
	t->max_clients = *(volatile uint32_t *)&t->st->max_clients;
	t->max_model_len = *(volatile int32_t *)&t->st->max_model_len;
	t->log_refusals = *(volatile int32_t *)&t->st->log_refusals != 0;
	if (t->max_clients < 1 || t->max_clients > RT_MAX_CLIENTS || t->max_model_len < 1 ||
	    t->max_model_len >= INT_MAX / 4)
		return shmrt_fail(EBADMSG, "the arena's limits are out of range (%u clients, context %d)",
				  t->max_clients, t->max_model_len);
	return 0;
}

int rt_tokenizer_run(struct shmrt_arena *a, struct rt_state *st)
{
	struct tok_proc t = {.a = a, .st = st, .me = &st->procs[0]};
	struct output o = {.t = &t};
	struct shmrt_ring *events = NULL;
	atomic_store(&t.me->phase, RT_PHASE_LOADING);
	int rc = limits(&t);
	if (!rc)
		rc = load(st, &t.enc);
	if (!rc)
		rc = load(st, &t.dec);
	if (!rc)
		rc = rt_ring_open(a, "events", 0, SHMRT_RING_CONSUMER, 0, &events);
	pthread_t th;
	int started = 0;
	if (!rc && !(rc = -pthread_create(&th, NULL, intake_thread, &t)))
		started = 1;
	if (!rc) {
		atomic_store(&t.me->phase, RT_PHASE_READY);
		rc = output(&o, events);
	}
	if (started) {
		/* Joined before the arena is unmapped (child.c): its waits
		 * end within RT_BEAT_NS once told to stop. */
		int failed = atomic_load(&t.failed);
		atomic_store(&t.stopping, 1);
		pthread_join(th, NULL);
		if (failed)
			rc = shmrt_fail(-failed, "%s", t.intake_error);
	}
	for (unsigned i = 0; i < RT_MAX_CLIENTS; i++)
		if (o.resp[i])
			shmrt_ring_close(o.resp[i]);
	for (size_t i = 0; i < o.streams.cap; i++) /* requests cut short by the exit */
		if (o.streams.keys[i])
			shmrt_detok_stream_free(o.streams.vals[i]);
	rt_map_free(&o.streams);
	free(o.text);
	if (events)
		shmrt_ring_close(events);
	shmrt_tokenizer_free(t.enc);
	shmrt_tokenizer_free(t.dec);
	return rc;
}

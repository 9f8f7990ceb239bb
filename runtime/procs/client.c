/* The client API (client.h): a response ring of its own in the arena, a
 * thread that reads it and hands each chunk to its request's queue. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/error.h"
#include "shmrt/client.h"
#include "shmrt/ring.h"
#include "fail.h"
#include "clock.h"
#include "proc.h"
#include "id_map.h"
#include "proto.h"
#include "ring_layout.h"

struct chunk {
	struct chunk *next;
	struct rt_resp r;
	char text[]; /* r.text_len bytes and a NUL, r.reason_len bytes and a NUL */
};

struct pending {
	uint64_t id;
	uint32_t epoch;
	int ended;              /* its last chunk is queued */
	struct chunk *head, *tail;
	int64_t t_submit, t_first;
};

struct shmrt_client {
	struct shmrt_arena *arena;
	struct rt_state *st;
	unsigned slot;
	struct shmrt_ring *submit, *resp;
	pthread_t reader;
	_Atomic int closing;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rt_map reqs; /* id -> struct pending */
	int dead;           /* the supervisor is gone */
	/* the epoch and the slot's dropped count as of the attach, read
	 * before the reader thread starts: a change between the two is not
	 * missed (it may not run before this process is stopped) */
	uint32_t seen_epoch;
	uint64_t seen_dropped;
	char ring_error[256]; /* under mu: why the response ring was read again */
};

/* The text handed out by next, per thread, freed at the next call or when
 * the thread exits (a key's destructor: a _Thread_local pointer would leak
 * the last one). */
static pthread_key_t text_key;
static pthread_once_t text_once = PTHREAD_ONCE_INIT;

static void make_text_key(void)
{
	pthread_key_create(&text_key, free);
}

static void set_text(char *text)
{
	pthread_once(&text_once, make_text_key);
	free(pthread_getspecific(text_key));
	pthread_setspecific(text_key, text);
}

static void queue(struct pending *p, struct chunk *c)
{
	c->next = NULL;
	if (p->tail)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
	if (c->r.finish)
		p->ended = 1;
}

/* Ends p with an error chunk of its own (the runtime cannot send it). */
static void end_with(struct pending *p, int status)
{
	struct chunk *c = calloc(1, sizeof(*c) + 2);
	if (!c)
		return; /* next() reports the status without a chunk */
	c->r = (struct rt_resp){.id = p->id, .token = -1, .finish = RT_FINISH_ERROR, .status = status};
	queue(p, c);
}

/* Under mu: ends with status the pending requests of finished epochs (a
 * child died, the runtime stopped), or all of them (all: the supervisor is
 * gone, or the tokenizer dropped chunks of ours). */
static void fail_stale(struct shmrt_client *c, int all, int status)
{
	uint32_t epoch = atomic_load_explicit(&c->st->epoch, memory_order_acquire);
	for (size_t i = 0; i < c->reqs.cap; i++) {
		struct pending *p = c->reqs.keys[i] ? c->reqs.vals[i] : NULL;
		if (p && !p->ended && (all || p->epoch != epoch))
			end_with(p, status);
	}
}

/* The reason a response gives is shown to people (shmrt_last_error, a
 * server's error body): control bytes become '?'. */
static void printable(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
}

static void deliver(struct shmrt_client *c, const char *rec, size_t len)
{
	struct rt_resp r; /* read once: the ring is shared memory */
	if (len < sizeof(r))
		return;
	memcpy(&r, rec, sizeof(r));
	if (r.reason_len >= RT_REASON_MAX || (size_t)r.text_len + r.reason_len != len - sizeof(r))
		return;
	struct chunk *ch = malloc(sizeof(*ch) + r.text_len + r.reason_len + 2);
	if (!ch)
		return;
	ch->r = r;
	memcpy(ch->text, rec + sizeof(r), r.text_len);
	ch->text[r.text_len] = '\0';
	char *reason = ch->text + r.text_len + 1;
	memcpy(reason, rec + sizeof(r) + r.text_len, r.reason_len);
	reason[r.reason_len] = '\0';
	printable(reason, r.reason_len);
	pthread_mutex_lock(&c->mu);
	struct pending *p = rt_map_get(&c->reqs, r.id);
	if (p && !p->ended) {
		if (!p->t_first && r.token >= 0)
			p->t_first = shmrt_now_ns();
		queue(p, ch);
		ch = NULL;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	free(ch); /* a request this client no longer waits for */
}

/* Ends every request of ours with the ring's message (takes mu). */
static void end_all_corrupt(struct shmrt_client *c)
{
	pthread_mutex_lock(&c->mu);
	snprintf(c->ring_error, sizeof(c->ring_error), "%s", shmrt_last_error());
	fail_stale(c, 1, -EBADMSG);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Our response ring holds a lie at our position (another process wrote
 * into the arena): what lay between it and the tokenizer's is skipped (it
 * writes every record after that afresh). The requests end when records
 * were skipped (they may have held chunks of theirs), or when the lie
 * stays a second (a record at our position, head not yet past it; a lie
 * where nothing was written yet goes when the tokenizer writes there). */
static void ring_corrupted(struct shmrt_client *c, int64_t *bad_since)
{
	int skipped = ring_resync(c->resp); /* < 0: head corrupt too; we stay */
	int64_t now = shmrt_now_ns();
	if (!*bad_since)
		*bad_since = now;
	if (skipped <= 0 && now - *bad_since < 1000000000)
		return;
	*bad_since = now;
	end_all_corrupt(c);
}

static void *read_responses(void *arg)
{
	struct shmrt_client *c = arg;
	uint32_t seen = c->seen_epoch;
	_Atomic uint64_t *dropped = &c->st->clients[c->slot].dropped;
	uint64_t seen_dropped = c->seen_dropped;
	int64_t bad_since = 0; /* when the response ring was first seen corrupt */
	while (!atomic_load(&c->closing)) {
		const void *rec;
		size_t len;
		int rc = shmrt_ring_peek(c->resp, &rec, &len, 20 * 1000000);
		if (rc != -EBADMSG)
			bad_since = 0;
		if (rc == 0) {
			deliver(c, rec, len);
			shmrt_ring_release(c->resp);
		} else if (rc == -EOWNERDEAD) {
			shmrt_ring_release(c->resp);
		} else if (rc != -ETIMEDOUT) {
			if (rc == -EBADMSG)
				ring_corrupted(c, &bad_since);
			usleep(10000); /* no tokenizer now (-EPIPE): one may come back */
		}
		/* A header rewritten: a new tokenizer could not open the ring
		 * and dropped our chunks meanwhile. Not while records flow:
		 * the tokenizer's handle read the header once. */
		if (rc && ring_repair(c->resp))
			end_all_corrupt(c);
		uint64_t d = atomic_load_explicit(dropped, memory_order_acquire);
		if (d != seen_dropped) {
			/* the tokenizer dropped chunks of ours (proto.h):
			 * which requests lost one is unknown, so all end */
			pthread_mutex_lock(&c->mu);
			fail_stale(c, 1, -ENOBUFS);
			pthread_cond_broadcast(&c->cv);
			pthread_mutex_unlock(&c->mu);
			seen_dropped = d;
		}
		struct shmrt_arena_info info;
		uint32_t epoch = atomic_load_explicit(&c->st->epoch, memory_order_acquire);
		int gone = shmrt_arena_info(c->arena, &info) == 0 && !info.owner_alive;
		/* a FAILED runtime answers nobody again, whatever the state's
		 * epoch (a peer may have rewritten it) says */
		int failed = shmrt_arena_health(c->arena, NULL) == SHMRT_HEALTH_FAILED;
		if (epoch != seen || gone || failed) {
			pthread_mutex_lock(&c->mu);
			c->dead |= gone;
			fail_stale(c, gone || failed, gone ? -EPIPE : -ECONNRESET);
			pthread_cond_broadcast(&c->cv);
			pthread_mutex_unlock(&c->mu);
			seen = epoch;
		}
	}
	return NULL;
}

/* Takes a free client slot (or one whose owner died). */
static int take_slot(struct shmrt_client *c)
{
	struct shmrt_proc_id me;
	int rc = shmrt_proc_identify(0, &me);
	if (rc)
		return shmrt_fail(-rc, "cannot read this process's identity");
	/* read once, kept within the array (rt_state_get checked it before) */
	unsigned n = *(volatile uint32_t *)&c->st->max_clients;
	n = n < RT_MAX_CLIENTS ? n : RT_MAX_CLIENTS;
	for (unsigned i = 0; i < n; i++) {
		struct rt_client_slot *s = &c->st->clients[i];
		uint64_t owner = atomic_load(&s->owner);
		if (owner) {
			struct shmrt_proc_id id = {.pid = (int32_t)owner, .start_time = s->owner_start};
			if (shmrt_proc_alive(&id) || !atomic_compare_exchange_strong(&s->owner, &owner, 0))
				continue;
		}
		uint64_t zero = 0;
		if (!atomic_compare_exchange_strong(&s->owner, &zero, (uint64_t)me.pid))
			continue;
		s->owner_start = me.start_time;
		/* a dead owner's ring: its consumer handle is gone, ours takes over */
		if ((rc = rt_ring_open(c->arena, "responses", i, SHMRT_RING_CONSUMER, 0, &c->resp))) {
			atomic_store(&s->owner, 0);
			return rc;
		}
		c->slot = i;
		return 0;
	}
	return shmrt_fail(EBUSY, "every client slot of the runtime (%u) is taken", n);
}

int shmrt_client_attach(struct shmrt_client **out, const char *name)
{
	shmrt_clear_error();
	*out = NULL;
	struct shmrt_client *c = calloc(1, sizeof(*c));
	if (!c)
		return shmrt_fail(ENOMEM, "no memory");
	c->slot = UINT32_MAX;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	int rc = shmrt_arena_attach(&c->arena, name);
	if (!rc)
		rc = rt_state_get(c->arena, &c->st);
	if (!rc) /* first: with every slot taken, that is the error */
		rc = take_slot(c);
	if (!rc)
		rc = rt_ring_open(c->arena, "submit", 0, SHMRT_RING_PRODUCER, 0, &c->submit);
	if (!rc) {
		c->seen_epoch = atomic_load_explicit(&c->st->epoch, memory_order_acquire);
		c->seen_dropped = atomic_load_explicit(&c->st->clients[c->slot].dropped, memory_order_acquire);
	}
	if (!rc && (rc = -pthread_create(&c->reader, NULL, read_responses, c)))
		shmrt_fail(-rc, "cannot start the client's thread");
	if (rc) {
		c->closing = 1;
		shmrt_client_detach(c);
		return rc;
	}
	*out = c;
	return 0;
}

static void free_pending(struct pending *p)
{
	for (struct chunk *ch = p->head, *n; ch; ch = n) {
		n = ch->next;
		free(ch);
	}
	free(p);
}

void shmrt_client_detach(struct shmrt_client *c)
{
	if (!c)
		return;
	set_text(NULL);
	if (!atomic_exchange(&c->closing, 1))
		pthread_join(c->reader, NULL);
	for (size_t i = 0; i < c->reqs.cap; i++)
		if (c->reqs.keys[i])
			free_pending(c->reqs.vals[i]);
	rt_map_free(&c->reqs);
	if (c->resp)
		shmrt_ring_close(c->resp);
	if (c->submit)
		shmrt_ring_close(c->submit);
	if (c->slot != UINT32_MAX)
		atomic_store(&c->st->clients[c->slot].owner, 0);
	if (c->arena)
		shmrt_arena_detach(c->arena);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

int shmrt_client_health(const struct shmrt_client *c, unsigned *progress)
{
	struct shmrt_arena_info info;
	if (shmrt_arena_info(c->arena, &info) == 0 && !info.owner_alive)
		return shmrt_fail(EPIPE, "the runtime '%s' is gone (its supervisor stopped)", info.name);
	return shmrt_arena_health(c->arena, progress);
}

/* Copies a fixed-size shared string, NUL-terminated whatever the arena holds. */
static void copy_shared_string(char *dst, const char *src, size_t size)
{
	memcpy(dst, src, size - 1);
	dst[size - 1] = '\0';
}

int shmrt_client_info(const struct shmrt_client *c, struct shmrt_runtime_info *out)
{
	const struct rt_state *st = c->st;
	struct shmrt_arena_info ai;
	int rc = shmrt_arena_info(c->arena, &ai);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	_Static_assert(sizeof(out->model_dir) == sizeof(st->model_dir), "model_dir size");
	_Static_assert(sizeof(out->backend) == sizeof(st->backend), "backend size");
	copy_shared_string(out->model_dir, st->model_dir, sizeof(out->model_dir));
	copy_shared_string(out->backend, st->backend, sizeof(out->backend));
	out->workers = (int)st->n_workers;
	out->max_seqs = st->max_seqs;
	out->max_batch_tokens = st->max_batch_tokens;
	out->max_model_len = st->max_model_len;
	out->block_size = st->block_size;
	out->kv_blocks = st->num_blocks;
	out->max_clients = (int)st->max_clients;
	out->vocab_size = st->model.vocab_size;
	out->arena_bytes = ai.bytes;
	return 0;
}

static void ring_usage(const struct shmrt_client *c, const char *name, unsigned index, struct shmrt_ring_usage *u)
{
	if (rt_ring_usage(c->arena, name, index, &u->used, &u->capacity))
		u->used = u->capacity = 0;
}

int shmrt_client_stats(const struct shmrt_client *c, struct shmrt_runtime_stats *out)
{
	const struct rt_sched_figures *f = &c->st->sched;
	memset(out, 0, sizeof(*out));
	int h = shmrt_arena_health(c->arena, &out->progress);
	if (h < 0)
		return h;
	out->health = h;
	out->waiting = (int)atomic_load(&f->n_waiting);
	out->running = (int)atomic_load(&f->n_running);
	out->kv_blocks_used = (int)atomic_load(&f->blocks_used);
	out->kv_blocks_free = (int)atomic_load(&f->blocks_free);
	out->steps = atomic_load(&f->steps);
	out->tokens = atomic_load(&f->tokens);
	out->preemptions = atomic_load(&f->preemptions);
	out->finished = atomic_load(&f->finished);
	out->requests_in = atomic_load(&c->st->requests_in);
	out->requests_out = atomic_load(&c->st->requests_out);
	out->restarts = atomic_load(&c->st->restarts);
	ring_usage(c, "submit", 0, &out->rings.submit);
	ring_usage(c, "tokens", 0, &out->rings.tokens);
	ring_usage(c, "step", 0, &out->rings.step);
	ring_usage(c, "sampled", 0, &out->rings.sampled);
	ring_usage(c, "events", 0, &out->rings.events);
	ring_usage(c, "responses", c->slot, &out->rings.responses);
	return 0;
}

static int check_request(const struct shmrt_request *r)
{
	if (!r || (!r->text == !r->tokens))
		return shmrt_fail(EINVAL, "a request needs text or token ids (not both)");
	if ((r->tokens && r->n_tokens < 1) || (r->text && r->text_len < 1))
		return shmrt_fail(EINVAL, "an empty prompt");
	if (r->max_tokens < 1)
		return shmrt_fail(EINVAL, "max_tokens %d must be >= 1", r->max_tokens);
	if (r->n_stop_ids < 0 || r->n_stop_ids > SHMRT_CLIENT_MAX_STOP_IDS || (r->n_stop_ids && !r->stop_ids))
		return shmrt_fail(EINVAL, "stop ids: 0 .. %d of them", SHMRT_CLIENT_MAX_STOP_IDS);
	if (!(r->temperature == r->temperature) || !(r->top_p == r->top_p))
		return shmrt_fail(EINVAL, "temperature and top_p must be numbers");
	return 0;
}

/* Writes the record; the request is registered before, so that a failure
 * of the runtime in between still ends it. */
static int send_request(struct shmrt_client *c, const struct shmrt_request *r, uint64_t id, uint32_t epoch)
{
	size_t payload = r->text ? r->text_len : (size_t)r->n_tokens * 4;
	size_t len = sizeof(struct rt_req) + payload;
	if (len > shmrt_ring_max_record(c->submit))
		return shmrt_fail(E2BIG, "the prompt (%zu bytes) is larger than the submit ring takes (%zu)",
				  payload, shmrt_ring_max_record(c->submit) - sizeof(struct rt_req));
	struct rt_req h = {.kind = r->text ? RT_REQ_TEXT : RT_REQ_IDS,
			   .flags = (r->add_special ? RT_REQ_ADD_SPECIAL : 0u) |
				    (r->ignore_eos ? RT_REQ_IGNORE_EOS : 0u),
			   .epoch = epoch, .id = id, .max_tokens = r->max_tokens, .top_k = r->top_k,
			   .temperature = r->temperature, .top_p = r->top_p, .seed = r->seed,
			   .n_stop = r->n_stop_ids, .payload_len = (uint32_t)payload};
	if (r->n_stop_ids)
		memcpy(h.stop_ids, r->stop_ids, sizeof(int32_t) * (size_t)r->n_stop_ids);
	void *buf;
	int rc = shmrt_ring_reserve(c->submit, len, &buf, (int64_t)5 * 1000000000);
	if (rc == -EBUSY) { /* a producer stuck in the ring's claim lock: the message names it */
		char why[256];
		snprintf(why, sizeof(why), "%s", shmrt_last_error());
		return shmrt_fail(EAGAIN, "the runtime's submit ring is blocked: %s", why);
	}
	if (rc)
		return rc == -ETIMEDOUT ? shmrt_fail(EAGAIN, "the runtime's submit ring stays full") : rc;
	memcpy(buf, &h, sizeof(h));
	memcpy((char *)buf + sizeof(h), r->text ? (const void *)r->text : (const void *)r->tokens, payload);
	return shmrt_ring_commit(c->submit, buf, len);
}

int shmrt_client_submit(struct shmrt_client *c, const struct shmrt_request *r, uint64_t *id)
{
	shmrt_clear_error();
	int rc = check_request(r);
	if (rc)
		return rc;
	uint32_t epoch = atomic_load_explicit(&c->st->epoch, memory_order_acquire);
	/* the health too: accepting lies in the state, which a peer may rewrite */
	int h = shmrt_arena_health(c->arena, NULL);
	if (!atomic_load(&c->st->accepting) || h != SHMRT_HEALTH_READY || c->dead) {
		char why[sizeof(c->st->reason)]; /* shared: bounded, control bytes shown as '?' */
		snprintf(why, sizeof(why), "%.*s", (int)strnlen(c->st->reason, sizeof(why) - 1), c->st->reason);
		printable(why, strlen(why));
		return shmrt_fail(EAGAIN, "the runtime is %s%s%s", c->dead ? "gone" : shmrt_health_name(h),
				  why[0] ? ": " : "", why);
	}
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return shmrt_fail(ENOMEM, "no memory");
	uint64_t seq = atomic_fetch_add(&c->st->clients[c->slot].next_seq, 1) + 1;
	p->id = (uint64_t)c->slot << 48 | (seq & ((UINT64_C(1) << 48) - 1));
	p->epoch = epoch;
	p->t_submit = shmrt_now_ns();
	pthread_mutex_lock(&c->mu);
	rc = rt_map_put(&c->reqs, p->id, p) ? shmrt_fail(ENOMEM, "no memory") : 0;
	pthread_mutex_unlock(&c->mu);
	if (rc) {
		free(p);
		return rc;
	}
	atomic_fetch_add(&c->st->requests_in, 1);
	if ((rc = send_request(c, r, p->id, epoch))) {
		atomic_fetch_add(&c->st->requests_out, 1);
		pthread_mutex_lock(&c->mu);
		free_pending(rt_map_del(&c->reqs, p->id));
		pthread_mutex_unlock(&c->mu);
		return rc;
	}
	/* The runtime failed while we sent: the reader may have ended the
	 * stale requests before this one was there to end. */
	pthread_mutex_lock(&c->mu);
	if (atomic_load_explicit(&c->st->epoch, memory_order_acquire) != epoch && !p->ended) {
		end_with(p, -ECONNRESET);
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	*id = p->id;
	return 0;
}

/* Sets the message of a failed request: the runtime's reason for it, else
 * what the status and the runtime's state say. */
static int reason_of(struct shmrt_client *c, int status, const char *reason)
{
	if (*reason)
		return shmrt_fail(-status, "%s", reason);
	/* the shared reason bounded by its field (a peer may leave no NUL),
	 * control bytes shown as '?' */
	char why[sizeof(c->st->reason)];
	snprintf(why, sizeof(why), "%.*s", (int)strnlen(c->st->reason, sizeof(why) - 1), c->st->reason);
	printable(why, strlen(why));
	if ((status == -ECONNRESET || status == -EPIPE) && why[0])
		return shmrt_fail(-status, "%s", why);
	if (status == -ECONNRESET || status == -EPIPE)
		return shmrt_fail(-status, "the runtime is gone");
	if (status == -EBADMSG) {
		pthread_mutex_lock(&c->mu);
		shmrt_fail(EBADMSG, "this client's response ring was found corrupt (%s; another process wrote "
			   "into the runtime's shared memory): its requests were ended", c->ring_error);
		pthread_mutex_unlock(&c->mu);
		return -EBADMSG;
	}
	if (status == -ENOBUFS)
		return shmrt_fail(ENOBUFS, "the runtime dropped responses to this client (its process did not "
				  "take them for a second, or its response ring was corrupt): its requests were ended");
	return status ? shmrt_fail(-status, "the request failed: %s", strerror(-status)) : 0;
}

int shmrt_client_next(struct shmrt_client *c, uint64_t id, struct shmrt_response *out, int64_t timeout_ns)
{
	shmrt_clear_error();
	set_text(NULL);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	int64_t ns = dl.tv_nsec + (timeout_ns < 0 ? 0 : timeout_ns % 1000000000);
	dl.tv_sec += (timeout_ns < 0 ? 0 : timeout_ns / 1000000000) + ns / 1000000000;
	dl.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&c->mu);
	struct pending *p = rt_map_get(&c->reqs, id);
	int rc = 0;
	while (p && !p->head && !rc) {
		if (timeout_ns < 0)
			pthread_cond_wait(&c->cv, &c->mu);
		else
			rc = pthread_cond_timedwait(&c->cv, &c->mu, &dl);
	}
	struct chunk *ch = p && p->head ? p->head : NULL;
	if (ch) {
		p->head = ch->next;
		if (!p->head)
			p->tail = NULL;
		if (ch->r.finish)
			rt_map_del(&c->reqs, id);
	}
	pthread_mutex_unlock(&c->mu);
	if (!p)
		return shmrt_fail(ENOENT, "no request %llu in flight", (unsigned long long)id);
	if (!ch)
		return shmrt_fail(ETIMEDOUT, "no news of request %llu in time", (unsigned long long)id);
	const struct rt_resp *r = &ch->r;
	*out = (struct shmrt_response){.id = id, .token = r->token, .text_len = r->text_len,
				       .finish = (enum shmrt_client_finish)r->finish, .status = r->status,
				       .n_prompt = r->n_prompt, .n_generated = r->n_generated};
	if (out->finish && out->status) /* the message, for the caller */
		reason_of(c, out->status, ch->text + out->text_len + 1);
	memmove(ch, ch->text, out->text_len + 1); /* the chunk's memory becomes the text */
	set_text((char *)ch);
	out->text = (char *)ch;
	if (out->finish) {
		out->first_token_s = p->t_first ? (double)(p->t_first - p->t_submit) * 1e-9 : 0;
		out->total_s = (double)(shmrt_now_ns() - p->t_submit) * 1e-9;
		free(p);
	}
	return 0;
}

int shmrt_client_cancel(struct shmrt_client *c, uint64_t id)
{
	shmrt_clear_error();
	pthread_mutex_lock(&c->mu);
	struct pending *p = rt_map_get(&c->reqs, id);
	uint32_t epoch = p ? p->epoch : 0;
	int ended = p && p->ended;
	pthread_mutex_unlock(&c->mu);
	if (!p)
		return shmrt_fail(ENOENT, "no request %llu in flight", (unsigned long long)id);
	if (ended)
		return 0;
	struct rt_req h = {.kind = RT_REQ_CANCEL, .epoch = epoch, .id = id};
	return shmrt_ring_send(c->submit, &h, sizeof(h), (int64_t)5 * 1000000000);
}

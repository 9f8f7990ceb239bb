/* The scheduler process: requests from the tokens ring into the
 * scheduler's logic (scheduler.h), one step plan at a time to the
 * workers, their sampled tokens back in, events to the tokenizer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/error.h"
#include "shmrt/ring.h"
#include "fail.h"
#include "child.h"
#include "scheduler.h"

struct sched_proc {
	struct rt_state *st;
	struct rt_proc *me;
	struct shmrt_sched *s;
	struct shmrt_ring *tokens, *step, *sampled, *events;
	struct shmrt_step_plan plan;
	struct shmrt_sched_event *ev;
	struct rt_event *out;
	int32_t *toks;
};

/* status != 0: the events end their requests with that error; reason
 * (reason_len bytes, kept when status != 0) is the first one's. */
static int send_events(struct sched_proc *p, const struct shmrt_sched_event *ev, int n, int status,
		       const char *reason, size_t reason_len)
{
	if (n <= 0)
		return 0;
	if (reason_len >= RT_REASON_MAX)
		reason_len = RT_REASON_MAX - 1;
	if (!status)
		reason_len = 0;
	size_t len = sizeof(struct rt_events) + (size_t)n * sizeof(struct rt_event) + reason_len;
	void *buf;
	int rc = shmrt_ring_reserve(p->events, len, &buf, SHMRT_WAIT_FOREVER);
	if (rc)
		return rc;
	struct rt_events *h = buf;
	struct rt_event *e = (void *)(h + 1);
	*h = (struct rt_events){.n = (uint32_t)n};
	for (int i = 0; i < n; i++)
		e[i] = (struct rt_event){.id = ev[i].id, .token = ev[i].token,
					 .finish = status ? RT_FINISH_ERROR : (int32_t)ev[i].finish,
					 .status = status, .n_prompt = ev[i].n_prompt,
					 .n_generated = ev[i].n_generated, .n_preempted = ev[i].n_preempted,
					 .reason_len = i == 0 ? (uint32_t)reason_len : 0};
	if (reason_len)
		memcpy((char *)(e + n), reason, reason_len);
	return shmrt_ring_commit(p->events, buf, len);
}

static int refuse(struct sched_proc *p, const struct rt_req *rq, int status, const char *reason, size_t reason_len)
{
	struct shmrt_sched_event ev = {.id = rq->id, .token = -1,
				       .n_prompt = rq->status ? 0 : (int32_t)(rq->payload_len / 4)};
	return send_events(p, &ev, 1, status, reason, reason_len);
}

static int take(struct sched_proc *p, const void *rec, size_t len)
{
	/* the header once, into our memory (proto.h: the arena is shared) */
	struct rt_req h;
	if (len < sizeof(h))
		return shmrt_fail(EBADMSG, "a malformed tokens record (%zu bytes)", len);
	memcpy(&h, rec, sizeof(h));
	const struct rt_req *rq = &h;
	if (rq->payload_len != len - sizeof(*rq) || (!rq->status && rq->payload_len % 4))
		return shmrt_fail(EBADMSG, "a malformed tokens record (%zu bytes)", len);
	if (rq->kind == RT_REQ_CANCEL) {
		struct shmrt_sched_event ev;
		return shmrt_sched_cancel(p->s, rq->id, &ev) == 1 ? send_events(p, &ev, 1, 0, NULL, 0) : 0;
	}
	if (rq->status) /* the tokenizer refused it: its reason is the payload */
		return refuse(p, rq, rq->status, (const char *)rec + sizeof(h), rq->payload_len);
	struct shmrt_sched_request r = {.id = rq->id, .prompt = (const int32_t *)((const char *)rec + sizeof(h)),
					.prompt_len = (int)(rq->payload_len / 4), .max_tokens = rq->max_tokens,
					.ignore_eos = rq->flags & RT_REQ_IGNORE_EOS, .temperature = rq->temperature,
					.top_p = rq->top_p, .top_k = rq->top_k, .seed = rq->seed};
	r.n_stop_ids = rq->n_stop >= 0 && rq->n_stop <= SHMRT_SCHED_MAX_STOP_IDS ? rq->n_stop : 0;
	memcpy(r.stop_ids, rq->stop_ids, sizeof(int32_t) * (size_t)r.n_stop_ids);
	int rc = shmrt_sched_submit(p->s, &r);
	return rc ? refuse(p, rq, rc, shmrt_last_error(), strlen(shmrt_last_error())) : 0;
}

/* Takes what the tokens ring holds, waiting up to timeout for the first. */
static int intake(struct sched_proc *p, int64_t timeout)
{
	for (;;) {
		const void *rec;
		size_t len;
		int rc = shmrt_ring_peek(p->tokens, &rec, &len, timeout);
		if (rc == -ETIMEDOUT || rc == -EAGAIN)
			return 0;
		if (rc)
			return rc;
		if ((rc = take(p, rec, len)) || (rc = shmrt_ring_release(p->tokens)))
			return rc;
		timeout = 0;
	}
}

/* A step where every sequence decodes one token: its own figures, free
 * of prefill, for the per-step overhead (bench/e2e_mp.c). */
static void publish_decode(struct sched_proc *p, const struct rt_step_times *t)
{
	const struct shmrt_step_plan *pl = &p->plan;
	if (pl->n_tokens != pl->n_seqs || pl->n_samples != pl->n_seqs)
		return;
	struct rt_sched_figures *f = &p->st->sched;
	atomic_fetch_add(&f->decode_seqs, (uint64_t)pl->n_seqs);
	atomic_fetch_add(&f->decode_step_ns_sum, t->step);
	atomic_fetch_add(&f->decode_worker_ns_sum, t->worker);
	atomic_fetch_add(&f->decode_plan_ns_sum, t->plan);
	atomic_fetch_add(&f->decode_to_worker_ns_sum, t->to_worker);
	atomic_fetch_add(&f->decode_back_ns_sum, t->back);
	atomic_fetch_add(&f->decode_post_ns_sum, t->post);
	atomic_fetch_add(&f->decode_steps, 1); /* last: a reader that sees it sees the sums */
}

static void publish(struct sched_proc *p, int64_t step_ns, int n_samples)
{
	struct shmrt_sched_stats s;
	struct rt_sched_figures *f = &p->st->sched;
	shmrt_sched_get_stats(p->s, &s);
	atomic_store(&f->n_waiting, s.n_waiting);
	atomic_store(&f->n_running, s.n_running);
	atomic_store(&f->blocks_used, s.blocks_used);
	atomic_store(&f->blocks_free, s.blocks_free);
	atomic_store(&f->steps, s.steps);
	atomic_store(&f->preemptions, s.preemptions);
	atomic_store(&f->finished, s.finished);
	if (step_ns) {
		atomic_fetch_add(&f->tokens, (uint64_t)n_samples);
		atomic_store(&f->last_step_ns, step_ns);
		atomic_fetch_add(&f->step_ns_sum, step_ns);
	}
}

/* One plan: to the workers, and its sampled tokens back. */
static int run_step(struct sched_proc *p)
{
	int64_t t0 = shmrt_now_ns(); /* a step's time: scheduling, rings, workers */
	int n = shmrt_sched_step(p->s, &p->plan);
	if (n <= 0)
		return n;
	size_t len = shmrt_step_plan_record_size(&p->plan);
	void *buf;
	int rc = shmrt_ring_reserve(p->step, len, &buf, SHMRT_WAIT_FOREVER);
	if (rc || (rc = shmrt_step_plan_serialize(&p->plan, buf, len, &len)) ||
	    (rc = shmrt_ring_commit(p->step, buf, len)))
		return rc;
	int64_t t_commit = shmrt_now_ns();
	/* Beating while the workers work: a hang is theirs, not ours. */
	const void *rec;
	while ((rc = shmrt_ring_peek(p->sampled, &rec, &len, RT_BEAT_NS)) == -ETIMEDOUT)
		rt_beat(p->me);
	int64_t t_got = shmrt_now_ns();
	if (rc)
		return rc;
	const struct rt_sampled *h = rec;
	if (len < sizeof(*h) || h->step != p->plan.step || h->n != p->plan.n_samples ||
	    (size_t)h->n * 4 != len - sizeof(*h))
		return shmrt_fail(EBADMSG, "sampled record of step %llu does not match the plan",
				  (unsigned long long)p->plan.step);
	memcpy(p->toks, h + 1, (size_t)h->n * 4);
	struct rt_step_times t = {.plan = t_commit - t0, .to_worker = h->recv_ns - t_commit, .worker = h->busy_ns,
				  .back = t_got - h->sent_ns};
	if ((rc = shmrt_ring_release(p->sampled)))
		return rc;
	int m = shmrt_sched_apply(p->s, p->toks, p->plan.n_samples, p->ev, p->plan.n_seqs);
	if (m < 0)
		return m;
	rc = send_events(p, p->ev, m, 0, NULL, 0);
	int64_t t_end = shmrt_now_ns();
	t.step = t_end - t0;
	t.post = t_end - t_got;
	publish_decode(p, &t);
	publish(p, t.step, p->plan.n_samples);
	atomic_fetch_add_explicit(&p->me->work, 1, memory_order_relaxed);
	return rc;
}

static int loop(struct sched_proc *p)
{
	for (int rc = 0;;) {
		rt_beat(p->me);
		struct shmrt_sched_stats s;
		shmrt_sched_get_stats(p->s, &s);
		int busy = s.n_waiting + s.n_running > 0;
		if ((rc = intake(p, busy ? 0 : RT_BEAT_NS)) || (rc = run_step(p)) < 0)
			return rc;
		if (!busy)
			publish(p, 0, 0);
	}
}

static int open_all(struct sched_proc *p, struct shmrt_arena *a)
{
	const struct rt_state *st = p->st;
	struct shmrt_sched_config c = {.num_blocks = st->num_blocks, .block_size = st->block_size,
				       .max_batch_tokens = st->max_batch_tokens, .max_seqs = st->max_seqs,
				       .max_seq_len = st->max_model_len, .vocab = st->model.vocab_size,
				       .n_eos = st->model.n_eos};
	memcpy(c.eos_ids, st->model.eos_token_ids, sizeof(c.eos_ids));
	int rc = shmrt_sched_create(&p->s, &c);
	if (!rc)
		rc = shmrt_step_plan_init(&p->plan, st->max_seqs, st->max_batch_tokens, st->num_blocks);
	p->ev = calloc((size_t)st->max_seqs, sizeof(*p->ev));
	p->toks = calloc((size_t)st->max_seqs, sizeof(*p->toks));
	if (!rc && (!p->ev || !p->toks))
		rc = shmrt_fail(ENOMEM, "no memory");
	if (!rc)
		rc = rt_ring_open(a, "tokens", 0, SHMRT_RING_CONSUMER, 0, &p->tokens);
	if (!rc)
		rc = rt_ring_open(a, "step", 0, SHMRT_RING_PRODUCER, 0, &p->step);
	if (!rc)
		rc = rt_ring_open(a, "sampled", 0, SHMRT_RING_CONSUMER, 0, &p->sampled);
	if (!rc)
		rc = rt_ring_open(a, "events", 0, SHMRT_RING_PRODUCER, 0, &p->events);
	return rc;
}

int rt_scheduler_run(struct shmrt_arena *a, struct rt_state *st)
{
	struct sched_proc p = {.st = st, .me = &st->procs[1]};
	atomic_store(&p.me->phase, RT_PHASE_LOADING);
	int rc = open_all(&p, a);
	if (!rc) {
		atomic_store(&p.me->phase, RT_PHASE_READY);
		rc = loop(&p);
	}
	struct shmrt_ring *rings[] = {p.tokens, p.step, p.sampled, p.events};
	for (int i = 0; i < 4; i++)
		if (rings[i])
			shmrt_ring_close(rings[i]);
	shmrt_step_plan_free(&p.plan);
	shmrt_sched_destroy(p.s);
	free(p.ev);
	free(p.toks);
	return rc;
}

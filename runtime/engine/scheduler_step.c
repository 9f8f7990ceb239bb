/* The scheduler's iteration: build a step plan (decodes, prompt chunks,
 * admissions, preemption), then apply what the workers sampled (stops). The
 * policy is described in scheduler.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "scheduler_impl.h"

static void preempt(struct shmrt_sched *s, int i)
{
	struct sched_seq *q = s->running[i];
	sched_release_blocks(s, q);
	sched_run_remove_at(s, i);
	q->n_computed = 0; /* recompute: prompt and generated tokens alike */
	q->n_preempted++;
	s->preemptions++;
	sched_wait_insert(s, q);
}

/* Makes room in the cache for at least one more token of running[i],
 * preempting the youngest running sequences not in the plan. may_self: it
 * may be that victim itself. Returns whether running[i] may go on (else it
 * was preempted, or waits). */
static bool make_room(struct shmrt_sched *s, int i, bool may_self, bool *preempted)
{
	struct sched_seq *q = s->running[i];
	while (shmrt_kvb_room(s->kv, q->slot) < 1) {
		int v = s->n_running - 1;
		while (v > i && s->running[v]->q_len)
			v--;
		if (v == i && !may_self)
			return false;
		preempt(s, v);
		*preempted = true;
		if (v == i)
			return false;
	}
	return true;
}

/* Puts n more tokens of q in the plan (their slots reserved). */
static void schedule(struct shmrt_sched *s, struct sched_seq *q, int n)
{
	/* Cannot fail: the caller checked the room. */
	(void)shmrt_kvb_append(s->kv, q->slot, n);
	q->q_len = n;
	q->sample = q->n_computed + n == q->n_tokens;
	s->plan[s->n_plan++] = (struct sched_entry){q, n};
	s->n_plan_samples += q->sample;
}

static int min3(int64_t a, int64_t b, int64_t c)
{
	int64_t m = a < b ? a : b;
	return (int)(m < c ? m : c);
}

/* 1. Running sequences with one token to compute, oldest first. */
static void plan_decodes(struct shmrt_sched *s, int *budget, bool *preempted)
{
	for (int i = 0; i < s->n_running && *budget > 0;) {
		struct sched_seq *q = s->running[i];
		if (q->q_len || q->n_tokens - q->n_computed != 1) {
			i++;
			continue;
		}
		if (!make_room(s, i, true, preempted))
			continue; /* it preempted itself: running[i] is the next one */
		schedule(s, q, 1);
		(*budget)--;
		i++;
	}
}

/* 2. Running sequences part-way through their prompt, oldest first. */
static void plan_chunks(struct shmrt_sched *s, int *budget, bool *preempted)
{
	for (int i = 0; i < s->n_running && *budget > 0; i++) {
		struct sched_seq *q = s->running[i];
		if (q->q_len)
			continue;
		if (!make_room(s, i, false, preempted))
			continue; /* no younger sequence to preempt: it waits */
		schedule(s, q, min3(q->n_tokens - q->n_computed, *budget, shmrt_kvb_room(s->kv, q->slot)));
		*budget -= q->q_len;
	}
}

/* 3. The waiting queue's head, in order, while its chunk fits. */
static void plan_admissions(struct shmrt_sched *s, int *budget)
{
	while (s->wait_head && s->n_running < s->cfg.max_seqs && *budget > 0) {
		struct sched_seq *q = s->wait_head;
		int n = min3(q->n_tokens, *budget, INT32_MAX);
		if (!shmrt_kvb_can_admit(s->kv, n, s->cfg.watermark_blocks))
			return; /* FCFS: nobody overtakes the head */
		sched_wait_remove(s, q);
		q->slot = s->free_slots[--s->n_free_slots];
		sched_run_insert(s, q);
		schedule(s, q, n);
		*budget -= n;
	}
}

static void fill_seq(const struct shmrt_sched *s, const struct sched_seq *q, struct shmrt_step_plan *p)
{
	struct shmrt_step_seq *e = &p->seqs[p->n_seqs++];
	int n_blocks;
	const int32_t *table = shmrt_kvb_table(s->kv, q->slot, &n_blocks, NULL);
	memset(e, 0, sizeof(*e));
	e->seq_id = q->id;
	e->q_start = p->n_tokens;
	e->q_len = q->q_len;
	e->ctx_len = q->n_computed + q->q_len;
	e->bt_start = p->n_blocks;
	e->n_blocks = n_blocks;
	e->sample = q->sample;
	/* The sampler's key is (seed, seq_id, step): seq_id 0, as in shmrt
	 * generate, so that a request's tokens depend on its seed alone, not on
	 * which requests came before it (OpenAI's and vLLM's seed). */
	e->params.seq_id = 0;
	if (q->sample) {
		e->params.temperature = q->req.temperature;
		e->params.top_p = q->req.top_p;
		e->params.top_k = q->req.top_k;
		e->params.seed = q->req.seed;
		e->params.step = (uint64_t)(q->n_tokens - q->prompt_len);
		p->n_samples++;
	}
	for (int j = 0; j < q->q_len; j++) {
		p->tokens[p->n_tokens + j] = q->tokens[q->n_computed + j];
		p->positions[p->n_tokens + j] = q->n_computed + j;
	}
	p->n_tokens += q->q_len;
	memcpy(p->block_ids + p->n_blocks, table, (size_t)n_blocks * sizeof(int32_t));
	p->n_blocks += n_blocks;
}

int shmrt_sched_step(struct shmrt_sched *s, struct shmrt_step_plan *p)
{
	if (s->in_flight)
		return shmrt_fail(EBUSY, "scheduler: step %llu is in flight; apply it first",
				  (unsigned long long)s->steps);
	if (p->cap_seqs < s->cfg.max_seqs || p->cap_tokens < s->cfg.max_batch_tokens ||
	    p->num_blocks < s->cfg.num_blocks)
		return shmrt_fail(EINVAL, "scheduler: plan capacities (%d sequences, %d tokens, %d blocks) below "
					  "the scheduler's (%d, %d, %d)",
				  p->cap_seqs, p->cap_tokens, p->num_blocks, s->cfg.max_seqs,
				  s->cfg.max_batch_tokens, s->cfg.num_blocks);
	int budget = s->cfg.max_batch_tokens;
	bool preempted = false;
	s->n_plan = s->n_plan_samples = 0;
	plan_decodes(s, &budget, &preempted);
	plan_chunks(s, &budget, &preempted);
	if (!preempted) /* blocks ran short this step: admit none */
		plan_admissions(s, &budget);

	p->n_seqs = p->n_tokens = p->n_blocks = p->n_samples = 0;
	p->block_size = s->cfg.block_size;
	if (!s->n_plan)
		return 0;
	p->step = ++s->steps;
	for (int i = 0; i < s->n_plan; i++)
		fill_seq(s, s->plan[i].seq, p);
	s->in_flight = true;
	return p->n_seqs;
}

static enum shmrt_finish stop_reason(const struct shmrt_sched *s, const struct sched_seq *q, int32_t tok)
{
	if (!q->req.ignore_eos)
		for (int i = 0; i < s->cfg.n_eos; i++)
			if (tok == s->cfg.eos_ids[i])
				return SHMRT_FINISH_STOP;
	for (int i = 0; i < q->req.n_stop_ids; i++)
		if (tok == q->req.stop_ids[i])
			return SHMRT_FINISH_STOP;
	return q->n_tokens - q->prompt_len >= q->max_tokens ? SHMRT_FINISH_LENGTH : SHMRT_FINISH_NONE;
}

static void finish(struct shmrt_sched *s, struct sched_seq *q)
{
	sched_release_blocks(s, q);
	q->done = true;
	s->finished++;
}

/* Drops the finished sequences from the running list, keeping its order. */
static void sweep_done(struct shmrt_sched *s)
{
	int n = 0;
	for (int i = 0; i < s->n_running; i++) {
		struct sched_seq *q = s->running[i];
		if (q->done)
			free(q);
		else
			s->running[n++] = q;
	}
	s->n_running = n;
}

int shmrt_sched_apply(struct shmrt_sched *s, const int32_t *tokens, int n, struct shmrt_sched_event *ev,
		      int cap_ev)
{
	if (!s->in_flight)
		return shmrt_fail(EINVAL, "scheduler: no step in flight to apply");
	if (n != s->n_plan_samples || cap_ev < s->n_plan)
		return shmrt_fail(EINVAL, "scheduler: step %llu samples %d tokens (got %d) and needs room for %d "
					  "events (got %d)",
				  (unsigned long long)s->steps, s->n_plan_samples, n, s->n_plan, cap_ev);
	for (int i = 0; i < n; i++)
		if (tokens[i] < 0 || (s->cfg.vocab && tokens[i] >= s->cfg.vocab))
			return shmrt_fail(EBADMSG, "scheduler: sampled token %d of step %llu is %d, outside the "
						   "vocabulary (%d)",
					  i, (unsigned long long)s->steps, tokens[i], s->cfg.vocab);
	int k = 0, n_ev = 0;
	for (int i = 0; i < s->n_plan; i++) {
		struct sched_seq *q = s->plan[i].seq;
		q->n_computed += q->q_len;
		q->q_len = 0;
		int32_t tok = q->sample ? tokens[k++] : -1;
		q->sample = false;
		if (q->cancelled) {
			sched_event(q, -1, SHMRT_FINISH_CANCELLED, &ev[n_ev++]);
			finish(s, q);
			continue;
		}
		if (tok < 0)
			continue; /* a prompt chunk that does not reach the end */
		q->tokens[q->n_tokens++] = tok;
		enum shmrt_finish f = stop_reason(s, q, tok);
		sched_event(q, tok, f, &ev[n_ev++]);
		if (f != SHMRT_FINISH_NONE)
			finish(s, q);
	}
	sweep_done(s);
	s->n_plan = s->n_plan_samples = 0;
	s->in_flight = false;
	return n_ev;
}

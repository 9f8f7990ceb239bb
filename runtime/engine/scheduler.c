/* The scheduler: configuration, requests in (submit) and out (cancel), its
 * queues and their invariants. The iteration itself (step, apply) is in
 * scheduler_step.c. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "scheduler_impl.h"

static int check_config(const struct shmrt_sched_config *c)
{
	if (c->num_blocks < 1 || c->block_size < 1)
		return shmrt_fail(EINVAL, "scheduler: num_blocks %d and block_size %d must be >= 1", c->num_blocks,
				  c->block_size);
	if (c->max_seqs < 1)
		return shmrt_fail(EINVAL, "scheduler: max_seqs %d must be >= 1", c->max_seqs);
	/* Every running sequence decodes one token a step: they must all fit. */
	if (c->max_batch_tokens < c->max_seqs)
		return shmrt_fail(EINVAL, "scheduler: max_batch_tokens %d must be >= max_seqs %d",
				  c->max_batch_tokens, c->max_seqs);
	if (c->watermark_blocks < 0 || c->watermark_blocks >= c->num_blocks)
		return shmrt_fail(EINVAL, "scheduler: watermark_blocks %d must be in 0 .. num_blocks-1 (%d)",
				  c->watermark_blocks, c->num_blocks - 1);
	if (c->max_seq_len < 0 || c->vocab < 0)
		return shmrt_fail(EINVAL, "scheduler: max_seq_len %d and vocab %d must be >= 0", c->max_seq_len,
				  c->vocab);
	if (c->n_eos < 0 || c->n_eos > SHMRT_SCHED_MAX_EOS)
		return shmrt_fail(EINVAL, "scheduler: n_eos %d must be in 0 .. %d", c->n_eos, SHMRT_SCHED_MAX_EOS);
	return 0;
}

int shmrt_sched_create(struct shmrt_sched **out, const struct shmrt_sched_config *cfg)
{
	*out = NULL;
	int rc = check_config(cfg);
	if (rc)
		return rc;
	struct shmrt_sched *s = calloc(1, sizeof(*s));
	if (!s)
		return shmrt_fail(ENOMEM, "scheduler: out of memory");
	s->cfg = *cfg;
	int64_t cache_tokens = (int64_t)cfg->num_blocks * cfg->block_size;
	if (!s->cfg.max_seq_len || s->cfg.max_seq_len > cache_tokens)
		s->cfg.max_seq_len = cache_tokens > INT32_MAX ? INT32_MAX : (int)cache_tokens;
	int table_blocks = (int)((s->cfg.max_seq_len + (int64_t)cfg->block_size - 1) / cfg->block_size);
	rc = shmrt_kvb_create(&s->kv, cfg->num_blocks, cfg->block_size, cfg->max_seqs, table_blocks);
	if (rc) {
		free(s);
		return rc;
	}
	s->running = calloc((size_t)cfg->max_seqs, sizeof(*s->running));
	s->free_slots = malloc((size_t)cfg->max_seqs * sizeof(int));
	s->plan = calloc((size_t)cfg->max_seqs, sizeof(*s->plan));
	if (!s->running || !s->free_slots || !s->plan) {
		shmrt_sched_destroy(s);
		return shmrt_fail(ENOMEM, "scheduler: out of memory");
	}
	for (int i = 0; i < cfg->max_seqs; i++)
		s->free_slots[i] = cfg->max_seqs - 1 - i;
	s->n_free_slots = cfg->max_seqs;
	*out = s;
	return 0;
}

void shmrt_sched_destroy(struct shmrt_sched *s)
{
	if (!s)
		return;
	while (s->wait_head) {
		struct sched_seq *q = s->wait_head;
		sched_wait_remove(s, q);
		free(q);
	}
	for (int i = 0; i < s->n_running; i++)
		free(s->running[i]);
	shmrt_kvb_destroy(s->kv);
	free(s->running);
	free(s->free_slots);
	free(s->plan);
	free(s);
}

void sched_wait_insert(struct shmrt_sched *s, struct sched_seq *q)
{
	/* From the front: a preempted sequence belongs there (it is older
	 * than anything never admitted), a new one goes to the back. */
	struct sched_seq *after = NULL, *before = s->wait_head;
	if (s->wait_tail && s->wait_tail->arrival < q->arrival) {
		after = s->wait_tail;
		before = NULL;
	} else {
		while (before && before->arrival < q->arrival) {
			after = before;
			before = before->next;
		}
	}
	q->prev = after;
	q->next = before;
	if (after)
		after->next = q;
	else
		s->wait_head = q;
	if (before)
		before->prev = q;
	else
		s->wait_tail = q;
	s->n_waiting++;
}

void sched_wait_remove(struct shmrt_sched *s, struct sched_seq *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		s->wait_head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		s->wait_tail = q->prev;
	q->prev = q->next = NULL;
	s->n_waiting--;
}

void sched_run_insert(struct shmrt_sched *s, struct sched_seq *q)
{
	int i = s->n_running;
	while (i > 0 && s->running[i - 1]->arrival > q->arrival) {
		s->running[i] = s->running[i - 1];
		i--;
	}
	s->running[i] = q;
	s->n_running++;
}

void sched_run_remove_at(struct shmrt_sched *s, int i)
{
	memmove(&s->running[i], &s->running[i + 1], (size_t)(s->n_running - i - 1) * sizeof(*s->running));
	s->n_running--;
}

void sched_release_blocks(struct shmrt_sched *s, struct sched_seq *q)
{
	if (q->slot < 0)
		return;
	shmrt_kvb_release(s->kv, q->slot);
	s->free_slots[s->n_free_slots++] = q->slot;
	q->slot = -1;
}

void sched_event(const struct sched_seq *q, int32_t token, enum shmrt_finish f, struct shmrt_sched_event *ev)
{
	ev->id = q->id;
	ev->token = token;
	ev->finish = f;
	ev->n_prompt = q->prompt_len;
	ev->n_generated = q->n_tokens - q->prompt_len;
	ev->n_preempted = q->n_preempted;
}

static int check_request(const struct shmrt_sched *s, const struct shmrt_sched_request *r)
{
	if (!r->prompt || r->prompt_len < 1 || r->max_tokens < 1)
		return shmrt_fail(EINVAL, "request %llu: prompt of %d tokens, max_tokens %d: both must be >= 1",
				  (unsigned long long)r->id, r->prompt_len, r->max_tokens);
	if (r->n_stop_ids < 0 || r->n_stop_ids > SHMRT_SCHED_MAX_STOP_IDS)
		return shmrt_fail(EINVAL, "request %llu: %d stop ids, at most %d", (unsigned long long)r->id,
				  r->n_stop_ids, SHMRT_SCHED_MAX_STOP_IDS);
	if (!isfinite(r->temperature) || !isfinite(r->top_p))
		return shmrt_fail(EINVAL, "request %llu: temperature and top_p must be finite",
				  (unsigned long long)r->id);
	for (int i = 0; i < r->prompt_len; i++)
		if (r->prompt[i] < 0 || (s->cfg.vocab && r->prompt[i] >= s->cfg.vocab))
			return shmrt_fail(EINVAL, "request %llu: prompt token %d is %d, outside the vocabulary (%d)",
					  (unsigned long long)r->id, i, r->prompt[i], s->cfg.vocab);
	int64_t total = (int64_t)r->prompt_len + r->max_tokens;
	if (total > s->cfg.max_seq_len)
		return shmrt_fail(E2BIG, "request %llu: prompt %d + max_tokens %d exceeds the maximum length %d",
				  (unsigned long long)r->id, r->prompt_len, r->max_tokens, s->cfg.max_seq_len);
	/* Alone in the cache it must fit, or it could never finish. */
	if (shmrt_kvb_blocks_for(s->kv, total) + s->cfg.watermark_blocks > s->cfg.num_blocks)
		return shmrt_fail(E2BIG, "request %llu: %lld tokens need %lld KV blocks; the cache has %d (%d kept free)",
				  (unsigned long long)r->id, (long long)total,
				  (long long)shmrt_kvb_blocks_for(s->kv, total), s->cfg.num_blocks,
				  s->cfg.watermark_blocks);
	return 0;
}

int shmrt_sched_submit(struct shmrt_sched *s, const struct shmrt_sched_request *r)
{
	int rc = check_request(s, r);
	if (rc)
		return rc;
	size_t cap = (size_t)r->prompt_len + (size_t)r->max_tokens;
	struct sched_seq *q = calloc(1, sizeof(*q) + cap * sizeof(int32_t));
	if (!q)
		return shmrt_fail(ENOMEM, "request %llu: out of memory", (unsigned long long)r->id);
	q->id = r->id;
	q->arrival = s->next_arrival++;
	q->slot = -1;
	q->prompt_len = r->prompt_len;
	q->max_tokens = r->max_tokens;
	q->n_tokens = r->prompt_len;
	q->req = *r;
	q->req.prompt = NULL;
	memcpy(q->tokens, r->prompt, (size_t)r->prompt_len * sizeof(int32_t));
	sched_wait_insert(s, q);
	return 0;
}

int shmrt_sched_cancel(struct shmrt_sched *s, uint64_t id, struct shmrt_sched_event *ev)
{
	/* Linear: cancels are rare next to steps. */
	for (int i = 0; i < s->n_running; i++) {
		struct sched_seq *q = s->running[i];
		if (q->id != id)
			continue;
		if (q->q_len) { /* in the plan in flight: apply ends it */
			q->cancelled = true;
			return 0;
		}
		sched_release_blocks(s, q);
		sched_run_remove_at(s, i);
		sched_event(q, -1, SHMRT_FINISH_CANCELLED, ev);
		free(q);
		s->finished++;
		return 1;
	}
	for (struct sched_seq *q = s->wait_head; q; q = q->next) {
		if (q->id != id)
			continue;
		sched_wait_remove(s, q);
		sched_event(q, -1, SHMRT_FINISH_CANCELLED, ev);
		free(q);
		s->finished++;
		return 1;
	}
	return shmrt_fail(ENOENT, "cancel: no request %llu", (unsigned long long)id);
}

void shmrt_sched_get_stats(const struct shmrt_sched *s, struct shmrt_sched_stats *st)
{
	st->n_waiting = s->n_waiting;
	st->n_running = s->n_running;
	st->blocks_used = shmrt_kvb_num_used(s->kv);
	st->blocks_free = shmrt_kvb_num_free(s->kv);
	st->steps = s->steps;
	st->preemptions = s->preemptions;
	st->finished = s->finished;
}

static int check_seq(const struct shmrt_sched *s, const struct sched_seq *q)
{
	if (q->n_computed < 0 || q->n_computed > q->n_tokens || q->n_tokens < q->prompt_len ||
	    q->n_tokens > q->prompt_len + q->max_tokens)
		return shmrt_fail(EFAULT, "scheduler: request %llu has %d tokens, %d computed (prompt %d, max %d)",
				  (unsigned long long)q->id, q->n_tokens, q->n_computed, q->prompt_len,
				  q->max_tokens);
	if (q->slot < 0) {
		if (q->n_computed || q->q_len)
			return shmrt_fail(EFAULT, "scheduler: waiting request %llu has %d computed, %d planned",
					  (unsigned long long)q->id, q->n_computed, q->q_len);
		return 0;
	}
	int n_blocks;
	int64_t n_tok;
	shmrt_kvb_table(s->kv, q->slot, &n_blocks, &n_tok);
	if (n_tok != q->n_computed + q->q_len)
		return shmrt_fail(EFAULT, "scheduler: request %llu's table holds %lld tokens, not %d + %d",
				  (unsigned long long)q->id, (long long)n_tok, q->n_computed, q->q_len);
	if (!s->in_flight && q->n_computed >= q->n_tokens)
		return shmrt_fail(EFAULT, "scheduler: running request %llu has nothing left to compute",
				  (unsigned long long)q->id);
	return 0;
}

int shmrt_sched_check(const struct shmrt_sched *s)
{
	int rc = shmrt_kvb_check(s->kv);
	if (rc)
		return rc;
	if (s->n_running + s->n_free_slots != s->cfg.max_seqs)
		return shmrt_fail(EFAULT, "scheduler: %d running + %d free tables != max_seqs %d", s->n_running,
				  s->n_free_slots, s->cfg.max_seqs);
	bool *held = calloc((size_t)s->cfg.max_seqs, sizeof(bool));
	if (!held)
		return shmrt_fail(ENOMEM, "scheduler check: out of memory");
	for (int i = 0; i < s->n_running && !rc; i++) {
		const struct sched_seq *q = s->running[i];
		if (i && s->running[i - 1]->arrival >= q->arrival)
			rc = shmrt_fail(EFAULT, "scheduler: running list out of arrival order at %d", i);
		else if (q->slot < 0 || q->slot >= s->cfg.max_seqs)
			rc = shmrt_fail(EFAULT, "scheduler: running request %llu has table %d",
					(unsigned long long)q->id, q->slot);
		else if (held[q->slot])
			rc = shmrt_fail(EFAULT, "scheduler: table %d is held twice", q->slot);
		else {
			held[q->slot] = true;
			rc = check_seq(s, q);
		}
	}
	free(held);
	if (rc)
		return rc;
	int n = 0;
	for (const struct sched_seq *q = s->wait_head; q; q = q->next, n++) {
		if (q->prev && q->prev->arrival >= q->arrival)
			return shmrt_fail(EFAULT, "scheduler: waiting queue out of arrival order at %d", n);
		if (q->slot != -1)
			return shmrt_fail(EFAULT, "scheduler: waiting request %llu holds table %d",
					  (unsigned long long)q->id, q->slot);
		if ((rc = check_seq(s, q)))
			return rc;
	}
	if (n != s->n_waiting)
		return shmrt_fail(EFAULT, "scheduler: %d waiting, counted %d", s->n_waiting, n);
	return 0;
}

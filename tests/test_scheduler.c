/* The continuous-batching scheduler (runtime/scheduler*.c).
 *
 * Unit tests walk small cases step by step: a prompt prefilled then
 * decoded, chunked prefill, decodes before prompts, stops, cancellation,
 * preemption by recompute, FCFS head-of-line, API misuse.
 *
 * The simulation runs thousands of requests (random prompt and output
 * lengths, stop ids, arrivals over time, random cancels) through a fake
 * model and a fake KV cache. Each plan goes through its ring record
 * (serialize, parse) to the fake worker, which writes every token into the
 * cache slots its block table names, tagged with request and position, and
 * computes the next token from the sequence's whole history *as read back
 * from the cache through the block table*: so a block given to two
 * sequences, a table that misses a token, or a recompute that does not
 * rebuild the cache, changes the output. Checked: every request ends once,
 * with exactly the tokens (and stop reason) of a reference computed
 * directly from the fake model; cancelled ones with a prefix of them; no
 * plan exceeds max_batch_tokens, max_seqs or the cache; the scheduler's
 * and block manager's invariants after every step; first admissions in
 * arrival order; tight caches preempt, and a run with an unlimited cache
 * gives the same outputs. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "scheduler.h"
#include "shmrt/error.h"
#include "array_size.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}
static int rnd_in(int lo, int hi) /* inclusive */
{
	return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

#define VOCAB 512
#define EOS_A 1
#define EOS_B 2

/* The fake model: the next token is a hash of the whole history. */
static int32_t fake_next(const int32_t *tok, int n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (int i = 0; i < n; i++) {
		h ^= (uint32_t)tok[i];
		h *= 0x100000001b3u;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9u;
	h ^= h >> 32;
	return (int32_t)(h % VOCAB);
}

static struct shmrt_sched_config base_config(int num_blocks, int bs, int max_batch_tokens, int max_seqs)
{
	struct shmrt_sched_config c = {
		.num_blocks = num_blocks,
		.block_size = bs,
		.max_batch_tokens = max_batch_tokens,
		.max_seqs = max_seqs,
		.vocab = VOCAB,
		.n_eos = 2,
		.eos_ids = {EOS_A, EOS_B},
	};
	return c;
}

static struct shmrt_sched *make(const struct shmrt_sched_config *c, struct shmrt_step_plan *p)
{
	struct shmrt_sched *s;
	CHECK_OK(shmrt_sched_create(&s, c));
	CHECK_OK(shmrt_step_plan_init(p, c->max_seqs, c->max_batch_tokens, c->num_blocks));
	return s;
}

static struct shmrt_sched_request req(uint64_t id, const int32_t *prompt, int n, int max_tokens)
{
	struct shmrt_sched_request r = {.id = id, .prompt = prompt, .prompt_len = n, .max_tokens = max_tokens,
					.temperature = 0.7f, .top_p = 0.9f, .top_k = 40, .seed = 1234};
	return r;
}

/* Applies the plan with the given token for every sampling sequence. */
static int apply_all(struct shmrt_sched *s, const struct shmrt_step_plan *p, int32_t tok,
		     struct shmrt_sched_event *ev)
{
	int32_t toks[256];
	for (int i = 0; i < p->n_samples; i++)
		toks[i] = tok;
	int n = shmrt_sched_apply(s, toks, p->n_samples, ev, p->n_seqs);
	CHECK(n >= 0, "apply: %s", shmrt_last_error());
	CHECK_OK(shmrt_sched_check(s));
	return n;
}

static const int32_t prompt20[20] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
				     20, 21, 22, 23, 24, 25, 26, 27, 28, 29};

/* ---- unit tests ---------------------------------------------------------- */

static void test_config_errors(void)
{
	struct shmrt_sched *s;
	struct shmrt_sched_config c = base_config(16, 16, 64, 8);
	c.max_batch_tokens = 4;
	CHECK(shmrt_sched_create(&s, &c) == -EINVAL && strstr(shmrt_last_error(), "max_batch_tokens"),
	      "budget below max_seqs: %s", shmrt_last_error());
	c = base_config(16, 16, 64, 8);
	c.watermark_blocks = 16;
	CHECK(shmrt_sched_create(&s, &c) == -EINVAL, "watermark = all blocks");
	c = base_config(0, 16, 64, 8);
	CHECK(shmrt_sched_create(&s, &c) == -EINVAL, "no blocks");
	c = base_config(16, 16, 64, 8);
	c.n_eos = 9;
	CHECK(shmrt_sched_create(&s, &c) == -EINVAL, "too many EOS ids");
}

static void test_submit_errors(void)
{
	struct shmrt_step_plan p;
	struct shmrt_sched_config c = base_config(4, 4, 16, 2); /* 16 tokens of cache */
	c.max_seq_len = 12;
	struct shmrt_sched *s = make(&c, &p);
	struct shmrt_sched_request r = req(1, prompt20, 8, 5);
	CHECK(shmrt_sched_submit(s, &r) == -E2BIG, "13 tokens > max_seq_len 12");
	c.max_seq_len = 0;
	c.watermark_blocks = 1;
	shmrt_sched_destroy(s);
	shmrt_step_plan_free(&p);
	s = make(&c, &p);
	r = req(1, prompt20, 8, 5);
	CHECK(shmrt_sched_submit(s, &r) == -E2BIG && strstr(shmrt_last_error(), "KV blocks"),
	      "4 blocks + 1 kept free > 4: %s", shmrt_last_error());
	r = req(1, prompt20, 8, 4);
	CHECK_OK(shmrt_sched_submit(s, &r));
	r = req(2, prompt20, 0, 4);
	CHECK(shmrt_sched_submit(s, &r) == -EINVAL, "empty prompt");
	r = req(2, prompt20, 4, 0);
	CHECK(shmrt_sched_submit(s, &r) == -EINVAL, "max_tokens 0");
	int32_t bad[2] = {5, VOCAB};
	r = req(2, bad, 2, 4);
	CHECK(shmrt_sched_submit(s, &r) == -EINVAL && strstr(shmrt_last_error(), "vocabulary"), "token >= vocab");
	r = req(2, prompt20, 4, 4);
	r.n_stop_ids = SHMRT_SCHED_MAX_STOP_IDS + 1;
	CHECK(shmrt_sched_submit(s, &r) == -EINVAL, "too many stop ids");
	shmrt_sched_destroy(s);
	shmrt_step_plan_free(&p);
}

/* Prefill of 5 tokens (2 blocks of 4), then decodes; the token that
 * crosses into the third block takes a new one; LENGTH after 3 tokens,
 * then every block is free. */
static void test_prefill_then_decode(void)
{
	struct shmrt_step_plan p;
	struct shmrt_sched_config c = base_config(8, 4, 32, 4);
	struct shmrt_sched *s = make(&c, &p);
	struct shmrt_sched_request r = req(7, prompt20, 5, 5);
	CHECK_OK(shmrt_sched_submit(s, &r));
	struct shmrt_sched_event ev[4];
	struct shmrt_sched_stats st;

	CHECK(shmrt_sched_step(s, &p) == 1, "one sequence");
	const struct shmrt_step_seq *e = &p.seqs[0];
	CHECK(e->seq_id == 7 && e->q_len == 5 && e->ctx_len == 5 && e->sample && e->n_blocks == 2, "prefill entry");
	CHECK(p.n_tokens == 5 && p.n_blocks == 2 && p.n_samples == 1 && p.step == 1, "plan counts");
	for (int j = 0; j < 5; j++)
		CHECK(p.tokens[j] == prompt20[j] && p.positions[j] == j, "token %d", j);
	CHECK(e->params.step == 0 && e->params.seq_id == 0 && e->params.top_k == 40 && e->params.seed == 1234,
	      "sampling params");
	CHECK(shmrt_sched_step(s, &p) == -EBUSY, "a plan is in flight");
	CHECK(apply_all(s, &p, 100, ev) == 1 && ev[0].token == 100 && ev[0].finish == SHMRT_FINISH_NONE &&
		      ev[0].n_generated == 1 && ev[0].n_prompt == 5,
	      "first token");

	CHECK(shmrt_sched_step(s, &p) == 1, "decode");
	CHECK(p.seqs[0].q_len == 1 && p.seqs[0].ctx_len == 6 && p.tokens[0] == 100 && p.positions[0] == 5 &&
		      p.seqs[0].n_blocks == 2 && p.seqs[0].params.step == 1,
	      "decode entry");
	apply_all(s, &p, 101, ev);
	CHECK(shmrt_sched_step(s, &p) == 1 && p.seqs[0].ctx_len == 7, "decode 2");
	apply_all(s, &p, 102, ev);
	CHECK(ev[0].finish == SHMRT_FINISH_NONE, "3 of 5");
	CHECK(shmrt_sched_step(s, &p) == 1 && p.seqs[0].ctx_len == 8 && p.seqs[0].n_blocks == 2, "decode 3");
	apply_all(s, &p, 103, ev);
	CHECK(shmrt_sched_step(s, &p) == 1 && p.seqs[0].ctx_len == 9 && p.seqs[0].n_blocks == 3,
	      "the 9th token takes a third block");
	shmrt_sched_get_stats(s, &st);
	CHECK(st.blocks_used == 3 && st.n_running == 1, "stats");
	CHECK(apply_all(s, &p, 104, ev) == 1 && ev[0].finish == SHMRT_FINISH_LENGTH && ev[0].n_generated == 5,
	      "LENGTH");
	shmrt_sched_get_stats(s, &st);
	CHECK(st.blocks_used == 0 && st.n_running == 0 && st.finished == 1, "all free");
	CHECK(shmrt_sched_step(s, &p) == 0, "idle");
	CHECK(shmrt_sched_apply(s, NULL, 0, ev, 4) == -EINVAL, "apply with nothing in flight");
	shmrt_sched_destroy(s);
	shmrt_step_plan_free(&p);
}

/* A prompt of 20 with a budget of 8: chunks 8, 8, 4, sampling on the last. */
static void test_chunked_prefill(void)
{
	struct shmrt_step_plan p;
	struct shmrt_sched_config c = base_config(16, 4, 8, 2);
	struct shmrt_sched *s = make(&c, &p);
	struct shmrt_sched_request r = req(1, prompt20, 20, 2);
	CHECK_OK(shmrt_sched_submit(s, &r));
	struct shmrt_sched_event ev[2];
	int want[3][3] = {{8, 8, 0}, {8, 16, 0}, {4, 20, 1}};
	for (int k = 0; k < 3; k++) {
		CHECK(shmrt_sched_step(s, &p) == 1, "chunk %d", k);
		CHECK(p.seqs[0].q_len == want[k][0] && p.seqs[0].ctx_len == want[k][1] &&
			      p.seqs[0].sample == want[k][2] && p.n_samples == want[k][2],
		      "chunk %d: q %d ctx %d sample %d", k, p.seqs[0].q_len, p.seqs[0].ctx_len, p.seqs[0].sample);
		CHECK(p.positions[0] == want[k][1] - want[k][0] && p.tokens[0] == prompt20[p.positions[0]],
		      "chunk %d starts where the last ended", k);
		CHECK(apply_all(s, &p, 50, ev) == want[k][2], "events only when sampling");
	}
	shmrt_sched_destroy(s);
	shmrt_step_plan_free(&p);
}

/* Decodes go first; the prompt gets what is left of the budget. */
static void test_decodes_first(void)
{
	struct shmrt_step_plan p;
	struct shmrt_sched_config c = base_config(32, 4, 8, 4);
	struct shmrt_sched *s = make(&c, &p);
	struct shmrt_sched_event ev[4];
	struct shmrt_sched_request a = req(1, prompt20, 3, 10), b = req(2, prompt20, 3, 10),
				   big = req(3, prompt20, 20, 4);
	CHECK_OK(shmrt_sched_submit(s, &a));
	CHECK_OK(shmrt_sched_submit(s, &b));
	CHECK(shmrt_sched_step(s, &p) == 2 && p.n_tokens == 6, "two prefills");
	apply_all(s, &p, 60, ev);
	CHECK_OK(shmrt_sched_submit(s, &big));
	CHECK(shmrt_sched_step(s, &p) == 3, "two decodes and a chunk");
	CHECK(p.seqs[0].seq_id == 1 && p.seqs[0].q_len == 1 && p.seqs[1].seq_id == 2 && p.seqs[1].q_len == 1,
	      "decodes first, oldest first");
	CHECK(p.seqs[2].seq_id == 3 && p.seqs[2].q_len == 6 && !p.seqs[2].sample && p.n_tokens == 8,
	      "the prompt takes the remaining 6 tokens");
	CHECK(p.n_samples == 2 && p.seqs[0].bt_start == 0 && p.seqs[1].bt_start == p.seqs[0].n_blocks &&
		      p.seqs[2].q_start == 2,
	      "offsets");
	apply_all(s, &p, 61, ev);
	CHECK(shmrt_sched_step(s, &p) == 3 && p.seqs[2].q_len == 6 && p.seqs[2].ctx_len == 12, "next chunk");
	apply_all(s, &p, 62, ev);
	shmrt_sched_destroy(s);
	shmrt_step_plan_free(&p);
}

static void test_stops(void)
{
	struct shmrt_step_plan p;
	struct shmrt_sched_config c = base_config(32, 4, 16, 4);
	struct shmrt_sched *s = make(&c, &p);
	struct shmrt_sched_event ev[4];
	struct shmrt_sched_request a = req(1, prompt20, 2, 10), b = req(2, prompt20, 2, 10),
				   d = req(3, prompt20, 2, 10);
	b.ignore_eos = true;
	d.n_stop_ids = 2;
	d.stop_ids[0] = 300;
	d.stop_ids[1] = 301;
	CHECK_OK(shmrt_sched_submit(s, &a));
	CHECK_OK(shmrt_sched_submit(s, &b));
	CHECK_OK(shmrt_sched_submit(s, &d));
	CHECK(shmrt_sched_step(s, &p) == 3, "three");
	CHECK(apply_all(s, &p, 301, ev) == 3, "events");
	CHECK(ev[0].finish == SHMRT_FINISH_NONE && ev[1].finish == SHMRT_FINISH_NONE &&
		      ev[2].finish == SHMRT_FINISH_STOP && ev[2].token == 301 && ev[2].n_generated == 1,
	      "a stop id ends only its request, and is reported and counted");
	CHECK(shmrt_sched_step(s, &p) == 2, "two left");
	CHECK(apply_all(s, &p, EOS_B, ev) == 2, "events");
	CHECK(ev[0].id == 1 && ev[0].finish == SHMRT_FINISH_STOP && ev[1].id == 2 &&
		      ev[1].finish == SHMRT_FINISH_NONE,
	      "EOS stops the first, not the one that ignores EOS");
	shmrt_sched_destroy(s);
	shmrt_step_plan_free(&p);
}

static void test_cancel(void)
{
	struct shmrt_step_plan p;
	struct shmrt_sched_config c = base_config(32, 4, 16, 1);
	struct shmrt_sched *s = make(&c, &p);
	struct shmrt_sched_event ev[2], cev;
	struct shmrt_sched_request a = req(1, prompt20, 4, 10), b = req(2, prompt20, 4, 10),
				   d = req(3, prompt20, 4, 10);
	CHECK_OK(shmrt_sched_submit(s, &a));
	CHECK_OK(shmrt_sched_submit(s, &b));
	CHECK_OK(shmrt_sched_submit(s, &d));
	CHECK(shmrt_sched_cancel(s, 2, &cev) == 1 && cev.id == 2 && cev.finish == SHMRT_FINISH_CANCELLED &&
		      cev.token == -1 && cev.n_generated == 0,
	      "cancel while waiting");
	CHECK(shmrt_sched_cancel(s, 2, &cev) == -ENOENT, "gone");
	CHECK(shmrt_sched_step(s, &p) == 1 && p.seqs[0].seq_id == 1, "max_seqs 1");
	CHECK(shmrt_sched_cancel(s, 1, &cev) == 0, "in flight: later");
	CHECK(shmrt_sched_cancel(s, 1, &cev) == 0, "twice is harmless");
	CHECK(apply_all(s, &p, 70, ev) == 1 && ev[0].id == 1 && ev[0].finish == SHMRT_FINISH_CANCELLED &&
		      ev[0].token == -1,
	      "apply ends it, dropping its token");
	struct shmrt_sched_stats st;
	shmrt_sched_get_stats(s, &st);
	CHECK(st.blocks_used == 0 && st.n_running == 0 && st.n_waiting == 1, "its blocks are free");
	CHECK(shmrt_sched_step(s, &p) == 1 && p.seqs[0].seq_id == 3, "the next one runs");
	apply_all(s, &p, 70, ev);
	CHECK(shmrt_sched_cancel(s, 3, &cev) == 1 && cev.n_generated == 1, "cancel while running, between steps");
	shmrt_sched_get_stats(s, &st);
	CHECK(st.blocks_used == 0 && st.n_running == 0 && st.finished == 3, "all free");
	shmrt_sched_destroy(s);
	shmrt_step_plan_free(&p);
}

/* 4 blocks of 4 tokens. A and B (prompt 6) take 2 blocks each; A's 9th
 * token needs a block: B, the youngest, is preempted and later prefills its
 * prompt and generated tokens again. */
static void test_preemption(void)
{
	struct shmrt_step_plan p;
	struct shmrt_sched_config c = base_config(4, 4, 16, 2);
	struct shmrt_sched *s = make(&c, &p);
	struct shmrt_sched_event ev[2];
	struct shmrt_sched_request a = req(1, prompt20, 6, 6), b = req(2, prompt20 + 6, 6, 6);
	CHECK_OK(shmrt_sched_submit(s, &a));
	CHECK_OK(shmrt_sched_submit(s, &b));
	CHECK(shmrt_sched_step(s, &p) == 2, "both admitted");
	apply_all(s, &p, 80, ev); /* 7 tokens each, 6 in the cache */
	CHECK(shmrt_sched_step(s, &p) == 2 && p.n_blocks == 4, "decodes of position 6");
	apply_all(s, &p, 81, ev);
	CHECK(shmrt_sched_step(s, &p) == 2 && p.n_blocks == 4, "decodes of position 7: the blocks are full");
	apply_all(s, &p, 82, ev);
	CHECK(shmrt_sched_step(s, &p) == 1 && p.seqs[0].seq_id == 1 && p.seqs[0].n_blocks == 3,
	      "A's position 8 takes a third block; B is preempted");
	struct shmrt_sched_stats st;
	shmrt_sched_get_stats(s, &st);
	CHECK(st.preemptions == 1 && st.n_waiting == 1 && st.n_running == 1 && st.blocks_used == 3,
	      "one preemption");
	apply_all(s, &p, 83, ev);
	for (int i = 0; i < 2; i++) {
		CHECK(shmrt_sched_step(s, &p) == 1 && p.seqs[0].seq_id == 1, "B waits: no room");
		apply_all(s, &p, 84, ev);
	}
	CHECK(ev[0].finish == SHMRT_FINISH_LENGTH, "A done");
	CHECK(shmrt_sched_step(s, &p) == 1 && p.seqs[0].seq_id == 2, "B again");
	CHECK(p.seqs[0].q_len == 9 && p.seqs[0].ctx_len == 9 && p.seqs[0].sample && p.seqs[0].params.step == 3,
	      "B recomputes its prompt and 3 generated tokens, then samples its 4th");
	int32_t want[9] = {16, 17, 18, 19, 20, 21, 80, 81, 82};
	CHECK(!memcmp(p.tokens, want, sizeof(want)), "recomputed tokens");
	CHECK(apply_all(s, &p, 90, ev) == 1 && ev[0].n_generated == 4 && ev[0].n_preempted == 1, "B goes on");
	shmrt_sched_destroy(s);
	shmrt_step_plan_free(&p);
}

/* The head does not fit: a small younger request is not admitted before it. */
static void test_fcfs_head_of_line(void)
{
	struct shmrt_step_plan p;
	struct shmrt_sched_config c = base_config(6, 4, 32, 4);
	struct shmrt_sched *s = make(&c, &p);
	struct shmrt_sched_event ev[4];
	struct shmrt_sched_request a = req(1, prompt20, 12, 4), big = req(2, prompt20, 16, 4),
				   small = req(3, prompt20, 2, 2);
	CHECK_OK(shmrt_sched_submit(s, &a));
	CHECK(shmrt_sched_step(s, &p) == 1, "A");
	apply_all(s, &p, 40, ev);
	CHECK_OK(shmrt_sched_submit(s, &big));
	CHECK_OK(shmrt_sched_submit(s, &small));
	/* A holds 4 blocks (13 tokens), 2 free: big needs 4, small 1. */
	CHECK(shmrt_sched_step(s, &p) == 1 && p.seqs[0].seq_id == 1, "small must not overtake big");
	apply_all(s, &p, 40, ev);
	shmrt_sched_destroy(s);
	shmrt_step_plan_free(&p);
}

static void test_misuse(void)
{
	struct shmrt_step_plan p, small;
	struct shmrt_sched_config c = base_config(16, 4, 16, 4);
	struct shmrt_sched *s = make(&c, &p);
	struct shmrt_sched_event ev[4];
	struct shmrt_sched_request a = req(1, prompt20, 3, 4);
	CHECK_OK(shmrt_sched_submit(s, &a));
	CHECK_OK(shmrt_step_plan_init(&small, 4, 8, 16));
	CHECK(shmrt_sched_step(s, &small) == -EINVAL, "plan smaller than the budget");
	shmrt_step_plan_free(&small);
	CHECK(shmrt_sched_step(s, &p) == 1, "step");
	int32_t tok = VOCAB;
	CHECK(shmrt_sched_apply(s, &tok, 1, ev, 4) == -EBADMSG, "token outside the vocabulary");
	CHECK(shmrt_sched_apply(s, &tok, 2, ev, 4) == -EINVAL, "wrong count");
	CHECK(shmrt_sched_apply(s, &tok, 1, ev, 0) == -EINVAL, "no room for events");
	tok = 5;
	CHECK(shmrt_sched_apply(s, &tok, 1, ev, 4) == 1 && ev[0].token == 5 && ev[0].n_generated == 1,
	      "the failed calls changed nothing");
	CHECK_OK(shmrt_sched_check(s));
	shmrt_sched_destroy(s);
	shmrt_step_plan_free(&p);
}

/* ---- the simulation ------------------------------------------------------ */

struct sim_req {
	int32_t *prompt;
	int prompt_len, max_tokens;
	int32_t *ref; /* the reference output */
	int n_ref;
	enum shmrt_finish ref_finish;
	int32_t *out; /* what the scheduler reported */
	int n_out;
	enum shmrt_finish finish;
	int n_finish_events;
	bool submitted, admitted, cancel_sent;
	struct shmrt_sched_request r;
};

struct sim_cfg {
	const char *name;
	struct shmrt_sched_config c;
	int n_requests, max_prompt, max_out;
	int cancel_per_mille; /* chance per step of one cancel */
	int max_arrivals;     /* per step */
	bool expect_preemption;
};

struct sim_result {
	uint64_t preemptions, steps;
	int cancelled;
};

/* The reference: the fake model run on the request alone. */
static void reference(const struct shmrt_sched_config *c, struct sim_req *q)
{
	int32_t *hist = malloc((size_t)(q->prompt_len + q->max_tokens) * sizeof(int32_t));
	memcpy(hist, q->prompt, (size_t)q->prompt_len * sizeof(int32_t));
	int n = q->prompt_len;
	q->ref = malloc((size_t)q->max_tokens * sizeof(int32_t));
	q->n_ref = 0;
	q->ref_finish = SHMRT_FINISH_LENGTH;
	while (q->n_ref < q->max_tokens) {
		int32_t t = fake_next(hist, n);
		hist[n++] = t;
		q->ref[q->n_ref++] = t;
		bool stop = false;
		for (int i = 0; i < c->n_eos && !q->r.ignore_eos; i++)
			stop |= t == c->eos_ids[i];
		for (int i = 0; i < q->r.n_stop_ids; i++)
			stop |= t == q->r.stop_ids[i];
		if (stop) {
			q->ref_finish = SHMRT_FINISH_STOP;
			break;
		}
	}
	free(hist);
}

static struct sim_req *make_requests(const struct sim_cfg *sc)
{
	struct sim_req *rq = calloc((size_t)sc->n_requests, sizeof(*rq));
	for (int i = 0; i < sc->n_requests; i++) {
		struct sim_req *q = &rq[i];
		q->prompt_len = rnd_in(1, sc->max_prompt);
		q->max_tokens = rnd_in(1, sc->max_out);
		q->prompt = malloc((size_t)q->prompt_len * sizeof(int32_t));
		for (int j = 0; j < q->prompt_len; j++)
			q->prompt[j] = rnd_in(3, VOCAB - 1);
		q->r = req((uint64_t)i + 1000, q->prompt, q->prompt_len, q->max_tokens);
		q->r.seed = rnd();
		q->r.ignore_eos = rnd() % 4 == 0;
		q->r.n_stop_ids = rnd_in(0, 3);
		for (int k = 0; k < q->r.n_stop_ids; k++)
			q->r.stop_ids[k] = rnd_in(3, VOCAB - 1);
		reference(&sc->c, q);
		q->out = malloc((size_t)q->max_tokens * sizeof(int32_t));
	}
	return rq;
}

static void free_requests(struct sim_req *rq, int n)
{
	for (int i = 0; i < n; i++) {
		free(rq[i].prompt);
		free(rq[i].ref);
		free(rq[i].out);
	}
	free(rq);
}

static struct sim_req *by_id(struct sim_req *rq, int n, uint64_t id)
{
	CHECK(id >= 1000 && id < 1000 + (uint64_t)n, "unknown id %llu", (unsigned long long)id);
	return &rq[id - 1000];
}

static void on_event(struct sim_req *rq, int n, const struct shmrt_sched_event *e)
{
	struct sim_req *q = by_id(rq, n, e->id);
	CHECK(!q->n_finish_events, "request %llu: an event after its end", (unsigned long long)e->id);
	if (e->token >= 0) {
		CHECK(q->n_out < q->max_tokens, "request %llu: more than max_tokens", (unsigned long long)e->id);
		q->out[q->n_out++] = e->token;
	}
	CHECK(e->n_generated == q->n_out && e->n_prompt == q->prompt_len, "request %llu: counts %d/%d",
	      (unsigned long long)e->id, e->n_generated, q->n_out);
	if (e->finish != SHMRT_FINISH_NONE) {
		q->finish = e->finish;
		q->n_finish_events++;
	}
}

/* The fake KV cache: per slot, the token, its position and its request. */
struct fake_cache {
	int32_t *tok, *pos;
	uint64_t *owner;
	int32_t *hist, *slots;
	int32_t *q_lens, *ctx_lens, *tables; /* the plan as the kernels take it */
};

/* The worker's side: write the plan's tokens into the cache, then for each
 * sampling sequence read its history back through the block table and run
 * the fake model on it. Returns the sampled tokens in plan order. */
static void fake_worker(const struct shmrt_step_plan *w, struct fake_cache *fc, int32_t *sampled,
			struct sim_req *rq, int n_req)
{
	shmrt_step_plan_slots(w, fc->slots);
	for (int i = 0; i < w->n_tokens; i++) {
		fc->tok[fc->slots[i]] = w->tokens[i];
		fc->pos[fc->slots[i]] = w->positions[i];
	}
	for (int i = 0; i < w->n_seqs; i++) {
		const struct shmrt_step_seq *e = &w->seqs[i];
		for (int j = 0; j < e->q_len; j++)
			fc->owner[fc->slots[e->q_start + j]] = e->seq_id;
	}
	/* The history is read through the block tables as the kernels get
	 * them (rows of stride ids). */
	int stride = shmrt_step_plan_max_blocks(w);
	CHECK(shmrt_step_plan_tables(w, fc->q_lens, fc->ctx_lens, fc->tables, stride - 1) == -EINVAL || stride == 0,
	      "a stride below the longest table");
	CHECK_OK(shmrt_step_plan_tables(w, fc->q_lens, fc->ctx_lens, fc->tables, stride));
	int k = 0;
	for (int i = 0; i < w->n_seqs; i++) {
		const struct shmrt_step_seq *e = &w->seqs[i];
		CHECK(fc->q_lens[i] == e->q_len && fc->ctx_lens[i] == e->ctx_len, "q_lens, ctx_lens");
		if (!e->sample)
			continue;
		struct sim_req *q = by_id(rq, n_req, e->seq_id);
		CHECK(e->params.step == (uint64_t)q->n_out && e->params.seed == q->r.seed,
		      "request %llu: sample step %llu, %d generated", (unsigned long long)e->seq_id,
		      (unsigned long long)e->params.step, q->n_out);
		const int32_t *table = fc->tables + (size_t)i * (size_t)stride;
		for (int t = 0; t < e->ctx_len; t++) {
			int32_t slot = table[t / w->block_size] * w->block_size + t % w->block_size;
			CHECK(fc->owner[slot] == e->seq_id && fc->pos[slot] == t,
			      "request %llu position %d: the cache slot holds request %llu position %d",
			      (unsigned long long)e->seq_id, t, (unsigned long long)fc->owner[slot], fc->pos[slot]);
			fc->hist[t] = fc->tok[slot];
		}
		sampled[k++] = fake_next(fc->hist, e->ctx_len);
	}
}

static void check_plan(const struct sim_cfg *sc, const struct shmrt_step_plan *p, const struct shmrt_step_plan *w)
{
	CHECK(p->n_tokens <= sc->c.max_batch_tokens && p->n_seqs <= sc->c.max_seqs && p->n_blocks <= sc->c.num_blocks,
	      "plan of %d tokens, %d sequences, %d blocks", p->n_tokens, p->n_seqs, p->n_blocks);
	/* The record round trip gives the same plan. */
	CHECK(w->step == p->step && w->n_seqs == p->n_seqs && w->n_tokens == p->n_tokens &&
		      w->n_blocks == p->n_blocks && w->n_samples == p->n_samples,
	      "parsed counts");
	CHECK(!memcmp(w->seqs, p->seqs, (size_t)p->n_seqs * sizeof(*p->seqs)), "parsed sequences");
	CHECK(!memcmp(w->tokens, p->tokens, (size_t)p->n_tokens * 4) &&
		      !memcmp(w->positions, p->positions, (size_t)p->n_tokens * 4) &&
		      !memcmp(w->block_ids, p->block_ids, (size_t)p->n_blocks * 4),
	      "parsed arrays");
}

/* With the configured chance, cancels a random submitted request: one in
 * the plan in flight ends at apply (0), any other at once (1). */
static void maybe_cancel(const struct sim_cfg *sc, struct shmrt_sched *s, struct sim_req *rq, int n_submitted)
{
	if (!n_submitted || (int)(rnd() % 1000) >= sc->cancel_per_mille)
		return;
	struct sim_req *q = &rq[rnd() % (uint64_t)n_submitted];
	struct shmrt_sched_event ce;
	int rc = shmrt_sched_cancel(s, q->r.id, &ce);
	if (q->n_finish_events)
		CHECK(rc == -ENOENT, "cancel of an ended request: %d", rc);
	else if (q->cancel_sent)
		CHECK(rc == 0, "second cancel while in flight: %d", rc);
	else {
		CHECK(rc == 0 || rc == 1, "cancel: %d", rc);
		q->cancel_sent = true;
		if (rc == 1)
			on_event(rq, sc->n_requests, &ce);
	}
	CHECK_OK(shmrt_sched_check(s));
}

static struct sim_result simulate(const struct sim_cfg *sc, uint64_t seed, bool cancels)
{
	rng_state = seed;
	struct sim_req *rq = make_requests(sc);
	struct shmrt_step_plan p, w;
	struct shmrt_sched *s = make(&sc->c, &p);
	CHECK_OK(shmrt_step_plan_init(&w, sc->c.max_seqs, sc->c.max_batch_tokens, sc->c.num_blocks));
	size_t rec_cap = shmrt_step_plan_max_record_size(sc->c.max_seqs, sc->c.max_batch_tokens, sc->c.num_blocks);
	uint8_t *rec = malloc(rec_cap);
	size_t cache_slots = (size_t)sc->c.num_blocks * (size_t)sc->c.block_size;
	struct fake_cache fc = {
		.tok = calloc(cache_slots, 4),
		.pos = calloc(cache_slots, 4),
		.owner = calloc(cache_slots, 8),
		.hist = malloc((size_t)(sc->max_prompt + sc->max_out) * 4),
		.slots = malloc((size_t)sc->c.max_batch_tokens * 4),
		.q_lens = malloc((size_t)sc->c.max_seqs * 4),
		.ctx_lens = malloc((size_t)sc->c.max_seqs * 4),
		.tables = malloc((size_t)sc->c.max_seqs * (size_t)sc->c.num_blocks * 4),
	};
	struct shmrt_sched_event *ev = malloc((size_t)sc->c.max_seqs * sizeof(*ev));
	int32_t *sampled = malloc((size_t)sc->c.max_seqs * 4);
	struct shmrt_step_plan_limits lim = {.block_size = sc->c.block_size, .vocab = VOCAB};
	struct sim_result res = {0};
	int next_submit = 0, last_admitted = -1;
	uint64_t step_limit = 40ull * (uint64_t)sc->n_requests * (uint64_t)(sc->max_prompt + sc->max_out);

	for (uint64_t iter = 0;; iter++) {
		CHECK(iter < step_limit, "%s: no end after %llu steps", sc->name, (unsigned long long)iter);
		for (int a = rnd_in(0, sc->max_arrivals); a > 0 && next_submit < sc->n_requests; a--) {
			CHECK_OK(shmrt_sched_submit(s, &rq[next_submit].r));
			rq[next_submit++].submitted = true;
		}
		if (cancels)
			maybe_cancel(sc, s, rq, next_submit);
		int n = shmrt_sched_step(s, &p);
		CHECK(n >= 0, "step: %s", shmrt_last_error());
		int rc = shmrt_sched_check(s);
		CHECK(rc == 0, "%s step %llu: %s", sc->name, (unsigned long long)iter, shmrt_last_error());
		if (n == 0) {
			struct shmrt_sched_stats st;
			shmrt_sched_get_stats(s, &st);
			CHECK(st.n_waiting == 0 && st.n_running == 0, "an empty plan with work left");
			if (next_submit == sc->n_requests)
				break;
			continue;
		}
		size_t len;
		CHECK_OK(shmrt_step_plan_serialize(&p, rec, rec_cap, &len));
		CHECK(len == shmrt_step_plan_record_size(&p), "record size");
		rc = shmrt_step_plan_parse(rec, len, &lim, &w);
		CHECK(rc == 0, "parse: %s", shmrt_last_error());
		check_plan(sc, &p, &w);
		/* First admissions (a chunk from position 0 of a request never
		 * admitted) come in submit order. */
		for (int i = 0; i < w.n_seqs; i++) {
			struct sim_req *q = by_id(rq, sc->n_requests, w.seqs[i].seq_id);
			if (q->admitted)
				continue;
			CHECK(w.seqs[i].ctx_len == w.seqs[i].q_len, "first appearance not from position 0");
			int idx = (int)(q - rq);
			CHECK(idx > last_admitted, "%s: request %d admitted after %d", sc->name, idx, last_admitted);
			last_admitted = idx;
			q->admitted = true;
		}
		if (cancels) /* while the step is in flight */
			maybe_cancel(sc, s, rq, next_submit);
		fake_worker(&w, &fc, sampled, rq, sc->n_requests);
		n = shmrt_sched_apply(s, sampled, w.n_samples, ev, sc->c.max_seqs);
		CHECK(n >= 0, "apply: %s", shmrt_last_error());
		for (int i = 0; i < n; i++)
			on_event(rq, sc->n_requests, &ev[i]);
		rc = shmrt_sched_check(s);
		CHECK(rc == 0, "%s after apply %llu: %s", sc->name, (unsigned long long)iter, shmrt_last_error());
	}

	for (int i = 0; i < sc->n_requests; i++) {
		struct sim_req *q = &rq[i];
		CHECK(q->n_finish_events == 1, "%s: request %d ended %d times", sc->name, i, q->n_finish_events);
		CHECK(q->n_out <= q->n_ref && !memcmp(q->out, q->ref, (size_t)q->n_out * 4),
		      "%s: request %d's tokens differ from the reference", sc->name, i);
		if (q->finish == SHMRT_FINISH_CANCELLED) {
			CHECK(q->cancel_sent, "%s: request %d cancelled unasked", sc->name, i);
			res.cancelled++;
		} else {
			CHECK(q->n_out == q->n_ref && q->finish == q->ref_finish,
			      "%s: request %d: %d tokens (reason %d), the reference %d (reason %d)", sc->name, i,
			      q->n_out, q->finish, q->n_ref, q->ref_finish);
		}
	}
	struct shmrt_sched_stats st;
	shmrt_sched_get_stats(s, &st);
	CHECK(st.blocks_used == 0 && st.finished == (uint64_t)sc->n_requests, "%s: at the end", sc->name);
	res.preemptions = st.preemptions;
	res.steps = st.steps;
	if (sc->expect_preemption)
		CHECK(res.preemptions > 0, "%s: the cache was meant to be tight enough to preempt", sc->name);
	if (cancels && sc->cancel_per_mille)
		CHECK(res.cancelled > 0, "%s: no request was cancelled", sc->name);
	printf("%-28s %5d requests, %6llu steps, %5llu preemptions, %4d cancelled\n", sc->name, sc->n_requests,
	       (unsigned long long)res.steps, (unsigned long long)res.preemptions, res.cancelled);

	free(ev);
	free(sampled);
	free(fc.tok);
	free(fc.pos);
	free(fc.owner);
	free(fc.hist);
	free(fc.slots);
	free(fc.q_lens);
	free(fc.ctx_lens);
	free(fc.tables);
	free(rec);
	shmrt_step_plan_free(&w);
	shmrt_step_plan_free(&p);
	shmrt_sched_destroy(s);
	free_requests(rq, sc->n_requests);
	return res;
}

static void test_simulation(uint64_t seed)
{
	struct sim_cfg cfgs[] = {
		{"bs16 tight", base_config(48, 16, 128, 16), 2000, 200, 64, 20, 3, true},
		{"bs32 tight watermark", base_config(20, 32, 64, 8), 1500, 150, 48, 20, 2, true},
		{"bs16 tiny budget", base_config(24, 16, 16, 4), 600, 120, 40, 20, 1, true},
		{"bs16 many seqs", base_config(160, 16, 256, 64), 2000, 200, 64, 20, 8, true},
		/* Decodes can fill the whole budget: prompts still progress. */
		{"bs16 budget = max_seqs", base_config(20, 16, 8, 8), 500, 100, 48, 20, 2, true},
	};
	cfgs[1].c.watermark_blocks = 1;
	for (size_t i = 0; i < ARRAY_SIZE(cfgs); i++) {
		simulate(&cfgs[i], seed + i, true);
		/* The same requests without cancels, then with a cache that never
		 * runs out: both give the reference's outputs. */
		struct sim_result r = simulate(&cfgs[i], seed + i, false);
		CHECK(r.cancelled == 0, "cancelled without cancels");
		struct sim_cfg big = cfgs[i];
		big.name = "  same, unlimited blocks";
		/* Room for max_seqs sequences of the longest length. */
		big.c.num_blocks = big.c.max_seqs * ((big.max_prompt + big.max_out + big.c.block_size - 1) /
						     big.c.block_size) + big.c.watermark_blocks;
		big.expect_preemption = false;
		r = simulate(&big, seed + i, false);
		CHECK(r.preemptions == 0, "preemption with an unlimited cache");
	}
}

int main(int argc, char **argv)
{
	test_config_errors();
	test_submit_errors();
	test_prefill_then_decode();
	test_chunked_prefill();
	test_decodes_first();
	test_stops();
	test_cancel();
	test_preemption();
	test_fcfs_head_of_line();
	test_misuse();
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x5eed;
	test_simulation(seed);
	printf("scheduler: ok (seed %#llx)\n", (unsigned long long)seed);
	return 0;
}

/* Step plans and their ring record (format in step_plan.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "step_plan.h"

#define SEQ_FLAG_SAMPLE 1u

int shmrt_step_plan_init(struct shmrt_step_plan *p, int cap_seqs, int cap_tokens, int num_blocks)
{
	memset(p, 0, sizeof(*p));
	if (cap_seqs < 1 || cap_tokens < 1 || num_blocks < 1)
		return shmrt_fail(EINVAL, "step plan: capacities %d sequences, %d tokens, %d blocks must be >= 1",
				  cap_seqs, cap_tokens, num_blocks);
	p->seqs = calloc((size_t)cap_seqs, sizeof(*p->seqs));
	p->tokens = malloc((size_t)cap_tokens * sizeof(int32_t));
	p->positions = malloc((size_t)cap_tokens * sizeof(int32_t));
	p->block_ids = malloc((size_t)num_blocks * sizeof(int32_t));
	p->seen = calloc((size_t)num_blocks, 1);
	if (!p->seqs || !p->tokens || !p->positions || !p->block_ids || !p->seen) {
		shmrt_step_plan_free(p);
		return shmrt_fail(ENOMEM, "step plan: out of memory");
	}
	p->cap_seqs = cap_seqs;
	p->cap_tokens = cap_tokens;
	p->num_blocks = num_blocks;
	return 0;
}

void shmrt_step_plan_free(struct shmrt_step_plan *p)
{
	free(p->seqs);
	free(p->tokens);
	free(p->positions);
	free(p->block_ids);
	free(p->seen);
	memset(p, 0, sizeof(*p));
}

static size_t record_size(uint64_t n_seqs, uint64_t n_tokens, uint64_t n_blocks)
{
	return SHMRT_STEP_PLAN_HEADER_BYTES + SHMRT_STEP_PLAN_SEQ_BYTES * n_seqs + 4 * (n_tokens + n_blocks);
}

size_t shmrt_step_plan_record_size(const struct shmrt_step_plan *p)
{
	return record_size((uint64_t)p->n_seqs, (uint64_t)p->n_tokens, (uint64_t)p->n_blocks);
}

size_t shmrt_step_plan_max_record_size(int cap_seqs, int cap_tokens, int num_blocks)
{
	if (cap_seqs < 0 || cap_tokens < 0 || num_blocks < 0)
		return 0;
	return record_size((uint64_t)cap_seqs, (uint64_t)cap_tokens, (uint64_t)num_blocks);
}

/* Little helpers that put and take a field at a moving offset. */
static void put(uint8_t *buf, size_t *off, const void *v, size_t n)
{
	memcpy(buf + *off, v, n);
	*off += n;
}

static void take(const uint8_t *buf, size_t *off, void *v, size_t n)
{
	memcpy(v, buf + *off, n);
	*off += n;
}

int shmrt_step_plan_serialize(const struct shmrt_step_plan *p, void *buf, size_t cap, size_t *len)
{
	size_t need = shmrt_step_plan_record_size(p);
	*len = 0;
	if (need > cap)
		return shmrt_fail(EMSGSIZE, "step plan: the record takes %zu bytes, the buffer holds %zu", need, cap);
	uint8_t *b = buf;
	size_t off = 0;
	uint32_t magic = SHMRT_STEP_PLAN_MAGIC, bs = (uint32_t)p->block_size;
	uint16_t version = SHMRT_STEP_PLAN_VERSION, zero = 0;
	uint32_t counts[3] = {(uint32_t)p->n_seqs, (uint32_t)p->n_tokens, (uint32_t)p->n_blocks};
	put(b, &off, &magic, 4);
	put(b, &off, &version, 2);
	put(b, &off, &zero, 2);
	put(b, &off, &p->step, 8);
	put(b, &off, &bs, 4);
	put(b, &off, counts, sizeof(counts));
	for (int i = 0; i < p->n_seqs; i++) {
		const struct shmrt_step_seq *s = &p->seqs[i];
		uint32_t q = (uint32_t)s->q_len, ctx = (uint32_t)s->ctx_len;
		uint32_t flags = s->sample ? SEQ_FLAG_SAMPLE : 0;
		put(b, &off, &s->seq_id, 8);
		put(b, &off, &q, 4);
		put(b, &off, &ctx, 4);
		put(b, &off, &flags, 4);
		put(b, &off, &s->params.top_k, 4);
		put(b, &off, &s->params.temperature, 4);
		put(b, &off, &s->params.top_p, 4);
		put(b, &off, &s->params.seed, 8);
		put(b, &off, &s->params.step, 8);
	}
	put(b, &off, p->tokens, 4 * (size_t)p->n_tokens);
	put(b, &off, p->block_ids, 4 * (size_t)p->n_blocks);
	*len = off;
	return 0;
}

static int bad(struct shmrt_step_plan *p, const char *what, uint64_t v)
{
	p->n_seqs = p->n_tokens = p->n_blocks = p->n_samples = 0;
	return shmrt_fail(EBADMSG, "step plan record: %s (%llu)", what, (unsigned long long)v);
}

/* One sequence's 48 bytes at *off into p->seqs[i]; *tok and *blk count the
 * tokens and block ids of the sequences before it. */
static int parse_seq(struct shmrt_step_plan *p, const uint8_t *b, size_t *off, int i, uint64_t *tok,
		     uint64_t *blk, const struct shmrt_step_plan_limits *lim)
{
	struct shmrt_step_seq *s = &p->seqs[i];
	uint32_t q, ctx, flags;
	memset(s, 0, sizeof(*s));
	take(b, off, &s->seq_id, 8);
	take(b, off, &q, 4);
	take(b, off, &ctx, 4);
	take(b, off, &flags, 4);
	take(b, off, &s->params.top_k, 4);
	take(b, off, &s->params.temperature, 4);
	take(b, off, &s->params.top_p, 4);
	take(b, off, &s->params.seed, 8);
	take(b, off, &s->params.step, 8);
	if (q < 1 || q > (uint32_t)p->n_tokens)
		return bad(p, "q_len outside 1 .. n_tokens", q);
	if (ctx < q || ctx > INT32_MAX)
		return bad(p, "ctx_len below q_len or above INT32_MAX", ctx);
	if (lim->max_ctx > 0 && ctx > (uint32_t)lim->max_ctx)
		return bad(p, "ctx_len above the model's context", ctx);
	if (flags & ~SEQ_FLAG_SAMPLE)
		return bad(p, "unknown sequence flags", flags);
	if (!isfinite(s->params.temperature) || !isfinite(s->params.top_p))
		return bad(p, "sampling parameters are not finite numbers", i);
	uint64_t nb = ((uint64_t)ctx + (uint64_t)p->block_size - 1) / (uint64_t)p->block_size;
	if (*tok + q > (uint64_t)p->n_tokens)
		return bad(p, "sequences hold more tokens than n_tokens", *tok + q);
	if (*blk + nb > (uint64_t)p->n_blocks)
		return bad(p, "block tables hold more ids than n_blocks", *blk + nb);
	s->q_start = (int32_t)*tok;
	s->q_len = (int32_t)q;
	s->ctx_len = (int32_t)ctx;
	s->bt_start = (int32_t)*blk;
	s->n_blocks = (int32_t)nb;
	s->sample = (flags & SEQ_FLAG_SAMPLE) != 0;
	s->params.seq_id = 0; /* the sampler's key is (seed, step): scheduler_step.c says why */
	p->n_samples += s->sample;
	*tok += q;
	*blk += nb;
	return 0;
}

/* Block ids in range and in one table only; p->seen is all zero before and
 * after. */
static int check_blocks(struct shmrt_step_plan *p)
{
	int rc = 0, i;
	for (i = 0; i < p->n_blocks; i++) {
		int32_t id = p->block_ids[i];
		if (id < 0 || id >= p->num_blocks) {
			rc = -1;
			break;
		}
		if (p->seen[id]) {
			rc = -2;
			break;
		}
		p->seen[id] = 1;
	}
	uint64_t v = i < p->n_blocks ? (uint64_t)(uint32_t)p->block_ids[i] : 0;
	for (int j = 0; j < i; j++)
		p->seen[p->block_ids[j]] = 0;
	if (rc == -1)
		return bad(p, "block id outside the cache", v);
	if (rc == -2)
		return bad(p, "block id in two tables", v);
	return 0;
}

int shmrt_step_plan_parse(const void *buf, size_t len, const struct shmrt_step_plan_limits *lim,
			  struct shmrt_step_plan *p)
{
	const uint8_t *b = buf;
	size_t off = 0;
	p->n_seqs = p->n_tokens = p->n_blocks = p->n_samples = 0;
	if (len < SHMRT_STEP_PLAN_HEADER_BYTES)
		return bad(p, "shorter than its header", len);
	uint32_t magic, bs, counts[3];
	uint16_t version, zero;
	take(b, &off, &magic, 4);
	take(b, &off, &version, 2);
	take(b, &off, &zero, 2);
	take(b, &off, &p->step, 8);
	take(b, &off, &bs, 4);
	take(b, &off, counts, sizeof(counts));
	if (magic != SHMRT_STEP_PLAN_MAGIC)
		return bad(p, "bad magic", magic);
	if (version != SHMRT_STEP_PLAN_VERSION || zero)
		return bad(p, "unknown version", version);
	if (bs < 1 || bs != (uint32_t)lim->block_size)
		return bad(p, "block size differs from the cache's", bs);
	if (counts[0] > (uint32_t)p->cap_seqs)
		return bad(p, "n_seqs above the plan's capacity", counts[0]);
	if (counts[1] > (uint32_t)p->cap_tokens)
		return bad(p, "n_tokens above the plan's capacity", counts[1]);
	if (counts[2] > (uint32_t)p->num_blocks)
		return bad(p, "n_blocks above the cache's block count", counts[2]);
	size_t want = record_size(counts[0], counts[1], counts[2]);
	if (len != want)
		return bad(p, "length differs from what the counts give", len);
	p->block_size = (int32_t)bs;
	p->n_tokens = (int32_t)counts[1];
	p->n_blocks = (int32_t)counts[2];
	uint64_t tok = 0, blk = 0;
	for (uint32_t i = 0; i < counts[0]; i++) {
		int rc = parse_seq(p, b, &off, (int)i, &tok, &blk, lim);
		if (rc)
			return rc;
	}
	if (tok != counts[1])
		return bad(p, "sequences hold fewer tokens than n_tokens", tok);
	if (blk != counts[2])
		return bad(p, "block tables hold fewer ids than n_blocks", blk);
	/* Copy first, then check the copy: the record may change under us. */
	take(b, &off, p->tokens, 4 * (size_t)p->n_tokens);
	take(b, &off, p->block_ids, 4 * (size_t)p->n_blocks);
	for (int32_t i = 0; i < p->n_tokens; i++)
		if (p->tokens[i] < 0 || (lim->vocab > 0 && p->tokens[i] >= lim->vocab))
			return bad(p, "token id outside the vocabulary", (uint32_t)p->tokens[i]);
	int rc = check_blocks(p);
	if (rc)
		return rc;
	p->n_seqs = (int32_t)counts[0];
	for (int32_t i = 0; i < p->n_seqs; i++) {
		const struct shmrt_step_seq *s = &p->seqs[i];
		for (int32_t j = 0; j < s->q_len; j++)
			p->positions[s->q_start + j] = s->ctx_len - s->q_len + j;
	}
	return 0;
}

void shmrt_step_plan_slots(const struct shmrt_step_plan *p, int32_t *slots)
{
	for (int32_t i = 0; i < p->n_seqs; i++) {
		const struct shmrt_step_seq *s = &p->seqs[i];
		for (int32_t j = 0; j < s->q_len; j++) {
			int32_t pos = s->ctx_len - s->q_len + j;
			int32_t block = p->block_ids[s->bt_start + pos / p->block_size];
			slots[s->q_start + j] = block * p->block_size + pos % p->block_size;
		}
	}
}

int shmrt_step_plan_max_blocks(const struct shmrt_step_plan *p)
{
	int32_t m = 0;
	for (int32_t i = 0; i < p->n_seqs; i++)
		if (p->seqs[i].n_blocks > m)
			m = p->seqs[i].n_blocks;
	return m;
}

int shmrt_step_plan_tables(const struct shmrt_step_plan *p, int32_t *q_lens, int32_t *ctx_lens,
			   int32_t *block_tables, int stride)
{
	if (stride < shmrt_step_plan_max_blocks(p))
		return shmrt_fail(EINVAL, "step plan: block table stride %d below the longest table (%d blocks)",
				  stride, shmrt_step_plan_max_blocks(p));
	for (int32_t i = 0; i < p->n_seqs; i++) {
		const struct shmrt_step_seq *s = &p->seqs[i];
		q_lens[i] = s->q_len;
		ctx_lens[i] = s->ctx_len;
		memcpy(block_tables + (size_t)i * (size_t)stride, p->block_ids + s->bt_start,
		       (size_t)s->n_blocks * sizeof(int32_t));
	}
	return 0;
}

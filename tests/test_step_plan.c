/* Step plans and their ring record (runtime/engine/step_plan.c): a round trip, the
 * kernels' slots, every truncation and every bit flip of a record (refused,
 * or accepted as a plan that re-serializes to the same bytes), one test per
 * fault, and the fuzz seeds of tests/corpus/step_plan (valid-* parse, the
 * others do not).
 *
 *   test_step_plan CORPUS_DIR                  the tests
 *   test_step_plan --write-corpus CORPUS_DIR   (re)writes the seeds */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "shmrt/error.h"
#include "step_plan.h"
#include "step_plan_corpus.h"
#include "array_size.h"

static const struct shmrt_step_plan_limits lim = {
	.block_size = CORPUS_BLOCK_SIZE, .vocab = CORPUS_VOCAB, .max_ctx = CORPUS_MAX_CTX};

/* Appends a sequence to p: q_len tokens (100, 101, ...) ending at ctx_len,
 * its block table the next ids from *next_block. */
static void add_seq(struct shmrt_step_plan *p, uint64_t id, int q_len, int ctx_len, bool sample, int32_t *next_block)
{
	struct shmrt_step_seq *s = &p->seqs[p->n_seqs++];
	memset(s, 0, sizeof(*s));
	s->seq_id = id;
	s->q_start = p->n_tokens;
	s->q_len = q_len;
	s->ctx_len = ctx_len;
	s->bt_start = p->n_blocks;
	s->n_blocks = (ctx_len + p->block_size - 1) / p->block_size;
	s->sample = sample;
	s->params.seq_id = 0; /* as the scheduler plans it: the sampler key is (seed, step) */
	if (sample) {
		s->params.temperature = 0.8f;
		s->params.top_p = 0.95f;
		s->params.top_k = 50;
		s->params.seed = 0x1234567890abcdefu ^ id;
		s->params.step = (uint64_t)ctx_len / 3;
		p->n_samples++;
	}
	for (int j = 0; j < q_len; j++) {
		p->tokens[p->n_tokens] = (int32_t)(100 + (id * 7 + (uint64_t)j) % 800);
		p->positions[p->n_tokens++] = ctx_len - q_len + j;
	}
	for (int b = 0; b < s->n_blocks; b++)
		p->block_ids[p->n_blocks++] = *next_block, *next_block = (*next_block * 37 + 11) % CORPUS_BLOCKS;
}

static void plan_init(struct shmrt_step_plan *p)
{
	CHECK_OK(shmrt_step_plan_init(p, CORPUS_SEQS, CORPUS_TOKENS, CORPUS_BLOCKS));
	p->block_size = CORPUS_BLOCK_SIZE;
	p->step = 42;
}

/* Decodes of three sequences and a prompt chunk that does not sample. */
static void mixed_plan(struct shmrt_step_plan *p)
{
	int32_t nb = 5;
	plan_init(p);
	add_seq(p, 7, 1, 17, true, &nb);
	add_seq(p, 9, 1, 1, true, &nb);
	add_seq(p, 3, 1, 40, true, &nb);
	add_seq(p, 12, 30, 62, false, &nb);
}

static uint8_t *record(const struct shmrt_step_plan *p, size_t *len)
{
	size_t cap = shmrt_step_plan_record_size(p);
	uint8_t *buf = malloc(cap);
	CHECK_OK(shmrt_step_plan_serialize(p, buf, cap, len));
	CHECK(*len == cap, "record size %zu != %zu", *len, cap);
	return buf;
}

static void same_plan(const struct shmrt_step_plan *a, const struct shmrt_step_plan *b)
{
	CHECK(a->step == b->step && a->block_size == b->block_size && a->n_seqs == b->n_seqs &&
		      a->n_tokens == b->n_tokens && a->n_blocks == b->n_blocks && a->n_samples == b->n_samples,
	      "counts differ");
	CHECK(!memcmp(a->seqs, b->seqs, (size_t)a->n_seqs * sizeof(*a->seqs)), "sequences differ");
	CHECK(!memcmp(a->tokens, b->tokens, (size_t)a->n_tokens * 4), "tokens differ");
	CHECK(!memcmp(a->positions, b->positions, (size_t)a->n_tokens * 4), "positions differ");
	CHECK(!memcmp(a->block_ids, b->block_ids, (size_t)a->n_blocks * 4), "block ids differ");
}

static void test_round_trip(void)
{
	struct shmrt_step_plan p, q;
	mixed_plan(&p);
	plan_init(&q);
	size_t len;
	uint8_t *buf = record(&p, &len);
	CHECK(len == SHMRT_STEP_PLAN_HEADER_BYTES + 4 * SHMRT_STEP_PLAN_SEQ_BYTES + 4 * (33 + 10), "size %zu", len);
	CHECK_OK(shmrt_step_plan_parse(buf, len, &lim, &q));
	same_plan(&p, &q);
	uint8_t small[64];
	CHECK(shmrt_step_plan_serialize(&p, small, sizeof(small), &len) == -EMSGSIZE && len == 0, "EMSGSIZE");
	CHECK(shmrt_step_plan_max_record_size(64, 1024, 256) == 32 + 48 * 64 + 4 * (1024 + 256), "max size");

	/* Slots: token j of a sequence at position pos lives in block
	 * table[pos / bs], offset pos % bs. Sequence 12's chunk covers
	 * positions 32..61: blocks 2 and 3 of its table. */
	int32_t slots[64];
	shmrt_step_plan_slots(&q, slots);
	const struct shmrt_step_seq *s = &q.seqs[3];
	for (int j = 0; j < s->q_len; j++) {
		int pos = 32 + j;
		int32_t want = q.block_ids[s->bt_start + pos / 16] * 16 + pos % 16;
		CHECK(slots[s->q_start + j] == want, "slot of position %d: %d, not %d", pos, slots[s->q_start + j], want);
	}
	CHECK(slots[0] == q.block_ids[1] * 16 + 0, "decode at position 16: second block, offset 0");
	free(buf);
	shmrt_step_plan_free(&p);
	shmrt_step_plan_free(&q);
}

/* A refused record leaves no plan; an accepted one re-serializes to itself. */
static int parse_checked(const uint8_t *buf, size_t len, struct shmrt_step_plan *q)
{
	int rc = shmrt_step_plan_parse(buf, len, &lim, q);
	if (rc) {
		CHECK(rc == -EBADMSG && q->n_seqs == 0 && q->n_tokens == 0 && q->n_blocks == 0,
		      "refused with %d but left a plan", rc);
		return rc;
	}
	uint8_t *again = malloc(len ? len : 1);
	size_t n;
	CHECK_OK(shmrt_step_plan_serialize(q, again, len, &n));
	CHECK(n == len && !memcmp(again, buf, len), "accepted record is not canonical");
	free(again);
	return 0;
}

static void test_truncations_and_flips(void)
{
	struct shmrt_step_plan p, q;
	mixed_plan(&p);
	plan_init(&q);
	size_t len;
	uint8_t *buf = record(&p, &len);
	for (size_t n = 0; n < len; n++)
		CHECK(parse_checked(buf, n, &q) == -EBADMSG, "truncated to %zu accepted", n);
	uint8_t *longer = calloc(len + 4, 1);
	memcpy(longer, buf, len);
	CHECK(parse_checked(longer, len + 4, &q) == -EBADMSG, "trailing bytes accepted");
	free(longer);
	int accepted = 0;
	for (size_t i = 0; i < len * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		accepted += parse_checked(buf, len, &q) == 0;
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	/* Flips of ids, tokens, sampling values and some block ids are still
	 * valid plans; flips of magic, counts and lengths are not. */
	CHECK(accepted > 0 && accepted < (int)(len * 8), "%d of %zu flips accepted", accepted, len * 8);
	printf("bit flips: %d of %zu accepted (each re-serialized to itself)\n", accepted, len * 8);
	free(buf);
	shmrt_step_plan_free(&p);
	shmrt_step_plan_free(&q);
}

/* One fault each: (name, edit of the valid mixed plan's record). */
struct fault {
	const char *name, *message;
	void (*edit)(uint8_t *buf, size_t *len);
};

static void put32(uint8_t *buf, size_t off, uint32_t v)
{
	memcpy(buf + off, &v, 4);
}
#define SEQ(i, field) (SHMRT_STEP_PLAN_HEADER_BYTES + SHMRT_STEP_PLAN_SEQ_BYTES * (i) + (field))
#define TOKENS (SHMRT_STEP_PLAN_HEADER_BYTES + SHMRT_STEP_PLAN_SEQ_BYTES * 4)
#define BLOCKS (TOKENS + 4 * 33)

static void f_magic(uint8_t *b, size_t *n) { (void)n; b[0] ^= 0x20; }
static void f_version(uint8_t *b, size_t *n) { (void)n; b[4] = 2; }
static void f_block_size(uint8_t *b, size_t *n) { (void)n; put32(b, 16, 32); }
static void f_too_many_seqs(uint8_t *b, size_t *n) { (void)n; put32(b, 20, CORPUS_SEQS + 1); }
static void f_huge_counts(uint8_t *b, size_t *n) { (void)n; put32(b, 24, 0xffffffffu); }
static void f_truncated(uint8_t *b, size_t *n) { (void)b; *n -= 4; }
static void f_q_zero(uint8_t *b, size_t *n) { (void)n; put32(b, SEQ(1, 8), 0); }
static void f_ctx_below_q(uint8_t *b, size_t *n) { (void)n; put32(b, SEQ(3, 12), 20); }
static void f_ctx_too_long(uint8_t *b, size_t *n) { (void)n; put32(b, SEQ(2, 12), CORPUS_MAX_CTX + 1); }
static void f_q_sum(uint8_t *b, size_t *n) { (void)n; put32(b, SEQ(3, 8), 29); }
static void f_flags(uint8_t *b, size_t *n) { (void)n; put32(b, SEQ(0, 16), 3); }
static void f_nan(uint8_t *b, size_t *n)
{
	(void)n;
	float v = NAN;
	memcpy(b + SEQ(0, 24), &v, 4);
}
static void f_token(uint8_t *b, size_t *n) { (void)n; put32(b, TOKENS + 8, CORPUS_VOCAB); }
static void f_token_negative(uint8_t *b, size_t *n) { (void)n; put32(b, TOKENS, 0xffffffffu); }
static void f_block_outside(uint8_t *b, size_t *n) { (void)n; put32(b, BLOCKS + 4, CORPUS_BLOCKS); }
static void f_block_twice(uint8_t *b, size_t *n)
{
	(void)n;
	memcpy(b + BLOCKS + 4 * 5, b + BLOCKS, 4); /* seq 3's last block = seq 7's first */
}

static const struct fault faults[] = {
	{"bad-magic", "magic", f_magic},
	{"bad-version", "version", f_version},
	{"bad-block-size", "block size", f_block_size},
	{"too-many-seqs", "n_seqs", f_too_many_seqs},
	{"huge-counts", "n_tokens", f_huge_counts},
	{"truncated", "length", f_truncated},
	{"q-len-zero", "q_len", f_q_zero},
	{"ctx-below-q", "ctx_len", f_ctx_below_q},
	{"ctx-too-long", "context", f_ctx_too_long},
	{"tokens-short", "fewer tokens", f_q_sum},
	{"unknown-flags", "flags", f_flags},
	{"temperature-nan", "finite", f_nan},
	{"token-outside-vocab", "vocabulary", f_token},
	{"token-negative", "vocabulary", f_token_negative},
	{"block-outside-cache", "outside the cache", f_block_outside},
	{"block-in-two-tables", "two tables", f_block_twice},
};

static uint8_t *faulty(size_t i, size_t *len)
{
	struct shmrt_step_plan p;
	mixed_plan(&p);
	uint8_t *buf = record(&p, len);
	shmrt_step_plan_free(&p);
	faults[i].edit(buf, len);
	return buf;
}

static void test_faults(void)
{
	struct shmrt_step_plan q;
	plan_init(&q);
	for (size_t i = 0; i < ARRAY_SIZE(faults); i++) {
		size_t len;
		uint8_t *buf = faulty(i, &len);
		CHECK(parse_checked(buf, len, &q) == -EBADMSG, "%s accepted", faults[i].name);
		CHECK(strstr(shmrt_last_error(), faults[i].message), "%s: message '%s' lacks '%s'", faults[i].name,
		      shmrt_last_error(), faults[i].message);
		free(buf);
	}
	shmrt_step_plan_free(&q);
}

static void write_file(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(buf, 1, len, f) == len && fclose(f) == 0, "write %s", path);
}

static void write_corpus(const char *dir)
{
	struct shmrt_step_plan p;
	size_t len;
	uint8_t *buf;
	mixed_plan(&p);
	buf = record(&p, &len);
	write_file(dir, "valid-mixed", buf, len);
	free(buf);
	shmrt_step_plan_free(&p);

	int32_t nb = 0;
	plan_init(&p);
	for (int i = 0; i < 8; i++)
		add_seq(&p, (uint64_t)i, 1, 16 * i + 5, true, &nb);
	buf = record(&p, &len);
	write_file(dir, "valid-decodes", buf, len);
	free(buf);
	shmrt_step_plan_free(&p);

	plan_init(&p);
	buf = record(&p, &len);
	write_file(dir, "valid-empty", buf, len);
	free(buf);
	shmrt_step_plan_free(&p);

	for (size_t i = 0; i < ARRAY_SIZE(faults); i++) {
		buf = faulty(i, &len);
		write_file(dir, faults[i].name, buf, len);
		free(buf);
	}
}

static void check_corpus(const char *dir)
{
	struct shmrt_step_plan q;
	plan_init(&q);
	DIR *d = opendir(dir);
	CHECK(d, "no corpus %s", dir);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		struct stat st;
		CHECK(f && fstat(fileno(f), &st) == 0, "open %s", path);
		uint8_t *buf = malloc((size_t)st.st_size + 1);
		CHECK(fread(buf, 1, (size_t)st.st_size, f) == (size_t)st.st_size, "read %s", path);
		fclose(f);
		bool valid = !strncmp(e->d_name, "valid-", 6);
		int rc = parse_checked(buf, (size_t)st.st_size, &q);
		CHECK(valid ? rc == 0 : rc == -EBADMSG, "seed %s: %d (%s)", e->d_name, rc, shmrt_last_error());
		free(buf);
		n++;
	}
	closedir(d);
	CHECK(n >= 3 + (int)(ARRAY_SIZE(faults)), "only %d seeds", n);
	shmrt_step_plan_free(&q);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--write-corpus")) {
		write_corpus(argv[2]);
		return 0;
	}
	CHECK(argc == 2, "usage: test_step_plan CORPUS_DIR | --write-corpus DIR");
	test_round_trip();
	test_truncations_and_flips();
	test_faults();
	check_corpus(argv[1]);
	printf("step_plan: ok\n");
	return 0;
}

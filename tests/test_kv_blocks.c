/* The paged KV block manager (runtime/engine/kv_blocks.c): allocation on append,
 * all-or-nothing failures, release, admission and room accounting, and a
 * long random run checked after every operation against a shadow model
 * kept here (tokens per table) and against the invariants: no block in two
 * tables, free + used == total. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kv_blocks.h"
#include "shmrt/error.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_create_errors(void)
{
	struct shmrt_kvb *kv;
	CHECK(shmrt_kvb_create(&kv, 0, 16, 1, 1) == -EINVAL && !kv, "0 blocks");
	CHECK(shmrt_kvb_create(&kv, 8, 0, 1, 1) == -EINVAL, "block size 0");
	CHECK(shmrt_kvb_create(&kv, 8, 16, 0, 1) == -EINVAL, "0 tables");
	CHECK(shmrt_kvb_create(&kv, 8, 16, 1, 0) == -EINVAL, "table length 0");
	CHECK(shmrt_kvb_create(&kv, INT32_MAX / 8, 16, 1, 1) == -EINVAL, "slots overflow int32");
	CHECK(strstr(shmrt_last_error(), "int32"), "message: %s", shmrt_last_error());
}

static void test_append_and_release(int bs)
{
	struct shmrt_kvb *kv;
	CHECK_OK(shmrt_kvb_create(&kv, 10, bs, 3, 10));
	CHECK(shmrt_kvb_num_free(kv) == 10 && shmrt_kvb_num_used(kv) == 0, "fresh pool");
	CHECK(shmrt_kvb_blocks_for(kv, 0) == 0 && shmrt_kvb_blocks_for(kv, 1) == 1 &&
		      shmrt_kvb_blocks_for(kv, bs) == 1 && shmrt_kvb_blocks_for(kv, bs + 1) == 2,
	      "blocks_for");
	int n;
	int64_t tok;
	/* The first token takes a block; the next bs-1 fit in it; one more
	 * crosses the boundary and takes a second. */
	CHECK_OK(shmrt_kvb_append(kv, 0, 1));
	shmrt_kvb_table(kv, 0, &n, &tok);
	CHECK(n == 1 && tok == 1 && shmrt_kvb_num_free(kv) == 9, "one token: %d blocks", n);
	CHECK(shmrt_kvb_room(kv, 0) == (bs - 1) + 9 * bs, "room %lld", (long long)shmrt_kvb_room(kv, 0));
	CHECK_OK(shmrt_kvb_append(kv, 0, bs - 1));
	shmrt_kvb_table(kv, 0, &n, &tok);
	CHECK(n == 1 && tok == bs, "a full block: %d blocks", n);
	CHECK_OK(shmrt_kvb_append(kv, 0, 1));
	const int32_t *t0 = shmrt_kvb_table(kv, 0, &n, &tok);
	CHECK(n == 2 && t0[0] != t0[1], "crossing: %d blocks", n);
	CHECK_OK(shmrt_kvb_append(kv, 0, 0));
	CHECK(shmrt_kvb_num_used(kv) == 2, "append of 0 takes nothing");

	/* Table 1 takes 7 blocks, leaving 1: table 2 asks for 2 and gets
	 * nothing at all. */
	CHECK_OK(shmrt_kvb_append(kv, 1, 7 * bs));
	CHECK(shmrt_kvb_num_free(kv) == 1, "free %d", shmrt_kvb_num_free(kv));
	CHECK(shmrt_kvb_append(kv, 2, bs + 1) == -ENOSPC, "no space");
	shmrt_kvb_table(kv, 2, &n, &tok);
	CHECK(n == 0 && tok == 0 && shmrt_kvb_num_free(kv) == 1, "all or nothing: %d blocks taken", n);
	CHECK(shmrt_kvb_can_admit(kv, bs, 0) && !shmrt_kvb_can_admit(kv, bs + 1, 0) &&
		      !shmrt_kvb_can_admit(kv, 1, 1),
	      "can_admit");
	CHECK(shmrt_kvb_append(kv, 3, 1) == -EINVAL && shmrt_kvb_append(kv, -1, 1) == -EINVAL &&
		      shmrt_kvb_append(kv, 0, -1) == -EINVAL,
	      "bad table or count");
	CHECK_OK(shmrt_kvb_check(kv));

	/* Release: every block back; the freed blocks are handed out next. */
	int32_t first = shmrt_kvb_table(kv, 1, &n, NULL)[0];
	shmrt_kvb_release(kv, 1);
	shmrt_kvb_table(kv, 1, &n, &tok);
	CHECK(n == 0 && tok == 0 && shmrt_kvb_num_free(kv) == 8, "released");
	CHECK_OK(shmrt_kvb_append(kv, 2, 1));
	CHECK(shmrt_kvb_table(kv, 2, &n, NULL)[0] == first, "LIFO reuse");
	CHECK_OK(shmrt_kvb_check(kv));
	shmrt_kvb_destroy(kv);
}

static void test_table_limit(void)
{
	struct shmrt_kvb *kv;
	CHECK_OK(shmrt_kvb_create(&kv, 16, 4, 2, 3));
	CHECK(shmrt_kvb_room(kv, 0) == 12, "room capped by the table: %lld", (long long)shmrt_kvb_room(kv, 0));
	CHECK_OK(shmrt_kvb_append(kv, 0, 12));
	CHECK(shmrt_kvb_append(kv, 0, 1) == -E2BIG, "past the table's maximum");
	CHECK(shmrt_kvb_room(kv, 0) == 0, "no room");
	CHECK_OK(shmrt_kvb_check(kv));
	shmrt_kvb_destroy(kv);
}

/* The check must see a corrupt table: a block put in two tables. */
static void test_check_detects(void)
{
	struct shmrt_kvb *kv;
	CHECK_OK(shmrt_kvb_create(&kv, 8, 16, 2, 8));
	CHECK_OK(shmrt_kvb_append(kv, 0, 20));
	CHECK_OK(shmrt_kvb_append(kv, 1, 20));
	int n;
	int32_t *t1 = (int32_t *)shmrt_kvb_table(kv, 1, &n, NULL);
	int32_t saved = t1[1];
	t1[1] = shmrt_kvb_table(kv, 0, &n, NULL)[0];
	CHECK(shmrt_kvb_check(kv) == -EFAULT, "duplicate not seen");
	CHECK(strstr(shmrt_last_error(), "tables 0 and 1"), "message: %s", shmrt_last_error());
	t1[1] = 99;
	CHECK(shmrt_kvb_check(kv) == -EFAULT, "out of range not seen");
	t1[1] = saved;
	CHECK_OK(shmrt_kvb_check(kv));
	shmrt_kvb_destroy(kv);
}

/* Random appends and releases over many tables; after each operation the
 * manager agrees with the shadow token counts and its invariants hold. */
static void test_random(int num_blocks, int bs, int n_tables, int ops)
{
	struct shmrt_kvb *kv;
	int max_blocks = num_blocks / 2 + 1;
	CHECK_OK(shmrt_kvb_create(&kv, num_blocks, bs, n_tables, max_blocks));
	int64_t *tokens = calloc((size_t)n_tables, sizeof(int64_t));
	int failures = 0;
	for (int op = 0; op < ops; op++) {
		int t = (int)(rnd() % (uint64_t)n_tables);
		if (rnd() % 8 == 0) {
			shmrt_kvb_release(kv, t);
			tokens[t] = 0;
		} else {
			int64_t add = (int64_t)(rnd() % (uint64_t)(3 * bs));
			int64_t need = (tokens[t] + add + bs - 1) / bs;
			int n;
			shmrt_kvb_table(kv, t, &n, NULL);
			int64_t more = need - n;
			bool fits = need <= max_blocks && more <= shmrt_kvb_num_free(kv);
			int64_t room = shmrt_kvb_room(kv, t);
			CHECK(fits == (add <= room), "room %lld vs append of %lld", (long long)room, (long long)add);
			int rc = shmrt_kvb_append(kv, t, add);
			if (fits) {
				CHECK(rc == 0, "append of %lld to table %d: %d", (long long)add, t, rc);
				tokens[t] += add;
			} else {
				CHECK(rc == -ENOSPC || rc == -E2BIG, "append should fail: %d", rc);
				failures++;
			}
		}
		int64_t used = 0;
		for (int i = 0; i < n_tables; i++) {
			int n;
			int64_t tok;
			shmrt_kvb_table(kv, i, &n, &tok);
			CHECK(tok == tokens[i] && n == (tokens[i] + bs - 1) / bs, "table %d: %lld tokens, %d blocks",
			      i, (long long)tok, n);
			used += n;
		}
		CHECK(used == shmrt_kvb_num_used(kv) && used + shmrt_kvb_num_free(kv) == num_blocks, "counts");
		int rc = shmrt_kvb_check(kv);
		CHECK(rc == 0, "op %d: %s", op, shmrt_last_error());
	}
	CHECK(failures > 0, "the random run never filled the pool: it checks too little");
	free(tokens);
	shmrt_kvb_destroy(kv);
}

int main(void)
{
	test_create_errors();
	test_append_and_release(16);
	test_append_and_release(32);
	test_table_limit();
	test_check_detects();
	test_random(64, 16, 8, 20000);
	test_random(37, 32, 5, 20000);
	test_random(200, 1, 31, 5000);
	printf("kv_blocks: ok\n");
	return 0;
}

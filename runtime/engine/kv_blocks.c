/* The paged KV block manager: the free list (model/block_stack.h, the
 * allocator the model's pool uses too) and one block table per sequence
 * slot. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block_stack.h"
#include "fail.h"
#include "kv_blocks.h"

#define NO_OWNER (-1)

struct kvb_table {
	int32_t *blocks; /* [max_table_blocks] */
	int n_blocks;
	int64_t n_tokens;
};

struct shmrt_kvb {
	int num_blocks, block_size, n_tables, max_table_blocks;
	struct block_stack free; /* the free blocks */
	int32_t *owner; /* [num_blocks]: the table holding the block, or NO_OWNER */
	struct kvb_table *tables;
	int32_t *table_mem;
};

int shmrt_kvb_create(struct shmrt_kvb **out, int num_blocks, int block_size, int n_tables,
		     int max_table_blocks)
{
	*out = NULL;
	if (num_blocks < 1 || block_size < 1 || n_tables < 1 || max_table_blocks < 1)
		return shmrt_fail(EINVAL, "KV blocks: num_blocks %d, block_size %d, tables %d, table length %d: "
					  "each must be at least 1",
				  num_blocks, block_size, n_tables, max_table_blocks);
	if (num_blocks > INT32_MAX / block_size)
		return shmrt_fail(EINVAL, "KV blocks: %d blocks of %d tokens overflow int32 slot numbers",
				  num_blocks, block_size);
	if (max_table_blocks > num_blocks)
		max_table_blocks = num_blocks; /* a table can never hold more */
	struct shmrt_kvb *kv = calloc(1, sizeof(*kv));
	if (!kv)
		return shmrt_fail(ENOMEM, "KV blocks: out of memory");
	kv->num_blocks = num_blocks;
	kv->block_size = block_size;
	kv->n_tables = n_tables;
	kv->max_table_blocks = max_table_blocks;
	int no_stack = block_stack_init(&kv->free, num_blocks);
	kv->owner = malloc((size_t)num_blocks * sizeof(int32_t));
	kv->tables = calloc((size_t)n_tables, sizeof(*kv->tables));
	kv->table_mem = malloc((size_t)n_tables * (size_t)max_table_blocks * sizeof(int32_t));
	if (no_stack || !kv->owner || !kv->tables || !kv->table_mem) {
		shmrt_kvb_destroy(kv);
		return shmrt_fail(ENOMEM, "KV blocks: out of memory for %d blocks and %d tables", num_blocks,
				  n_tables);
	}
	/* No block owned; the stack gives out 0, 1, 2, ... (block_stack.h). */
	for (int i = 0; i < num_blocks; i++)
		kv->owner[i] = NO_OWNER;
	for (int t = 0; t < n_tables; t++)
		kv->tables[t].blocks = kv->table_mem + (size_t)t * (size_t)max_table_blocks;
	*out = kv;
	return 0;
}

void shmrt_kvb_destroy(struct shmrt_kvb *kv)
{
	if (!kv)
		return;
	block_stack_fini(&kv->free);
	free(kv->owner);
	free(kv->tables);
	free(kv->table_mem);
	free(kv);
}

int shmrt_kvb_num_blocks(const struct shmrt_kvb *kv)
{
	return kv->num_blocks;
}

int shmrt_kvb_block_size(const struct shmrt_kvb *kv)
{
	return kv->block_size;
}

int shmrt_kvb_num_free(const struct shmrt_kvb *kv)
{
	return kv->free.n_free;
}

int shmrt_kvb_num_used(const struct shmrt_kvb *kv)
{
	return kv->num_blocks - kv->free.n_free;
}

int64_t shmrt_kvb_blocks_for(const struct shmrt_kvb *kv, int64_t n_tokens)
{
	return n_tokens <= 0 ? 0 : (n_tokens + kv->block_size - 1) / kv->block_size;
}

int shmrt_kvb_can_admit(const struct shmrt_kvb *kv, int64_t n_tokens, int reserve)
{
	return shmrt_kvb_blocks_for(kv, n_tokens) + (reserve > 0 ? reserve : 0) <= kv->free.n_free;
}

static int bad_table(const struct shmrt_kvb *kv, int t)
{
	return t < 0 || t >= kv->n_tables;
}

int64_t shmrt_kvb_room(const struct shmrt_kvb *kv, int t)
{
	if (bad_table(kv, t))
		return 0;
	const struct kvb_table *tb = &kv->tables[t];
	int64_t slack = (int64_t)tb->n_blocks * kv->block_size - tb->n_tokens;
	int64_t more = kv->max_table_blocks - tb->n_blocks;
	if (more > kv->free.n_free)
		more = kv->free.n_free;
	return slack + more * kv->block_size;
}

int shmrt_kvb_append(struct shmrt_kvb *kv, int t, int64_t n_tokens)
{
	if (bad_table(kv, t) || n_tokens < 0)
		return shmrt_fail(EINVAL, "KV blocks: append of %lld tokens to table %d (of %d)", (long long)n_tokens,
				  t, kv->n_tables);
	struct kvb_table *tb = &kv->tables[t];
	int64_t need = shmrt_kvb_blocks_for(kv, tb->n_tokens + n_tokens);
	if (need > kv->max_table_blocks)
		return shmrt_fail(E2BIG, "KV blocks: table %d would need %lld blocks, more than its %d", t,
				  (long long)need, kv->max_table_blocks);
	int64_t more = need - tb->n_blocks;
	if (more > kv->free.n_free)
		return shmrt_fail(ENOSPC, "KV blocks: table %d needs %lld more blocks, %d are free", t,
				  (long long)more, kv->free.n_free);
	for (; more > 0; more--) {
		int32_t b = block_stack_pop(&kv->free);
		kv->owner[b] = t;
		tb->blocks[tb->n_blocks++] = b;
	}
	tb->n_tokens += n_tokens;
	return 0;
}

void shmrt_kvb_release(struct shmrt_kvb *kv, int t)
{
	if (bad_table(kv, t))
		return;
	struct kvb_table *tb = &kv->tables[t];
	/* Last block first, so that the table's first block is reused first. */
	while (tb->n_blocks > 0) {
		int32_t b = tb->blocks[--tb->n_blocks];
		kv->owner[b] = NO_OWNER;
		block_stack_push(&kv->free, b);
	}
	tb->n_tokens = 0;
}

const int32_t *shmrt_kvb_table(const struct shmrt_kvb *kv, int t, int *n_blocks, int64_t *n_tokens)
{
	if (bad_table(kv, t)) {
		*n_blocks = 0;
		if (n_tokens)
			*n_tokens = 0;
		return NULL;
	}
	*n_blocks = kv->tables[t].n_blocks;
	if (n_tokens)
		*n_tokens = kv->tables[t].n_tokens;
	return kv->tables[t].blocks;
}

int shmrt_kvb_check(const struct shmrt_kvb *kv)
{
	/* seen[b]: 0 unseen, 1 on the free list, 2 + t in table t. */
	int32_t *seen = calloc((size_t)kv->num_blocks, sizeof(int32_t));
	if (!seen)
		return shmrt_fail(ENOMEM, "KV blocks check: out of memory");
	int rc = 0;
	if (kv->free.n_free < 0 || kv->free.n_free > kv->num_blocks) {
		rc = shmrt_fail(EFAULT, "KV blocks: %d free of %d", kv->free.n_free, kv->num_blocks);
		goto out;
	}
	for (int i = 0; i < kv->free.n_free && !rc; i++) {
		int32_t b = kv->free.ids[i];
		if (b < 0 || b >= kv->num_blocks)
			rc = shmrt_fail(EFAULT, "KV blocks: free list entry %d is block %d, outside the pool", i, b);
		else if (seen[b])
			rc = shmrt_fail(EFAULT, "KV blocks: block %d is on the free list twice", b);
		else if (kv->owner[b] != NO_OWNER)
			rc = shmrt_fail(EFAULT, "KV blocks: free block %d is owned by table %d", b, kv->owner[b]);
		else
			seen[b] = 1;
	}
	int64_t used = 0;
	for (int t = 0; t < kv->n_tables && !rc; t++) {
		const struct kvb_table *tb = &kv->tables[t];
		if (tb->n_blocks != shmrt_kvb_blocks_for(kv, tb->n_tokens)) {
			rc = shmrt_fail(EFAULT, "KV blocks: table %d holds %d blocks for %lld tokens", t, tb->n_blocks,
					(long long)tb->n_tokens);
			break;
		}
		for (int i = 0; i < tb->n_blocks && !rc; i++) {
			int32_t b = tb->blocks[i];
			if (b < 0 || b >= kv->num_blocks)
				rc = shmrt_fail(EFAULT, "KV blocks: table %d entry %d is block %d, outside the pool", t,
						i, b);
			else if (seen[b] == 1)
				rc = shmrt_fail(EFAULT, "KV blocks: block %d of table %d is also free", b, t);
			else if (seen[b])
				rc = shmrt_fail(EFAULT, "KV blocks: block %d is in tables %d and %d", b, seen[b] - 2,
						t);
			else if (kv->owner[b] != t)
				rc = shmrt_fail(EFAULT, "KV blocks: block %d of table %d is owned by %d", b, t,
						kv->owner[b]);
			else
				seen[b] = 2 + t;
		}
		used += tb->n_blocks;
	}
	if (!rc && used + kv->free.n_free != kv->num_blocks)
		rc = shmrt_fail(EFAULT, "KV blocks: %lld used + %d free != %d blocks", (long long)used, kv->free.n_free,
				kv->num_blocks);
out:
	free(seen);
	return rc;
}

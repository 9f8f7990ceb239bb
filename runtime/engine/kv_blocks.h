/* Internal: the paged KV block manager (the scheduler's accounting; the
 * workers' caches hold the K/V themselves).
 *
 * The cache is num_blocks blocks of block_size token slots. A sequence
 * owns a block table: the ids of its blocks, in the order of its tokens, so
 * that token t lives in block table[t / block_size], slot t % block_size
 * (include/shmrt/backend.h, "Paged KV cache layout"; ids are int32_t, the
 * type of the kernels' block_tables). Tables are numbered 0 .. n_tables-1:
 * the scheduler gives each running sequence one.
 *
 * Blocks are allocated as tokens are appended: a table that holds n tokens
 * has exactly ceil(n / block_size) blocks, so the token that crosses a
 * block boundary takes a new block from the free list. Releasing a table
 * (a sequence finished, was cancelled or preempted) returns all its blocks.
 * Invariants (shmrt_kvb_check): every block is either free, once, or in
 * exactly one table, once; free + used == num_blocks.
 *
 * Not thread-safe: the scheduler process alone uses it. */
#ifndef SHMRT_KV_BLOCKS_H
#define SHMRT_KV_BLOCKS_H

#include <stdint.h>

struct shmrt_kvb;

/* A pool of num_blocks blocks of block_size tokens and n_tables empty
 * tables of at most max_table_blocks blocks each. -EINVAL for sizes < 1
 * (or num_blocks above INT32_MAX / block_size: slot numbers are int32),
 * -ENOMEM. */
int shmrt_kvb_create(struct shmrt_kvb **out, int num_blocks, int block_size, int n_tables,
		     int max_table_blocks);
void shmrt_kvb_destroy(struct shmrt_kvb *kv);

int shmrt_kvb_num_blocks(const struct shmrt_kvb *kv);
int shmrt_kvb_block_size(const struct shmrt_kvb *kv);
int shmrt_kvb_num_free(const struct shmrt_kvb *kv);
int shmrt_kvb_num_used(const struct shmrt_kvb *kv);

/* Blocks that n_tokens tokens take: ceil(n_tokens / block_size). */
int64_t shmrt_kvb_blocks_for(const struct shmrt_kvb *kv, int64_t n_tokens);

/* Whether a new sequence's first n_tokens fit in the free blocks with
 * `reserve` blocks left over (an admission watermark). */
int shmrt_kvb_can_admit(const struct shmrt_kvb *kv, int64_t n_tokens, int reserve);

/* Tokens that can be appended to table t with the free blocks: the room
 * left in its last block plus block_size per free block, capped by the
 * table's maximum length. */
int64_t shmrt_kvb_room(const struct shmrt_kvb *kv, int t);

/* Appends n_tokens (>= 0) token slots to table t, taking blocks from the
 * free list as boundaries are crossed. All or nothing: -ENOSPC (nothing
 * taken) when the free blocks do not suffice, -E2BIG past the table's
 * maximum, -EINVAL for a bad table. */
int shmrt_kvb_append(struct shmrt_kvb *kv, int t, int64_t n_tokens);

/* Returns every block of table t to the free list; the table is empty. */
void shmrt_kvb_release(struct shmrt_kvb *kv, int t);

/* Table t: its block ids (valid until the next append or release of t),
 * its block count and token count. */
const int32_t *shmrt_kvb_table(const struct shmrt_kvb *kv, int t, int *n_blocks, int64_t *n_tokens);

/* Checks the invariants above, walking every block: 0, or -EFAULT with a
 * message naming the block or table at fault. O(num_blocks + tables). */
int shmrt_kvb_check(const struct shmrt_kvb *kv);

#endif

/* Internal: the one allocator of KV cache blocks, a stack of free block
 * ids: a block given back is the next one given out (still warm in the
 * caches), and a fresh stack gives out 0, 1, 2, ... Both keepers of blocks
 * use it: the model's pool (kv_pool.c: the memory of the blocks and the
 * free list of one-process generation, shmrt_kv_pool_alloc) and the
 * scheduler's accounting (engine/kv_blocks.c, which adds block tables and
 * owners on top). In the multi-process runtime only the scheduler's
 * accounting allocates: the workers take the block ids of the step plans. */
#ifndef SHMRT_BLOCK_STACK_H
#define SHMRT_BLOCK_STACK_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

struct block_stack {
	int32_t *ids; /* [num_blocks]; ids[0 .. n_free) are free, the top last */
	int n_free;
};

/* All of 0 .. num_blocks-1 free, block 0 on top. 0, or -ENOMEM (no
 * message: the caller says whose blocks). */
static inline int block_stack_init(struct block_stack *s, int num_blocks)
{
	s->n_free = 0;
	s->ids = malloc((size_t)num_blocks * sizeof(int32_t));
	if (!s->ids)
		return -ENOMEM;
	for (int i = 0; i < num_blocks; i++)
		s->ids[i] = num_blocks - 1 - i;
	s->n_free = num_blocks;
	return 0;
}

static inline void block_stack_fini(struct block_stack *s)
{
	free(s->ids);
	s->ids = NULL;
	s->n_free = 0;
}

/* Takes the top block; the caller checks n_free first. */
static inline int32_t block_stack_pop(struct block_stack *s)
{
	return s->ids[--s->n_free];
}

/* Gives block b back: it is the next one taken. */
static inline void block_stack_push(struct block_stack *s, int32_t b)
{
	s->ids[s->n_free++] = b;
}

#endif

/* The paged KV cache: every layer's K and V blocks on the model's backend,
 * a stack of free block ids, and per-sequence block tables (model.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "model_impl.h"

#define DEFAULT_BLOCK_SIZE 16

static size_t layer_block_bytes(const struct shmrt_model_config *cfg, int block_size, enum shmrt_dtype dt)
{
	return (size_t)block_size * cfg->num_kv_heads * cfg->head_dim * shmrt_dtype_size(dt);
}

size_t shmrt_kv_block_bytes(const struct shmrt_model_config *cfg, int block_size)
{
	if (block_size <= 0)
		block_size = DEFAULT_BLOCK_SIZE;
	return 2 * (size_t)cfg->num_layers * layer_block_bytes(cfg, block_size, SHMRT_F32);
}

size_t shmrt_model_kv_block_bytes(const struct shmrt_model *m, int block_size)
{
	if (block_size <= 0)
		block_size = DEFAULT_BLOCK_SIZE;
	return 2 * (size_t)m->cfg.num_layers * layer_block_bytes(&m->local, block_size, m->act);
}

/* Zeroes the cache: attention reads whole blocks on some backends and
 * masks the slots past a sequence's length, and 0 * NaN from stale memory
 * would still be NaN. */
static int zero(const struct shmrt_backend *b, void *mem, size_t bytes)
{
	if (b->host_memory) {
		memset(mem, 0, bytes);
		return 0;
	}
	size_t chunk = bytes < ((size_t)16 << 20) ? bytes : (size_t)16 << 20;
	void *z = calloc(1, chunk ? chunk : 1);
	if (!z)
		return shmrt_fail(ENOMEM, "kv pool: no memory");
	int rc = 0;
	for (size_t at = 0; !rc && at < bytes; at += chunk)
		rc = b->copy_to_device(NULL, (uint8_t *)mem + at, z, bytes - at < chunk ? bytes - at : chunk);
	if (!rc)
		rc = b->synchronize(NULL);
	free(z);
	return rc;
}

int shmrt_kv_pool_new(struct shmrt_model *m, int num_blocks, int block_size, struct shmrt_kv_pool **out)
{
	shmrt_clear_error();
	*out = NULL;
	if (block_size <= 0)
		block_size = DEFAULT_BLOCK_SIZE;
	if (num_blocks <= 0 || (int64_t)num_blocks * block_size > INT_MAX)
		return shmrt_fail(EINVAL, "kv pool: bad num_blocks %d (block_size %d)", num_blocks, block_size);
	struct shmrt_kv_pool *p = calloc(1, sizeof(*p));
	if (!p || block_stack_init(&p->free, num_blocks)) {
		free(p);
		return shmrt_fail(ENOMEM, "kv pool: no memory for %d block ids", num_blocks);
	}
	p->m = m;
	p->num_blocks = num_blocks;
	p->block_size = block_size;
	p->layer_bytes = (size_t)num_blocks * layer_block_bytes(&m->local, block_size, m->act);
	size_t bytes = 2 * (size_t)m->cfg.num_layers * p->layer_bytes;
	int rc = m->b->alloc(&p->mem, bytes);
	if (rc == 0 && (rc = zero(m->b, p->mem, bytes)) < 0)
		m->b->free(p->mem);
	if (rc < 0) {
		block_stack_fini(&p->free);
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void shmrt_kv_pool_free(struct shmrt_kv_pool *p)
{
	if (!p)
		return;
	p->m->b->free(p->mem);
	block_stack_fini(&p->free);
	free(p);
}

int shmrt_kv_pool_block_size(const struct shmrt_kv_pool *p)
{
	return p->block_size;
}

int shmrt_kv_pool_num_blocks(const struct shmrt_kv_pool *p)
{
	return p->num_blocks;
}

int shmrt_kv_pool_free_blocks(const struct shmrt_kv_pool *p)
{
	return p->free.n_free;
}

int shmrt_kv_pool_alloc(struct shmrt_kv_pool *p, int n, int32_t *ids)
{
	if (n < 0)
		return shmrt_fail(EINVAL, "kv pool: cannot allocate %d blocks", n);
	if (n > p->free.n_free)
		return shmrt_fail(ENOSPC, "kv pool: %d blocks wanted, %d of %d free", n, p->free.n_free, p->num_blocks);
	for (int i = 0; i < n; i++)
		ids[i] = block_stack_pop(&p->free);
	return 0;
}

void shmrt_kv_pool_release(struct shmrt_kv_pool *p, const int32_t *ids, int n)
{
	for (int i = n - 1; i >= 0; i--)
		block_stack_push(&p->free, ids[i]);
}

struct shmrt_kv_cache shmrt_kv_pool_layer(const struct shmrt_kv_pool *p, int layer)
{
	uint8_t *base = (uint8_t *)p->mem + 2 * (size_t)layer * p->layer_bytes;
	return (struct shmrt_kv_cache){.k = base, .v = base + p->layer_bytes, .dtype = p->m->act,
				       .num_blocks = p->num_blocks, .block_size = p->block_size,
				       .n_kv_heads = p->m->local.num_kv_heads, .head_dim = p->m->cfg.head_dim};
}

int shmrt_kv_seq_reserve(struct shmrt_kv_pool *p, struct shmrt_kv_seq *s, int len)
{
	if (len < 0)
		return shmrt_fail(EINVAL, "kv seq: bad length %d", len);
	int need = (int)(((int64_t)len + p->block_size - 1) / p->block_size);
	if (need <= s->n_blocks)
		return 0;
	if (need > s->cap) {
		int cap = s->cap ? s->cap : 4;
		while (cap < need)
			cap *= 2;
		int32_t *b = realloc(s->blocks, (size_t)cap * sizeof(*b));
		if (!b)
			return shmrt_fail(ENOMEM, "kv seq: no memory for a table of %d blocks", cap);
		s->blocks = b;
		s->cap = cap;
	}
	int rc = shmrt_kv_pool_alloc(p, need - s->n_blocks, s->blocks + s->n_blocks);
	if (rc < 0)
		return rc;
	s->n_blocks = need;
	return 0;
}

void shmrt_kv_seq_reset(struct shmrt_kv_pool *p, struct shmrt_kv_seq *s)
{
	shmrt_kv_pool_release(p, s->blocks, s->n_blocks);
	free(s->blocks);
	*s = (struct shmrt_kv_seq){0};
}

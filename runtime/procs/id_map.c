/* Request-id hash map (id_map.h). */
#include <errno.h>
#include <stdlib.h>

#include "id_map.h"

static size_t slot(uint64_t key, size_t cap)
{
	/* Fibonacci hashing: ids are sequential within a client. */
	return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 17) & (cap - 1);
}

void *rt_map_get(const struct rt_map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key)
			return m->vals[i];
		if (!m->keys[i])
			return NULL;
	}
}

static int grow(struct rt_map *m)
{
	struct rt_map b = {.cap = m->cap ? m->cap * 2 : 64};
	b.keys = calloc(b.cap, sizeof(*b.keys));
	b.vals = calloc(b.cap, sizeof(*b.vals));
	if (!b.keys || !b.vals) {
		free(b.keys);
		free(b.vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i])
			rt_map_put(&b, m->keys[i], m->vals[i]);
	rt_map_free(m);
	*m = b;
	return 0;
}

int rt_map_put(struct rt_map *m, uint64_t key, void *val)
{
	if ((m->n + 1) * 2 > m->cap && grow(m))
		return -ENOMEM;
	size_t i = slot(key, m->cap);
	while (m->keys[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	m->n += !m->keys[i];
	m->keys[i] = key;
	m->vals[i] = val;
	return 0;
}

void *rt_map_del(struct rt_map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1, i = slot(key, m->cap);
	while (m->keys[i] != key) {
		if (!m->keys[i])
			return NULL;
		i = (i + 1) & mask;
	}
	void *val = m->vals[i];
	m->n--;
	/* Backward shift: move up every later entry of the run that may sit
	 * at i, so that no lookup meets a hole before its key. */
	for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		size_t home = slot(m->keys[j], m->cap);
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = 0;
	m->vals[i] = NULL;
	return val;
}

void rt_map_free(struct rt_map *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct rt_map){0};
}

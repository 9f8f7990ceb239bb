/* Internal: a hash map from request ids (uint64, never 0) to pointers,
 * open addressing with linear probing; for the runtime's processes, which
 * keep per-request state keyed by id. Not thread-safe. */
#ifndef SHMRT_RT_MAP_H
#define SHMRT_RT_MAP_H

#include <stddef.h>
#include <stdint.h>

struct rt_map {
	uint64_t *keys; /* 0: empty */
	void **vals;
	size_t cap, n;  /* cap: a power of two */
};

/* The value of key, or NULL. */
void *rt_map_get(const struct rt_map *m, uint64_t key);
/* Sets key (> 0) to val (not NULL). 0 or -ENOMEM. */
int rt_map_put(struct rt_map *m, uint64_t key, void *val);
/* Removes key; returns its value, or NULL if absent. */
void *rt_map_del(struct rt_map *m, uint64_t key);
void rt_map_free(struct rt_map *m);

#endif

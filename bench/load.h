/* shmrt bench load: internal interfaces between its files. */
#ifndef SHMRT_BENCH_LOAD_H
#define SHMRT_BENCH_LOAD_H

#include <stdint.h>

/* The shape of a synthetic Llama checkpoint (bf16, untied lm_head),
 * written in `shards` files (1: model.safetensors; more: an index and
 * model-0000K-of-0000N.safetensors, layers split evenly). */
struct load_synth {
	int hidden, intermediate, layers, heads, kv_heads, vocab;
	int shards;
};

/* Writes config.json and the safetensors file(s) into the existing
 * directory dir, tensor data pseudo-random, then fdatasync()s them so the
 * page cache can drop them. *bytes: the tensor bytes written. */
int load_write_checkpoint(const char *dir, const struct load_synth *s, uint64_t *bytes);

#endif

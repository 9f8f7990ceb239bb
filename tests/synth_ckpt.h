/* Test helper: synthetic checkpoints written by the tests themselves. A
 * tensor's bytes are a function of its name and position, so a test can
 * check every byte it loads without keeping what it wrote. */
#ifndef SHMRT_TESTS_SYNTH_CKPT_H
#define SHMRT_TESTS_SYNTH_CKPT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "safetensors.h"

static inline uint32_t synth_seed(const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

/* Byte i of the tensor whose name hashes to seed (splitmix64 finaliser). */
static inline uint8_t synth_byte(uint32_t seed, uint64_t i)
{
	uint64_t x = ((uint64_t)seed << 32 ^ i) * 0x9E3779B97F4A7C15ull;
	x ^= x >> 31;
	x *= 0x94D049BB133111EBull;
	return (uint8_t)(x >> 40);
}

static inline uint64_t synth_bytes(const struct shmrt_st_tensor *t)
{
	uint64_t n = shmrt_dtype_size(t->dtype);
	for (int i = 0; i < t->ndim; i++)
		n *= (uint64_t)t->shape[i];
	return n;
}

/* Writes a safetensors file of the tensors t[0..n) with synthetic data. */
static inline void synth_write(const char *path, struct shmrt_st_tensor *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t bytes = synth_bytes(&t[i]), seed = synth_seed(t[i].name);
		uint8_t *p = malloc(bytes ? bytes : 1);
		CHECK(p, "no memory");
		for (uint64_t k = 0; k < bytes; k++)
			p[k] = synth_byte((uint32_t)seed, k);
		t[i].data = p;
	}
	CHECK_OK(shmrt_st_write(path, t, n));
	for (size_t i = 0; i < n; i++) {
		free((void *)t[i].data);
		t[i].data = NULL;
	}
}

/* Checks len loaded bytes against bytes [from, from + len) of tensor name. */
static inline void synth_check(const char *name, uint64_t from, const uint8_t *got, uint64_t len, const char *what)
{
	uint32_t seed = synth_seed(name);
	for (uint64_t k = 0; k < len; k++)
		CHECK(got[k] == synth_byte(seed, from + k), "%s: tensor '%s' byte %llu: got %u, want %u", what, name,
		      (unsigned long long)(from + k), got[k], synth_byte(seed, from + k));
}

static inline void synth_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
}

#endif

/* Synthetic checkpoint files for the loader tests (synth_ckpt.h). */
#include "shmrt/error.h"
#include "synth_ckpt.h"

uint32_t synth_seed(const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

uint8_t synth_byte(uint32_t seed, uint64_t i)
{
	uint64_t x = ((uint64_t)seed << 32 ^ i) * 0x9E3779B97F4A7C15ull;
	x ^= x >> 31;
	x *= 0x94D049BB133111EBull;
	return (uint8_t)(x >> 40);
}

uint64_t synth_bytes(const struct shmrt_st_tensor *t)
{
	uint64_t n = shmrt_dtype_size(t->dtype);
	for (int i = 0; i < t->ndim; i++)
		n *= (uint64_t)t->shape[i];
	return n;
}

void synth_write(const char *path, struct shmrt_st_tensor *t, size_t n)
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

void synth_check(const char *name, uint64_t from, const uint8_t *got, uint64_t len, const char *what)
{
	uint32_t seed = synth_seed(name);
	for (uint64_t k = 0; k < len; k++)
		CHECK(got[k] == synth_byte(seed, from + k), "%s: tensor '%s' byte %llu: got %u, want %u", what, name,
		      (unsigned long long)(from + k), got[k], synth_byte(seed, from + k));
}

void synth_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
}

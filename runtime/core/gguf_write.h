/* Internal: writing a GGUF file (version 3, alignment 32), the format
 * gguf.h reads: the key/values and tensor infos are collected first, then
 * shmrt_gguf_write_header writes them, and the caller streams each
 * tensor's bytes in the order the tensors were added
 * (shmrt_gguf_write_tensor pads each to the alignment).
 *
 * Format: ggml's docs/gguf.md (as gguf.h). Functions return 0 or -errno
 * with a message (fail.h). */
#ifndef SHMRT_GGUF_WRITE_H
#define SHMRT_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gguf.h"

#define SHMRT_GGUF_ALIGNMENT 32

struct shmrt_gguf_writer;

int shmrt_gguf_writer_new(struct shmrt_gguf_writer **out);
void shmrt_gguf_writer_free(struct shmrt_gguf_writer *w);

/* Key/values, in the order added. */
int shmrt_gguf_add_str(struct shmrt_gguf_writer *w, const char *key, const char *s, size_t len);
int shmrt_gguf_add_u32(struct shmrt_gguf_writer *w, const char *key, uint32_t v);
int shmrt_gguf_add_f32(struct shmrt_gguf_writer *w, const char *key, float v);
int shmrt_gguf_add_bool(struct shmrt_gguf_writer *w, const char *key, bool v);
/* An array of n numeric elements of elem_type (U8 .. I64, F32, F64), packed
 * little-endian at data. */
int shmrt_gguf_add_array(struct shmrt_gguf_writer *w, const char *key, enum shmrt_gguf_type elem_type, uint64_t n,
			 const void *data);
/* An array of n strings: strs[i], lens[i] bytes. */
int shmrt_gguf_add_str_array(struct shmrt_gguf_writer *w, const char *key, uint64_t n, const char *const *strs,
			     const size_t *lens);

/* A tensor of dtype with n_dims dimensions ne (ggml order: ne[0] the
 * innermost, a whole number of dtype's blocks). */
int shmrt_gguf_add_tensor(struct shmrt_gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
			  enum shmrt_dtype dtype);

/* The header, key/values and tensor infos, padded to the alignment. */
int shmrt_gguf_write_header(struct shmrt_gguf_writer *w, FILE *f);

/* The next tensor's bytes (as many as its shape and type take), padded;
 * -EINVAL (nothing written) for another size or past the last tensor. */
int shmrt_gguf_write_tensor(struct shmrt_gguf_writer *w, FILE *f, const void *data, uint64_t size);

#endif

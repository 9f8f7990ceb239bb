/* Internal: the safetensors file format, parsing and writing.
 *
 *   8 bytes   N: the header's length, a little-endian u64
 *   N bytes   a JSON object: "NAME": {"dtype": "BF16", "shape": [4096, 11008],
 *             "data_offsets": [begin, end]} per tensor, and optionally
 *             "__metadata__": {"key": "value", ...} (strings only);
 *             writers pad it with spaces to a multiple of 8
 *   the rest  the data section; data_offsets count from its first byte
 *
 * (the format as the README of github.com/huggingface/safetensors states
 * it, and its reference parser safetensors/src/tensor.rs enforces it.)
 *
 * The parser treats the file as hostile: every number is checked before it
 * is used, and a bad file is an error naming the file and the tensor. It is
 * a little more lenient than the reference in one way: gaps between
 * tensors in the data section are allowed (the reference wants the tensors
 * to tile it exactly); gaps are harmless, overlaps are not. */
#ifndef SHMRT_SAFETENSORS_H
#define SHMRT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "shmrt/checkpoint.h"

/* The reference implementation's limit; real headers are a few hundred KiB. */
#define SHMRT_ST_MAX_HEADER 100000000u

struct shmrt_st_header {
	struct shmrt_tensor_info *tensors; /* sorted by offset; names are owned */
	size_t n;
	uint64_t data_start; /* 8 + N: where the data section begins */
};

/* Parses the header of a safetensors file: buf holds its first len bytes
 * (at least the whole header), file_size is the whole file's size. Each
 * tensor's offset is made absolute and its file set to `file`, which the
 * caller keeps alive (it also names the file in messages). */
int shmrt_st_parse(const void *buf, size_t len, uint64_t file_size, const char *file, struct shmrt_st_header *out);

/* Reads the header from the open file fd (path for messages) and parses it. */
int shmrt_st_read_header(int fd, const char *path, struct shmrt_st_header *out);

void shmrt_st_header_free(struct shmrt_st_header *h);

/* One tensor to write. */
struct shmrt_st_tensor {
	const char *name;
	enum shmrt_dtype dtype;
	int ndim;
	int64_t shape[SHMRT_TENSOR_MAX_DIMS];
	const void *data; /* its bytes; shmrt_st_write only */
};

/* Writes the 8-byte length and the header of tensors t[0..n) to fd at
 * offset 0, their data laid out back to back in that order; *data_start
 * gets where the data section begins. The caller writes the data. */
int shmrt_st_write_header(int fd, const char *path, const struct shmrt_st_tensor *t, size_t n,
			  uint64_t *data_start);

/* Writes a whole safetensors file (created or truncated, mode 0644). */
int shmrt_st_write(const char *path, const struct shmrt_st_tensor *t, size_t n);

#endif

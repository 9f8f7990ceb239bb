/* Internal: GGUF files (llama.cpp's model format), version 3 (and 2):
 * the header's metadata key/values and tensor infos, every count, length,
 * offset and shape bounds-checked against the file. The loader maps the
 * tensors to the model (loader/gguf_checkpoint.c), the tokenizer reads its
 * vocabulary from the metadata (tokenizer/gguf_vocab.c).
 *
 * Format: ggml's docs/gguf.md. All integers little-endian. A string is a
 * u64 length and that many bytes (no NUL); an array is a u32 element type,
 * a u64 count and the elements. Tensor data starts at the first multiple
 * of general.alignment (default 32) after the tensor infos; each tensor's
 * offset is relative to that start and a multiple of the alignment.
 *
 * Parsed strings and arrays point into the file's bytes, which stay mapped
 * until shmrt_gguf_close. Keys and tensor names are copied, NUL-terminated.
 * Functions return 0 or -errno with a message (fail.h) naming the file. */
#ifndef SHMRT_GGUF_H
#define SHMRT_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmrt/dtype.h"

enum shmrt_gguf_type {
	SHMRT_GGUF_U8 = 0,
	SHMRT_GGUF_I8 = 1,
	SHMRT_GGUF_U16 = 2,
	SHMRT_GGUF_I16 = 3,
	SHMRT_GGUF_U32 = 4,
	SHMRT_GGUF_I32 = 5,
	SHMRT_GGUF_F32 = 6,
	SHMRT_GGUF_BOOL = 7,
	SHMRT_GGUF_STRING = 8,
	SHMRT_GGUF_ARRAY = 9,
	SHMRT_GGUF_U64 = 10,
	SHMRT_GGUF_I64 = 11,
	SHMRT_GGUF_F64 = 12,
};

#define SHMRT_GGUF_MAX_DIMS 4

struct shmrt_gguf_kv {
	const char *key;
	enum shmrt_gguf_type type;
	/* scalars: the value; strings: str/len */
	union {
		uint64_t u;
		int64_t i;
		double f;
		bool b;
	} v;
	const char *str; /* STRING: its bytes (not NUL-terminated) */
	uint64_t len;    /* STRING: its length */
	/* ARRAY: elem_type, n elements; numeric elements packed at data
	 * (little-endian, maybe unaligned: read with shmrt_gguf_array_*);
	 * strings through shmrt_gguf_array_str */
	enum shmrt_gguf_type elem_type;
	uint64_t n;
	const uint8_t *data;
	const uint64_t *str_offsets; /* STRING arrays: n + 1 offsets into data */
};

struct shmrt_gguf_tensor {
	const char *name;
	int n_dims;
	/* ggml order: ne[0] is the innermost (contiguous) dimension; a
	 * [rows][cols] matrix has ne[0] = cols, ne[1] = rows */
	int64_t ne[SHMRT_GGUF_MAX_DIMS];
	uint32_t ggml_type; /* as in the file */
	enum shmrt_dtype dtype; /* the same as a shmrt dtype */
	uint64_t offset; /* of its first byte in the file (data start + its offset) */
	uint64_t size;   /* bytes */
};

struct shmrt_gguf;

/* Maps path and parses its header. */
int shmrt_gguf_open(const char *path, struct shmrt_gguf **out);

/* Parses a header from the len bytes at buf (the whole file, or at least
 * its header: tensors may then lie past len only if allow_short; the
 * fuzzer's entry). buf must outlive the result; name is for messages. */
int shmrt_gguf_parse(const void *buf, size_t len, const char *name, bool allow_short, struct shmrt_gguf **out);

void shmrt_gguf_close(struct shmrt_gguf *g);

/* True when path's first four bytes are "GGUF". */
bool shmrt_gguf_is_gguf(const char *path);

const char *shmrt_gguf_path(const struct shmrt_gguf *g);
uint32_t shmrt_gguf_version(const struct shmrt_gguf *g);
uint64_t shmrt_gguf_file_size(const struct shmrt_gguf *g);

size_t shmrt_gguf_kv_count(const struct shmrt_gguf *g);
const struct shmrt_gguf_kv *shmrt_gguf_kv_at(const struct shmrt_gguf *g, size_t i);
/* The key/value called key, or NULL. */
const struct shmrt_gguf_kv *shmrt_gguf_find(const struct shmrt_gguf *g, const char *key);

/* Typed reads of a key: -ENOENT (with a message) when absent, -EINVAL when
 * of another type or out of range. Integers accept any integer type whose
 * value fits; floats accept f32 and f64. */
int shmrt_gguf_get_int(const struct shmrt_gguf *g, const char *key, int64_t min, int64_t max, int64_t *out);
int shmrt_gguf_get_float(const struct shmrt_gguf *g, const char *key, double *out);
int shmrt_gguf_get_bool(const struct shmrt_gguf *g, const char *key, bool *out);
/* s is not NUL-terminated. */
int shmrt_gguf_get_str(const struct shmrt_gguf *g, const char *key, const char **s, size_t *len);
/* An array of elem_type (any when elem_type < 0). */
int shmrt_gguf_get_array(const struct shmrt_gguf *g, const char *key, int elem_type,
			 const struct shmrt_gguf_kv **out);

/* Element i (< kv->n, unchecked) of an array. _int accepts every integer
 * element type, _float F32 and F64. */
int64_t shmrt_gguf_array_int(const struct shmrt_gguf_kv *kv, uint64_t i);
double shmrt_gguf_array_float(const struct shmrt_gguf_kv *kv, uint64_t i);
void shmrt_gguf_array_str(const struct shmrt_gguf_kv *kv, uint64_t i, const char **s, size_t *len);

size_t shmrt_gguf_tensor_count(const struct shmrt_gguf *g);
const struct shmrt_gguf_tensor *shmrt_gguf_tensor_at(const struct shmrt_gguf *g, size_t i);
/* The tensor called name, or NULL. */
const struct shmrt_gguf_tensor *shmrt_gguf_find_tensor(const struct shmrt_gguf *g, const char *name);

/* GGML's type id of a shmrt dtype, and back (-ENOTSUP for a type shmrt
 * does not run). */
int shmrt_gguf_type_of(enum shmrt_dtype dt, uint32_t *ggml_type);
int shmrt_gguf_dtype_of(uint32_t ggml_type, enum shmrt_dtype *dt);

#endif

/* Writing GGUF files (gguf_write.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_write.h"
#include "fail.h"

struct buf {
	uint8_t *p;
	size_t n, cap;
};

struct wtensor {
	uint64_t size, offset;
};

struct shmrt_gguf_writer {
	struct buf kv, info; /* the encoded key/values and tensor infos */
	uint64_t n_kv, n_tensors;
	struct wtensor *tensors;
	uint64_t data_bytes; /* tensor data so far, padded */
	uint64_t next;       /* the tensor shmrt_gguf_write_tensor writes next */
	int err;             /* the first failed add: later calls return it */
};

static int put(struct shmrt_gguf_writer *w, struct buf *b, const void *p, size_t n)
{
	if (w->err)
		return w->err;
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		if (!q)
			return w->err = shmrt_fail(ENOMEM, "gguf: no memory for the header");
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

/* Little-endian integers (the hosts shmrt runs on are). */
static int put_u32(struct shmrt_gguf_writer *w, struct buf *b, uint32_t v)
{
	return put(w, b, &v, 4);
}

static int put_u64(struct shmrt_gguf_writer *w, struct buf *b, uint64_t v)
{
	return put(w, b, &v, 8);
}

static int put_str(struct shmrt_gguf_writer *w, struct buf *b, const char *s, size_t len)
{
	int rc = put_u64(w, b, len);
	return rc ? rc : put(w, b, s, len);
}

/* A key and its type: the start of every key/value. */
static int put_key(struct shmrt_gguf_writer *w, const char *key, enum shmrt_gguf_type type)
{
	w->n_kv++;
	int rc = put_str(w, &w->kv, key, strlen(key));
	return rc ? rc : put_u32(w, &w->kv, (uint32_t)type);
}

int shmrt_gguf_writer_new(struct shmrt_gguf_writer **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : shmrt_fail(ENOMEM, "gguf: no memory for a writer");
}

void shmrt_gguf_writer_free(struct shmrt_gguf_writer *w)
{
	if (!w)
		return;
	free(w->kv.p);
	free(w->info.p);
	free(w->tensors);
	free(w);
}

int shmrt_gguf_add_str(struct shmrt_gguf_writer *w, const char *key, const char *s, size_t len)
{
	int rc = put_key(w, key, SHMRT_GGUF_STRING);
	return rc ? rc : put_str(w, &w->kv, s, len);
}

int shmrt_gguf_add_u32(struct shmrt_gguf_writer *w, const char *key, uint32_t v)
{
	int rc = put_key(w, key, SHMRT_GGUF_U32);
	return rc ? rc : put_u32(w, &w->kv, v);
}

int shmrt_gguf_add_f32(struct shmrt_gguf_writer *w, const char *key, float v)
{
	int rc = put_key(w, key, SHMRT_GGUF_F32);
	return rc ? rc : put(w, &w->kv, &v, 4);
}

int shmrt_gguf_add_bool(struct shmrt_gguf_writer *w, const char *key, bool v)
{
	uint8_t b = v;
	int rc = put_key(w, key, SHMRT_GGUF_BOOL);
	return rc ? rc : put(w, &w->kv, &b, 1);
}

static size_t elem_bytes(enum shmrt_gguf_type t)
{
	switch (t) {
	case SHMRT_GGUF_U8: case SHMRT_GGUF_I8: case SHMRT_GGUF_BOOL: return 1;
	case SHMRT_GGUF_U16: case SHMRT_GGUF_I16: return 2;
	case SHMRT_GGUF_U32: case SHMRT_GGUF_I32: case SHMRT_GGUF_F32: return 4;
	case SHMRT_GGUF_U64: case SHMRT_GGUF_I64: case SHMRT_GGUF_F64: return 8;
	default: return 0;
	}
}

int shmrt_gguf_add_array(struct shmrt_gguf_writer *w, const char *key, enum shmrt_gguf_type elem_type, uint64_t n,
			 const void *data)
{
	size_t eb = elem_bytes(elem_type);
	if (!eb)
		return shmrt_fail(EINVAL, "gguf: '%s': arrays of type %d are written with shmrt_gguf_add_str_array",
				  key, (int)elem_type);
	int rc = put_key(w, key, SHMRT_GGUF_ARRAY);
	if (!rc)
		rc = put_u32(w, &w->kv, (uint32_t)elem_type);
	if (!rc)
		rc = put_u64(w, &w->kv, n);
	return rc ? rc : put(w, &w->kv, data, (size_t)n * eb);
}

int shmrt_gguf_add_str_array(struct shmrt_gguf_writer *w, const char *key, uint64_t n, const char *const *strs,
			     const size_t *lens)
{
	int rc = put_key(w, key, SHMRT_GGUF_ARRAY);
	if (!rc)
		rc = put_u32(w, &w->kv, SHMRT_GGUF_STRING);
	if (!rc)
		rc = put_u64(w, &w->kv, n);
	for (uint64_t i = 0; !rc && i < n; i++)
		rc = put_str(w, &w->kv, strs[i], lens[i]);
	return rc;
}

static uint64_t align_up(uint64_t v)
{
	return (v + SHMRT_GGUF_ALIGNMENT - 1) / SHMRT_GGUF_ALIGNMENT * SHMRT_GGUF_ALIGNMENT;
}

int shmrt_gguf_add_tensor(struct shmrt_gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
			  enum shmrt_dtype dtype)
{
	uint32_t type;
	int rc = shmrt_gguf_type_of(dtype, &type);
	if (rc)
		return rc;
	if (n_dims < 1 || n_dims > SHMRT_GGUF_MAX_DIMS)
		return shmrt_fail(EINVAL, "gguf: tensor '%s' has %d dimensions", name, n_dims);
	uint64_t rows = 1;
	for (int d = 1; d < n_dims; d++)
		rows *= (uint64_t)ne[d];
	uint64_t row = shmrt_dtype_row_bytes(dtype, ne[0]);
	if (!row)
		return shmrt_fail(EINVAL, "gguf: tensor '%s': rows of %lld are not whole %s blocks", name,
				  (long long)ne[0], shmrt_dtype_name(dtype));
	struct wtensor *t = realloc(w->tensors, (w->n_tensors + 1) * sizeof(*t));
	if (!t)
		return shmrt_fail(ENOMEM, "gguf: no memory for the tensor table");
	w->tensors = t;
	t[w->n_tensors] = (struct wtensor){.size = row * rows, .offset = w->data_bytes};
	w->data_bytes = align_up(w->data_bytes + row * rows);
	w->n_tensors++;
	rc = put_str(w, &w->info, name, strlen(name));
	if (!rc)
		rc = put_u32(w, &w->info, (uint32_t)n_dims);
	for (int d = 0; !rc && d < n_dims; d++)
		rc = put_u64(w, &w->info, (uint64_t)ne[d]);
	if (!rc)
		rc = put_u32(w, &w->info, type);
	return rc ? rc : put_u64(w, &w->info, t[w->n_tensors - 1].offset);
}

static int write_bytes(FILE *f, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, f) != n)
		return shmrt_fail(EIO, "gguf: write failed: %s", strerror(errno));
	return 0;
}

static int write_pad(FILE *f, uint64_t at)
{
	static const uint8_t zeros[SHMRT_GGUF_ALIGNMENT];
	return write_bytes(f, zeros, (size_t)(align_up(at) - at));
}

int shmrt_gguf_write_header(struct shmrt_gguf_writer *w, FILE *f)
{
	if (w->err)
		return w->err;
	struct {
		char magic[4];
		uint32_t version;
		uint64_t n_tensors, n_kv;
	} h = {{'G', 'G', 'U', 'F'}, 3, w->n_tensors, w->n_kv};
	int rc = write_bytes(f, &h, sizeof(h));
	if (!rc)
		rc = write_bytes(f, w->kv.p, w->kv.n);
	if (!rc)
		rc = write_bytes(f, w->info.p, w->info.n);
	return rc ? rc : write_pad(f, sizeof(h) + w->kv.n + w->info.n);
}

int shmrt_gguf_write_tensor(struct shmrt_gguf_writer *w, FILE *f, const void *data, uint64_t size)
{
	if (w->next >= w->n_tensors)
		return shmrt_fail(EINVAL, "gguf: %llu tensors were declared, all written", (unsigned long long)w->n_tensors);
	if (w->tensors[w->next].size != size)
		return shmrt_fail(EINVAL, "gguf: tensor %llu written with %llu bytes, not the %llu declared",
				  (unsigned long long)w->next, (unsigned long long)size,
				  (unsigned long long)w->tensors[w->next].size);
	int rc = write_bytes(f, data, (size_t)size);
	w->next++;
	return rc ? rc : write_pad(f, size);
}

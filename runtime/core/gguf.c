/* GGUF headers: metadata and tensor infos, bounds-checked (gguf.h).
 *
 * The parser walks the bytes with a cursor that never reads past the end
 * it was given; every count is checked against the bytes left before
 * anything is allocated for it, so a forged count costs an error, not
 * memory. Format: ggml's docs/gguf.md (v3; v2 has the same layout, v1's
 * 32-bit counts are refused). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "fail.h"

#define GGUF_MAGIC "GGUF"
#define DEFAULT_ALIGNMENT 32
/* Far beyond any real file (llama.cpp's largest have a few thousand
 * tensors and ~40 keys); they bound what a forged header can make us do. */
#define MAX_KEY_LEN 65535
#define MAX_TENSORS (1u << 20)
#define MAX_KVS (1u << 16)

struct shmrt_gguf {
	char *path;
	const uint8_t *base;
	size_t len;      /* bytes at base */
	size_t map_len;  /* mapped by shmrt_gguf_open (0: not ours) */
	uint64_t file_size;
	uint32_t version;
	struct shmrt_gguf_kv *kvs;
	size_t n_kvs;
	struct shmrt_gguf_tensor *tensors;
	size_t n_tensors;
	uint64_t data_start;
};

struct cursor {
	const struct shmrt_gguf *g;
	const uint8_t *p;
	size_t left;
};

static int truncated(const struct cursor *c, const char *what)
{
	return shmrt_fail(EINVAL, "%s: truncated GGUF header: %s runs past the end (offset %zu of %zu bytes)",
			  c->g->path, what, (size_t)(c->p - c->g->base), c->g->len);
}

static int take(struct cursor *c, size_t n, const char *what, const uint8_t **out)
{
	if (n > c->left)
		return truncated(c, what);
	*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static uint64_t le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int read_u32(struct cursor *c, const char *what, uint32_t *out)
{
	const uint8_t *p = NULL;
	int rc = take(c, 4, what, &p);
	if (!rc)
		*out = (uint32_t)le(p, 4);
	return rc;
}

static int read_u64(struct cursor *c, const char *what, uint64_t *out)
{
	const uint8_t *p = NULL;
	int rc = take(c, 8, what, &p);
	if (!rc)
		*out = le(p, 8);
	return rc;
}

static int read_string(struct cursor *c, const char *what, const char **s, uint64_t *len)
{
	const uint8_t *p = NULL;
	int rc = read_u64(c, what, len);
	if (!rc && *len > c->left)
		return truncated(c, what);
	if (!rc)
		rc = take(c, (size_t)*len, what, &p);
	if (!rc)
		*s = (const char *)p;
	return rc;
}

/* Bytes of one element of a scalar type; 0 for STRING, ARRAY or unknown. */
static size_t scalar_size(uint32_t t)
{
	static const uint8_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
	return t < sizeof(sizes) ? sizes[t] : 0;
}

static const char *type_name(uint32_t t)
{
	static const char *const names[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
					    "bool", "string", "array", "u64", "i64", "f64"};
	return t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

static int is_int(uint32_t t)
{
	return t <= SHMRT_GGUF_I32 || t == SHMRT_GGUF_U64 || t == SHMRT_GGUF_I64;
}

static int64_t int_at(const uint8_t *p, uint32_t t)
{
	switch (t) {
	case SHMRT_GGUF_U8:
		return p[0];
	case SHMRT_GGUF_I8:
		return (int8_t)p[0];
	case SHMRT_GGUF_U16:
		return (uint16_t)le(p, 2);
	case SHMRT_GGUF_I16:
		return (int16_t)le(p, 2);
	case SHMRT_GGUF_U32:
		return (uint32_t)le(p, 4);
	case SHMRT_GGUF_I32:
		return (int32_t)le(p, 4);
	default: /* U64 above INT64_MAX reads negative: callers range-check */
		return (int64_t)le(p, 8);
	}
}

static double float_at(const uint8_t *p, uint32_t t)
{
	if (t == SHMRT_GGUF_F32) {
		uint32_t u = (uint32_t)le(p, 4);
		float f;
		memcpy(&f, &u, 4);
		return f;
	}
	uint64_t u = le(p, 8);
	double d;
	memcpy(&d, &u, 8);
	return d;
}

/* An array's elements: numbers stay packed where they are; strings get
 * an offset table (each string's length is walked once here). */
static int read_array(struct cursor *c, struct shmrt_gguf_kv *kv)
{
	uint32_t et;
	int rc = read_u32(c, kv->key, &et);
	if (!rc)
		rc = read_u64(c, kv->key, &kv->n);
	if (rc)
		return rc;
	kv->elem_type = (enum shmrt_gguf_type)et;
	if (et == SHMRT_GGUF_STRING) {
		/* each string takes at least its 8-byte length */
		if (kv->n > c->left / 8)
			return truncated(c, kv->key);
		uint64_t *offs = malloc((kv->n + 1) * sizeof(*offs));
		if (!offs)
			return shmrt_fail(ENOMEM, "%s: no memory for the %llu strings of '%s'", c->g->path,
					  (unsigned long long)kv->n, kv->key);
		kv->str_offsets = offs;
		kv->data = c->p;
		for (uint64_t i = 0; i < kv->n; i++) {
			const char *s;
			uint64_t len;
			offs[i] = (uint64_t)(c->p - kv->data);
			if ((rc = read_string(c, kv->key, &s, &len)))
				return rc;
		}
		offs[kv->n] = (uint64_t)(c->p - kv->data);
		return 0;
	}
	size_t es = scalar_size(et);
	if (!es)
		return shmrt_fail(EINVAL, "%s: key '%s' is an array of %s (type %u): arrays of arrays are not supported",
				  c->g->path, kv->key, type_name(et), et);
	if (kv->n > c->left / es)
		return truncated(c, kv->key);
	return take(c, (size_t)kv->n * es, kv->key, &kv->data);
}

static int read_value(struct cursor *c, struct shmrt_gguf_kv *kv, uint32_t t)
{
	const uint8_t *p = NULL;
	int rc;
	if (t == SHMRT_GGUF_STRING)
		return read_string(c, kv->key, &kv->str, &kv->len);
	if (t == SHMRT_GGUF_ARRAY)
		return read_array(c, kv);
	size_t es = scalar_size(t);
	if (!es)
		return shmrt_fail(EINVAL, "%s: key '%s' has unknown value type %u", c->g->path, kv->key, t);
	if ((rc = take(c, es, kv->key, &p)))
		return rc;
	if (t == SHMRT_GGUF_F32 || t == SHMRT_GGUF_F64)
		kv->v.f = float_at(p, t);
	else if (t == SHMRT_GGUF_BOOL)
		kv->v.b = p[0] != 0;
	else
		kv->v.i = int_at(p, t);
	return 0;
}

/* A NUL-terminated copy of a name (checked by check_name). */
static int keep_name(const struct cursor *c, const char *s, uint64_t len, const char **out)
{
	char *p = malloc(len + 1);
	if (!p)
		return shmrt_fail(ENOMEM, "%s: no memory", c->g->path);
	memcpy(p, s, len);
	p[len] = 0;
	*out = p;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* No name twice (sorted, so that a forged header of many names stays
 * cheap). */
static int check_unique(const struct shmrt_gguf *g, const char **names, size_t n, const char *what)
{
	qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(names[i - 1], names[i]))
			return shmrt_fail(EINVAL, "%s: %s '%s' appears twice", g->path, what, names[i]);
	return 0;
}

static int check_name(const struct cursor *c, const char *what, const char *s, uint64_t len)
{
	if (len == 0 || len > MAX_KEY_LEN || memchr(s, 0, len))
		return shmrt_fail(EINVAL, "%s: a %s of %llu bytes (empty, over %u or holding a NUL byte)", c->g->path,
				  what, (unsigned long long)len, MAX_KEY_LEN);
	return 0;
}

static int read_kvs(struct cursor *c, struct shmrt_gguf *g)
{
	for (size_t i = 0; i < g->n_kvs; i++) {
		struct shmrt_gguf_kv *kv = &g->kvs[i];
		const char *key = NULL;
		uint64_t len = 0;
		uint32_t t;
		int rc = read_string(c, "a metadata key", &key, &len);
		if (!rc)
			rc = check_name(c, "metadata key", key, len);
		if (!rc)
			rc = keep_name(c, key, len, &kv->key);
		if (!rc)
			rc = read_u32(c, kv->key, &t);
		if (rc)
			return rc;
		kv->type = (enum shmrt_gguf_type)t;
		if ((rc = read_value(c, kv, t)))
			return rc;
	}
	const char **keys = malloc((g->n_kvs ? g->n_kvs : 1) * sizeof(*keys));
	if (!keys)
		return shmrt_fail(ENOMEM, "%s: no memory", g->path);
	for (size_t i = 0; i < g->n_kvs; i++)
		keys[i] = g->kvs[i].key;
	int rc = check_unique(g, keys, g->n_kvs, "metadata key");
	free(keys);
	return rc;
}

int shmrt_gguf_dtype_of(uint32_t ggml_type, enum shmrt_dtype *dt)
{
	/* ggml.h's enum ggml_type */
	switch (ggml_type) {
	case 0: *dt = SHMRT_F32; return 0;
	case 1: *dt = SHMRT_F16; return 0;
	case 2: *dt = SHMRT_Q4_0; return 0;
	case 3: *dt = SHMRT_Q4_1; return 0;
	case 8: *dt = SHMRT_Q8_0; return 0;
	case 12: *dt = SHMRT_Q4_K; return 0;
	case 13: *dt = SHMRT_Q5_K; return 0;
	case 14: *dt = SHMRT_Q6_K; return 0;
	case 30: *dt = SHMRT_BF16; return 0;
	}
	return -ENOTSUP;
}

int shmrt_gguf_type_of(enum shmrt_dtype dt, uint32_t *ggml_type)
{
	for (uint32_t t = 0; t <= 30; t++) {
		enum shmrt_dtype d;
		if (shmrt_gguf_dtype_of(t, &d) == 0 && d == dt) {
			*ggml_type = t;
			return 0;
		}
	}
	return -ENOTSUP;
}

/* GGML type names for messages about types shmrt does not run. */
static const char *ggml_type_name(uint32_t t)
{
	static const char *const names[] = {"F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1",
					    "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K",
					    "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",
					    "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16"};
	return t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

static int read_tensor_info(struct cursor *c, struct shmrt_gguf *g, size_t i)
{
	struct shmrt_gguf_tensor *t = &g->tensors[i];
	const char *name = NULL;
	uint64_t len = 0, off = 0;
	uint32_t nd = 0, type = 0;
	int rc = read_string(c, "a tensor name", &name, &len);
	if (!rc)
		rc = check_name(c, "tensor name", name, len);
	if (!rc)
		rc = keep_name(c, name, len, &t->name);
	if (rc)
		return rc;
	if ((rc = read_u32(c, t->name, &nd)))
		return rc;
	if (nd == 0 || nd > SHMRT_GGUF_MAX_DIMS)
		return shmrt_fail(EINVAL, "%s: tensor '%s' has %u dimensions (1 to %d)", g->path, t->name, nd,
				  SHMRT_GGUF_MAX_DIMS);
	t->n_dims = (int)nd;
	uint64_t elems = 1;
	for (int d = 0; d < SHMRT_GGUF_MAX_DIMS; d++) {
		uint64_t ne = 1;
		if (d < t->n_dims && (rc = read_u64(c, t->name, &ne)))
			return rc;
		if (ne == 0 || ne > INT64_MAX || __builtin_mul_overflow(elems, ne, &elems) || elems > INT64_MAX)
			return shmrt_fail(EINVAL, "%s: tensor '%s' has a bad dimension %d (%llu)", g->path, t->name, d,
					  (unsigned long long)ne);
		t->ne[d] = (int64_t)ne;
	}
	if ((rc = read_u32(c, t->name, &type)) || (rc = read_u64(c, t->name, &off)))
		return rc;
	t->ggml_type = type;
	if (shmrt_gguf_dtype_of(type, &t->dtype) < 0)
		return shmrt_fail(ENOTSUP, "%s: tensor '%s' is of GGML type %s (%u), which shmrt does not run "
				  "(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)",
				  g->path, t->name, ggml_type_name(type), type);
	t->size = shmrt_dtype_row_bytes(t->dtype, t->ne[0]);
	if (!t->size)
		return shmrt_fail(EINVAL, "%s: tensor '%s': its rows of %lld elements are not whole %s blocks of %d",
				  g->path, t->name, (long long)t->ne[0], shmrt_dtype_name(t->dtype),
				  shmrt_dtype_block(t->dtype));
	if (__builtin_mul_overflow(t->size, elems / (uint64_t)t->ne[0], &t->size))
		return shmrt_fail(EINVAL, "%s: tensor '%s' is too large", g->path, t->name);
	t->offset = off; /* relative until the data start is known */
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct shmrt_gguf_tensor *const *x = a, *const *y = b;
	return ((*x)->offset > (*y)->offset) - ((*x)->offset < (*y)->offset);
}

/* Offsets aligned, inside the file, no two tensors overlapping, names
 * unique. */
static int place_tensors(struct shmrt_gguf *g, uint64_t alignment, bool allow_short)
{
	for (size_t i = 0; i < g->n_tensors; i++) {
		struct shmrt_gguf_tensor *t = &g->tensors[i];
		uint64_t end;
		if (t->offset % alignment)
			return shmrt_fail(EINVAL, "%s: tensor '%s' at offset %llu is not aligned to %llu", g->path,
					  t->name, (unsigned long long)t->offset, (unsigned long long)alignment);
		if (__builtin_add_overflow(t->offset, g->data_start, &t->offset) ||
		    __builtin_add_overflow(t->offset, t->size, &end) || (!allow_short && end > g->file_size))
			return shmrt_fail(EINVAL, "%s: tensor '%s' (%llu bytes at data offset %llu) runs past the end "
					  "of the file (%llu bytes)",
					  g->path, t->name, (unsigned long long)t->size,
					  (unsigned long long)(t->offset - g->data_start), (unsigned long long)g->file_size);
	}
	const struct shmrt_gguf_tensor **order = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof(*order));
	if (!order)
		return shmrt_fail(ENOMEM, "%s: no memory", g->path);
	for (size_t i = 0; i < g->n_tensors; i++)
		order[i] = &g->tensors[i];
	qsort(order, g->n_tensors, sizeof(*order), by_offset);
	int rc = 0;
	for (size_t i = 1; !rc && i < g->n_tensors; i++)
		if (order[i - 1]->offset + order[i - 1]->size > order[i]->offset)
			rc = shmrt_fail(EINVAL, "%s: tensors '%s' and '%s' overlap", g->path, order[i - 1]->name,
					order[i]->name);
	const char **names = (const char **)order; /* same size: reused */
	for (size_t i = 0; i < g->n_tensors; i++)
		names[i] = g->tensors[i].name;
	if (!rc)
		rc = check_unique(g, names, g->n_tensors, "tensor");
	free(order);
	return rc;
}

static int read_alignment(struct shmrt_gguf *g, uint64_t *alignment)
{
	*alignment = DEFAULT_ALIGNMENT;
	const struct shmrt_gguf_kv *kv = shmrt_gguf_find(g, "general.alignment");
	if (!kv)
		return 0;
	if (!is_int(kv->type) || kv->v.i <= 0 || kv->v.i > (1 << 20) || (kv->v.i & (kv->v.i - 1)))
		return shmrt_fail(EINVAL, "%s: general.alignment must be a power of two up to 1 MiB", g->path);
	*alignment = (uint64_t)kv->v.i;
	return 0;
}

static int parse(struct shmrt_gguf *g, bool allow_short)
{
	struct cursor c = {g, g->base, g->len};
	const uint8_t *magic = NULL;
	uint64_t n_tensors, n_kvs;
	int rc = take(&c, 4, "the magic", &magic);
	if (!rc && memcmp(magic, GGUF_MAGIC, 4))
		return shmrt_fail(EINVAL, "%s: not a GGUF file (no \"GGUF\" magic)", g->path);
	if (!rc)
		rc = read_u32(&c, "the version", &g->version);
	if (!rc && (g->version < 2 || g->version > 3))
		return shmrt_fail(ENOTSUP, "%s: GGUF version %u (shmrt reads versions 2 and 3)", g->path, g->version);
	if (!rc)
		rc = read_u64(&c, "the tensor count", &n_tensors);
	if (!rc)
		rc = read_u64(&c, "the metadata count", &n_kvs);
	if (rc)
		return rc;
	/* every key/value takes at least 12 bytes, every tensor info 24 */
	if (n_kvs > MAX_KVS || n_kvs > c.left / 12 || n_tensors > MAX_TENSORS || n_tensors > c.left / 24)
		return shmrt_fail(EINVAL, "%s: %llu tensors and %llu metadata keys cannot fit its %zu bytes", g->path,
				  (unsigned long long)n_tensors, (unsigned long long)n_kvs, g->len);
	g->n_kvs = (size_t)n_kvs;
	g->n_tensors = (size_t)n_tensors;
	g->kvs = calloc(g->n_kvs ? g->n_kvs : 1, sizeof(*g->kvs));
	g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(*g->tensors));
	if (!g->kvs || !g->tensors)
		return shmrt_fail(ENOMEM, "%s: no memory for the header", g->path);
	if ((rc = read_kvs(&c, g)))
		return rc;
	for (size_t i = 0; i < g->n_tensors; i++)
		if ((rc = read_tensor_info(&c, g, i)))
			return rc;
	uint64_t alignment;
	if ((rc = read_alignment(g, &alignment)))
		return rc;
	uint64_t header = (uint64_t)(c.p - g->base);
	g->data_start = (header + alignment - 1) / alignment * alignment;
	if (!allow_short && g->n_tensors && g->data_start > g->file_size)
		return shmrt_fail(EINVAL, "%s: the tensor data would start at %llu, past the end of the file", g->path,
				  (unsigned long long)g->data_start);
	return place_tensors(g, alignment, allow_short);
}

static struct shmrt_gguf *new_gguf(const char *name)
{
	struct shmrt_gguf *g = calloc(1, sizeof(*g));
	if (g && !(g->path = strdup(name))) {
		free(g);
		g = NULL;
	}
	if (!g)
		shmrt_fail(ENOMEM, "%s: no memory", name);
	return g;
}

int shmrt_gguf_parse(const void *buf, size_t len, const char *name, bool allow_short, struct shmrt_gguf **out)
{
	*out = NULL;
	struct shmrt_gguf *g = new_gguf(name);
	if (!g)
		return -ENOMEM;
	g->base = buf;
	g->len = len;
	g->file_size = len;
	int rc = parse(g, allow_short);
	if (rc) {
		shmrt_gguf_close(g);
		return rc;
	}
	*out = g;
	return 0;
}

int shmrt_gguf_open(const char *path, struct shmrt_gguf **out)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return shmrt_fail(errno, "%s: %s", path, strerror(errno));
	struct stat st;
	int rc = fstat(fd, &st) ? shmrt_fail(errno, "%s: %s", path, strerror(errno)) : 0;
	if (!rc && (!S_ISREG(st.st_mode) || st.st_size < 24))
		rc = shmrt_fail(EINVAL, "%s: not a GGUF file (%s)", path,
				S_ISREG(st.st_mode) ? "shorter than a GGUF header" : "not a regular file");
	struct shmrt_gguf *g = rc ? NULL : new_gguf(path);
	if (!rc && !g)
		rc = -ENOMEM;
	if (!rc) {
		/* The header and its strings are read from the mapping; the
		 * tensors' pages are never touched here (the loader reads them
		 * with the file reader). */
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			rc = shmrt_fail(errno, "%s: mmap: %s", path, strerror(errno));
		else {
			g->base = p;
			g->len = g->map_len = (size_t)st.st_size;
			g->file_size = (uint64_t)st.st_size;
			rc = parse(g, false);
		}
	}
	close(fd);
	if (rc) {
		shmrt_gguf_close(g);
		return rc;
	}
	*out = g;
	return 0;
}

void shmrt_gguf_close(struct shmrt_gguf *g)
{
	if (!g)
		return;
	for (size_t i = 0; g->kvs && i < g->n_kvs; i++) {
		free((void *)g->kvs[i].key);
		free((void *)g->kvs[i].str_offsets);
	}
	for (size_t i = 0; g->tensors && i < g->n_tensors; i++)
		free((void *)g->tensors[i].name);
	if (g->map_len)
		munmap((void *)g->base, g->map_len);
	free(g->kvs);
	free(g->tensors);
	free(g->path);
	free(g);
}

bool shmrt_gguf_is_gguf(const char *path)
{
	char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool yes = pread(fd, magic, 4, 0) == 4 && !memcmp(magic, GGUF_MAGIC, 4);
	close(fd);
	return yes;
}

const char *shmrt_gguf_path(const struct shmrt_gguf *g)
{
	return g->path;
}

uint32_t shmrt_gguf_version(const struct shmrt_gguf *g)
{
	return g->version;
}

uint64_t shmrt_gguf_file_size(const struct shmrt_gguf *g)
{
	return g->file_size;
}

size_t shmrt_gguf_kv_count(const struct shmrt_gguf *g)
{
	return g->n_kvs;
}

const struct shmrt_gguf_kv *shmrt_gguf_kv_at(const struct shmrt_gguf *g, size_t i)
{
	return i < g->n_kvs ? &g->kvs[i] : NULL;
}

const struct shmrt_gguf_kv *shmrt_gguf_find(const struct shmrt_gguf *g, const char *key)
{
	for (size_t i = 0; i < g->n_kvs; i++)
		if (!strcmp(g->kvs[i].key, key))
			return &g->kvs[i];
	return NULL;
}

static int get(const struct shmrt_gguf *g, const char *key, const struct shmrt_gguf_kv **kv)
{
	*kv = shmrt_gguf_find(g, key);
	return *kv ? 0 : shmrt_fail(ENOENT, "%s: metadata key '%s' is missing", g->path, key);
}

static int wrong_type(const struct shmrt_gguf *g, const struct shmrt_gguf_kv *kv, const char *want)
{
	return shmrt_fail(EINVAL, "%s: metadata key '%s' is %s %s, not %s", g->path, kv->key,
			  kv->type == SHMRT_GGUF_ARRAY ? "an array of" : "a", type_name(kv->type == SHMRT_GGUF_ARRAY ?
											   kv->elem_type : kv->type),
			  want);
}

int shmrt_gguf_get_int(const struct shmrt_gguf *g, const char *key, int64_t min, int64_t max, int64_t *out)
{
	const struct shmrt_gguf_kv *kv;
	int rc = get(g, key, &kv);
	if (rc)
		return rc;
	if (!is_int(kv->type))
		return wrong_type(g, kv, "an integer");
	/* a u64 past INT64_MAX reads negative: out of range either way */
	if ((kv->type == SHMRT_GGUF_U64 && kv->v.i < 0) || kv->v.i < min || kv->v.i > max)
		return shmrt_fail(EINVAL, "%s: metadata key '%s' = %lld is outside [%lld, %lld]", g->path, key,
				  (long long)kv->v.i, (long long)min, (long long)max);
	*out = kv->v.i;
	return 0;
}

int shmrt_gguf_get_float(const struct shmrt_gguf *g, const char *key, double *out)
{
	const struct shmrt_gguf_kv *kv;
	int rc = get(g, key, &kv);
	if (rc)
		return rc;
	if (kv->type != SHMRT_GGUF_F32 && kv->type != SHMRT_GGUF_F64)
		return wrong_type(g, kv, "a float");
	*out = kv->v.f;
	return 0;
}

int shmrt_gguf_get_bool(const struct shmrt_gguf *g, const char *key, bool *out)
{
	const struct shmrt_gguf_kv *kv;
	int rc = get(g, key, &kv);
	if (rc)
		return rc;
	if (kv->type != SHMRT_GGUF_BOOL)
		return wrong_type(g, kv, "a bool");
	*out = kv->v.b;
	return 0;
}

int shmrt_gguf_get_str(const struct shmrt_gguf *g, const char *key, const char **s, size_t *len)
{
	const struct shmrt_gguf_kv *kv;
	int rc = get(g, key, &kv);
	if (rc)
		return rc;
	if (kv->type != SHMRT_GGUF_STRING)
		return wrong_type(g, kv, "a string");
	*s = kv->str;
	*len = (size_t)kv->len;
	return 0;
}

int shmrt_gguf_get_array(const struct shmrt_gguf *g, const char *key, int elem_type,
			 const struct shmrt_gguf_kv **out)
{
	const struct shmrt_gguf_kv *kv;
	int rc = get(g, key, &kv);
	if (rc)
		return rc;
	if (kv->type != SHMRT_GGUF_ARRAY || (elem_type >= 0 && kv->elem_type != (uint32_t)elem_type)) {
		char want[40];
		snprintf(want, sizeof(want), "an array of %s", elem_type >= 0 ? type_name((uint32_t)elem_type) : "any");
		return wrong_type(g, kv, want);
	}
	*out = kv;
	return 0;
}

int64_t shmrt_gguf_array_int(const struct shmrt_gguf_kv *kv, uint64_t i)
{
	return int_at(kv->data + i * scalar_size(kv->elem_type), kv->elem_type);
}

double shmrt_gguf_array_float(const struct shmrt_gguf_kv *kv, uint64_t i)
{
	return float_at(kv->data + i * scalar_size(kv->elem_type), kv->elem_type);
}

void shmrt_gguf_array_str(const struct shmrt_gguf_kv *kv, uint64_t i, const char **s, size_t *len)
{
	const uint8_t *p = kv->data + kv->str_offsets[i];
	*len = (size_t)le(p, 8);
	*s = (const char *)p + 8;
}

size_t shmrt_gguf_tensor_count(const struct shmrt_gguf *g)
{
	return g->n_tensors;
}

const struct shmrt_gguf_tensor *shmrt_gguf_tensor_at(const struct shmrt_gguf *g, size_t i)
{
	return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct shmrt_gguf_tensor *shmrt_gguf_find_tensor(const struct shmrt_gguf *g, const char *name)
{
	for (size_t i = 0; i < g->n_tensors; i++)
		if (!strcmp(g->tensors[i].name, name))
			return &g->tensors[i];
	return NULL;
}

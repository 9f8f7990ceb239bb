/* Parsing and writing safetensors headers (safetensors.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fail.h"
#include "file_reader.h"
#include "safetensors.h"
#include "array_size.h"

/* The dtypes we load, under their safetensors names. Any other (I8, F8_E4M3,
 * F64, ...) is refused when the header is read, not when a load reaches it. */
static const struct {
	const char *name;
	enum shmrt_dtype dtype;
} st_dtypes[] = {{"BF16", SHMRT_BF16}, {"F16", SHMRT_F16}, {"F32", SHMRT_F32}};
#define N_DTYPES (ARRAY_SIZE(st_dtypes))

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static const char *dtype_st_name(enum shmrt_dtype dt)
{
	for (size_t i = 0; i < N_DTYPES; i++)
		if (st_dtypes[i].dtype == dt)
			return st_dtypes[i].name;
	return NULL;
}

static void format_shape(char *buf, size_t size, const int64_t *shape, int ndim)
{
	size_t used = (size_t)snprintf(buf, size, "[");
	for (int i = 0; i < ndim && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
	if (used < size)
		snprintf(buf + used, size - used, "]");
}

static int check_header_length(uint64_t n, uint64_t file_size, const char *file)
{
	if (file_size < 8)
		return shmrt_fail(EINVAL, "%s: %llu bytes, too short for a safetensors file (8-byte header length first)",
				  file, (unsigned long long)file_size);
	if (n > SHMRT_ST_MAX_HEADER)
		return shmrt_fail(EINVAL, "%s: header length %llu is absurd (limit %u bytes); not a safetensors file?",
				  file, (unsigned long long)n, SHMRT_ST_MAX_HEADER);
	if (n > file_size - 8)
		return shmrt_fail(EINVAL, "%s: header length %llu runs past the end of the file (%llu bytes); truncated?",
				  file, (unsigned long long)n, (unsigned long long)file_size);
	return 0;
}

static int parse_dtype(const char *file, const char *name, json_t *v, struct shmrt_tensor_info *t)
{
	if (!json_is_string(v))
		return shmrt_fail(EINVAL, "%s: tensor '%s': dtype missing or not a string", file, name);
	for (size_t i = 0; i < N_DTYPES; i++)
		if (!strcmp(json_string_value(v), st_dtypes[i].name)) {
			t->dtype = st_dtypes[i].dtype;
			return 0;
		}
	return shmrt_fail(ENOTSUP, "%s: tensor '%s': dtype %s is not supported (BF16, F16, F32)", file, name,
			  json_string_value(v));
}

/* Fills t->ndim and t->shape, and *bytes with what they need. */
static int parse_shape(const char *file, const char *name, json_t *v, struct shmrt_tensor_info *t, uint64_t *bytes)
{
	if (!json_is_array(v))
		return shmrt_fail(EINVAL, "%s: tensor '%s': shape missing or not a list", file, name);
	if (json_array_size(v) > SHMRT_TENSOR_MAX_DIMS)
		return shmrt_fail(EINVAL, "%s: tensor '%s': shape has %zu dimensions, at most %d supported", file, name,
				  json_array_size(v), SHMRT_TENSOR_MAX_DIMS);
	uint64_t n = shmrt_dtype_size(t->dtype);
	size_t i;
	json_t *d;
	json_array_foreach(v, i, d) {
		if (!json_is_integer(d) || json_integer_value(d) < 0)
			return shmrt_fail(EINVAL, "%s: tensor '%s': shape[%zu] is not a non-negative integer", file, name,
					  i);
		t->shape[i] = json_integer_value(d);
		if (__builtin_mul_overflow(n, (uint64_t)t->shape[i], &n))
			return shmrt_fail(EINVAL, "%s: tensor '%s': shape overflows 64 bits of bytes", file, name);
	}
	t->ndim = (int)json_array_size(v);
	*bytes = n;
	return 0;
}

static int parse_offsets(const char *file, const char *name, json_t *v, uint64_t bytes, uint64_t data_size,
			 struct shmrt_tensor_info *t)
{
	json_t *b = json_array_get(v, 0), *e = json_array_get(v, 1);
	if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(b) || !json_is_integer(e) ||
	    json_integer_value(b) < 0 || json_integer_value(e) < 0)
		return shmrt_fail(EINVAL, "%s: tensor '%s': data_offsets missing or not [begin, end]", file, name);
	uint64_t begin = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(e);
	if (begin > end || end > data_size)
		return shmrt_fail(EINVAL,
				  "%s: tensor '%s': data_offsets [%llu, %llu] lie outside the data section (%llu bytes)%s",
				  file, name, (unsigned long long)begin, (unsigned long long)end,
				  (unsigned long long)data_size, begin > end ? "" : "; truncated?");
	if (end - begin != bytes) {
		char shape[160];
		format_shape(shape, sizeof(shape), t->shape, t->ndim);
		return shmrt_fail(EINVAL, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, shape %s of %s needs %llu",
				  file, name, (unsigned long long)begin, (unsigned long long)end,
				  (unsigned long long)(end - begin), shape, dtype_st_name(t->dtype), (unsigned long long)bytes);
	}
	t->offset = begin; /* made absolute once all are checked */
	t->size = bytes;
	return 0;
}

static int parse_tensor(const char *file, const char *name, json_t *v, uint64_t data_size, struct shmrt_tensor_info *t)
{
	if (!json_is_object(v))
		return shmrt_fail(EINVAL, "%s: tensor '%s': not an object of dtype, shape and data_offsets", file, name);
	uint64_t bytes = 0;
	int rc;
	if ((rc = parse_dtype(file, name, json_object_get(v, "dtype"), t)) < 0 ||
	    (rc = parse_shape(file, name, json_object_get(v, "shape"), t, &bytes)) < 0 ||
	    (rc = parse_offsets(file, name, json_object_get(v, "data_offsets"), bytes, data_size, t)) < 0)
		return rc;
	if (!(t->name = strdup(name)))
		return shmrt_fail(ENOMEM, "%s: no memory for tensor names", file);
	t->file = file;
	return 0;
}

static int check_metadata(const char *file, json_t *v)
{
	const char *key;
	json_t *s;
	if (!json_is_object(v))
		return shmrt_fail(EINVAL, "%s: __metadata__ is not an object", file);
	json_object_foreach(v, key, s)
		if (!json_is_string(s))
			return shmrt_fail(EINVAL, "%s: __metadata__ key '%s' is not a string (string to string only)",
					  file, key);
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct shmrt_tensor_info *x = a, *y = b;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return (x->size > y->size) - (x->size < y->size);
}

/* Sorted by offset, a tensor must begin at or after the end of every
 * earlier one. Empty tensors hold no bytes and cannot overlap. */
static int check_overlap(const char *file, const struct shmrt_tensor_info *t, size_t n)
{
	const struct shmrt_tensor_info *last = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!t[i].size)
			continue;
		if (last && last->offset + last->size > t[i].offset)
			return shmrt_fail(EINVAL, "%s: tensors '%s' and '%s' overlap in the data section", file, last->name,
					  t[i].name);
		if (!last || t[i].offset + t[i].size > last->offset + last->size)
			last = &t[i];
	}
	return 0;
}

void shmrt_st_header_free(struct shmrt_st_header *h)
{
	for (size_t i = 0; i < h->n; i++)
		free((char *)h->tensors[i].name);
	free(h->tensors);
	h->tensors = NULL;
	h->n = 0;
}

static int parse_object(json_t *root, uint64_t data_start, uint64_t file_size, const char *file,
			struct shmrt_st_header *h)
{
	if (!json_is_object(root))
		return shmrt_fail(EINVAL, "%s: the header is not a JSON object", file);
	size_t cap = json_object_size(root);
	h->tensors = calloc(cap ? cap : 1, sizeof(*h->tensors));
	if (!h->tensors)
		return shmrt_fail(ENOMEM, "%s: no memory for %zu tensors", file, cap);
	const char *key;
	json_t *v;
	int rc;
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "__metadata__"))
			rc = check_metadata(file, v);
		else if ((rc = parse_tensor(file, key, v, file_size - data_start, &h->tensors[h->n])) == 0)
			h->n++;
		if (rc < 0)
			return rc;
	}
	qsort(h->tensors, h->n, sizeof(*h->tensors), by_offset);
	if ((rc = check_overlap(file, h->tensors, h->n)) < 0)
		return rc;
	for (size_t i = 0; i < h->n; i++)
		h->tensors[i].offset += data_start;
	h->data_start = data_start;
	return 0;
}

int shmrt_st_parse(const void *buf, size_t len, uint64_t file_size, const char *file, struct shmrt_st_header *out)
{
	memset(out, 0, sizeof(*out));
	if (file_size < len)
		return shmrt_fail(EINVAL, "%s: %zu bytes given of a %llu-byte file", file, len,
				  (unsigned long long)file_size);
	if (len < 8)
		return check_header_length(0, len, file);
	uint64_t n = get_le64(buf);
	int rc = check_header_length(n, file_size, file);
	if (rc < 0)
		return rc;
	if (n > len - 8)
		return shmrt_fail(EINVAL, "%s: header length %llu, but only %zu bytes of it were read", file,
				  (unsigned long long)n, len - 8);
	json_error_t e;
	json_t *root = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &e);
	if (!root)
		return shmrt_fail(EINVAL, "%s: the header is not valid JSON: line %d column %d: %s", file, e.line,
				  e.column, e.text);
	rc = parse_object(root, 8 + n, file_size, file, out);
	json_decref(root);
	if (rc < 0)
		shmrt_st_header_free(out);
	return rc;
}

int shmrt_st_read_header(int fd, const char *path, struct shmrt_st_header *out)
{
	memset(out, 0, sizeof(*out));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return shmrt_fail(errno, "%s: fstat: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return shmrt_fail(EINVAL, "%s: not a regular file", path);
	uint64_t size = (uint64_t)st.st_size;
	uint8_t head[8];
	int rc = check_header_length(0, size, path);
	if (rc < 0 || (rc = shmrt_pread_full(fd, path, head, 8, 0)) < 0)
		return rc;
	uint64_t n = get_le64(head);
	if ((rc = check_header_length(n, size, path)) < 0)
		return rc;
	uint8_t *buf = malloc(8 + (size_t)n);
	if (!buf)
		return shmrt_fail(ENOMEM, "%s: no memory for a %llu-byte header", path, (unsigned long long)n);
	memcpy(buf, head, 8);
	rc = shmrt_pread_full(fd, path, buf + 8, (size_t)n, 8);
	if (rc == 0)
		rc = shmrt_st_parse(buf, 8 + (size_t)n, size, path, out);
	free(buf);
	return rc;
}

static int pwrite_full(int fd, const char *path, const void *buf, size_t len, uint64_t off)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return shmrt_fail(errno, "%s: write: %s", path, strerror(errno));
		done += (size_t)n;
	}
	return 0;
}

static uint64_t tensor_bytes(const struct shmrt_st_tensor *t)
{
	uint64_t n = shmrt_dtype_size(t->dtype);
	for (int i = 0; i < t->ndim; i++)
		n *= (uint64_t)t->shape[i];
	return n;
}

static json_t *header_json(const struct shmrt_st_tensor *t, size_t n)
{
	json_t *root = json_object();
	uint64_t off = 0;
	for (size_t i = 0; root && i < n; i++) {
		json_t *shape = json_array();
		for (int d = 0; shape && d < t[i].ndim; d++)
			json_array_append_new(shape, json_integer(t[i].shape[d]));
		uint64_t end = off + tensor_bytes(&t[i]);
		json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", dtype_st_name(t[i].dtype), "shape", shape,
				      "data_offsets", (json_int_t)off, (json_int_t)end);
		if (!e || json_object_set_new(root, t[i].name, e) < 0) {
			json_decref(root);
			return NULL;
		}
		off = end;
	}
	return root;
}

int shmrt_st_write_header(int fd, const char *path, const struct shmrt_st_tensor *t, size_t n, uint64_t *data_start)
{
	json_t *root = header_json(t, n);
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (!text)
		return shmrt_fail(EINVAL, "%s: could not build the header (out of memory, or a bad dtype)", path);
	/* Pad with spaces so the data section starts 8-byte aligned, as the
	 * reference writer does. */
	size_t len = strlen(text), padded = (len + 7) & ~(size_t)7;
	uint8_t *buf = malloc(8 + padded);
	int rc = buf ? 0 : shmrt_fail(ENOMEM, "%s: no memory for the header", path);
	if (buf) {
		put_le64(buf, padded);
		memcpy(buf + 8, text, len);
		memset(buf + 8 + len, ' ', padded - len);
		rc = pwrite_full(fd, path, buf, 8 + padded, 0);
	}
	free(buf);
	free(text);
	*data_start = 8 + padded;
	return rc;
}

int shmrt_st_write(const char *path, const struct shmrt_st_tensor *t, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return shmrt_fail(errno, "%s: %s", path, strerror(errno));
	uint64_t off;
	int rc = shmrt_st_write_header(fd, path, t, n, &off);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint64_t bytes = tensor_bytes(&t[i]);
		rc = pwrite_full(fd, path, t[i].data, (size_t)bytes, off);
		off += bytes;
	}
	if (close(fd) < 0 && rc == 0)
		rc = shmrt_fail(errno, "%s: close: %s", path, strerror(errno));
	return rc;
}

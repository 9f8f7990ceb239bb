/* A Hugging Face checkpoint directory: config, safetensors files, the
 * tensor table, loads (checkpoint.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/checkpoint.h"
#include "fail.h"
#include "file_reader.h"
#include "gguf_model.h"
#include "json_file.h"
#include "safetensors.h"

/* An index lists a few thousand tensors: a few hundred KiB. */
#define INDEX_MAX_BYTES (64u << 20)

struct ck_file {
	char *path;
	int fd;
	struct shmrt_st_header hdr;
	/* GGUF: rows per head of each tensor of hdr to put back in Hugging
	 * Face order as it is read, or 0 (gguf_model.h); NULL otherwise */
	uint32_t *head_rows;
};

struct shmrt_checkpoint {
	struct shmrt_model_config config;
	struct ck_file *files;
	size_t nfiles;
	const struct shmrt_tensor_info **by_name; /* into the files' headers */
	size_t n;
};

static char *join(const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *p = malloc(len);
	if (p)
		snprintf(p, len, "%s/%s", dir, name);
	return p;
}

/* Opens dir/name and reads its header; returns its index in ck->files. */
static int add_file(struct shmrt_checkpoint *ck, const char *dir, const char *name)
{
	struct ck_file *files = realloc(ck->files, (ck->nfiles + 1) * sizeof(*files));
	if (!files)
		return shmrt_fail(ENOMEM, "%s: no memory for the file table", dir);
	ck->files = files;
	struct ck_file *f = &files[ck->nfiles];
	*f = (struct ck_file){.fd = -1};
	if (!(f->path = join(dir, name)))
		return shmrt_fail(ENOMEM, "%s: no memory", dir);
	ck->nfiles++;
	if ((f->fd = open(f->path, O_RDONLY | O_CLOEXEC)) < 0)
		return shmrt_fail(errno, "%s: %s", f->path, strerror(errno));
	int rc = shmrt_st_read_header(f->fd, f->path, &f->hdr);
	return rc < 0 ? rc : (int)(ck->nfiles - 1);
}

static int find_file(const struct shmrt_checkpoint *ck, const char *dir, const char *name)
{
	size_t dlen = strlen(dir);
	for (size_t i = 0; i < ck->nfiles; i++)
		if (!strcmp(ck->files[i].path + dlen + 1, name))
			return (int)i;
	return -1;
}

/* A weight_map value must name a file in the directory itself. */
static int check_file_name(const char *index, const char *tensor, json_t *v)
{
	const char *s = json_string_value(v);
	if (!s)
		return shmrt_fail(EINVAL, "%s: weight_map['%s'] is not a string", index, tensor);
	if (!*s || strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, ".."))
		return shmrt_fail(EINVAL, "%s: weight_map['%s'] = '%s' is not a file name", index, tensor, s);
	return 0;
}

/* Opens the files of model.safetensors.index.json's weight_map, in order
 * of first mention. */
static int open_index_files(struct shmrt_checkpoint *ck, const char *dir, const char *index, json_t *map)
{
	const char *tensor;
	json_t *v;
	json_object_foreach(map, tensor, v) {
		int rc = check_file_name(index, tensor, v);
		if (rc == 0 && find_file(ck, dir, json_string_value(v)) < 0)
			rc = add_file(ck, dir, json_string_value(v));
		if (rc < 0)
			return rc;
	}
	if (!ck->nfiles)
		return shmrt_fail(EINVAL, "%s: weight_map is empty", index);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const struct shmrt_tensor_info *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int build_table(struct shmrt_checkpoint *ck)
{
	size_t n = 0;
	for (size_t i = 0; i < ck->nfiles; i++)
		n += ck->files[i].hdr.n;
	if (!(ck->by_name = malloc((n ? n : 1) * sizeof(*ck->by_name))))
		return shmrt_fail(ENOMEM, "no memory for %zu tensors", n);
	for (size_t i = 0; i < ck->nfiles; i++)
		for (size_t j = 0; j < ck->files[i].hdr.n; j++)
			ck->by_name[ck->n++] = &ck->files[i].hdr.tensors[j];
	qsort(ck->by_name, ck->n, sizeof(*ck->by_name), by_name);
	for (size_t i = 1; i < ck->n; i++)
		if (!strcmp(ck->by_name[i - 1]->name, ck->by_name[i]->name))
			return shmrt_fail(EINVAL, "tensor '%s' is in both %s and %s", ck->by_name[i]->name,
					  ck->by_name[i - 1]->file, ck->by_name[i]->file);
	return 0;
}

static const struct shmrt_tensor_info *lookup(const struct shmrt_checkpoint *ck, const char *name)
{
	struct shmrt_tensor_info key = {.name = name};
	const struct shmrt_tensor_info *k = &key, *const *hit;
	hit = bsearch(&k, ck->by_name, ck->n, sizeof(*ck->by_name), by_name);
	return hit ? *hit : NULL;
}

/* Every tensor of the weight_map is in the file it names. */
static int check_weight_map(const struct shmrt_checkpoint *ck, const char *dir, json_t *map)
{
	const char *tensor;
	json_t *v;
	json_object_foreach(map, tensor, v) {
		const struct ck_file *f = &ck->files[find_file(ck, dir, json_string_value(v))];
		const struct shmrt_tensor_info *t = lookup(ck, tensor);
		if (!t)
			return shmrt_fail(ENOENT, "%s: tensor '%s' is missing (model.safetensors.index.json lists it there)",
					  f->path, tensor);
		if (t->file != f->path)
			return shmrt_fail(EINVAL, "%s: tensor '%s' is there, not in %s as model.safetensors.index.json says",
					  t->file, tensor, f->path);
	}
	return 0;
}

static int open_sharded(struct shmrt_checkpoint *ck, const char *dir, const char *index)
{
	json_t *root;
	int rc = shmrt_json_load_file(index, INDEX_MAX_BYTES, &root);
	if (rc < 0)
		return rc;
	json_t *map = json_object_get(root, "weight_map");
	if (!json_is_object(map))
		rc = shmrt_fail(EINVAL, "%s: key 'weight_map' is missing or not an object", index);
	if (rc == 0)
		rc = open_index_files(ck, dir, index, map);
	if (rc == 0)
		rc = build_table(ck);
	if (rc == 0)
		rc = check_weight_map(ck, dir, map);
	json_decref(root);
	return rc;
}

static int open_dir(struct shmrt_checkpoint *ck, const char *dir)
{
	char *config = join(dir, "config.json"), *index = join(dir, "model.safetensors.index.json");
	int rc = 0;
	if (!config || !index)
		rc = shmrt_fail(ENOMEM, "%s: no memory", dir);
	if (rc == 0)
		rc = shmrt_model_config_load(config, &ck->config);
	if (rc == 0 && access(index, F_OK) == 0) {
		rc = open_sharded(ck, dir, index);
	} else if (rc == 0) {
		rc = add_file(ck, dir, "model.safetensors");
		if (rc == -ENOENT)
			rc = shmrt_fail(ENOENT, "%s: neither model.safetensors nor model.safetensors.index.json is there",
					dir);
		if (rc >= 0)
			rc = build_table(ck);
	}
	free(config);
	free(index);
	return rc < 0 ? rc : 0;
}

/* A .gguf file: one file, its config from the metadata, its tensors under
 * Hugging Face names (gguf_model.h). */
static int open_gguf(struct shmrt_checkpoint *ck, const char *path)
{
	struct shmrt_gguf *g;
	int rc = shmrt_gguf_open(path, &g);
	if (rc)
		return rc;
	struct ck_file *f = calloc(1, sizeof(*f));
	if (!f) {
		shmrt_gguf_close(g);
		return shmrt_fail(ENOMEM, "%s: no memory", path);
	}
	ck->files = f;
	ck->nfiles = 1;
	f->fd = -1;
	if (!(f->path = strdup(path)))
		rc = shmrt_fail(ENOMEM, "%s: no memory", path);
	if (!rc)
		rc = shmrt_gguf_model_config(g, &ck->config);
	if (!rc)
		rc = shmrt_gguf_tensor_table(g, &ck->config, f->path, &f->hdr, &f->head_rows);
	shmrt_gguf_close(g);
	if (!rc && (f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		rc = shmrt_fail(errno, "%s: %s", path, strerror(errno));
	return rc ? rc : build_table(ck);
}

int shmrt_checkpoint_open(const char *dir, struct shmrt_checkpoint **out)
{
	shmrt_clear_error();
	*out = NULL;
	struct shmrt_checkpoint *ck = calloc(1, sizeof(*ck));
	if (!ck)
		return shmrt_fail(ENOMEM, "%s: no memory", dir);
	int rc = shmrt_model_path_check(dir);
	if (!rc)
		rc = shmrt_model_path_is_gguf(dir) ? open_gguf(ck, dir) : open_dir(ck, dir);
	if (rc < 0) {
		shmrt_checkpoint_close(ck);
		return rc;
	}
	*out = ck;
	return 0;
}

void shmrt_checkpoint_close(struct shmrt_checkpoint *ck)
{
	if (!ck)
		return;
	for (size_t i = 0; i < ck->nfiles; i++) {
		if (ck->files[i].fd >= 0)
			close(ck->files[i].fd);
		shmrt_st_header_free(&ck->files[i].hdr);
		free(ck->files[i].head_rows);
		free(ck->files[i].path);
	}
	free(ck->files);
	free(ck->by_name);
	free(ck);
}

const struct shmrt_model_config *shmrt_checkpoint_config(const struct shmrt_checkpoint *ck)
{
	return &ck->config;
}

size_t shmrt_checkpoint_tensor_count(const struct shmrt_checkpoint *ck)
{
	return ck->n;
}

const struct shmrt_tensor_info *shmrt_checkpoint_tensor(const struct shmrt_checkpoint *ck, size_t i)
{
	return i < ck->n ? ck->by_name[i] : NULL;
}

int shmrt_checkpoint_find(const struct shmrt_checkpoint *ck, const char *name, const struct shmrt_tensor_info **out)
{
	*out = lookup(ck, name);
	if (!*out)
		return shmrt_fail(ENOENT, "tensor '%s' is not in the checkpoint (%s%s)", name, ck->files[0].path,
				  ck->nfiles > 1 ? " and the other shards" : "");
	return 0;
}

size_t shmrt_checkpoint_file_count(const struct shmrt_checkpoint *ck)
{
	return ck->nfiles;
}

const char *shmrt_checkpoint_file(const struct shmrt_checkpoint *ck, size_t i)
{
	return i < ck->nfiles ? ck->files[i].path : NULL;
}

/* The file holding t, or NULL when t is not one of ck's tensors. */
static const struct ck_file *file_of(const struct shmrt_checkpoint *ck, const struct shmrt_tensor_info *t)
{
	uintptr_t p = (uintptr_t)t;
	for (size_t i = 0; i < ck->nfiles; i++) {
		uintptr_t first = (uintptr_t)ck->files[i].hdr.tensors;
		if (p >= first && p < first + ck->files[i].hdr.n * sizeof(*t))
			return &ck->files[i];
	}
	return NULL;
}

/* The slice's last byte must lie inside the tensor, with no overflow. */
static int check_slice(const struct shmrt_tensor_info *t, const struct shmrt_tensor_slice *s)
{
	uint64_t end;
	if (!__builtin_mul_overflow(s->count - 1, s->stride, &end) && !__builtin_add_overflow(end, s->offset, &end) &&
	    !__builtin_add_overflow(end, s->length, &end) && end <= t->size)
		return 0;
	return shmrt_fail(EINVAL, "tensor '%s': slice of %llu runs of %llu bytes every %llu from %llu overruns its %llu bytes",
			  t->name, (unsigned long long)s->count, (unsigned long long)s->length,
			  (unsigned long long)s->stride, (unsigned long long)s->offset, (unsigned long long)t->size);
}

static int make_request(const struct shmrt_checkpoint *ck, size_t i, const struct shmrt_load_item *it,
			struct shmrt_read_req *q)
{
	const struct ck_file *f = it->tensor ? file_of(ck, it->tensor) : NULL;
	if (!f)
		return shmrt_fail(EINVAL, "load item %zu: the tensor is not one of this checkpoint's", i);
	const struct shmrt_tensor_info *t = it->tensor;
	struct shmrt_tensor_slice s = it->slice;
	if (!s.count)
		s = (struct shmrt_tensor_slice){0, t->size, t->size, 1};
	int rc = check_slice(t, &s);
	if (rc < 0)
		return rc;
	if (!it->dst && s.length)
		return shmrt_fail(EINVAL, "tensor '%s': no destination", t->name);
	*q = (struct shmrt_read_req){.fd = f->fd, .path = f->path, .name = t->name, .offset = t->offset + s.offset,
				     .length = s.length, .stride = s.stride, .count = s.count, .dst = it->dst};
	return 0;
}

/* A GGUF tensor read in llama.cpp's RoPE order back into Hugging Face's
 * (gguf_model.h); the rows read must be whole heads. */
static int unpermute(const struct shmrt_checkpoint *ck, const struct shmrt_load_item *it)
{
	const struct ck_file *f = file_of(ck, it->tensor);
	uint32_t head_rows = f->head_rows ? f->head_rows[it->tensor - f->hdr.tensors] : 0;
	if (!head_rows)
		return 0;
	const struct shmrt_tensor_info *t = it->tensor;
	uint64_t row_bytes = t->size / (uint64_t)t->shape[0];
	struct shmrt_tensor_slice s = it->slice;
	if (!s.count)
		s = (struct shmrt_tensor_slice){0, t->size, t->size, 1};
	uint64_t bytes = s.length * s.count;
	if (s.length % row_bytes || s.offset % row_bytes || bytes % (head_rows * row_bytes))
		return shmrt_fail(EINVAL, "tensor '%s': a slice of %llu bytes from %llu is not whole heads of %u rows "
				  "(the GGUF rows of q and k are reordered per head)",
				  t->name, (unsigned long long)bytes, (unsigned long long)s.offset, head_rows);
	return shmrt_gguf_unpermute(it->dst, bytes / row_bytes, row_bytes, head_rows);
}

/* File order: by file, then offset, so reads sweep each file once. */
static int by_position(const void *a, const void *b)
{
	const struct shmrt_read_req *x = a, *y = b;
	if (x->fd != y->fd)
		return x->fd < y->fd ? -1 : 1;
	return (x->offset > y->offset) - (x->offset < y->offset);
}

int shmrt_checkpoint_load(struct shmrt_checkpoint *ck, const struct shmrt_load_item *items, size_t n,
			  const struct shmrt_load_options *opt, struct shmrt_load_stats *stats)
{
	shmrt_clear_error();
	struct shmrt_read_req *reqs = calloc(n ? n : 1, sizeof(*reqs));
	if (!reqs)
		return shmrt_fail(ENOMEM, "no memory for %zu load items", n);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = make_request(ck, i, &items[i], &reqs[i]);
	if (rc == 0) {
		qsort(reqs, n, sizeof(*reqs), by_position);
		rc = shmrt_read_files(reqs, n, opt, stats);
	}
	for (size_t i = 0; rc == 0 && (!opt || !opt->as_stored) && i < n; i++)
		rc = unpermute(ck, &items[i]);
	free(reqs);
	return rc;
}

int shmrt_checkpoint_load_tensor(struct shmrt_checkpoint *ck, const char *name, void *dst, size_t dst_size,
				 const struct shmrt_load_options *opt, struct shmrt_load_stats *stats)
{
	shmrt_clear_error();
	const struct shmrt_tensor_info *t;
	int rc = shmrt_checkpoint_find(ck, name, &t);
	if (rc < 0)
		return rc;
	if (dst_size < t->size)
		return shmrt_fail(EINVAL, "tensor '%s': %llu bytes do not fit a %zu-byte destination", name,
				  (unsigned long long)t->size, dst_size);
	struct shmrt_load_item it = {.tensor = t, .dst = dst};
	return shmrt_checkpoint_load(ck, &it, 1, opt, stats);
}

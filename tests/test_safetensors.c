/* safetensors headers and checkpoint directories:
 *  - the header parser on malformed headers, one fault at a time: the
 *    right error, and a message naming the file and the tensor;
 *  - the fuzz seeds (tests/corpus/safetensors): valid-* parse, others not;
 *  - synthetic checkpoints written here (one file, and three shards with an
 *    index; BF16, F16 and F32), every byte loaded checked against what was
 *    written, with io_uring, with pread, with SHMRT_NO_IO_URING=1, with
 *    small reads and shallow queues, and strided slices;
 *  - broken directories and indexes, and a file truncated after opening.
 *   test_safetensors CORPUS_DIR */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "shmrt/checkpoint.h"
#include "check.h"
#include "safetensors.h"
#include "synth_ckpt.h"
#include "array_size.h"

static char root[] = "/tmp/shmrt-test-st-XXXXXX";
static bool have_uring;
static bool have_direct; /* the file system under root takes O_DIRECT */

static const char *config_json =
	"{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 128,"
	" \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 300,"
	" \"max_position_embeddings\": 128}";

/* ---- the header parser on buffers --------------------------------------- */

/* A file image: the 8-byte length, the header text, data_len zero bytes. */
static uint8_t *image(const char *json, uint64_t data_len, size_t *size)
{
	size_t n = strlen(json);
	*size = 8 + n + data_len;
	uint8_t *p = calloc(1, *size);
	CHECK(p, "no memory");
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)((uint64_t)n >> (8 * i));
	memcpy(p + 8, json, n);
	return p;
}

struct hdr_case {
	const char *json;
	uint64_t data;
	int rc;
	const char *msg;
};

#define T_F32_1 "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}"

static const struct hdr_case hdr_cases[] = {
	{"[1]", 0, -EINVAL, "the header is not a JSON object"},
	{"{\"a\": ", 0, -EINVAL, "the header is not valid JSON: line 1"},
	{"", 0, -EINVAL, "not valid JSON"},
	{"{\"a\": 1}", 0, -EINVAL, "tensor 'a': not an object"},
	{"{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, -EINVAL, "tensor 'a': dtype missing"},
	{"{\"a\": {\"dtype\": \"I8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1, -ENOTSUP,
	 "tensor 'a': dtype I8 is not supported (BF16, F16, F32)"},
	{"{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, -EINVAL, "tensor 'a': shape missing"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, -EINVAL,
	 "tensor 'a': shape[0] is not a non-negative integer"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4, -EINVAL, "shape[0] is not"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 1, 1, 1, 1, 1], \"data_offsets\": [0, 4]}}", 4, -EINVAL,
	 "shape has 9 dimensions"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 4]}}", 4, -EINVAL,
	 "tensor 'a': shape overflows"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, -EINVAL, "tensor 'a': data_offsets missing"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4, -EINVAL, "not [begin, end]"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, -4]}}", 4, -EINVAL, "not [begin, end]"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4, -EINVAL,
	 "data_offsets [4, 0] lie outside the data section"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4, -EINVAL,
	 "tensor 'a': data_offsets [0, 8] lie outside the data section (4 bytes); truncated?"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 10]}}", 24, -EINVAL,
	 "tensor 'a': data_offsets [0, 10] hold 10 bytes, shape [2, 3] of F32 needs 24"},
	{"{\"a\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [0, 8]},"
	 " \"b\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [6, 10]}}",
	 10, -EINVAL, "tensors 'a' and 'b' overlap"},
	{"{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
	 " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
	 " \"c\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [12, 16]}}",
	 16, -EINVAL, "tensors 'a' and 'b' overlap"},
	{"{\"__metadata__\": {\"format\": 1}}", 0, -EINVAL, "__metadata__ key 'format' is not a string"},
	{"{\"__metadata__\": [\"pt\"]}", 0, -EINVAL, "__metadata__ is not an object"},
	{"{\"a\": " T_F32_1 ", \"a\": " T_F32_1 "}", 4, -EINVAL, "duplicate"},
	/* Accepted: metadata, a scalar, an empty tensor, a gap, data after
	 * the last tensor, padding spaces. */
	{"{\"__metadata__\": {\"format\": \"pt\"}, \"a\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]},"
	 " \"e\": {\"dtype\": \"BF16\", \"shape\": [0, 5], \"data_offsets\": [4, 4]},"
	 " \"g\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [8, 12]}}     ",
	 16, 0, NULL},
	{"{}", 0, 0, NULL},
};

static void check_header_cases(void)
{
	for (const struct hdr_case *c = hdr_cases; c < hdr_cases + ARRAY_SIZE(hdr_cases); c++) {
		size_t size;
		uint8_t *p = image(c->json, c->data, &size);
		struct shmrt_st_header h;
		int rc = shmrt_st_parse(p, size, size, "mem.safetensors", &h);
		CHECK(rc == c->rc, "%s: rc %d, want %d (%s)", c->json, rc, c->rc, shmrt_last_error());
		if (rc < 0) {
			CHECK(strstr(shmrt_last_error(), "mem.safetensors: ") && strstr(shmrt_last_error(), c->msg),
			      "%s: message '%s' lacks '%s'", c->json, shmrt_last_error(), c->msg);
			CHECK(h.n == 0 && !h.tensors, "nothing left allocated on failure");
		}
		shmrt_st_header_free(&h);
		free(p);
	}

	/* The accepted case in detail: sorted by offset, offsets absolute. */
	size_t size;
	uint8_t *p = image(hdr_cases[ARRAY_SIZE(hdr_cases) - 2].json, 16, &size);
	struct shmrt_st_header h;
	CHECK_OK(shmrt_st_parse(p, size, size, "mem.safetensors", &h));
	CHECK(h.n == 3 && h.data_start == size - 16, "3 tensors, data at %llu", (unsigned long long)h.data_start);
	CHECK(!strcmp(h.tensors[0].name, "a") && h.tensors[0].ndim == 0 && h.tensors[0].size == 4 &&
		      h.tensors[0].offset == h.data_start && h.tensors[0].dtype == SHMRT_F32,
	      "scalar a");
	CHECK(!strcmp(h.tensors[1].name, "e") && h.tensors[1].size == 0 && h.tensors[1].shape[1] == 5, "empty e");
	CHECK(!strcmp(h.tensors[2].name, "g") && h.tensors[2].offset == h.data_start + 8 &&
		      h.tensors[2].dtype == SHMRT_F16 && !strcmp(h.tensors[2].file, "mem.safetensors"),
	      "g after the gap");
	shmrt_st_header_free(&h);
	free(p);
}

/* The 8-byte length itself. */
static void check_lengths(void)
{
	struct shmrt_st_header h;
	uint8_t small[5] = {0};
	CHECK(shmrt_st_parse(small, 5, 5, "f", &h) == -EINVAL && strstr(shmrt_last_error(), "too short"), "%s",
	      shmrt_last_error());
	uint8_t buf[32] = {0};
	buf[5] = 1; /* 2^40 */
	CHECK(shmrt_st_parse(buf, 32, 32, "f", &h) == -EINVAL && strstr(shmrt_last_error(), "f: header length 1099511627776 is absurd"),
	      "%s", shmrt_last_error());
	buf[5] = 0;
	buf[0] = 100;
	CHECK(shmrt_st_parse(buf, 32, 32, "f", &h) == -EINVAL &&
		      strstr(shmrt_last_error(), "header length 100 runs past the end of the file (32 bytes)"),
	      "%s", shmrt_last_error());
	buf[0] = 20;
	CHECK(shmrt_st_parse(buf, 16, 32, "f", &h) == -EINVAL && strstr(shmrt_last_error(), "only 8 bytes"), "%s",
	      shmrt_last_error());
}

/* The fuzz seeds: valid-* parse, every other one is refused. */
static void check_corpus(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d, "open %s", dir);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		static uint8_t buf[1 << 16];
		size_t size = f ? fread(buf, 1, sizeof(buf), f) : 0;
		CHECK(f && !ferror(f) && feof(f), "read %s (seeds stay under 64 KiB)", path);
		fclose(f);
		struct shmrt_st_header h;
		int rc = shmrt_st_parse(buf, size, size, e->d_name, &h);
		bool valid = !strncmp(e->d_name, "valid-", 6);
		CHECK(valid ? rc == 0 : rc < 0, "seed %s: rc %d (%s)", e->d_name, rc, shmrt_last_error());
		shmrt_st_header_free(&h);
		n++;
	}
	closedir(d);
	CHECK(n >= 8, "only %d seeds in %s", n, dir);
}

/* ---- synthetic checkpoints ----------------------------------------------- */

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static void make_dir(char *out, size_t size, const char *name)
{
	path_in(out, size, root, name);
	CHECK(mkdir(out, 0755) == 0, "mkdir %s", out);
	char p[4200];
	path_in(p, sizeof(p), out, "config.json");
	synth_text(p, config_json);
}

#define TENSOR(n, dt, nd, ...) {.name = n, .dtype = dt, .ndim = nd, .shape = {__VA_ARGS__}}

/* All three dtypes; sizes not multiples of anything; one bigger than many
 * 4 KiB reads, a scalar and an empty tensor. */
static struct shmrt_st_tensor single[] = {
	TENSOR("model.embed_tokens.weight", SHMRT_BF16, 2, 300, 64),
	TENSOR("big", SHMRT_F32, 2, 3, 7001),
	TENSOR("half", SHMRT_F16, 2, 17, 33),
	TENSOR("scalar", SHMRT_F32, 0, 0),
	TENSOR("empty", SHMRT_BF16, 2, 0, 8),
	TENSOR("mat", SHMRT_BF16, 2, 40, 96),
	TENSOR("wide", SHMRT_F16, 2, 6, 2000),
	TENSOR("wider", SHMRT_F32, 2, 3, 2048),
};
#define N_SINGLE (ARRAY_SIZE(single))

/* Loads every tensor of ck (items in reverse name order) and checks them. */
static void load_all(struct shmrt_checkpoint *ck, const struct shmrt_load_options *opt, enum shmrt_io_method want,
		     const char *what)
{
	size_t n = shmrt_checkpoint_tensor_count(ck);
	struct shmrt_load_item *items = calloc(n, sizeof(*items));
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		const struct shmrt_tensor_info *t = shmrt_checkpoint_tensor(ck, n - 1 - i);
		items[i].tensor = t;
		items[i].dst = malloc(t->size ? t->size : 1);
		memset(items[i].dst, 0xa5, t->size);
		total += t->size;
	}
	struct shmrt_load_stats st = {0};
	CHECK_OK(shmrt_checkpoint_load(ck, items, n, opt, &st));
	CHECK(st.method == want, "%s: method %s, want %s", what, shmrt_io_method_name(st.method),
	      shmrt_io_method_name(want));
	/* O_DIRECT reads whole 4 KiB blocks around each read. */
	bool direct = opt->cache == SHMRT_CACHE_DIRECT && have_direct;
	CHECK(st.bytes == total && (direct ? st.bytes_read >= total : st.bytes_read == total) && st.seconds >= 0,
	      "%s: stats %llu/%llu of %llu", what, (unsigned long long)st.bytes, (unsigned long long)st.bytes_read,
	      (unsigned long long)total);
	CHECK(direct ? st.bytes_direct == st.bytes_read : st.bytes_direct == 0,
	      "%s: %llu of %llu bytes read with O_DIRECT", what, (unsigned long long)st.bytes_direct,
	      (unsigned long long)st.bytes_read);
	CHECK(st.gb_per_s >= 0 && (st.seconds == 0 || fabs(st.gb_per_s - st.bytes / st.seconds * 1e-9) < 1e-6),
	      "%s: gb_per_s %g for %llu bytes in %g s", what, st.gb_per_s, (unsigned long long)st.bytes, st.seconds);
	for (size_t i = 0; i < n; i++) {
		synth_check(items[i].tensor->name, 0, items[i].dst, items[i].tensor->size, what);
		free(items[i].dst);
	}
	free(items);
}

/* Every method, with and without the page cache, and a few read shapes
 * (a 12 KiB block: O_DIRECT's widened reads straddle blocks). */
static void load_every_way(struct shmrt_checkpoint *ck)
{
	const struct shmrt_load_options shapes[] = {
		{0},
		{.queue_depth = 3, .block_bytes = 4096},
		{.queue_depth = 1, .block_bytes = 8192},
		{.cache = SHMRT_CACHE_DIRECT},
		{.queue_depth = 3, .block_bytes = 4096, .cache = SHMRT_CACHE_DIRECT},
		{.queue_depth = 5, .block_bytes = 12288, .cache = SHMRT_CACHE_DIRECT},
		{.queue_depth = 2, .block_bytes = 8192, .cache = SHMRT_CACHE_BUFFERED},
	};
	for (size_t s = 0; s < ARRAY_SIZE(shapes); s++) {
		struct shmrt_load_options o = shapes[s];
		o.method = SHMRT_IO_PREAD;
		load_all(ck, &o, SHMRT_IO_PREAD, "pread");
		o.method = SHMRT_IO_AUTO;
		load_all(ck, &o, have_uring ? SHMRT_IO_URING : SHMRT_IO_PREAD, "auto");
		if (have_uring) {
			o.method = SHMRT_IO_URING;
			load_all(ck, &o, SHMRT_IO_URING, "io_uring");
		}
		setenv("SHMRT_NO_IO_URING", "1", 1);
		o.method = SHMRT_IO_AUTO;
		load_all(ck, &o, SHMRT_IO_PREAD, "auto with SHMRT_NO_IO_URING=1");
		unsetenv("SHMRT_NO_IO_URING");
	}
}

static void check_single(void)
{
	char dir[4096], p[4200];
	make_dir(dir, sizeof(dir), "single");
	path_in(p, sizeof(p), dir, "model.safetensors");
	synth_write(p, single, N_SINGLE);

	struct shmrt_checkpoint *ck;
	CHECK_OK(shmrt_checkpoint_open(dir, &ck));
	CHECK(shmrt_checkpoint_config(ck)->hidden_size == 64, "config read");
	CHECK(shmrt_checkpoint_tensor_count(ck) == N_SINGLE && shmrt_checkpoint_file_count(ck) == 1 &&
		      !strcmp(shmrt_checkpoint_file(ck, 0), p),
	      "%zu tensors", shmrt_checkpoint_tensor_count(ck));
	for (size_t i = 1; i < N_SINGLE; i++)
		CHECK(strcmp(shmrt_checkpoint_tensor(ck, i - 1)->name, shmrt_checkpoint_tensor(ck, i)->name) < 0,
		      "sorted by name");
	const struct shmrt_tensor_info *t;
	CHECK_OK(shmrt_checkpoint_find(ck, "half", &t));
	CHECK(t->dtype == SHMRT_F16 && t->ndim == 2 && t->shape[0] == 17 && t->shape[1] == 33 && t->size == 17 * 33 * 2 &&
		      !strcmp(t->file, p),
	      "half's info");
	CHECK(shmrt_checkpoint_find(ck, "nope", &t) == -ENOENT && strstr(shmrt_last_error(), "tensor 'nope'") &&
		      strstr(shmrt_last_error(), p),
	      "find: %s", shmrt_last_error());

	load_every_way(ck);

	uint8_t small[16];
	CHECK(shmrt_checkpoint_load_tensor(ck, "half", small, sizeof(small), NULL, NULL) == -EINVAL &&
		      strstr(shmrt_last_error(), "'half'"),
	      "small destination: %s", shmrt_last_error());
	float s = 0;
	CHECK_OK(shmrt_checkpoint_load_tensor(ck, "scalar", &s, sizeof(s), NULL, NULL));
	synth_check("scalar", 0, (uint8_t *)&s, 4, "load_tensor");
	shmrt_checkpoint_close(ck);
}

/* Strided slices: staged through whole rows, and read run by run. */
static void check_slices(void)
{
	char dir[4200];
	path_in(dir, sizeof(dir), root, "single");
	struct shmrt_checkpoint *ck;
	CHECK_OK(shmrt_checkpoint_open(dir, &ck));
	struct {
		const char *name;
		uint64_t col_bytes, row_bytes; /* take columns [col_bytes, 2 * col_bytes) */
	} cases[] = {
		{"mat", 48, 192},    /* short runs: staged, 21 rows a read at 4 KiB */
		{"wide", 2000, 4000}, /* long runs: in place, split at 4 KiB boundaries */
		{"wider", 16, 8192}, /* short runs of rows longer than a read: in place */
		{"big", 28004, 28004},/* runs that touch: one contiguous read */
	};
	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		const struct shmrt_tensor_info *t;
		CHECK_OK(shmrt_checkpoint_find(ck, cases[c].name, &t));
		uint64_t rows = (uint64_t)t->shape[0];
		struct shmrt_load_item it = {t, {cases[c].col_bytes, cases[c].col_bytes, cases[c].row_bytes, rows}, NULL};
		if (cases[c].col_bytes == cases[c].row_bytes) /* the whole tensor, as runs */
			it.slice = (struct shmrt_tensor_slice){0, cases[c].row_bytes, cases[c].row_bytes, rows};
		uint64_t bytes = it.slice.length * rows;
		it.dst = malloc(bytes);
		for (int m = SHMRT_IO_URING; m <= SHMRT_IO_PREAD; m++) {
			if (m == SHMRT_IO_URING && !have_uring)
				continue;
			for (int cache = SHMRT_CACHE_BUFFERED; cache <= SHMRT_CACHE_DIRECT; cache++) {
				struct shmrt_load_options o = {.method = m, .queue_depth = 4, .block_bytes = 4096,
							       .cache = cache};
				struct shmrt_load_stats st = {0};
				memset(it.dst, 0, bytes);
				CHECK_OK(shmrt_checkpoint_load(ck, &it, 1, &o, &st));
				CHECK(st.bytes == bytes && st.bytes_read >= bytes, "%s: stats", cases[c].name);
				for (uint64_t r = 0; r < rows; r++)
					synth_check(t->name, r * it.slice.stride + it.slice.offset,
						    (uint8_t *)it.dst + r * it.slice.length, it.slice.length, "slice");
			}
		}
		free(it.dst);
	}
	/* A slice past the tensor's end, and a tensor of no checkpoint. */
	const struct shmrt_tensor_info *t, fake = {.name = "fake", .size = 4};
	CHECK_OK(shmrt_checkpoint_find(ck, "mat", &t));
	uint8_t buf[64];
	struct shmrt_load_item bad = {t, {t->size - 8, 16, 16, 1}, buf};
	CHECK(shmrt_checkpoint_load(ck, &bad, 1, NULL, NULL) == -EINVAL && strstr(shmrt_last_error(), "overruns"),
	      "%s", shmrt_last_error());
	bad = (struct shmrt_load_item){t, {0, 8, UINT64_MAX / 2, 3}, buf};
	CHECK(shmrt_checkpoint_load(ck, &bad, 1, NULL, NULL) == -EINVAL, "stride overflow");
	bad = (struct shmrt_load_item){&fake, {0}, buf};
	CHECK(shmrt_checkpoint_load(ck, &bad, 1, NULL, NULL) == -EINVAL && strstr(shmrt_last_error(), "not one of"),
	      "%s", shmrt_last_error());
	struct shmrt_load_options o = {.block_bytes = 100};
	CHECK(shmrt_checkpoint_load_tensor(ck, "mat", NULL, t->size, &o, NULL) == -EINVAL, "block too small");
	shmrt_checkpoint_close(ck);
}

/* Three shards and an index. */
static struct shmrt_st_tensor shard1[] = {
	TENSOR("a.weight", SHMRT_BF16, 2, 64, 33),
	TENSOR("b.weight", SHMRT_F32, 1, 1000),
};
static struct shmrt_st_tensor shard2[] = {
	TENSOR("c.weight", SHMRT_F16, 2, 129, 65),
};
static struct shmrt_st_tensor shard3[] = {
	TENSOR("d.weight", SHMRT_F32, 2, 5, 5),
	TENSOR("e.weight", SHMRT_BF16, 3, 2, 3, 4),
	TENSOR("f.weight", SHMRT_F16, 1, 1),
};

static const char *good_index =
	"{\"metadata\": {\"total_size\": 37010}, \"weight_map\": {"
	"\"a.weight\": \"model-00001-of-00003.safetensors\", \"b.weight\": \"model-00001-of-00003.safetensors\","
	"\"c.weight\": \"model-00002-of-00003.safetensors\", \"d.weight\": \"model-00003-of-00003.safetensors\","
	"\"e.weight\": \"model-00003-of-00003.safetensors\", \"f.weight\": \"model-00003-of-00003.safetensors\"}}";

static void write_shards(const char *dir, const char *index)
{
	char p[4200];
	path_in(p, sizeof(p), dir, "model-00001-of-00003.safetensors");
	synth_write(p, shard1, 2);
	path_in(p, sizeof(p), dir, "model-00002-of-00003.safetensors");
	synth_write(p, shard2, 1);
	path_in(p, sizeof(p), dir, "model-00003-of-00003.safetensors");
	synth_write(p, shard3, 3);
	path_in(p, sizeof(p), dir, "model.safetensors.index.json");
	synth_text(p, index);
}

static void check_sharded(void)
{
	char dir[4096];
	make_dir(dir, sizeof(dir), "sharded");
	write_shards(dir, good_index);
	struct shmrt_checkpoint *ck;
	CHECK_OK(shmrt_checkpoint_open(dir, &ck));
	CHECK(shmrt_checkpoint_tensor_count(ck) == 6 && shmrt_checkpoint_file_count(ck) == 3, "6 tensors, 3 files");
	CHECK(strstr(shmrt_checkpoint_file(ck, 1), "model-00002-of-00003"), "files in index order");
	const struct shmrt_tensor_info *t;
	CHECK_OK(shmrt_checkpoint_find(ck, "e.weight", &t));
	CHECK(t->ndim == 3 && t->shape[2] == 4 && strstr(t->file, "model-00003-of-00003"), "e.weight in shard 3");
	load_every_way(ck);
	shmrt_checkpoint_close(ck);
}

/* ---- broken checkpoints ---------------------------------------------------- */

static void expect_open_error(const char *dir, int want, const char *sub1, const char *sub2)
{
	struct shmrt_checkpoint *ck = (struct shmrt_checkpoint *)1;
	int rc = shmrt_checkpoint_open(dir, &ck);
	CHECK(rc == want && ck == NULL, "%s: rc %d, want %d (%s)", dir, rc, want, shmrt_last_error());
	CHECK(strstr(shmrt_last_error(), sub1) && (!sub2 || strstr(shmrt_last_error(), sub2)),
	      "%s: message '%s' lacks '%s' or '%s'", dir, shmrt_last_error(), sub1, sub2 ? sub2 : "");
}

/* A safetensors file with this header text and data_len bytes of data. */
static void write_raw(const char *path, const char *json, uint64_t data_len)
{
	size_t size;
	uint8_t *p = image(json, data_len, &size);
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(p, 1, size, f) == size && fclose(f) == 0, "write %s", path);
	free(p);
}

static void check_broken_dirs(void)
{
	char dir[4096], p[4200];
	expect_open_error("/nonexistent-shmrt-dir", -ENOENT, "/nonexistent-shmrt-dir/config.json", NULL);

	make_dir(dir, sizeof(dir), "empty");
	expect_open_error(dir, -ENOENT, "neither model.safetensors nor model.safetensors.index.json", dir);

	make_dir(dir, sizeof(dir), "badconfig");
	path_in(p, sizeof(p), dir, "config.json");
	synth_text(p, "{\"model_type\": \"gpt2\"}");
	expect_open_error(dir, -ENOTSUP, p, "model_type 'gpt2'");

	make_dir(dir, sizeof(dir), "int8");
	path_in(p, sizeof(p), dir, "model.safetensors");
	write_raw(p, "{\"q.weight\": {\"dtype\": \"I8\", \"shape\": [2, 2], \"data_offsets\": [0, 4]}}", 4);
	expect_open_error(dir, -ENOTSUP, p, "tensor 'q.weight': dtype I8");

	/* Cut inside the last tensor before opening: the header check sees it. */
	make_dir(dir, sizeof(dir), "cut");
	path_in(p, sizeof(p), dir, "model.safetensors");
	synth_write(p, single, 3);
	CHECK(truncate(p, 20000) == 0, "truncate");
	expect_open_error(dir, -EINVAL, p, "truncated?");

	struct {
		const char *name, *index;
		int rc;
		const char *msg1, *msg2;
	} idx[] = {
		{"idx-ghost",
		 "{\"weight_map\": {\"a.weight\": \"model-00001-of-00003.safetensors\","
		 " \"ghost\": \"model-00002-of-00003.safetensors\"}}",
		 -ENOENT, "model-00002-of-00003.safetensors: tensor 'ghost' is missing", NULL},
		{"idx-wrongfile",
		 "{\"weight_map\": {\"a.weight\": \"model-00002-of-00003.safetensors\","
		 " \"c.weight\": \"model-00001-of-00003.safetensors\"}}",
		 -EINVAL,
		 "tensor 'a.weight' is there, not in", "model-00002-of-00003.safetensors"},
		{"idx-path", "{\"weight_map\": {\"a.weight\": \"../model-00001-of-00003.safetensors\"}}", -EINVAL,
		 "weight_map['a.weight'] = '../model-00001-of-00003.safetensors' is not a file name", NULL},
		{"idx-nonstring", "{\"weight_map\": {\"a.weight\": 1}}", -EINVAL, "weight_map['a.weight'] is not a string",
		 NULL},
		{"idx-nomap", "{\"metadata\": {}}", -EINVAL, "key 'weight_map' is missing", NULL},
		{"idx-emptymap", "{\"weight_map\": {}}", -EINVAL, "weight_map is empty", NULL},
		{"idx-json", "{\"weight_map\": ", -EINVAL, "model.safetensors.index.json: not valid JSON", NULL},
		{"idx-absent", "{\"weight_map\": {\"a.weight\": \"model-00009-of-00009.safetensors\"}}", -ENOENT,
		 "model-00009-of-00009.safetensors: No such file", NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(idx); i++) {
		make_dir(dir, sizeof(dir), idx[i].name);
		write_shards(dir, idx[i].index);
		expect_open_error(dir, idx[i].rc, idx[i].msg1, idx[i].msg2);
	}

	/* The same tensor in two shards. */
	make_dir(dir, sizeof(dir), "idx-dup");
	write_shards(dir, "{\"weight_map\": {\"a.weight\": \"model-00001-of-00003.safetensors\","
			  " \"x\": \"model-00002-of-00003.safetensors\"}}");
	path_in(p, sizeof(p), dir, "model-00002-of-00003.safetensors");
	synth_write(p, shard1, 1);
	expect_open_error(dir, -EINVAL, "tensor 'a.weight' is in both", "model-00002-of-00003.safetensors");
}

/* A file cut after the checkpoint was opened: the load fails cleanly,
 * naming the file, the tensor and the offset, with either method. */
static void check_truncated_after_open(void)
{
	char dir[4096], p[4200];
	make_dir(dir, sizeof(dir), "shrinks");
	path_in(p, sizeof(p), dir, "model.safetensors");
	synth_write(p, single, 2);
	struct shmrt_checkpoint *ck;
	CHECK_OK(shmrt_checkpoint_open(dir, &ck));
	const struct shmrt_tensor_info *t;
	CHECK_OK(shmrt_checkpoint_find(ck, "big", &t));
	CHECK(truncate(p, (off_t)(t->offset + 1000)) == 0, "truncate");
	uint8_t *buf = malloc(t->size);
	for (int m = SHMRT_IO_URING; m <= SHMRT_IO_PREAD; m++) {
		if (m == SHMRT_IO_URING && !have_uring)
			continue;
		for (int cache = SHMRT_CACHE_BUFFERED; cache <= SHMRT_CACHE_DIRECT; cache++) {
			struct shmrt_load_options o = {.method = m, .queue_depth = 4, .block_bytes = 4096, .cache = cache};
			int rc = shmrt_checkpoint_load_tensor(ck, "big", buf, t->size, &o, NULL);
			CHECK(rc == -EIO && strstr(shmrt_last_error(), p) && strstr(shmrt_last_error(), "tensor 'big'") &&
				      strstr(shmrt_last_error(), "unexpected end of file"),
			      "%s, cache mode %d: rc %d: %s", shmrt_io_method_name(m), cache, rc, shmrt_last_error());
		}
	}
	free(buf);
	shmrt_checkpoint_close(ck);
}

static void probe_uring(void)
{
	struct shmrt_load_options o = {.method = SHMRT_IO_URING};
	int rc = shmrt_checkpoint_load(NULL, NULL, 0, &o, NULL);
	have_uring = rc == 0;
	if (!have_uring)
		printf("io_uring unavailable here (%s): pread only\n", shmrt_last_error());
}

static void probe_direct(void)
{
	char p[4200];
	path_in(p, sizeof(p), root, "probe");
	synth_text(p, "x");
	int fd = open(p, O_RDONLY | O_DIRECT);
	have_direct = fd >= 0;
	if (fd >= 0)
		close(fd);
	unlink(p);
	if (!have_direct)
		printf("no O_DIRECT under %s: the direct loads read through the cache\n", root);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: test_safetensors CORPUS_DIR");
	check_header_cases();
	check_lengths();
	check_corpus(argv[1]);

	CHECK(mkdtemp(root), "mkdtemp");
	probe_uring();
	probe_direct();
	check_single();
	check_slices();
	check_sharded();
	check_broken_dirs();
	check_truncated_after_open();

	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK(system(cmd) == 0, "%s", cmd);
	printf("ok (io_uring %s)\n", have_uring ? "and pread" : "unavailable: pread only");
	return 0;
}

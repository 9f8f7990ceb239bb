/* The GGUF writer (runtime/core/gguf_write.c) against the reader
 * (runtime/core/gguf.c): a file of every kind of key/value the writer
 * makes (string, u32, f32, bool, numeric and string arrays) and tensors of
 * plain and block types, odd sizes between them, read back equal, every
 * tensor's data at a multiple of 32 holding its bytes; and the writer's
 * refusals (rows not whole blocks, a tensor written with the wrong size). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gguf.h"
#include "gguf_write.h"
#include "shmrt/shmrt.h"

static void add_keys(struct shmrt_gguf_writer *w)
{
	static const char *const strs[] = {"a", "", "hello world"};
	static const size_t lens[] = {1, 0, 11};
	static const int32_t ints[] = {1, -2, 3};
	CHECK_OK(shmrt_gguf_add_str(w, "general.architecture", "llama", 5));
	CHECK_OK(shmrt_gguf_add_u32(w, "llama.block_count", 7));
	CHECK_OK(shmrt_gguf_add_f32(w, "llama.rope.freq_base", 10000.5f));
	CHECK_OK(shmrt_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", true));
	CHECK_OK(shmrt_gguf_add_array(w, "ints", SHMRT_GGUF_I32, 3, ints));
	CHECK_OK(shmrt_gguf_add_str_array(w, "strs", 3, strs, lens));
}

static void check_keys(const struct shmrt_gguf *g)
{
	const char *s;
	size_t len;
	int64_t v;
	double f;
	bool b;
	const struct shmrt_gguf_kv *kv;
	CHECK_OK(shmrt_gguf_get_str(g, "general.architecture", &s, &len));
	CHECK(len == 5 && !memcmp(s, "llama", 5), "architecture");
	CHECK_OK(shmrt_gguf_get_int(g, "llama.block_count", 0, 100, &v));
	CHECK(v == 7, "block_count %lld", (long long)v);
	CHECK_OK(shmrt_gguf_get_float(g, "llama.rope.freq_base", &f));
	CHECK(f == 10000.5, "freq_base %g", f);
	CHECK_OK(shmrt_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b));
	CHECK(b, "add_bos_token");
	CHECK_OK(shmrt_gguf_get_array(g, "ints", SHMRT_GGUF_I32, &kv));
	CHECK(kv->n == 3 && shmrt_gguf_array_int(kv, 1) == -2, "ints");
	CHECK_OK(shmrt_gguf_get_array(g, "strs", SHMRT_GGUF_STRING, &kv));
	shmrt_gguf_array_str(kv, 2, &s, &len);
	CHECK(kv->n == 3 && len == 11 && !memcmp(s, "hello world", 11), "strs");
	shmrt_gguf_array_str(kv, 1, &s, &len);
	CHECK(len == 0, "an empty string");
}

int main(void)
{
	char path[] = "/tmp/shmrt-gguf-write-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	FILE *f = fdopen(fd, "wb");
	struct shmrt_gguf_writer *w;
	CHECK_OK(shmrt_gguf_writer_new(&w));
	add_keys(w);
	/* f32 [3] (12 bytes: the next starts padded), q8_0 [2][64], f16 [5][1] */
	int64_t ne_a[] = {3}, ne_b[] = {64, 2}, ne_c[] = {1, 5};
	CHECK_OK(shmrt_gguf_add_tensor(w, "a", 1, ne_a, SHMRT_F32));
	CHECK_OK(shmrt_gguf_add_tensor(w, "b", 2, ne_b, SHMRT_Q8_0));
	CHECK_OK(shmrt_gguf_add_tensor(w, "c", 2, ne_c, SHMRT_F16));
	int64_t bad[] = {48, 1};
	CHECK(shmrt_gguf_add_tensor(w, "bad", 2, bad, SHMRT_Q8_0) == -EINVAL, "48 is not whole Q8_0 blocks");
	uint8_t data[3][2 * 68];
	uint64_t sizes[3] = {12, 2 * 68, 10};
	for (int t = 0; t < 3; t++)
		for (int i = 0; i < (int)sizeof(data[t]); i++)
			data[t][i] = (uint8_t)(31 * t + i);
	CHECK_OK(shmrt_gguf_write_header(w, f));
	for (int t = 0; t < 3; t++) {
		if (t == 1) /* refused, and nothing written: the right size follows */
			CHECK(shmrt_gguf_write_tensor(w, f, data[t], sizes[t] - 1) == -EINVAL, "a wrong size is refused");
		CHECK_OK(shmrt_gguf_write_tensor(w, f, data[t], sizes[t]));
	}
	CHECK(shmrt_gguf_write_tensor(w, f, data[2], sizes[2]) == -EINVAL, "no tensor left to write");
	shmrt_gguf_writer_free(w);
	fclose(f);

	struct shmrt_gguf *g;
	CHECK_OK(shmrt_gguf_open(path, &g));
	CHECK(shmrt_gguf_version(g) == 3 && shmrt_gguf_kv_count(g) == 6 && shmrt_gguf_tensor_count(g) == 3,
	      "version %u, %zu keys, %zu tensors", shmrt_gguf_version(g), shmrt_gguf_kv_count(g),
	      shmrt_gguf_tensor_count(g));
	check_keys(g);
	FILE *r = fopen(path, "rb");
	static const char *const names[] = {"a", "b", "c"};
	static const enum shmrt_dtype types[] = {SHMRT_F32, SHMRT_Q8_0, SHMRT_F16};
	for (int t = 0; t < 3; t++) {
		const struct shmrt_gguf_tensor *ti = shmrt_gguf_find_tensor(g, names[t]);
		CHECK(ti && ti->dtype == types[t] && ti->size == sizes[t] && ti->offset % 32 == 0, "tensor %s",
		      names[t]);
		uint8_t back[sizeof(data[0])];
		CHECK(fseek(r, (long)ti->offset, SEEK_SET) == 0 && fread(back, 1, sizes[t], r) == sizes[t] &&
			      !memcmp(back, data[t], sizes[t]),
		      "tensor %s's bytes", names[t]);
	}
	CHECK(shmrt_gguf_find_tensor(g, "b")->ne[0] == 64 && shmrt_gguf_find_tensor(g, "b")->ne[1] == 2, "b's shape");
	fclose(r);
	shmrt_gguf_close(g);
	unlink(path);
	printf("ok: GGUF written and read back: 6 keys, 3 tensors aligned to 32\n");
	return 0;
}

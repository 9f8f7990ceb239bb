/* The GGUF reader (runtime/core/gguf.c) on the fuzzer's seeds
 * (tests/corpus/gguf, written by tests/gguf/make_corpus.py with the gguf
 * package): valid-* files parse and read back what the writer put there,
 * bad-* ones are refused with a message. Whole models from GGUF files are
 * tested by tests/gguf/test_gguf_model.py. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "gguf.h"
#include "shmrt/error.h"

static void check_seed(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	struct shmrt_gguf *g;
	int rc = shmrt_gguf_open(path, &g);
	if (!strncmp(name, "bad-", 4)) {
		CHECK(rc < 0 && *shmrt_last_error(), "%s parsed, or was refused without a message", name);
		printf("%s: refused: %s\n", name, shmrt_last_error());
		return;
	}
	CHECK(rc == 0, "%s: %s", name, shmrt_last_error());
	CHECK(shmrt_gguf_version(g) == 3 && shmrt_gguf_tensor_count(g) == 2, "%s: version or tensors", name);
	const struct shmrt_gguf_kv *kv;
	const char *s;
	size_t len;
	CHECK_OK(shmrt_gguf_get_array(g, "tokenizer.ggml.tokens", SHMRT_GGUF_STRING, &kv));
	shmrt_gguf_array_str(kv, 3, &s, &len);
	CHECK(kv->n == 4 && len == 2 && !memcmp(s, "ab", 2), "%s: token 3", name);
	CHECK_OK(shmrt_gguf_get_array(g, "test.i32", -1, &kv));
	CHECK(kv->n == 3 && shmrt_gguf_array_int(kv, 1) == -2, "%s: test.i32[1]", name);
	CHECK_OK(shmrt_gguf_get_array(g, "tokenizer.ggml.scores", SHMRT_GGUF_F32, &kv));
	CHECK(shmrt_gguf_array_float(kv, 3) == -0.5, "%s: scores[3]", name);
	bool b;
	double f;
	int64_t i;
	CHECK_OK(shmrt_gguf_get_bool(g, "test.flag", &b));
	CHECK_OK(shmrt_gguf_get_float(g, "test.f64", &f));
	CHECK_OK(shmrt_gguf_get_int(g, "llama.block_count", 0, 10, &i));
	CHECK(b && f == 0.5 && i == 1, "%s: scalars", name);
	CHECK_OK(shmrt_gguf_get_str(g, "general.architecture", &s, &len));
	CHECK(len == 5 && !memcmp(s, "llama", 5), "%s: architecture", name);
	/* wrong types, ranges and absent keys are errors that say so */
	CHECK(shmrt_gguf_get_int(g, "general.architecture", 0, 1, &i) == -EINVAL &&
		      strstr(shmrt_last_error(), "not an integer"), "%s: %s", name, shmrt_last_error());
	CHECK(shmrt_gguf_get_int(g, "llama.embedding_length", 0, 16, &i) == -EINVAL &&
		      strstr(shmrt_last_error(), "outside"), "%s: %s", name, shmrt_last_error());
	CHECK(shmrt_gguf_get_bool(g, "no.such.key", &b) == -ENOENT && strstr(shmrt_last_error(), "no.such.key"),
	      "%s: %s", name, shmrt_last_error());
	CHECK(shmrt_gguf_get_array(g, "test.i32", SHMRT_GGUF_STRING, &kv) == -EINVAL, "%s: array type", name);
	const struct shmrt_gguf_tensor *t = shmrt_gguf_find_tensor(g, "token_embd.weight");
	CHECK(t && t->ne[0] == 32 && t->ne[1] == 4 && t->size == shmrt_dtype_row_bytes(t->dtype, 32) * 4 &&
		      t->offset % 32 == 0 && t->offset + t->size <= shmrt_gguf_file_size(g),
	      "%s: token_embd", name);
	printf("%s: %s, %zu keys, token_embd %s\n", name, "ok", shmrt_gguf_kv_count(g), shmrt_dtype_name(t->dtype));
	shmrt_gguf_close(g);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: test_gguf CORPUS_DIR");
	DIR *d = opendir(argv[1]);
	CHECK(d, "cannot open %s", argv[1]);
	int valid = 0, bad = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		check_seed(argv[1], e->d_name);
		valid += !strncmp(e->d_name, "valid-", 6);
		bad += !strncmp(e->d_name, "bad-", 4);
	}
	closedir(d);
	CHECK(valid >= 2 && bad >= 5, "%d valid and %d bad seeds: the corpus is missing", valid, bad);
	return 0;
}

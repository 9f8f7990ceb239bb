/* `shmrt bench tokenize --json`: the document's shape, not speed. On a text
 * file, its token count and id checksum must be those of encoding the file
 * through the library here (the checksum is what it compares with the
 * peer's); a generated text gives a sane count; a missing peer is said, not
 * a failure.
 *   test_bench_tokenize SHMRT_EXE FIXTURE_DIR */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "command_output.h"
#include "json_document.h"

static json_t *run_bench(const char *shmrt, const char *args)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "'%s' bench tokenize %s --peer /nonexistent/peer.py --json", shmrt, args);
	int status;
	char *out = command_output(cmd, &status);
	CHECK(status == 0, "%s failed: %s", cmd, out);
	json_t *doc = json_document(out);
	CHECK(strstr(json_string_value(json_object_get(doc, "peer_missing")), "/nonexistent/peer.py"),
	      "no word of the missing peer: %s", out);
	free(out);
	return doc;
}

int main(int argc, char **argv)
{
	CHECK(argc == 3, "usage: test_bench_tokenize SHMRT_EXE FIXTURE_DIR");
	char tokenizer[4096], text_path[] = "/tmp/shmrt-bench-tokenize-test-XXXXXX", args[8192];
	snprintf(tokenizer, sizeof(tokenizer), "%s/llama3.json", argv[2]);

	static const char text[] = "Hello, world! It's 2024.\n\n  你好 😀 tokens and merges, 12345 times.";
	int fd = mkstemp(text_path);
	CHECK(fd >= 0 && write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1, "write %s", text_path);
	close(fd);
	struct shmrt_tokenizer *tok;
	CHECK_OK(shmrt_tokenizer_load(tokenizer, NULL, &tok));
	int32_t ids[256];
	int n = shmrt_tokenizer_encode(tok, text, sizeof(text) - 1, 0, ids, 256);
	CHECK(n > 0 && n <= 256, "encode: %d", n);
	uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a over the ids as 32-bit values */
	for (int i = 0; i < n; i++)
		h = (h ^ (uint32_t)ids[i]) * 0x100000001B3ull;
	char want[17];
	snprintf(want, sizeof(want), "%016llx", (unsigned long long)h);

	snprintf(args, sizeof(args), "--tokenizer '%s' --file '%s'", tokenizer, text_path);
	json_t *doc = run_bench(argv[1], args);
	json_t *ours = json_object_get(doc, "shmrt");
	CHECK(json_integer_value(json_object_get(ours, "tokens")) == n, "tokens %lld, want %d",
	      json_integer_value(json_object_get(ours, "tokens")), n);
	CHECK(!strcmp(json_string_value(json_object_get(ours, "checksum")), want), "checksum %s, want %s",
	      json_string_value(json_object_get(ours, "checksum")), want);
	CHECK(json_integer_value(json_object_get(doc, "bytes")) == (json_int_t)sizeof(text) - 1, "bytes");
	CHECK(json_real_value(json_object_get(ours, "seconds")) > 0, "seconds");
	json_decref(doc);
	unlink(text_path);

	/* A generated megabyte: about one token per 2 to 6 bytes with this
	 * small vocabulary. */
	snprintf(args, sizeof(args), "--tokenizer '%s' --mb 1", tokenizer);
	doc = run_bench(argv[1], args);
	json_int_t bytes = json_integer_value(json_object_get(doc, "bytes"));
	json_int_t tokens = json_integer_value(json_object_get(json_object_get(doc, "shmrt"), "tokens"));
	CHECK(bytes >= 1 << 20 && tokens > bytes / 8 && tokens < bytes / 2, "%lld tokens for %lld bytes", tokens,
	      bytes);
	json_decref(doc);
	shmrt_tokenizer_free(tok);
	printf("shmrt bench tokenize --json: ok\n");
	return 0;
}

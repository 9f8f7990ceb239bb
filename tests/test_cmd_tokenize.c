/* `shmrt tokenize` and `shmrt detokenize`, run as programs: ids of a few
 * fixture texts against the reference ids of cases.json (Hugging Face
 * tokenizers and tiktoken, see make_fixtures.py), text from --text, --file
 * and standard input, the --json forms, a round trip of bytes that are not
 * UTF-8, and every usage or input error: a message on stderr and a non-zero
 * exit status.
 *   test_cmd_tokenize SHMRT_EXE FIXTURE_DIR */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "check.h"
#include "array_size.h"

static const char *shmrt, *fixtures;
static char tmpdir[64];

struct result {
	int status;  /* exit status, or 128 + signal */
	char *out, *err;
	size_t out_n;
};

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	CHECK(f, "open %s", path);
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);
	for (size_t r; buf && (r = fread(buf + len, 1, cap - len, f)) > 0;) {
		len += r;
		if (len == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	CHECK(buf, "out of memory");
	fclose(f);
	buf[len] = '\0';
	if (n)
		*n = len;
	return buf;
}

static void spill(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(p, 1, n, f) == n && fclose(f) == 0, "write %s", path);
}

/* Runs shmrt with args (NULL-terminated), stdin from in_path (or
 * /dev/null); captures stdout and stderr. */
static struct result run(const char *in_path, const char *const *args)
{
	char out_path[128], err_path[128];
	snprintf(out_path, sizeof(out_path), "%s/out", tmpdir);
	snprintf(err_path, sizeof(err_path), "%s/err", tmpdir);
	const char *argv[32] = {shmrt};
	size_t argc = 1;
	for (; args[argc - 1]; argc++) {
		CHECK(argc < 31, "too many arguments");
		argv[argc] = args[argc - 1];
	}
	argv[argc] = NULL;
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
		int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		execv(shmrt, (char *const *)argv);
		_exit(127);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	struct result r = {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), NULL, NULL, 0};
	r.out = slurp(out_path, &r.out_n);
	r.err = slurp(err_path, NULL);
	return r;
}

static void result_free(struct result *r)
{
	free(r->out);
	free(r->err);
}

/* A command that must fail: status want, a message on stderr containing
 * what, nothing on stdout. */
static void expect_error(int want, const char *what, const char *const *args)
{
	struct result r = run(NULL, args);
	CHECK(r.status == want, "shmrt %s ...: exit %d, want %d (stderr: %s)", args[0], r.status, want, r.err);
	CHECK(strstr(r.err, what), "shmrt %s ...: stderr lacks \"%s\": %s", args[0], what, r.err);
	CHECK(r.out_n == 0, "shmrt %s ...: an error, yet stdout has \"%s\"", args[0], r.out);
	result_free(&r);
}

static json_t *cases;

/* The index of text s in cases.json. */
static size_t text_index(const char *s)
{
	json_t *texts = json_object_get(cases, "texts");
	char hex[512] = "";
	for (size_t i = 0; s[i]; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)s[i]);
	for (size_t i = 0; i < json_array_size(texts); i++)
		if (!strcmp(json_string_value(json_array_get(texts, i)), hex))
			return i;
	CHECK(0, "\"%s\" is not a text of cases.json", s);
	return 0;
}

/* The reference ids, as the plain output prints them ("1 2 3\n"). */
static char *reference_ids(const char *tokenizer, const char *s, bool add_special)
{
	json_t *c = json_object_get(json_object_get(cases, "tokenizers"), tokenizer);
	json_t *ids = json_array_get(json_object_get(c, "ids"), text_index(s));
	json_t *all = json_array();
	if (add_special)
		json_array_extend(all, json_object_get(c, "special_prefix"));
	json_array_extend(all, ids);
	char *line = malloc(16 * json_array_size(all) + 2);
	size_t n = 0;
	CHECK(line, "out of memory");
	for (size_t i = 0; i < json_array_size(all); i++)
		n += (size_t)sprintf(line + n, "%s%lld", i ? " " : "", json_integer_value(json_array_get(all, i)));
	strcpy(line + n, "\n");
	json_decref(all);
	return line;
}

/* shmrt CMD --tokenizer PATH [--pattern P] followed by extra. */
static struct result run_tok(const char *in_path, const char *cmd, const char *path, const char *pattern,
			     const char *const *extra)
{
	const char *args[16] = {cmd, "--tokenizer", path};
	size_t n = 3;
	if (pattern) {
		args[n++] = "--pattern";
		args[n++] = pattern;
	}
	for (; *extra; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	return run(in_path, args);
}

static void check_tokenize(const char *tokenizer, const char *file, const char *pattern, const char *text,
			   bool add_special)
{
	char path[4096], text_path[128], json_path[128];
	snprintf(path, sizeof(path), "%s/%s", fixtures, file);
	snprintf(text_path, sizeof(text_path), "%s/text", tmpdir);
	snprintf(json_path, sizeof(json_path), "%s/ids.json", tmpdir);
	spill(text_path, text, strlen(text));
	char *want = reference_ids(tokenizer, text, add_special);
	const char *flag = add_special ? "--add-special" : NULL;
	/* The same ids from --text, --file and standard input. */
	const char *const ways[3][4] = {{"--text", text, flag}, {"--file", text_path, flag}, {"--file", "-", flag}};
	for (int w = 0; w < 3; w++) {
		struct result r = run_tok(w == 2 ? text_path : NULL, "tokenize", path, pattern, ways[w]);
		CHECK(r.status == 0, "tokenize %s with %s: exit %d: %s", ways[w][0], tokenizer, r.status, r.err);
		CHECK(!strcmp(r.out, want), "tokenize \"%s\" %s with %s:\n  got  %s  want %s", text, ways[w][1],
		      tokenizer, r.out, want);
		result_free(&r);
	}
	free(want);

	/* Back: the ids give the text (the fixtures' decoded text is the input
	 * for these), from --ids and from tokenize --json's document. */
	want = reference_ids(tokenizer, text, false);
	for (char *c = want; *c; c++)
		*c = *c == ' ' ? ',' : *c == '\n' ? '\0' : *c;
	struct result r = run_tok(NULL, "detokenize", path, pattern, (const char *[]){"--ids", want, NULL});
	CHECK(r.status == 0 && r.out_n == strlen(text) && !memcmp(r.out, text, r.out_n),
	      "detokenize --ids %s: \"%s\" (%s), want \"%s\"", want, r.out, r.err, text);
	result_free(&r);
	free(want);

	r = run_tok(NULL, "tokenize", path, pattern, (const char *[]){"--text", text, "--json", NULL});
	CHECK(r.status == 0 && !strncmp(r.out, "{\"ids\": [", 9), "tokenize --json: %s%s", r.out, r.err);
	spill(json_path, r.out, r.out_n);
	result_free(&r);
	r = run_tok(NULL, "detokenize", path, pattern, (const char *[]){"--file", json_path, NULL});
	CHECK(r.status == 0 && r.out_n == strlen(text) && !memcmp(r.out, text, r.out_n),
	      "detokenize --file (JSON): \"%s\" (%s)", r.out, r.err);
	result_free(&r);
}

/* Bytes that are not UTF-8 through a byte-level tokenizer: the same bytes
 * back; the --json form replaces them with U+FFFD. */
static void check_invalid_utf8(void)
{
	static const char bytes[] = "ab\xff\xfe c\xe2\x82 \xf0\x9f\x98\x80\xc3";
	char path[4096], text_path[128], ids_path[128];
	snprintf(path, sizeof(path), "%s/gpt2.json", fixtures);
	snprintf(text_path, sizeof(text_path), "%s/bytes", tmpdir);
	snprintf(ids_path, sizeof(ids_path), "%s/ids.txt", tmpdir);
	spill(text_path, bytes, sizeof(bytes) - 1);
	struct result r = run(NULL, (const char *[]){"tokenize", "--tokenizer", path, "--file", text_path, NULL});
	CHECK(r.status == 0 && r.out_n > 1, "tokenize bytes: %s", r.err);
	spill(ids_path, r.out, r.out_n);
	result_free(&r);
	r = run(NULL, (const char *[]){"detokenize", "--tokenizer", path, "--file", ids_path, NULL});
	CHECK(r.status == 0 && r.out_n == sizeof(bytes) - 1 && !memcmp(r.out, bytes, r.out_n),
	      "detokenize gave %zu bytes, want the %zu put in (%s)", r.out_n, sizeof(bytes) - 1, r.err);
	result_free(&r);
	r = run(NULL, (const char *[]){"detokenize", "--tokenizer", path, "--file", ids_path, "--json", NULL});
	const char *want = "{\"text\": \"ab\xEF\xBF\xBD\xEF\xBF\xBD c\xEF\xBF\xBD \xF0\x9F\x98\x80\xEF\xBF\xBD\"}\n";
	CHECK(r.status == 0 && !strcmp(r.out, want), "detokenize --json: %s (%s), want %s", r.out, r.err, want);
	result_free(&r);
}

static void check_errors(void)
{
	char json[4096], ranks[4096], missing[4096];
	snprintf(json, sizeof(json), "%s/gpt2.json", fixtures);
	snprintf(ranks, sizeof(ranks), "%s/ranks.tiktoken", fixtures);
	snprintf(missing, sizeof(missing), "%s/no-such-file.json", tmpdir);
	expect_error(2, "--tokenizer FILE is required", (const char *[]){"tokenize", "--text", "hi", NULL});
	expect_error(2, "--text or --file", (const char *[]){"tokenize", "--tokenizer", json, NULL});
	expect_error(2, "--text or --file",
		     (const char *[]){"tokenize", "--tokenizer", json, "--text", "a", "--file", json, NULL});
	expect_error(2, "unexpected argument stray",
		     (const char *[]){"tokenize", "--tokenizer", json, "--text", "a", "stray", NULL});
	expect_error(2, "usage:", (const char *[]){"tokenize", "--no-such-option", NULL});
	expect_error(1, "no-such-file.json", (const char *[]){"tokenize", "--tokenizer", missing, "--text", "a", NULL});
	expect_error(1, "no-such-file.json", (const char *[]){"tokenize", "--tokenizer", json, "--file", missing, NULL});
	expect_error(1, "needs a pattern", (const char *[]){"tokenize", "--tokenizer", ranks, "--text", "a", NULL});
	expect_error(1, "unknown pattern \"p50k\"",
		     (const char *[]){"tokenize", "--tokenizer", ranks, "--pattern", "p50k", "--text", "a", NULL});
	expect_error(1, "a pattern is for tiktoken files",
		     (const char *[]){"tokenize", "--tokenizer", json, "--pattern", "gpt2", "--text", "a", NULL});
	expect_error(1, "not JSON", (const char *[]){"detokenize", "--tokenizer", ranks, "--ids", "1", NULL});
	expect_error(2, "--ids or --file", (const char *[]){"detokenize", "--tokenizer", json, NULL});
	expect_error(2, "not a list of token ids",
		     (const char *[]){"detokenize", "--tokenizer", json, "--ids", "1,x,3", NULL});
	expect_error(2, "not a list of token ids",
		     (const char *[]){"detokenize", "--tokenizer", json, "--ids", "99999999999", NULL});
	expect_error(1, "token id 5000 is not in the vocabulary",
		     (const char *[]){"detokenize", "--tokenizer", json, "--ids", "1,5000", NULL});
	expect_error(1, "token id -1 is not in the vocabulary",
		     (const char *[]){"detokenize", "--tokenizer", json, "--ids", "-1", NULL});

	/* A broken tokenizer.json: the message names the file and the place. */
	char broken[128];
	snprintf(broken, sizeof(broken), "%s/broken.json", tmpdir);
	const char *bad = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}";
	spill(broken, bad, strlen(bad));
	expect_error(1, "broken.json: model.merges[0]",
		     (const char *[]){"tokenize", "--tokenizer", broken, "--text", "a", NULL});

	for (int i = 0; i < 2; i++) {
		struct result r = run(NULL, (const char *[]){i ? "detokenize" : "tokenize", "--help", NULL});
		CHECK(r.status == 0 && strstr(r.out, "usage: shmrt ") && !r.err[0], "--help: %d %s", r.status, r.err);
		result_free(&r);
	}
}

static void remove_tmpdir(void)
{
	const char *names[] = {"out", "err", "text", "ids.json", "bytes", "ids.txt", "broken.json"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
		unlink(p);
	}
	rmdir(tmpdir);
}

int main(int argc, char **argv)
{
	CHECK(argc == 3, "usage: test_cmd_tokenize SHMRT_EXE FIXTURE_DIR");
	shmrt = argv[1];
	fixtures = argv[2];
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/shmrt-tokenize-XXXXXX");
	CHECK(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	atexit(remove_tmpdir);
	char path[4096];
	snprintf(path, sizeof(path), "%s/cases.json", fixtures);
	json_error_t err;
	CHECK((cases = json_load_file(path, 0, &err)), "%s: %s", path, err.text);

	check_tokenize("gpt2", "gpt2.json", NULL, "Hello, world!", false);
	check_tokenize("gpt2", "gpt2.json", NULL, "hello<|endoftext|>world", false);
	check_tokenize("llama3", "llama3.json", NULL, "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
		       true);
	check_tokenize("qwen2", "qwen2.json", NULL, "你好，世界！", false);
	check_tokenize("llama2", "llama2.json", NULL, "👨‍👩‍👧‍👦 family", true);
	check_tokenize("tiktoken-llama3", "ranks.tiktoken", "llama3", "<|begin_of_text|>Hi<|eot_id|>", true);
	check_tokenize("tiktoken-o200k", "ranks.tiktoken", "o200k", "It's we'll don't", false);
	check_invalid_utf8();
	check_errors();
	json_decref(cases);
	printf("shmrt tokenize / detokenize: ok\n");
	return 0;
}

/* Tokenizers against an independent implementation: every test string of
 * tests/fixtures/tokenizer/cases.json through every tokenizer there (files
 * trained and saved by Hugging Face `tokenizers`; tiktoken rank files with
 * each pattern), compared with the ids and decoded text the reference
 * library gave (make_fixtures.py). Per string and tokenizer:
 *   - encode: plain, with the post-processor's special tokens, and with
 *     special tokens read as text;
 *   - decode: with and without special tokens, exact bytes for tiktoken and
 *     U+FFFD-replaced text for tokenizer.json (HF returns a str);
 *   - streaming detokenization, one id at a time: every chunk is valid
 *     UTF-8 and the chunks add up to the full decode.
 * Then bytes that are not UTF-8 through every tokenizer: no crash, the
 * byte-level ones give the input back byte for byte, and the stream holds.
 * Last, the fuzz seeds: those named bad-* are refused with a message that
 * names the file, the others load.
 *   test_tokenizer FIXTURE_DIR [JSON_SEED_DIR TIKTOKEN_SEED_DIR] */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "utf8_check.h"

static const char *fixtures;
static int failures;
/* Token boundaries inside a character that the streams went through: the
 * fixtures must have some, or the stream test would prove little. */
static int split_chars;

/* A mismatch: printed (the first few per tokenizer) and counted. */
#define MISMATCH(...)                                                                 \
	do {                                                                          \
		if (failures++ < 40) {                                                \
			fprintf(stderr, __VA_ARGS__);                                 \
			fprintf(stderr, "\n");                                        \
		}                                                                     \
	} while (0)

struct bytes {
	char *p;
	size_t n;
};

static struct bytes unhex(const char *hex)
{
	size_t n = strlen(hex) / 2;
	struct bytes b = {malloc(n + 1), n};
	CHECK(b.p, "out of memory");
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		CHECK(sscanf(hex + 2 * i, "%2x", &v) == 1, "bad hex in cases.json");
		b.p[i] = (char)v;
	}
	b.p[n] = '\0';
	return b;
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
	fprintf(stderr, "  %s (%zu):", what, n);
	for (size_t i = 0; i < n && i < 40; i++)
		fprintf(stderr, " %d", ids[i]);
	fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

static int32_t *json_ids(json_t *a, size_t *n)
{
	CHECK(json_is_array(a), "ids must be a list");
	*n = json_array_size(a);
	int32_t *v = malloc((*n + 1) * sizeof(*v));
	CHECK(v, "out of memory");
	for (size_t i = 0; i < *n; i++) {
		CHECK(json_is_integer(json_array_get(a, i)), "an id is not an integer");
		v[i] = (int32_t)json_integer_value(json_array_get(a, i));
	}
	return v;
}

/* Encodes text with flags, growing the array as the API asks. */
static int32_t *encode(struct shmrt_tokenizer *tok, const struct bytes *text, unsigned flags, size_t *n)
{
	int32_t small[4];
	int rc = shmrt_tokenizer_encode(tok, text->p, text->n, flags, small, 4);
	CHECK(rc >= 0, "encode: %d (%s)", rc, shmrt_last_error());
	int32_t *ids = malloc(((size_t)rc + 1) * sizeof(*ids));
	CHECK(ids, "out of memory");
	int rc2 = shmrt_tokenizer_encode(tok, text->p, text->n, flags, ids, (size_t)rc);
	CHECK(rc2 == rc, "encode gave %d ids, then %d", rc, rc2);
	for (int i = 0; i < rc && i < 4; i++)
		CHECK(ids[i] == small[i], "the first ids differ between calls");
	*n = (size_t)rc;
	return ids;
}

static struct bytes decode(const struct shmrt_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags)
{
	char small[8];
	int rc = shmrt_tokenizer_decode(tok, ids, n, flags, small, sizeof(small));
	CHECK(rc >= 0, "decode: %d (%s)", rc, shmrt_last_error());
	struct bytes b = {malloc((size_t)rc + 1), (size_t)rc};
	CHECK(b.p, "out of memory");
	int rc2 = shmrt_tokenizer_decode(tok, ids, n, flags, b.p, (size_t)rc + 1);
	CHECK(rc2 == rc && b.p[rc] == '\0', "decode gave %d bytes, then %d", rc, rc2);
	CHECK(!memcmp(small, b.p, (size_t)rc < sizeof(small) - 1 ? (size_t)rc : sizeof(small) - 1) &&
		      small[(size_t)rc < sizeof(small) - 1 ? (size_t)rc : sizeof(small) - 1] == '\0',
	      "a short buffer got other bytes or no NUL");
	return b;
}

/* One id at a time: each chunk valid UTF-8, together the lossy decode. */
static void check_stream(const char *name, size_t t, const struct shmrt_tokenizer *tok, const int32_t *ids,
			 size_t n, unsigned flags)
{
	struct shmrt_detok_stream *s;
	CHECK_OK(shmrt_detok_stream_new(tok, flags, &s));
	struct bytes full = decode(tok, ids, n, flags | SHMRT_DECODE_LOSSY);
	for (size_t i = 1; i < n && n <= 64; i++) {
		struct bytes prefix = decode(tok, ids, i, flags);
		split_chars += !valid_utf8((const unsigned char *)prefix.p, prefix.n);
		free(prefix.p);
	}
	/* Twice: flush makes the stream ready for the next sequence. */
	for (int round = 0; round < 2; round++) {
		char *got = malloc(full.n + 64);
		size_t got_n = 0;
		bool ok = true;
		for (size_t i = 0; i <= n && ok; i++) {
			const char *chunk;
			int rc = i < n ? shmrt_detok_stream_push(s, ids[i], &chunk) : shmrt_detok_stream_flush(s, &chunk);
			CHECK(rc >= 0, "%s text %zu: stream: %d (%s)", name, t, rc, shmrt_last_error());
			if (!valid_utf8((const unsigned char *)chunk, (size_t)rc)) {
				MISMATCH("%s text %zu: stream chunk %zu is not valid UTF-8", name, t, i);
				ok = false;
			} else if (got_n + (size_t)rc > full.n) {
				MISMATCH("%s text %zu: the stream gives more than the decode", name, t);
				ok = false;
			} else {
				memcpy(got + got_n, chunk, (size_t)rc);
				got_n += (size_t)rc;
			}
		}
		if (ok && (got_n != full.n || memcmp(got, full.p, full.n)))
			MISMATCH("%s text %zu: the stream's %zu bytes differ from the decode's %zu", name, t, got_n, full.n);
		free(got);
	}
	free(full.p);
	shmrt_detok_stream_free(s);
}

static bool same_ids(const int32_t *a, size_t an, const int32_t *b, size_t bn)
{
	return an == bn && (an == 0 || !memcmp(a, b, an * sizeof(*a)));
}

static void check_encode(const char *name, size_t t, const char *what, struct shmrt_tokenizer *tok,
			 const struct bytes *text, unsigned flags, const int32_t *want, size_t want_n)
{
	size_t n;
	int32_t *got = encode(tok, text, flags, &n);
	if (!same_ids(got, n, want, want_n)) {
		MISMATCH("%s text %zu (\"%.60s\"): %s ids differ", name, t, text->p, what);
		if (failures <= 40) {
			print_ids("want", want, want_n);
			print_ids("got", got, n);
		}
	}
	free(got);
}

static void check_text(const char *name, size_t t, const char *what, const struct bytes *got,
		       const struct bytes *want)
{
	if (got->n != want->n || memcmp(got->p, want->p, want->n))
		MISMATCH("%s text %zu: %s differs:\n  want \"%.*s\"\n  got  \"%.*s\"", name, t, what, (int)want->n,
			 want->p, (int)got->n, got->p);
}

/* The hex string at i of list, or NULL where the list says "as before". */
static const char *maybe_hex(json_t *list, size_t i)
{
	json_t *v = json_array_get(list, i);
	CHECK(!list || v, "a list in cases.json is short");
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Id sequences (random, byte tokens that split or break characters,
 * special tokens among them) decoded as the reference did: HF's text, with
 * and without special tokens, or tiktoken's bytes; and streamed. */
static void check_decode_cases(const char *name, const struct shmrt_tokenizer *tok, json_t *d, bool tiktoken)
{
	json_t *lists = json_object_get(d, "ids");
	json_t *text = json_object_get(d, tiktoken ? "bytes" : "text"), *skip = json_object_get(d, "text_skip_special");
	CHECK(json_array_size(lists) > 50 && json_array_size(text) == json_array_size(lists),
	      "%s: the decode cases are missing", name);
	for (size_t k = 0; k < json_array_size(lists); k++) {
		size_t n;
		int32_t *ids = json_ids(json_array_get(lists, k), &n);
		struct bytes want = unhex(json_string_value(json_array_get(text, k)));
		struct bytes got = decode(tok, ids, n, tiktoken ? 0 : SHMRT_DECODE_LOSSY);
		char what[64];
		snprintf(what, sizeof(what), "decode case %zu", k);
		check_text(name, k, what, &got, &want);
		free(got.p);
		if (!tiktoken) {
			const char *skip_hex = maybe_hex(skip, k);
			struct bytes want_skip = skip_hex ? unhex(skip_hex) : want;
			got = decode(tok, ids, n, SHMRT_DECODE_SKIP_SPECIAL | SHMRT_DECODE_LOSSY);
			snprintf(what, sizeof(what), "decode case %zu skipping special tokens", k);
			check_text(name, k, what, &got, &want_skip);
			free(got.p);
			if (skip_hex)
				free(want_skip.p);
		}
		free(want.p);
		check_stream(name, 1000 + k, tok, ids, n, 0);
		check_stream(name, 1000 + k, tok, ids, n, SHMRT_DECODE_SKIP_SPECIAL);
		free(ids);
	}
}

static void check_tokenizer(const char *name, json_t *c, struct bytes *texts, size_t n_texts,
			    struct bytes *invalid, size_t n_invalid)
{
	char path[4096];
	const char *file = json_string_value(json_object_get(c, "file"));
	const char *pattern = json_string_value(json_object_get(c, "pattern"));
	bool tiktoken = pattern != NULL;
	snprintf(path, sizeof(path), "%s/%s", fixtures, file);
	struct shmrt_tokenizer *tok;
	CHECK_OK(shmrt_tokenizer_load(path, pattern, &tok));
	int failures_before = failures;
	CHECK(shmrt_tokenizer_vocab_size(tok) == json_integer_value(json_object_get(c, "vocab_size")),
	      "%s: vocab size %d, want %lld", name, shmrt_tokenizer_vocab_size(tok),
	      json_integer_value(json_object_get(c, "vocab_size")));
	size_t prefix_n;
	int32_t *prefix = json_ids(json_object_get(c, "special_prefix"), &prefix_n);
	CHECK(prefix_n == 0 ? shmrt_tokenizer_bos_id(tok) == -ENOENT : shmrt_tokenizer_bos_id(tok) == prefix[0],
	      "%s: bos id %d", name, shmrt_tokenizer_bos_id(tok));
	json_t *ids_list = json_object_get(c, "ids"), *as_text_list = json_object_get(c, "ids_special_as_text");
	json_t *decoded_list = json_object_get(c, "decoded"), *skip_list = json_object_get(c, "decoded_skip_special");
	CHECK(json_array_size(ids_list) == n_texts, "%s: %zu id lists for %zu texts", name, json_array_size(ids_list),
	      n_texts);
	/* tiktoken's decode gives bytes; HF's a str, broken UTF-8 replaced. */
	unsigned lossy = tiktoken ? 0 : SHMRT_DECODE_LOSSY;
	for (size_t t = 0; t < n_texts; t++) {
		size_t n;
		int32_t *ids = json_ids(json_array_get(ids_list, t), &n);
		check_encode(name, t, "plain", tok, &texts[t], 0, ids, n);

		int32_t *with = malloc((prefix_n + n + 1) * sizeof(*with));
		CHECK(with, "out of memory");
		memcpy(with, prefix, prefix_n * sizeof(*with));
		memcpy(with + prefix_n, ids, n * sizeof(*with));
		check_encode(name, t, "add-special", tok, &texts[t], SHMRT_ENCODE_ADD_SPECIAL, with, prefix_n + n);
		free(with);

		json_t *as_text = json_array_get(as_text_list, t);
		size_t as_text_n = n;
		int32_t *as_text_ids = json_is_array(as_text) ? json_ids(as_text, &as_text_n) : ids;
		check_encode(name, t, "special-as-text", tok, &texts[t], SHMRT_ENCODE_SPECIAL_AS_TEXT, as_text_ids,
			     as_text_n);
		if (as_text_ids != ids)
			free(as_text_ids);

		const char *hex = maybe_hex(decoded_list, t);
		struct bytes want = hex ? unhex(hex) : texts[t];
		struct bytes got = decode(tok, ids, n, lossy);
		check_text(name, t, "decode", &got, &want);
		free(got.p);
		if (!tiktoken) {
			const char *skip_hex = maybe_hex(skip_list, t);
			struct bytes want_skip = skip_hex ? unhex(skip_hex) : want;
			got = decode(tok, ids, n, SHMRT_DECODE_SKIP_SPECIAL | SHMRT_DECODE_LOSSY);
			check_text(name, t, "decode skipping special tokens", &got, &want_skip);
			free(got.p);
			if (skip_hex)
				free(want_skip.p);
		}
		if (hex)
			free(want.p);
		check_stream(name, t, tok, ids, n, 0);
		check_stream(name, t, tok, ids, n, SHMRT_DECODE_SKIP_SPECIAL);
		free(ids);
	}

	check_decode_cases(name, tok, json_object_get(c, "decode"), tiktoken);

	/* Not UTF-8: encoded without a fuss; byte-level and tiktoken models
	 * (every byte has a token) decode it back exactly; the stream agrees
	 * with the lossy decode. */
	bool byte_level = tiktoken || shmrt_tokenizer_token_id(tok, "\xC4\xA0", 2) >= 0; /* "Ġ" */
	for (size_t t = 0; t < n_invalid; t++) {
		size_t n;
		int32_t *ids = encode(tok, &invalid[t], 0, &n);
		for (size_t i = 0; i < n; i++)
			CHECK(ids[i] >= 0 && ids[i] < shmrt_tokenizer_vocab_size(tok), "%s: id %d out of range", name, ids[i]);
		struct bytes got = decode(tok, ids, n, 0);
		if (byte_level)
			check_text(name, t, "decode of bytes that are not UTF-8", &got, &invalid[t]);
		free(got.p);
		got = decode(tok, ids, n, SHMRT_DECODE_LOSSY);
		if (!valid_utf8((const unsigned char *)got.p, got.n))
			MISMATCH("%s invalid text %zu: the lossy decode is not UTF-8", name, t);
		free(got.p);
		check_stream(name, n_texts + t, tok, ids, n, 0);
		free(ids);
	}
	free(prefix);
	shmrt_tokenizer_free(tok);
	printf("%-18s %zu texts + %zu not UTF-8 + %zu decode cases: %s\n", name, n_texts, n_invalid,
	       json_array_size(json_object_get(json_object_get(c, "decode"), "ids")),
	       failures == failures_before ? "ok" : "MISMATCHES");
}

/* The fuzz seeds of tests/corpus/tokenizer_json (a tokenizer.json each) or
 * tokenizer_tiktoken (a byte picking the pattern, then the rank file). */
static void check_seeds(const char *dir, bool tiktoken)
{
	static const char *const patterns[] = {"gpt2", "cl100k", "o200k", "llama3"};
	DIR *d = opendir(dir);
	CHECK(d, "cannot open %s", dir);
	int good = 0, bad = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096], tmp[] = "/tmp/shmrt-tiktoken-seed-XXXXXX";
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		const char *load = path, *pattern = NULL;
		if (tiktoken) {
			FILE *f = fopen(path, "rb");
			int fd = mkstemp(tmp);
			CHECK(f && fd >= 0, "%s", path);
			int sel = fgetc(f);
			CHECK(sel != EOF, "%s is empty", path);
			pattern = patterns[sel % 4];
			char buf[4096];
			for (size_t r; (r = fread(buf, 1, sizeof(buf), f)) > 0;)
				CHECK(write(fd, buf, r) == (ssize_t)r, "write %s", tmp);
			fclose(f);
			close(fd);
			load = tmp;
		}
		struct shmrt_tokenizer *tok = NULL;
		int rc = shmrt_tokenizer_load(load, pattern, &tok);
		if (!strncmp(e->d_name, "bad-", 4)) {
			CHECK(rc < 0 && strstr(shmrt_last_error(), load), "%s: loaded, or the message does not name it: %s",
			      path, rc < 0 ? shmrt_last_error() : "");
			bad++;
		} else {
			CHECK(rc == 0, "%s: %s", path, shmrt_last_error());
			good++;
		}
		shmrt_tokenizer_free(tok);
		if (tiktoken)
			unlink(tmp);
	}
	closedir(d);
	CHECK(good >= 3 && bad >= 3, "%s: %d good and %d bad seeds", dir, good, bad);
	printf("%s: %d seeds load, %d are refused\n", dir, good, bad);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2 || argc == 4, "usage: test_tokenizer FIXTURE_DIR [JSON_SEED_DIR TIKTOKEN_SEED_DIR]");
	fixtures = argv[1];
	char path[4096];
	snprintf(path, sizeof(path), "%s/cases.json", fixtures);
	json_error_t err;
	json_t *cases = json_load_file(path, 0, &err);
	CHECK(cases, "%s:%d: %s", path, err.line, err.text);
	json_t *texts_j = json_object_get(cases, "texts"), *invalid_j = json_object_get(cases, "invalid_utf8");
	size_t n_texts = json_array_size(texts_j), n_invalid = json_array_size(invalid_j);
	CHECK(n_texts > 100 && n_invalid > 10, "cases.json has %zu texts and %zu invalid ones", n_texts, n_invalid);
	struct bytes *texts = calloc(n_texts, sizeof(*texts)), *invalid = calloc(n_invalid, sizeof(*invalid));
	CHECK(texts && invalid, "out of memory");
	for (size_t i = 0; i < n_texts; i++)
		texts[i] = unhex(json_string_value(json_array_get(texts_j, i)));
	for (size_t i = 0; i < n_invalid; i++)
		invalid[i] = unhex(json_string_value(json_array_get(invalid_j, i)));

	const char *name;
	json_t *c;
	size_t count = 0;
	json_object_foreach(json_object_get(cases, "tokenizers"), name, c) {
		check_tokenizer(name, c, texts, n_texts, invalid, n_invalid);
		count++;
	}
	CHECK(count >= 9, "cases.json has %zu tokenizers", count);
	for (size_t i = 0; i < n_texts; i++)
		free(texts[i].p);
	for (size_t i = 0; i < n_invalid; i++)
		free(invalid[i].p);
	free(texts);
	free(invalid);
	json_decref(cases);
	CHECK(failures == 0, "%d mismatches with the reference", failures);
	CHECK(split_chars > 100, "only %d token boundaries inside a character were streamed", split_chars);
	printf("streams crossed %d token boundaries inside a character\n", split_chars);
	if (argc == 4) {
		check_seeds(argv[2], false);
		check_seeds(argv[3], true);
	}
	return 0;
}

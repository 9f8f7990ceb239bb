/* The tokenizer from GGUF metadata (runtime/tokenizer/gguf_vocab.c), on
 * the files tests/fixtures/tokenizer_gguf/make_fixtures.py wrote with the
 * `gguf` package, against ids worked out by hand (llama.cpp gives the same,
 * tests/tokenizer_gguf_llama.py checks it on real files):
 *   - gpt2.gguf: byte-level BPE with pre-tokenizer "smollm" (digits one by
 *     one), gpt2_pre.gguf the same with "gpt-2" (digit runs); control and
 *     user-defined tokens, BOS by add_bos_token, an unused token, the chat
 *     template;
 *   - spm.gguf: SentencePiece BPE: merges by score, leftmost on ties, the
 *     space put in front (also after a special token), byte fallback;
 *     spm_nospace.gguf the same with add_space_prefix false;
 *   - every pre-tokenizer type of the table (gpt2.gguf with another
 *     tokenizer.ggml.pre): it loads, and the text comes back;
 *   - streaming detokenization adds up to the decode, for both kinds;
 *   - bad_*.gguf refused with a message that names the file and the fault.
 * And the tokenizer.json pre-tokenizers Punctuation, with each behavior,
 * Whitespace, WhitespaceSplit, CharDelimiterSplit and BertPreTokenizer.
 *   test_tokenizer_gguf FIXTURE_DIR */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "check.h"

static const char *fixtures;

/* Byte-level token of byte b in the fixtures' gpt2 vocabulary. */
#define B(b) (2 + (b))
/* Its merged tokens (make_fixtures.py's gpt2_vocab). */
enum { HELLO = 261, G_WOR = 264, TWELVE = 265, UNUSED = 266 };
/* SentencePiece: <0xNN> at 3 + NN, then the scored tokens. */
#define X(b) (3 + (b))
enum { SPACE = 259, S_H = 260, LL = 267, HE = 268, LLO = 270, S_HELLO = 271, S_WOR = 274, LD = 275 };

static struct shmrt_tokenizer *load(const char *name)
{
	char path[4096];
	struct shmrt_tokenizer *tok;
	snprintf(path, sizeof(path), "%s/%s", fixtures, name);
	CHECK_OK(shmrt_tokenizer_load(path, NULL, &tok));
	return tok;
}

static void check_ids(struct shmrt_tokenizer *tok, const char *what, const char *text, unsigned flags,
		      const int32_t *want, int want_n)
{
	int32_t got[256];
	int n = shmrt_tokenizer_encode(tok, text, strlen(text), flags, got, 256);
	CHECK(n >= 0, "%s: encode \"%s\": %s", what, text, shmrt_last_error());
	bool same = n == want_n && !memcmp(got, want, (size_t)n * sizeof(*got));
	if (!same) {
		fprintf(stderr, "%s: \"%s\" (flags %u):\n  got ", what, text, flags);
		for (int i = 0; i < n && i < 256; i++)
			fprintf(stderr, " %d", got[i]);
		fprintf(stderr, "\n  want");
		for (int i = 0; i < want_n; i++)
			fprintf(stderr, " %d", want[i]);
		fprintf(stderr, "\n");
	}
	CHECK(same, "%s: wrong ids for \"%s\"", what, text);
}

#define IDS(...) (const int32_t[]){__VA_ARGS__}, (int)(sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

static void check_text(const struct shmrt_tokenizer *tok, const char *what, const int32_t *ids, int n,
		       unsigned flags, const char *want)
{
	char got[256];
	int len = shmrt_tokenizer_decode(tok, ids, (size_t)n, flags, got, sizeof(got));
	CHECK(len >= 0, "%s: decode: %s", what, shmrt_last_error());
	CHECK((size_t)len == strlen(want) && !strcmp(got, want), "%s: decoded \"%s\", want \"%s\"", what, got, want);
}

/* Streaming the ids of text, one at a time, adds up to the lossy decode. */
static void check_stream(struct shmrt_tokenizer *tok, const char *what, const char *text)
{
	int32_t ids[256];
	char whole[512], streamed[512] = "";
	int n = shmrt_tokenizer_encode(tok, text, strlen(text), SHMRT_ENCODE_ADD_SPECIAL, ids, 256);
	CHECK(n > 0 && n <= 256, "%s: encode: %s", what, shmrt_last_error());
	int len = shmrt_tokenizer_decode(tok, ids, (size_t)n, SHMRT_DECODE_LOSSY, whole, sizeof(whole));
	CHECK(len >= 0 && (size_t)len < sizeof(whole), "%s: decode: %s", what, shmrt_last_error());
	struct shmrt_detok_stream *st;
	CHECK_OK(shmrt_detok_stream_new(tok, 0, &st));
	size_t at = 0;
	for (int i = 0; i <= n; i++) {
		const char *chunk;
		int k = i < n ? shmrt_detok_stream_push(st, ids[i], &chunk) : shmrt_detok_stream_flush(st, &chunk);
		CHECK(k >= 0 && at + (size_t)k < sizeof(streamed), "%s: stream: %s", what, shmrt_last_error());
		memcpy(streamed + at, chunk, (size_t)k);
		at += (size_t)k;
	}
	streamed[at] = '\0';
	shmrt_detok_stream_free(st);
	CHECK(!strcmp(streamed, whole), "%s: streamed \"%s\", decoded \"%s\"", what, streamed, whole);
}

static void check_gpt2(void)
{
	struct shmrt_tokenizer *tok = load("gpt2.gguf");
	CHECK(shmrt_tokenizer_vocab_size(tok) == 267, "vocab size %d", shmrt_tokenizer_vocab_size(tok));
	/* "hello", " world", " ", then each digit: "1", "2". */
	check_ids(tok, "gpt2", "hello world 12", 0, IDS(HELLO, G_WOR, B('l'), B('d'), B(' '), B('1'), B('2')));
	check_ids(tok, "gpt2", "hello world 12", SHMRT_ENCODE_ADD_SPECIAL,
		  IDS(0, HELLO, G_WOR, B('l'), B('d'), B(' '), B('1'), B('2')));
	/* Control (0) and user-defined (1) tokens are found in the text; as
	 * text, the control token is bytes and the user-defined one stays. */
	check_ids(tok, "gpt2", "<|endoftext|>hello<|user|>", 0, IDS(0, HELLO, 1));
	check_ids(tok, "gpt2", "<|endoftext|>hello<|user|>", SHMRT_ENCODE_SPECIAL_AS_TEXT,
		  IDS(B('<'), B('|'), B('e'), B('n'), B('d'), B('o'), B('f'), B('t'), B('e'), B('x'), B('t'), B('|'),
		      B('>'), HELLO, 1));
	CHECK(shmrt_tokenizer_bos_id(tok) == 0, "BOS %d", shmrt_tokenizer_bos_id(tok));
	CHECK(shmrt_tokenizer_eos_id(tok) == 0, "EOS %d", shmrt_tokenizer_eos_id(tok));
	CHECK(shmrt_tokenizer_is_special(tok, 0) && !shmrt_tokenizer_is_special(tok, 1), "special flags");
	CHECK(shmrt_tokenizer_token_id(tok, "<|user|>", 8) == 1, "token_id of <|user|>");

	check_text(tok, "gpt2", IDS(HELLO, G_WOR, B('l'), B('d'), B(' '), TWELVE), 0, "hello world 12");
	check_text(tok, "gpt2", IDS(0, HELLO, 1), 0, "<|endoftext|>hello<|user|>");
	check_text(tok, "gpt2", IDS(0, HELLO, 1), SHMRT_DECODE_SKIP_SPECIAL, "hello<|user|>");
	check_text(tok, "gpt2", IDS(HELLO, UNUSED, HELLO), 0, "hellohello"); /* unused: nothing */

	check_stream(tok, "gpt2", "<|endoftext|>hello world 12 \xE6\x97\xA5\xE6\x9C\xAC<|user|> \xF0\x9F\x8E\x89");

	const char *tmpl;
	size_t len;
	CHECK_OK(shmrt_tokenizer_chat_template(tok, &tmpl, &len));
	const char *want = "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}";
	CHECK(len == strlen(want) && !strcmp(tmpl, want), "chat template \"%s\"", tmpl);
	shmrt_tokenizer_free(tok);

	/* "gpt-2": " 12" is one piece, which merges. */
	tok = load("gpt2_pre.gguf");
	check_ids(tok, "gpt2_pre", "hello world 12", 0, IDS(HELLO, G_WOR, B('l'), B('d'), B(' '), TWELVE));
	shmrt_tokenizer_free(tok);
}

static void check_spm(void)
{
	struct shmrt_tokenizer *tok = load("spm.gguf");
	/* "▁hello▁world": ll (-1); he and or (-2, he leftmost first); ▁he;
	 * llo; ▁hello; ▁w; ▁wor; ld. */
	check_ids(tok, "spm", "hello world", 0, IDS(S_HELLO, S_WOR, LD));
	check_ids(tok, "spm", "hello world", SHMRT_ENCODE_ADD_SPECIAL, IDS(1, S_HELLO, S_WOR, LD));
	check_ids(tok, "spm", "hello  world", 0, IDS(S_HELLO, SPACE, S_WOR, LD));
	check_ids(tok, "spm", " hello", 0, IDS(SPACE, S_HELLO)); /* the prefix is added even so */
	/* 'i' and '€' have no token: their bytes. */
	check_ids(tok, "spm", "hi\xE2\x82\xAC", 0, IDS(SPACE, S_H, X('i'), X(0xE2), X(0x82), X(0xAC)));
	/* After a special token the text gets its space again. */
	check_ids(tok, "spm", "<s>hello", 0, IDS(1, S_HELLO));
	check_ids(tok, "spm", "<s>hello", SHMRT_ENCODE_SPECIAL_AS_TEXT, IDS(SPACE, X('<'), X('s'), X('>'), HE, LLO));
	check_ids(tok, "spm", "\n", 0, IDS(SPACE, X('\n')));
	check_ids(tok, "spm", "ll", 0, IDS(SPACE, LL));

	check_text(tok, "spm", IDS(S_HELLO, S_WOR, LD), 0, "hello world");
	check_text(tok, "spm", IDS(1, S_HELLO, S_WOR, LD), SHMRT_DECODE_SKIP_SPECIAL, "hello world");
	check_text(tok, "spm", IDS(1, S_HELLO, S_WOR, LD), 0, "<s> hello world");
	check_text(tok, "spm", IDS(SPACE, S_H, X('i'), X(0xE2), X(0x82), X(0xAC)), 0, "hi\xE2\x82\xAC");
	CHECK(shmrt_tokenizer_chat_template(tok, NULL, NULL) == -ENOENT, "spm.gguf has no chat template");
	CHECK(shmrt_tokenizer_eos_id(tok) == 2, "EOS %d", shmrt_tokenizer_eos_id(tok));
	check_stream(tok, "spm", "hello world hi\xE2\x82\xAC <s>hello \xF0\x9F\x8E\x89");
	shmrt_tokenizer_free(tok);

	/* add_space_prefix false: "hello▁world", and no space to strip. */
	tok = load("spm_nospace.gguf");
	check_ids(tok, "spm_nospace", "hello world", 0, IDS(HE, LLO, S_WOR, LD));
	check_ids(tok, "spm_nospace", "<s> hello", 0, IDS(1, S_HELLO));
	check_text(tok, "spm_nospace", IDS(S_HELLO, S_WOR, LD), 0, " hello world");
	shmrt_tokenizer_free(tok);
}

/* gpt2.gguf with tokenizer.ggml.pre set to pre, written to path: the
 * file's bytes with the value (u32 type 8, u64 length, the bytes) replaced. */
static void write_with_pre(const char *pre, const char *path)
{
	char src[4096];
	snprintf(src, sizeof(src), "%s/gpt2.gguf", fixtures);
	FILE *f = fopen(src, "rb");
	CHECK(f, "%s", src);
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	static const char key[] = "tokenizer.ggml.pre";
	char *at = memmem(buf, n, key, sizeof(key) - 1);
	CHECK(at && at + sizeof(key) - 1 + 12 <= buf + n, "%s has no %s", src, key);
	char *val = at + sizeof(key) - 1 + 4; /* past the u32 type */
	uint64_t old_n, new_n = strlen(pre);
	memcpy(&old_n, val, 8);
	f = fopen(path, "wb");
	CHECK(f, "%s", path);
	fwrite(buf, 1, (size_t)(val - buf), f);
	fwrite(&new_n, 8, 1, f);
	fwrite(pre, 1, new_n, f);
	fwrite(val + 8 + old_n, 1, n - (size_t)(val + 8 + old_n - buf), f);
	CHECK(fclose(f) == 0, "write %s", path);
}

/* Every pre-tokenizer type of gguf_vocab.c's table compiles and splits: a
 * byte-level vocabulary gives every text back (tokenizer_gguf_llama.py
 * holds their ids to llama.cpp's). */
static void check_pre_types(void)
{
	static const char *const names[] = {
		"default", "llama3", "llama-bpe", "dbrx", "qwen2", "smollm", "gpt-2", "phi-2", "falcon",
		"deepseek-llm", "deepseek-coder", "deepseek-v3", "tekken", "gpt-4o", "poro-chat", "viking",
		"starcoder", "command-r", "chatglm-bpe",
	};
	const char *text = "Hello W\xC3\xB6rld's 1234567 x86_64!\n\t  \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E "
			   "\xF0\x9F\x8E\x89 $x+=y; \xCE\x91\xCE\xB8\xCE\xAE\xCE\xBD\xCE\xB1   ";
	char path[] = "/tmp/shmrt-pre-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	close(fd);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct shmrt_tokenizer *tok;
		int32_t ids[256];
		char back[256];
		write_with_pre(names[i], path);
		CHECK_OK(shmrt_tokenizer_load(path, NULL, &tok));
		int n = shmrt_tokenizer_encode(tok, text, strlen(text), 0, ids, 256);
		CHECK(n > 0 && n <= 256, "%s: encode: %d %s", names[i], n, shmrt_last_error());
		int len = shmrt_tokenizer_decode(tok, ids, (size_t)n, 0, back, sizeof(back));
		CHECK(len >= 0 && !strcmp(back, text), "%s: decoded \"%s\"", names[i], back);
		shmrt_tokenizer_free(tok);
	}
	unlink(path);
}

static void check_bad(const char *name, int err, const char *why)
{
	char path[4096];
	struct shmrt_tokenizer *tok = NULL;
	snprintf(path, sizeof(path), "%s/%s", fixtures, name);
	int rc = shmrt_tokenizer_load(path, NULL, &tok);
	CHECK(rc == -err, "%s: loaded with %d, want %d (%s)", name, rc, -err, shmrt_last_error());
	CHECK(strstr(shmrt_last_error(), name) && strstr(shmrt_last_error(), why),
	      "%s: the message \"%s\" should name the file and say \"%s\"", name, shmrt_last_error(), why);
}

/* A tokenizer.json of single characters whose merges would cross the
 * punctuation, under the pre-tokenizer pretok (JSON). */
static struct shmrt_tokenizer *with_pretok(const char *pretok)
{
	char path[] = "/tmp/shmrt-punct-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	FILE *f = fdopen(fd, "w");
	CHECK(f, "fdopen");
	fprintf(f, "{\"pre_tokenizer\": %s,\n"
		   " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"!\": 2, \"$\": 3, "
		   "\"\xE3\x80\x82\": 4, \"a!\": 5, \"!!\": 6, \"!b\": 7, \"a$\": 8, \"a\xE3\x80\x82\": 9},\n"
		   " \"merges\": [\"a !\", \"! !\", \"! b\", \"a $\", \"a \xE3\x80\x82\"]}}\n",
		pretok);
	CHECK(fclose(f) == 0, "write %s", path);
	struct shmrt_tokenizer *tok;
	CHECK_OK(shmrt_tokenizer_load(path, NULL, &tok));
	unlink(path);
	return tok;
}

/* Under a Punctuation pre-tokenizer with behavior b (NULL: the key left
 * out, which is Isolated). */
static struct shmrt_tokenizer *punctuation(const char *b)
{
	char pretok[128];
	snprintf(pretok, sizeof(pretok), "{\"type\": \"Punctuation\"%s%s%s}", b ? ", \"behavior\": \"" : "",
		 b ? b : "", b ? "\"" : "");
	return with_pretok(pretok);
}

static void check_pretok(const char *pretok, const char *text, const int32_t *want, int want_n)
{
	struct shmrt_tokenizer *tok = with_pretok(pretok);
	check_ids(tok, pretok, text, 0, want, want_n);
	shmrt_tokenizer_free(tok);
}

static void check_punctuation(void)
{
	struct shmrt_tokenizer *tok = punctuation(NULL);
	/* A tokenizer.json names neither a chat template nor EOS. */
	CHECK(shmrt_tokenizer_chat_template(tok, NULL, NULL) == -ENOENT, "a tokenizer.json has no chat template");
	CHECK(shmrt_tokenizer_eos_id(tok) == -ENOENT, "a tokenizer.json names no EOS");
	check_ids(tok, "Punctuation", "a!!b", 0, IDS(0, 2, 2, 1));
	check_ids(tok, "Punctuation", "a$", 0, IDS(0, 3)); /* ASCII punctuation, though Unicode's Sc */
	check_ids(tok, "Punctuation", "a\xE3\x80\x82", 0, IDS(0, 4)); /* U+3002, Po */
	check_ids(tok, "Punctuation", "ab", 0, IDS(0, 1));
	shmrt_tokenizer_free(tok);
	static const struct {
		const char *behavior;
		int32_t ids[4];
		int n;
	} cases[] = {
		{"Isolated", {0, 2, 2, 1}, 4},
		{"Contiguous", {0, 6, 1}, 3},
		{"Removed", {0, 1}, 2},
		{"MergedWithPrevious", {5, 2, 1}, 3},
		{"MergedWithNext", {0, 2, 7}, 3},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tok = punctuation(cases[i].behavior);
		check_ids(tok, cases[i].behavior, "a!!b", 0, cases[i].ids, cases[i].n);
		shmrt_tokenizer_free(tok);
	}
	/* HF's other splitting pre-tokenizers on the same vocabulary. */
	check_pretok("{\"type\": \"Whitespace\"}", "a! b", IDS(0, 2, 1));
	check_pretok("{\"type\": \"WhitespaceSplit\"}", "a!  b", IDS(5, 1));
	check_pretok("{\"type\": \"CharDelimiterSplit\", \"delimiter\": \"!\"}", "a!b a$", IDS(0, 1, 8));
	check_pretok("{\"type\": \"BertPreTokenizer\"}", "a! a$", IDS(0, 2, 0, 3));
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: test_tokenizer_gguf FIXTURE_DIR");
	fixtures = argv[1];
	check_gpt2();
	check_spm();
	check_bad("bad_no_tokens.gguf", EINVAL, "tokenizer.ggml.tokens is missing");
	check_bad("bad_merge_unknown.gguf", EINVAL, "refers to \"zz\"");
	check_bad("bad_type_count.gguf", EINVAL, "token_type has 266 entries for 267 tokens");
	check_bad("bad_bos_range.gguf", EINVAL, "bos_token_id' = 999 is outside");
	check_bad("bad_model.gguf", ENOTSUP, "\"bert\" is not supported");
	check_bad("bad_pre.gguf", ENOTSUP, "\"no-such-pre\"");
	check_bad("bad_duplicate.gguf", EINVAL, "\"he\" twice");
	check_pre_types();
	check_punctuation();
	printf("GGUF tokenizers and the Punctuation pre-tokenizer as expected\n");
	return 0;
}

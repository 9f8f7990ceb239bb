/* shmrt tokenize / shmrt detokenize: text to token ids and back, through a
 * tokenizer.json or a tiktoken rank file (shmrt/tokenizer.h). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "shmrt/shmrt.h"
#include "cmd.h"

/* Far more than any prompt; a larger file is a mistake, not a text. */
#define MAX_INPUT_BYTES (1u << 30)

static void tokenize_usage(FILE *f)
{
	fprintf(f, "usage: shmrt tokenize --tokenizer FILE (--text T | --file F) [--pattern NAME]\n"
		   "                      [--add-special] [--special-as-text] [--json]\n\n"
		   "Prints the token ids of a text, separated by spaces.\n\n"
		   "  --tokenizer FILE   a tokenizer.json, a GGUF file (its tokenizer.ggml.* metadata),\n"
		   "                     or a tiktoken rank file (with --pattern)\n"
		   "  --text T           the text\n"
		   "  --file F           the text is the bytes of file F ('-': standard input)\n"
		   "  --pattern NAME     the split regex for a tiktoken file: gpt2, cl100k, o200k or\n"
		   "                     llama3 (the file carries none; llama3 adds Meta's special tokens)\n"
		   "  --add-special      add the tokenizer's special tokens around the text (BOS)\n"
		   "  --special-as-text  special tokens written in the text are plain text\n"
		   "  --json             print {\"ids\": [...]}\n");
}

static void detokenize_usage(FILE *f)
{
	fprintf(f, "usage: shmrt detokenize --tokenizer FILE (--ids 1,2,3 | --file F) [--pattern NAME]\n"
		   "                        [--skip-special] [--json]\n\n"
		   "Writes the text of token ids: the exact bytes they decode to, without a newline.\n\n"
		   "  --tokenizer FILE  a tokenizer.json, a GGUF file, or a tiktoken rank file\n"
		   "                    (with --pattern)\n"
		   "  --ids LIST        ids separated by commas or spaces\n"
		   "  --file F          ids read from file F ('-': standard input), separated by\n"
		   "                    commas or white space, or shmrt tokenize --json's document\n"
		   "  --pattern NAME    gpt2, cl100k, o200k or llama3, for a tiktoken file\n"
		   "  --skip-special    leave special tokens out\n"
		   "  --json            print {\"text\": \"...\"} (what is not UTF-8 becomes U+FFFD)\n");
}

/* Reads path ('-': stdin) whole, NUL-terminated; NULL with a message on
 * failure. */
static char *read_input(const char *cmd, const char *path, size_t *n)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "shmrt %s: %s: %s\n", cmd, path, strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	const char *problem = buf ? NULL : "out of memory";
	while (!problem) {
		len += fread(buf + len, 1, cap - len, f);
		if (ferror(f))
			problem = "read error";
		if (problem || len < cap)
			break;
		char *more = cap < MAX_INPUT_BYTES ? realloc(buf, 2 * cap + 1) : NULL;
		if (more) {
			buf = more;
			cap *= 2;
		} else {
			problem = cap < MAX_INPUT_BYTES ? "out of memory" : "more than 1 GiB";
		}
	}
	if (f != stdin)
		fclose(f);
	if (problem) {
		fprintf(stderr, "shmrt %s: %s: %s\n", cmd, path, problem);
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	*n = len;
	return buf;
}

struct common {
	const char *tokenizer, *pattern, *file;
	int json;
};

static struct shmrt_tokenizer *load(const char *cmd, const struct common *o)
{
	struct shmrt_tokenizer *tok;
	int rc = shmrt_tokenizer_load(o->tokenizer, o->pattern, &tok);
	if (rc < 0) {
		fprintf(stderr, "shmrt %s: %s\n", cmd, shmrt_last_error());
		return NULL;
	}
	return tok;
}

int cmd_tokenize(int argc, char **argv)
{
	struct common o = {0};
	const char *text = NULL;
	unsigned flags = 0;
	static const struct option opts[] = {
		{"tokenizer", required_argument, 0, 't'}, {"text", required_argument, 0, 'x'},
		{"file", required_argument, 0, 'f'}, {"pattern", required_argument, 0, 'p'},
		{"add-special", no_argument, 0, 'a'}, {"special-as-text", no_argument, 0, 's'},
		{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0}};
	for (int c; (c = getopt_long(argc, argv, "t:x:f:p:asjh", opts, NULL)) != -1;) {
		switch (c) {
		case 't': o.tokenizer = optarg; break;
		case 'x': text = optarg; break;
		case 'f': o.file = optarg; break;
		case 'p': o.pattern = optarg; break;
		case 'a': flags |= SHMRT_ENCODE_ADD_SPECIAL; break;
		case 's': flags |= SHMRT_ENCODE_SPECIAL_AS_TEXT; break;
		case 'j': o.json = 1; break;
		case 'h': return tokenize_usage(stdout), 0;
		default: return tokenize_usage(stderr), 2;
		}
	}
	const char *problem = optind < argc ? "unexpected argument"
			      : !o.tokenizer ? "--tokenizer FILE is required"
			      : !text == !o.file ? "give the text with --text or --file (one of them)"
					       : NULL;
	if (problem) {
		fprintf(stderr, "shmrt tokenize: %s%s%s\n\n", problem, optind < argc ? " " : "",
			optind < argc ? argv[optind] : "");
		return tokenize_usage(stderr), 2;
	}
	size_t len = text ? strlen(text) : 0;
	char *buf = o.file ? read_input("tokenize", o.file, &len) : NULL;
	if (o.file && !buf)
		return 1;
	struct shmrt_tokenizer *tok = load("tokenize", &o);
	int32_t *ids = NULL;
	int n = tok ? shmrt_tokenizer_encode(tok, buf ? buf : text, len, flags, NULL, 0) : -1;
	if (n >= 0 && !(ids = malloc(((size_t)n + 1) * sizeof(*ids))))
		n = -ENOMEM;
	if (n >= 0)
		n = shmrt_tokenizer_encode(tok, buf ? buf : text, len, flags, ids, (size_t)n);
	if (tok && n < 0)
		fprintf(stderr, "shmrt tokenize: %s\n", n == -ENOMEM ? "out of memory" : shmrt_last_error());
	if (n >= 0) {
		const char *sep = o.json ? ", " : " ";
		fputs(o.json ? "{\"ids\": [" : "", stdout);
		for (int i = 0; i < n; i++)
			printf("%s%d", i ? sep : "", ids[i]);
		fputs(o.json ? "]}\n" : "\n", stdout);
	}
	free(ids);
	free(buf);
	shmrt_tokenizer_free(tok);
	return n >= 0 && fflush(stdout) == 0 ? 0 : 1;
}

/* Ids in s: decimal numbers separated by commas and white space, or the
 * document shmrt tokenize --json prints. Returns the count or -1. */
static long parse_ids(const char *s, size_t n, int32_t **out)
{
	size_t i = 0;
	while (i < n && strchr(" \t\r\n", s[i]))
		i++;
	if (i < n && s[i] == '{') {
		json_error_t err;
		json_t *doc = json_loadb(s, n, 0, &err), *list = json_object_get(doc, "ids");
		long count = json_is_array(list) ? (long)json_array_size(list) : -1;
		int32_t *v = count >= 0 ? malloc(((size_t)count + 1) * sizeof(*v)) : NULL;
		for (long k = 0; v && k < count; k++) {
			json_t *id = json_array_get(list, (size_t)k);
			if (!json_is_integer(id) || json_integer_value(id) < INT32_MIN || json_integer_value(id) > INT32_MAX)
				count = -1;
			else
				v[k] = (int32_t)json_integer_value(id);
		}
		json_decref(doc);
		if (!v || count < 0) {
			free(v);
			return -1;
		}
		*out = v;
		return count;
	}
	int32_t *v = malloc((n / 2 + 1) * sizeof(*v)); /* each id takes a digit and a separator */
	long count = 0;
	while (v && i < n) {
		char *end;
		errno = 0;
		long long id = strtoll(s + i, &end, 10);
		if (end == s + i || errno || id < INT32_MIN || id > INT32_MAX || (size_t)(end - s) > n) {
			free(v);
			return -1;
		}
		v[count++] = (int32_t)id;
		i = (size_t)(end - s);
		while (i < n && strchr(", \t\r\n", s[i]))
			i++;
	}
	*out = v;
	return v ? count : -1;
}

static int print_text(const char *s, size_t n, int json)
{
	if (!json)
		return fwrite(s, 1, n, stdout) == n ? 0 : -1;
	json_t *doc = json_pack("{s:s%}", "text", s, n);
	int rc = doc && json_dumpf(doc, stdout, 0) == 0 ? 0 : -1;
	json_decref(doc);
	putchar('\n');
	return rc;
}

int cmd_detokenize(int argc, char **argv)
{
	struct common o = {0};
	const char *list = NULL;
	unsigned flags = 0;
	static const struct option opts[] = {
		{"tokenizer", required_argument, 0, 't'}, {"ids", required_argument, 0, 'i'},
		{"file", required_argument, 0, 'f'}, {"pattern", required_argument, 0, 'p'},
		{"skip-special", no_argument, 0, 's'}, {"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'}, {0}};
	for (int c; (c = getopt_long(argc, argv, "t:i:f:p:sjh", opts, NULL)) != -1;) {
		switch (c) {
		case 't': o.tokenizer = optarg; break;
		case 'i': list = optarg; break;
		case 'f': o.file = optarg; break;
		case 'p': o.pattern = optarg; break;
		case 's': flags |= SHMRT_DECODE_SKIP_SPECIAL; break;
		case 'j': o.json = 1; break;
		case 'h': return detokenize_usage(stdout), 0;
		default: return detokenize_usage(stderr), 2;
		}
	}
	const char *problem = optind < argc ? "unexpected argument"
			      : !o.tokenizer ? "--tokenizer FILE is required"
			      : !list == !o.file ? "give the ids with --ids or --file (one of them)"
					       : NULL;
	if (problem) {
		fprintf(stderr, "shmrt detokenize: %s%s%s\n\n", problem, optind < argc ? " " : "",
			optind < argc ? argv[optind] : "");
		return detokenize_usage(stderr), 2;
	}
	size_t len = list ? strlen(list) : 0;
	char *buf = o.file ? read_input("detokenize", o.file, &len) : NULL;
	if (o.file && !buf)
		return 1;
	int32_t *ids = NULL;
	long n = parse_ids(buf ? buf : list, len, &ids);
	free(buf);
	if (n < 0) {
		fprintf(stderr, "shmrt detokenize: %s: not a list of token ids (decimal, separated by commas or "
				"spaces, or {\"ids\": [...]})\n", o.file ? o.file : "--ids");
		return 2;
	}
	struct shmrt_tokenizer *tok = load("detokenize", &o);
	/* JSON strings are Unicode: there, what is not UTF-8 becomes U+FFFD. */
	if (o.json)
		flags |= SHMRT_DECODE_LOSSY;
	int rc = tok ? shmrt_tokenizer_decode(tok, ids, (size_t)n, flags, NULL, 0) : -1;
	char *text = rc >= 0 ? malloc((size_t)rc + 1) : NULL;
	if (rc >= 0 && !text)
		rc = -ENOMEM;
	if (text)
		rc = shmrt_tokenizer_decode(tok, ids, (size_t)n, flags, text, (size_t)rc + 1);
	if (tok && rc < 0)
		fprintf(stderr, "shmrt detokenize: %s\n", rc == -ENOMEM ? "out of memory" : shmrt_last_error());
	if (rc >= 0 && (print_text(text, (size_t)rc, o.json) < 0 || fflush(stdout) != 0)) {
		fprintf(stderr, "shmrt detokenize: writing the text failed\n");
		rc = -EIO;
	}
	free(text);
	free(ids);
	shmrt_tokenizer_free(tok);
	return rc >= 0 ? 0 : 1;
}

/* shmrt bench tokenize: encode throughput (tokens/s, MB/s) of one text with
 * one tokenizer on one thread, against the reference library encoding the
 * same text with the same file in the same run: Hugging Face `tokenizers`
 * for a tokenizer.json, `tiktoken` for a rank file (bench/tokenize_peer.py,
 * through python3, when it imports). Both checksum their ids, so the run
 * also says whether the two agree on every id of the text. Times are the
 * encoding thread's CPU seconds, best of 3, on both sides. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "shmrt/shmrt.h"
#include "bench.h"
#include "array_size.h"

#define REPEAT 3

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt bench tokenize --tokenizer FILE [--pattern NAME] [--file TEXT | --mb N]\n"
		   "                            [--peer SCRIPT] [--json]\n\n"
		   "Encodes one text on one thread (CPU time, best of %d) and compares tokens/s with the\n"
		   "reference library on the same text and file: Hugging Face tokenizers for a\n"
		   "tokenizer.json, tiktoken for a rank file (python3 and the library needed).\n\n"
		   "  --tokenizer FILE  a tokenizer.json, or a tiktoken rank file with --pattern\n"
		   "  --pattern NAME    gpt2, cl100k, o200k or llama3, for a tiktoken file\n"
		   "  --file TEXT       the text to encode (UTF-8)\n"
		   "  --mb N            else a generated text of N MB (default 4): prose, numbers,\n"
		   "                    code, CJK and emoji\n"
		   "  --peer SCRIPT     the peer driver (default bench/tokenize_peer.py, from the\n"
		   "                    source tree's root)\n"
		   "  --json            one JSON document\n", REPEAT);
}

/* The calling thread's CPU time: both sides encode on one thread, and on a
 * shared machine the wall clock mostly measures the other processes. */
static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A deterministic mixed text of about mb megabytes. */
static char *generate(unsigned mb, size_t *n)
{
	static const char *const words[] = {
		"the", "of", "and", "to", "in", "is", "you", "that", "it", "was", "for", "on", "are", "with", "they",
		"be", "at", "one", "have", "this", "from", "word", "but", "what", "some", "can", "out", "other",
		"were", "all", "there", "when", "use", "your", "how", "said", "each", "which", "their", "time",
		"tokenizer", "merges", "shared", "memory", "runtime", "scheduler", "kernel", "bandwidth", "latency",
		"It's", "don't", "we'll", "I'M", "they've", "Hello", "World", "München", "café", "naïve", "résumé",
		"的", "一是", "你好", "世界", "東京", "日本語", "안녕하세요", "привет", "мир", "γειά", "😀", "🚀",
		"x = f(y) + 1;", "return 0;", "->", "==", "{", "}", "(", ")", "#", "//", "...", ",", ".", "!", "?"};
	size_t cap = (size_t)mb << 20, len = 0;
	char *s = malloc(cap + 64);
	uint64_t x = 0x9E3779B97F4A7C15ull;
	while (s && len < cap) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		const char *w = words[x % (ARRAY_SIZE(words))];
		char num[24];
		if ((x >> 20) % 23 == 0)
			snprintf(num, sizeof(num), "%llu", (unsigned long long)((x >> 30) % 100000000));
		int k = snprintf(s + len, cap + 64 - len, "%s%s", (x >> 40) % 17 == 0 ? "\n" : (x >> 40) % 29 == 1 ? "  " : " ",
				 (x >> 20) % 23 == 0 ? num : w);
		len += (size_t)k;
	}
	*n = len;
	return s;
}

static char *read_text(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *s = NULL;
	long len = -1;
	if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (s = malloc((size_t)len + 1)) && fread(s, 1, (size_t)len, f) == (size_t)len) {
		*n = (size_t)len;
	} else {
		free(s);
		s = NULL;
	}
	if (f)
		fclose(f);
	return s;
}

struct result {
	char impl[64];
	long tokens;
	double seconds;
	char checksum[17];
};

static void checksum(const int32_t *ids, size_t n, char out[17])
{
	uint64_t h = 0xCBF29CE484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint32_t)ids[i]) * 0x100000001B3ull;
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* The peer on the same file and text; 0, or -1 with why filled in. */
static int run_peer(const char *script, const char *tokenizer, const char *pattern, const char *text_path,
		    struct result *r, char *why, size_t why_cap)
{
	char cmd[8192], out[1024] = "";
	snprintf(cmd, sizeof(cmd), "python3 '%s' --probe %s 2>/dev/null", script, pattern ? "tiktoken" : "");
	if (access(script, R_OK) < 0) {
		snprintf(why, why_cap, "the peer driver %s is missing (run from the source tree or give --peer)", script);
		return -1;
	}
	if (system(cmd) != 0) {
		snprintf(why, why_cap, "python3 cannot import %s (pip install %s)", pattern ? "tiktoken" : "tokenizers",
			 pattern ? "tiktoken" : "tokenizers");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' '%s' %d %s", script, tokenizer, text_path, REPEAT,
		 pattern ? pattern : "");
	FILE *p = popen(cmd, "r");
	size_t len = p ? fread(out, 1, sizeof(out) - 1, p) : 0;
	out[len] = '\0';
	int status = p ? pclose(p) : -1;
	json_t *doc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? json_loads(out, 0, NULL) : NULL;
	const char *impl = json_string_value(json_object_get(doc, "impl"));
	const char *sum = json_string_value(json_object_get(doc, "checksum"));
	if (!impl || !sum || !json_is_integer(json_object_get(doc, "tokens"))) {
		snprintf(why, why_cap, "the peer failed (%.*s)", (int)(why_cap > 20 ? why_cap - 20 : 0), out);
		json_decref(doc);
		return -1;
	}
	snprintf(r->impl, sizeof(r->impl), "%s", impl);
	snprintf(r->checksum, sizeof(r->checksum), "%s", sum);
	r->tokens = (long)json_integer_value(json_object_get(doc, "tokens"));
	r->seconds = json_number_value(json_object_get(doc, "seconds"));
	json_decref(doc);
	return 0;
}

static void print_row(const struct result *r, size_t bytes, const struct result *base)
{
	printf("%-22s %10ld %9.3f %11.2f %8.1f", r->impl, r->tokens, r->seconds, r->tokens / r->seconds / 1e6,
	       bytes / r->seconds / 1e6);
	if (base)
		printf("  %6.2fx", base->seconds / r->seconds);
	printf("\n");
}

/* Runs the peer on the same text (text_file) and prints both: JSON or a
 * table. file: the --file given, NULL for generated text. */
static void report(int json, const char *peer, const char *tokenizer, const char *pattern, const char *file,
		   const char *text_file, size_t n, const struct result *ours)
{
	struct result theirs = {0};
	char why[512] = "";
	int have_peer = run_peer(peer, tokenizer, pattern, text_file, &theirs, why, sizeof(why)) == 0;
	int same = have_peer && theirs.tokens == ours->tokens && !strcmp(theirs.checksum, ours->checksum);
	if (json) {
		json_t *doc = json_pack("{s:s, s:I, s:{s:s, s:I, s:f, s:s}}", "tokenizer", tokenizer, "bytes", (json_int_t)n,
					"shmrt", "impl", ours->impl, "tokens", (json_int_t)ours->tokens, "seconds",
					ours->seconds, "checksum", ours->checksum);
		if (have_peer)
			json_object_set_new(doc, "peer",
					    json_pack("{s:s, s:I, s:f, s:s, s:b, s:f}", "impl", theirs.impl, "tokens",
						      (json_int_t)theirs.tokens, "seconds", theirs.seconds, "checksum",
						      theirs.checksum, "same_ids", same, "speedup",
						      theirs.seconds / ours->seconds));
		else
			json_object_set_new(doc, "peer_missing", json_string(why));
		json_dumpf(doc, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(doc);
	} else {
		printf("tokenizer %s%s%s, text %s: %.1f MB, one thread, CPU seconds, best of %d\n\n", tokenizer,
		       pattern ? " --pattern " : "", pattern ? pattern : "", file ? file : "(generated)", n / 1e6, REPEAT);
		printf("%-22s %10s %9s %11s %8s  %s\n", "encoder", "tokens", "CPU s", "Mtokens/s", "MB/s",
		       "vs peer");
		print_row(ours, n, have_peer ? &theirs : NULL);
		if (have_peer) {
			print_row(&theirs, n, NULL);
			printf("\nsame ids as %s: %s\n", theirs.impl, same ? "yes" : "NO (checksums differ)");
		} else {
			printf("\npeer: %s\n", why);
		}
	}
}

int bench_tokenize(int argc, char **argv)
{
	const char *tokenizer = NULL, *pattern = NULL, *file = NULL, *peer = "bench/tokenize_peer.py";
	unsigned mb = 4;
	int json = 0;
	static const struct option opts[] = {
		{"tokenizer", required_argument, 0, 't'}, {"pattern", required_argument, 0, 'p'},
		{"file", required_argument, 0, 'f'}, {"mb", required_argument, 0, 'm'},
		{"peer", required_argument, 0, 'P'}, {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0}};
	for (int c; (c = getopt_long(argc, argv, "t:p:f:m:P:jh", opts, NULL)) != -1;) {
		switch (c) {
		case 't': tokenizer = optarg; break;
		case 'p': pattern = optarg; break;
		case 'f': file = optarg; break;
		case 'm': mb = (unsigned)atoi(optarg); break;
		case 'P': peer = optarg; break;
		case 'j': json = 1; break;
		case 'h': return usage(stdout), 0;
		default: return usage(stderr), 2;
		}
	}
	if (!tokenizer || optind < argc || mb == 0 || mb > 1024) {
		fprintf(stderr, "shmrt bench tokenize: %s\n\n",
			!tokenizer ? "--tokenizer FILE is required" : optind < argc ? "unexpected argument"
										: "--mb must be 1..1024");
		return usage(stderr), 2;
	}
	struct shmrt_tokenizer *tok;
	if (shmrt_tokenizer_load(tokenizer, pattern, &tok) < 0) {
		fprintf(stderr, "shmrt bench tokenize: %s\n", shmrt_last_error());
		return 1;
	}
	size_t n;
	char *text = file ? read_text(file, &n) : generate(mb, &n);
	char text_path[] = "/tmp/shmrt-bench-tokenize-XXXXXX";
	int fd = file ? -1 : mkstemp(text_path);
	if (!text || (!file && (fd < 0 || write(fd, text, n) != (ssize_t)n))) {
		fprintf(stderr, "shmrt bench tokenize: %s: %s\n", file ? file : text_path, strerror(errno));
		free(text);
		shmrt_tokenizer_free(tok);
		return 1;
	}
	if (fd >= 0)
		close(fd);

	struct result ours = {.seconds = 1e300};
	snprintf(ours.impl, sizeof(ours.impl), "shmrt %s", shmrt_version());
	int32_t *ids = NULL;
	int rc = shmrt_tokenizer_encode(tok, text, n, 0, NULL, 0);
	if (rc >= 0 && !(ids = malloc(((size_t)rc + 1) * sizeof(*ids))))
		rc = -ENOMEM;
	for (int i = 0; i < REPEAT && rc >= 0; i++) {
		double t = now();
		rc = shmrt_tokenizer_encode(tok, text, n, 0, ids, (size_t)rc);
		t = now() - t;
		ours.seconds = t < ours.seconds ? t : ours.seconds;
	}
	int status = rc < 0;
	if (status) {
		fprintf(stderr, "shmrt bench tokenize: encode: %s\n", shmrt_last_error());
	} else {
		ours.tokens = rc;
		checksum(ids, (size_t)rc, ours.checksum);
		report(json, peer, tokenizer, pattern, file, file ? file : text_path, n, &ours);
	}
	free(ids);
	free(text);
	shmrt_tokenizer_free(tok);
	if (!file)
		unlink(text_path);
	return status;
}

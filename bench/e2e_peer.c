/* shmrt bench e2e's peer: llama.cpp through bench/llama_cpp_peer.py
 * (llama-cpp-python), one python3 process per turn (every batch of the
 * round in it, the model loaded once). Its stderr goes to a temporary file
 * whose last line explains a failure. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_src_dir.h" /* SHMRT_BENCH_SRC_DIR, from bench/meson.build */
#include "e2e.h"

/* Runs cmd with stderr to a temporary file; its stdout into out. On a
 * failure, note gets the last line of its stderr. */
static int run_cmd(const char *cmd, char *out, size_t cap, char *note, size_t note_cap)
{
	char err_path[] = "/tmp/shmrt-bench-e2e-stderr-XXXXXX", full[16384];
	int efd = mkstemp(err_path);
	if (efd < 0)
		return -errno;
	close(efd);
	snprintf(full, sizeof(full), "%s 2>'%s'", cmd, err_path);
	FILE *p = popen(full, "r");
	size_t len = 0;
	if (p) {
		for (size_t n; len + 1 < cap && (n = fread(out + len, 1, cap - len - 1, p)) > 0;)
			len += n;
	}
	out[len] = 0;
	int status = p ? pclose(p) : -1;
	int rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
	if (rc < 0) {
		char line[512] = "", last[512] = "(no message)";
		FILE *e = fopen(err_path, "r");
		while (e && fgets(line, sizeof(line), e))
			if (line[0] != '\n')
				snprintf(last, sizeof(last), "%s", line);
		if (e)
			fclose(e);
		last[strcspn(last, "\n")] = 0;
		snprintf(note, note_cap, "llama.cpp: the peer failed: %s", last);
	}
	unlink(err_path);
	return rc;
}

int e2e_peer_probe(struct e2e_peer *p, char *note, size_t cap)
{
	const char *env = getenv("SHMRT_LLAMA_CPP_PEER");
	snprintf(p->script, sizeof(p->script), "%s", env && *env ? env : SHMRT_BENCH_SRC_DIR "/llama_cpp_peer.py");
	if (access(p->script, R_OK) < 0) {
		snprintf(note, cap, "llama.cpp: the driver %s is missing (set SHMRT_LLAMA_CPP_PEER)", p->script);
		return -ENOENT;
	}
	char cmd[8192], out[256], why[512];
	snprintf(cmd, sizeof(cmd), "python3 '%s' --probe", p->script);
	if (run_cmd(cmd, out, sizeof(out), why, sizeof(why)) < 0) {
		snprintf(note, cap, "llama.cpp: not installed (python3 cannot import llama_cpp and gguf: "
				    "pip install llama-cpp-python gguf)");
		return -ENOENT;
	}
	note[0] = 0;
	return 0;
}

int e2e_peer_prompts(struct e2e_peer *p, const int32_t *prompts, int n_seqs, int prompt, const int32_t *prefill,
		     int n_prefill, char *note, size_t cap)
{
	snprintf(p->prompts, sizeof(p->prompts), "%s/shmrt-bench-e2e-prompts-XXXXXX", p->tmpdir);
	int fd = mkstemp(p->prompts);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		snprintf(note, cap, "llama.cpp: %s: %s", p->prompts, strerror(errno));
		if (fd >= 0)
			close(fd), unlink(p->prompts);
		p->prompts[0] = 0;
		return -EIO;
	}
	for (int s = 0; s < n_seqs; s++)
		for (int i = 0; i < prompt; i++)
			fprintf(f, "%d%s", prompts[(size_t)s * (size_t)prompt + (size_t)i],
				i + 1 < prompt ? "," : "\n");
	for (int i = 0; i < n_prefill; i++)
		fprintf(f, "%d%s", prefill[i], i + 1 < n_prefill ? "," : "\n");
	if (fclose(f)) {
		snprintf(note, cap, "llama.cpp: %s: %s", p->prompts, strerror(errno));
		unlink(p->prompts);
		p->prompts[0] = 0;
		return -EIO;
	}
	return 0;
}

void e2e_peer_cleanup(struct e2e_peer *p)
{
	if (p->own_gguf && p->gguf[0])
		unlink(p->gguf);
	if (p->prompts[0])
		unlink(p->prompts);
	p->gguf[0] = p->prompts[0] = 0;
	p->own_gguf = false;
}

/* The driver's JSON line: a result for each of batches[], `steps` tokens
 * each. */
static int parse_result(const char *out, const int *batches, int n_batches, int steps, struct e2e_peer_result *r)
{
	const char *line = strstr(out, "{\"version\""), *next;
	while (line && (next = strstr(line + 1, "{\"version\""))) /* the last one */
		line = next;
	json_t *doc = line ? json_loads(line, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	json_t *results = json_object_get(doc, "results");
	int rc = json_is_array(results) && (int)json_array_size(results) == n_batches ? 0 : -EBADMSG;
	r->have_tokens = false;
	for (int b = 0; rc == 0 && b < n_batches; b++) {
		json_t *res = json_array_get(results, (size_t)b);
		json_t *t = json_object_get(res, "tokens");
		json_t *s = json_object_get(res, "decode_seconds");
		if (json_integer_value(json_object_get(res, "batch")) != batches[b] || !json_is_array(t) ||
		    (int)json_array_size(t) != steps || !json_is_number(s)) {
			rc = -EBADMSG;
			break;
		}
		r->ns[b] = json_number_value(s) * 1e9;
		for (int i = 0; batches[b] == 1 && i < steps && i < E2E_MAX_STEPS; i++)
			r->tokens[i] = (int32_t)json_integer_value(json_array_get(t, (size_t)i));
		r->have_tokens |= batches[b] == 1;
	}
	json_t *pre = json_object_get(doc, "prefill_seconds");
	r->prefill_ns = json_is_number(pre) ? json_number_value(pre) * 1e9 : 0;
	if (rc == 0) {
		const char *version = json_string_value(json_object_get(doc, "version"));
		snprintf(r->version, sizeof(r->version), "%s", version ?: "?");
		snprintf(r->dtype, sizeof(r->dtype), "%s", json_string_value(json_object_get(doc, "dtype")) ?: "?");
	}
	json_decref(doc);
	return rc;
}

int e2e_peer_decode(struct e2e_peer *p, const char *env, const int *batches, int n_batches, int steps,
		    int prefill, struct e2e_peer_result *out, char *note, size_t note_cap)
{
	if (!p->gguf[0]) { /* an empty file: the driver converts into it */
		snprintf(p->gguf, sizeof(p->gguf), "%s/shmrt-bench-e2e-XXXXXX.gguf", p->tmpdir);
		int fd = mkstemps(p->gguf, 5);
		if (fd < 0) {
			int err = errno;
			snprintf(note, note_cap, "llama.cpp: %s: %s", p->gguf, strerror(err));
			p->gguf[0] = 0;
			return -err;
		}
		close(fd);
		p->own_gguf = true;
	}
	char batch_list[16 * E2E_MAX_BATCHES] = "", *cmd = NULL, out_text[65536];
	for (int b = 0, at = 0; b < n_batches; b++)
		at += snprintf(batch_list + at, sizeof(batch_list) - (size_t)at, "%s%d", b ? "," : "", batches[b]);
	if (asprintf(&cmd,
		     "%s python3 '%s' --model '%s' --gguf '%s' --threads %d --steps %d --batch %s --prompts '%s' --prefill %d%s%s",
		     env, p->script, p->model, p->gguf, p->threads, steps, batch_list, p->prompts, prefill,
		     p->quantize ? " --quantize " : "", p->quantize ? p->quantize : "") < 0)
		return -ENOMEM;
	int rc = run_cmd(cmd, out_text, sizeof(out_text), note, note_cap);
	free(cmd);
	if (rc == 0 && (rc = parse_result(out_text, batches, n_batches, steps, out)) < 0)
		snprintf(note, note_cap, "llama.cpp: the peer's output is not what was expected: %.200s", out_text);
	return rc;
}

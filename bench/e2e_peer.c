/* shmrt bench e2e's peer: llama.cpp through bench/llama_cpp_peer.py
 * (llama-cpp-python), one python3 process per turn. Its stderr goes to a
 * temporary file whose last line explains a failure. */
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

static int parse_result(const char *out, int steps, double *ns, int32_t *tokens, char *version, size_t version_cap)
{
	const char *line = strrchr(out, '{');
	json_t *doc = line ? json_loads(line, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	json_t *t = json_object_get(doc, "tokens");
	json_t *s = json_object_get(doc, "decode_seconds");
	int rc = json_is_array(t) && (int)json_array_size(t) == steps && json_is_number(s) ? 0 : -EBADMSG;
	for (int i = 0; rc == 0 && i < steps && i < E2E_MAX_STEPS; i++)
		tokens[i] = (int32_t)json_integer_value(json_array_get(t, (size_t)i));
	if (rc == 0) {
		*ns = json_number_value(s) * 1e9;
		snprintf(version, version_cap, "%s", json_string_value(json_object_get(doc, "version")) ?: "?");
	}
	json_decref(doc);
	return rc;
}

int e2e_peer_decode(struct e2e_peer *p, const char *env, const int32_t *prompt, int n_prompt, int steps, double *ns,
		    int32_t *tokens, char *version, size_t version_cap, char *note, size_t note_cap)
{
	if (!p->gguf[0]) { /* an empty file: the driver converts into it */
		snprintf(p->gguf, sizeof(p->gguf), "%s/shmrt-bench-e2e-XXXXXX.gguf", p->tmpdir);
		int fd = mkstemps(p->gguf, 5);
		if (fd < 0) {
			snprintf(note, note_cap, "llama.cpp: %s: %s", p->gguf, strerror(errno));
			p->gguf[0] = 0;
			return -errno;
		}
		close(fd);
	}
	size_t cap = 256 + 12 * (size_t)n_prompt + strlen(env) + strlen(p->script) + strlen(p->model) + strlen(p->gguf);
	char *cmd = malloc(cap), out[65536];
	if (!cmd)
		return -ENOMEM;
	int at = snprintf(cmd, cap, "%s python3 '%s' --model '%s' --gguf '%s' --threads %d --steps %d --prompt ", env,
			  p->script, p->model, p->gguf, p->threads, steps);
	for (int i = 0; i < n_prompt && at > 0 && (size_t)at < cap; i++)
		at += snprintf(cmd + at, cap - (size_t)at, "%s%d", i ? "," : "", prompt[i]);
	int rc = run_cmd(cmd, out, sizeof(out), note, note_cap);
	free(cmd);
	if (rc == 0 && (rc = parse_result(out, steps, ns, tokens, version, version_cap)) < 0)
		snprintf(note, note_cap, "llama.cpp: the peer's output is not what was expected: %.200s", out);
	return rc;
}

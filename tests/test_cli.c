/* The shmrt program's contract (docs/ARCHITECTURE.md, "The shmrt program"): --version,
 * --help, `shmrt COMMAND --help` for every command it lists (and `shmrt
 * bench NAME --help` for every benchmark), exit 2 for what it does not know,
 * and `shmrt info` (text and --json) telling the build features, the GPUs
 * and the shared-memory directory with its size and free space, checked
 * against the library and statvfs. argv[1]: the shmrt program. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "command_output.h"
#include "json_document.h"
#include "array_size.h"

static const char *shmrt;

struct run {
	char *out; /* all of stdout */
	int status; /* exit status, or -1 when it did not exit */
};

/* Runs `shmrt ARGS` (args already quoted for the shell), stderr discarded. */
static struct run run(const char *args)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "'%s' %s 2>/dev/null", shmrt, args);
	int status;
	char *out = command_output(cmd, &status);
	return (struct run){out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

/* The names listed, one per line as "  NAME  summary", after `header`. */
static int listed(const char *text, const char *header, char names[][32], int max)
{
	const char *p = strstr(text, header);
	CHECK(p, "no '%s' in:\n%s", header, text);
	int n = 0;
	for (p = strchr(p, '\n'); p && p[1] == ' ' && p[2] == ' ' && n < max; p = strchr(p + 1, '\n'))
		CHECK(sscanf(p + 1, " %31s", names[n++]) == 1, "a bad line after '%s'", header);
	CHECK(n > 0, "nothing listed after '%s':\n%s", header, text);
	return n;
}

/* `shmrt WORDS --help`: exit 0 and a usage line for WORDS on stdout. */
static void check_help(const char *words)
{
	char args[256], want[256];
	snprintf(args, sizeof(args), "%s --help", words);
	struct run r = run(args);
	snprintf(want, sizeof(want), "usage: shmrt %s", words);
	CHECK(r.status == 0, "shmrt %s: exit status %d", args, r.status);
	CHECK(!strncmp(r.out, want, strlen(want)), "shmrt %s does not start with '%s':\n%s", args, want, r.out);
	free(r.out);
}

static void check_commands(void)
{
	struct run r = run("--version");
	char want[64];
	snprintf(want, sizeof(want), "shmrt %s\n", shmrt_version());
	CHECK(r.status == 0 && !strcmp(r.out, want), "--version: status %d, '%s'", r.status, r.out);
	free(r.out);

	r = run("--help");
	CHECK(r.status == 0 && !strncmp(r.out, "usage: shmrt", 12), "--help: status %d, '%s'", r.status, r.out);
	char cmds[64][32];
	int n = listed(r.out, "commands:", cmds, 64);
	free(r.out);
	for (int i = 0; i < n; i++)
		check_help(cmds[i]);

	r = run("bench --help");
	char benches[64][32];
	int nb = listed(r.out, "benchmarks:", benches, 64);
	free(r.out);
	for (int i = 0; i < nb; i++) {
		char words[64];
		snprintf(words, sizeof(words), "bench %.31s", benches[i]);
		check_help(words);
	}

	const char *bad[] = {"no-such-command", "", "info --no-such-flag", "bench no-such-bench"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		r = run(bad[i]);
		CHECK(r.status == 2, "shmrt %s: exit status %d, not 2", bad[i], r.status);
		free(r.out);
	}
	printf("%d commands and %d benchmarks answer --help\n", n, nb);
}

static void check_feature(const json_t *features, const char *word)
{
	json_t *v = json_object_get(features, word);
	CHECK(json_is_boolean(v), "features.%s is not a boolean", word);
	CHECK(json_is_true(v) == (strstr(shmrt_build_features(), word) != NULL), "features.%s disagrees with '%s'",
	      word, shmrt_build_features());
}

/* `shmrt info --json` with SHMRT_SHM_DIR = dir (a directory, or not). */
static void check_info_json(const char *dir, bool exists)
{
	setenv("SHMRT_SHM_DIR", dir, 1);
	struct run r = run("info --json");
	CHECK(r.status == 0, "info --json: exit status %d", r.status);
	json_t *doc = json_document(r.out);
	const char *version = json_string_value(json_object_get(doc, "version"));
	CHECK(version && !strcmp(version, shmrt_version()), "version '%s'", version);

	json_t *f = json_object_get(doc, "features");
	CHECK(json_is_object(f), "no features");
	const char *words[] = {"cuda", "nccl", "liburing", "hwloc"};
	for (int i = 0; i < 4; i++)
		check_feature(f, words[i]);
	const char *archs = json_string_value(json_object_get(f, "cuda_archs"));
	CHECK(archs && !strcmp(archs, shmrt_cuda_archs()), "cuda_archs '%s', the library says '%s'", archs,
	      shmrt_cuda_archs());
	CHECK(json_is_true(json_object_get(f, "cuda")) == (*archs != 0), "CUDA without archs, or archs without CUDA");

	json_t *devs = json_object_get(doc, "devices");
	CHECK(json_is_array(devs) && (int)json_array_size(devs) == shmrt_device_count(), "devices: %d expected",
	      shmrt_device_count());

	json_t *shm = json_object_get(doc, "shm");
	const char *d = json_string_value(json_object_get(shm, "dir"));
	CHECK(d && !strcmp(d, dir), "shm.dir '%s', not '%s'", d, dir);
	json_t *total = json_object_get(shm, "total_bytes"), *free_b = json_object_get(shm, "free_bytes");
	if (!exists) {
		CHECK(json_is_null(total) && json_is_null(free_b), "sizes of a missing directory are not null");
	} else {
		struct statvfs st;
		CHECK(statvfs(dir, &st) == 0, "statvfs %s", dir);
		json_int_t t = json_integer_value(total), a = json_integer_value(free_b);
		CHECK(json_is_integer(total) && t == (json_int_t)(st.f_blocks * st.f_frsize), "total_bytes %lld",
		      (long long)t);
		CHECK(json_is_integer(free_b) && a > 0 && a <= t, "free_bytes %lld of %lld", (long long)a, (long long)t);
	}
	json_decref(doc);
	free(r.out);
}

static void check_info_text(void)
{
	setenv("SHMRT_SHM_DIR", "/dev/shm", 1);
	struct run r = run("info");
	CHECK(r.status == 0, "info: exit status %d", r.status);
	const char *want[] = {"features:", "  cuda ", "  nccl ", "  liburing ", "  hwloc ", "gpus:", "shm dir:    /dev/shm",
			      "  size ", " MiB, free ", " MiB\n"};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		CHECK(strstr(r.out, want[i]), "info lacks '%s':\n%s", want[i], r.out);
	if (*shmrt_cuda_archs()) {
		char archs[128];
		snprintf(archs, sizeof(archs), "(sm %s)", shmrt_cuda_archs());
		CHECK(strstr(r.out, archs), "info lacks '%s':\n%s", archs, r.out);
	}
	printf("%s", r.out);
	free(r.out);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: test_cli SHMRT");
	shmrt = argv[1];
	check_commands();
	check_info_json("/dev/shm", true);
	/* A name that needs escaping, and no such directory. */
	check_info_json("/nonexistent/a \"quoted\"\\dir", false);
	check_info_text();
	return 0;
}

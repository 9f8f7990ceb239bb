/* `shmrt bench e2e --quick --json --csv FILE` (the tiny preset, batches 1
 * and 8) prints one JSON document: a shmrt row per batch with positive,
 * finite tokens/s, bandwidth and compute ceilings and fraction of the
 * lower, the weight bytes of a step, the measured bandwidth and FMA peak;
 * and either two llama.cpp rows at batch 1 (as it comes, and
 * with passive OpenMP waits) with the target and the greedy-token
 * comparison, or a note saying why there are none (not installed). The CSV has the same rows; the made checkpoint is gone
 * afterwards. Not a speed test. argv[1]: the shmrt program. */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "command_output.h"
#include "file_counts.h"
#include "json_document.h"

static double positive(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	CHECK(json_is_number(v), "\"%s\" is not a number", key);
	double x = json_number_value(v);
	CHECK(isfinite(x) && x > 0, "\"%s\" = %g", key, x);
	return x;
}

/* The llama.cpp row, or the note that explains its absence. */
static void check_peer(const json_t *doc, const json_t *peer_row)
{
	json_t *notes = json_object_get(doc, "notes");
	if (!peer_row) {
		const char *note = json_string_value(json_array_get(notes, 0));
		CHECK(note && !strncmp(note, "llama.cpp: not installed", 24),
		      "no llama.cpp row and no note saying it is not installed: %s", note ? note : "(none)");
		CHECK(!json_object_get(doc, "target"), "a target without a llama.cpp row");
		return;
	}
	CHECK(json_array_size(notes) == 0, "a llama.cpp row and a note");
	json_t *target = json_object_get(doc, "target");
	CHECK(json_is_boolean(json_object_get(target, "met")), "no target.met");
	positive(target, "ratio");
	json_t *l = json_object_get(doc, "llama_cpp");
	json_int_t same = json_integer_value(json_object_get(l, "greedy_same"));
	json_int_t compared = json_integer_value(json_object_get(l, "greedy_compared"));
	CHECK(compared == 4 && same >= 0 && same <= compared, "greedy tokens: %lld of %lld", (long long)same,
	      (long long)compared);
	printf("llama.cpp %s: ratio %.2f, greedy tokens %lld of %lld the same\n",
	       json_string_value(json_object_get(l, "version")), json_number_value(json_object_get(target, "ratio")),
	       (long long)same, (long long)compared);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: %s SHMRT_PROGRAM", argv[0]);
	char dir[] = "/var/tmp/shmrt-test-bench-e2e-XXXXXX", cmd[8192], csv[4096];
	CHECK(mkdtemp(dir), "mkdtemp");
	snprintf(csv, sizeof(csv), "%s.csv", dir);
	snprintf(cmd, sizeof(cmd), "'%s' bench e2e --quick --json --tmpdir '%s' --csv '%s'", argv[1], dir, csv);
	int status;
	char *out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %#x", cmd, status);
	json_t *doc = json_document(out);
	CHECK(!strcmp(json_string_value(json_object_get(doc, "preset")) ?: "", "tiny"), "not the tiny preset");
	positive(doc, "weight_bytes_per_step");
	positive(doc, "kv_bytes_per_token");
	positive(doc, "mem_read_gb_per_s");
	positive(doc, "fma_peak_gflop_per_s");
	positive(doc, "matmul_weights_per_token");

	int seen[2] = {0};
	json_t *peer_row = NULL, *row;
	int n_peer = 0;
	size_t i;
	json_array_foreach(json_object_get(doc, "results"), i, row) {
		const char *engine = json_string_value(json_object_get(row, "engine"));
		json_int_t batch = json_integer_value(json_object_get(row, "batch"));
		CHECK(engine, "row %zu: no engine", i);
		positive(row, "tokens_per_s");
		positive(row, "ms_per_step");
		positive(row, "ceiling_tokens_per_s");
		positive(row, "compute_ceiling_tokens_per_s");
		positive(row, "fraction_of_min_ceiling");
		if (!strncmp(engine, "llama.cpp", 9)) {
			CHECK(batch == 1, "%s row %zu: batch %lld", engine, i, (long long)batch);
			n_peer++;
			peer_row = row;
			continue;
		}
		CHECK(!strcmp(engine, "shmrt") && (batch == 1 || batch == 8), "row %zu: %s at batch %lld", i, engine,
		      (long long)batch);
		seen[batch == 8]++;
	}
	CHECK(seen[0] == 1 && seen[1] == 1, "shmrt rows: %d at batch 1, %d at batch 8", seen[0], seen[1]);
	CHECK(n_peer == 0 || n_peer == 2, "%d llama.cpp rows (as it comes and OMP passive, or none)", n_peer);
	check_peer(doc, peer_row);
	CHECK(count_lines(csv) == (int)i + 1, "%s: %d lines for %zu rows", csv, count_lines(csv), i);
	CHECK(count_entries(dir) == 0, "%s: the made checkpoint was left behind", dir);
	json_decref(doc);
	free(out);
	unlink(csv);
	rmdir(dir);

	snprintf(cmd, sizeof(cmd), "'%s' bench e2e --quick --batch 0 2>&1", argv[1]);
	out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2, "--batch 0: exit status %#x", status);
	free(out);
	return 0;
}

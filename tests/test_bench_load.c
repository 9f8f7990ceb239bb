/* `shmrt bench load --quick --json --csv FILE` prints one JSON document:
 * a cold (or, where the cache cannot be dropped, "cached") and a warm row
 * for read, io_uring and pread (io_uring's absent only with a note
 * saying why), figures positive and finite, read's ratio 1, the bytes of
 * each method those of the checkpoint; the CSV has the same rows; the
 * synthetic checkpoint is gone afterwards. A missing --model is an error.
 * Not a speed test. argv[1]: the shmrt program. */
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

static double figure(const json_t *row, const char *key)
{
	json_t *v = json_object_get(row, key);
	CHECK(json_is_number(v), "%s %s: \"%s\" is not a number", json_string_value(json_object_get(row, "method")),
	      json_string_value(json_object_get(row, "cache")), key);
	double x = json_number_value(v);
	CHECK(isfinite(x) && x > 0, "\"%s\" = %g", key, x);
	return x;
}

static const char *const methods[] = {"read", "io_uring", "pread"};

/* The rows' shape; returns how many there are. */
static int check_rows(const json_t *doc, bool uring)
{
	const char *cold = json_is_true(json_object_get(json_object_get(doc, "cold"), "cold")) ? "cold" : "cached";
	double file_bytes = (double)json_integer_value(json_object_get(doc, "file_bytes"));
	double tensor_bytes = (double)json_integer_value(json_object_get(doc, "tensor_bytes"));
	CHECK(tensor_bytes > 0 && tensor_bytes < file_bytes && file_bytes - tensor_bytes < 1 << 20,
	      "tensor_bytes %.0f, file_bytes %.0f", tensor_bytes, file_bytes);
	int seen[3][2] = {{0}};
	size_t i;
	json_t *row, *results = json_object_get(doc, "results");
	CHECK(json_is_array(results), "no \"results\" array");
	json_array_foreach(results, i, row) {
		const char *m = json_string_value(json_object_get(row, "method"));
		const char *c = json_string_value(json_object_get(row, "cache"));
		CHECK(m && c, "row %zu: no method or cache", i);
		int mi = 0;
		while (mi < 3 && strcmp(methods[mi], m))
			mi++;
		CHECK(mi < 3 && (!strcmp(c, cold) || !strcmp(c, "warm")), "row %zu: unexpected %s %s", i, m, c);
		seen[mi][!strcmp(c, "warm")]++;
		figure(row, "gb_per_s");
		figure(row, "seconds");
		double ratio = figure(row, "ratio_to_read");
		if (mi == 0)
			CHECK(fabs(ratio - 1) < 1e-9, "read's ratio_to_read = %g", ratio);
		CHECK(figure(row, "bytes") == (mi == 0 ? file_bytes : tensor_bytes), "%s %s: bytes %.0f", m, c,
		      figure(row, "bytes"));
		json_t *d = json_object_get(row, "direct_share");
		CHECK(mi == 0 ? json_is_null(d) : json_is_number(d) && json_number_value(d) >= 0 && json_number_value(d) <= 1,
		      "%s %s: direct_share", m, c);
	}
	for (int m = 0; m < 3; m++)
		for (int c = 0; c < 2; c++)
			CHECK(seen[m][c] == (m != 1 || uring), "%s %s: %d rows", methods[m], c ? "warm" : cold,
			      seen[m][c]);
	return (int)i;
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: %s SHMRT_PROGRAM", argv[0]);
	char dir[] = "/var/tmp/shmrt-test-bench-load-XXXXXX", cmd[8192], csv[4096];
	CHECK(mkdtemp(dir), "mkdtemp");
	snprintf(csv, sizeof(csv), "%s.csv", dir);
	snprintf(cmd, sizeof(cmd), "'%s' bench load --quick --json --tmpdir '%s' --csv '%s'", argv[1], dir, csv);
	int status;
	char *out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %#x", cmd, status);

	json_t *doc = json_document(out);
	CHECK(json_is_true(json_object_get(doc, "synthetic")) && json_is_true(json_object_get(doc, "quick")),
	      "not a synthetic --quick run");
	bool uring = true;
	size_t i;
	json_t *note;
	json_array_foreach(json_object_get(doc, "notes"), i, note)
		uring &= !strstr(json_string_value(note), "no io_uring rows");
	int rows = check_rows(doc, uring);
	json_t *target = json_object_get(doc, "target");
	CHECK(json_is_boolean(json_object_get(target, "met")), "no target.met");
	CHECK(count_lines(csv) == rows + 1, "%s: %d lines for %d rows", csv, count_lines(csv), rows);
	CHECK(count_entries(dir) == 0, "%s: the synthetic checkpoint was left behind", dir);
	json_decref(doc);
	free(out);
	unlink(csv);
	rmdir(dir);

	snprintf(cmd, sizeof(cmd), "'%s' bench load --quick --model /nonexistent-shmrt-model 2>&1", argv[1]);
	out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0, "a missing --model: exit status %#x", status);
	CHECK(strstr(out, "/nonexistent-shmrt-model"), "a missing --model: the message does not name it:\n%s", out);
	free(out);
	return 0;
}

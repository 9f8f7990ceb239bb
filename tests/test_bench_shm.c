/* `shmrt bench shm --preset tiny --budgets 1,4,16 --json --csv F --plot P`
 * (a tiny batch): one JSON document, a row per budget; 1 MiB is below the
 * arena and refused with the sizing message, 4 and 16 start, with
 * positive, finite tokens/s and all-reduce GB/s, an arena within the
 * budget that is what the tmpfs says it uses (statvfs, measured), touched
 * bytes between 0 and it, a chunk that grows with the budget, ratios at
 * most 1 with a best of 1 per column; the CSV has the same rows; the plot
 * is a PNG where gnuplot or matplotlib is installed. Not a speed test.
 * Skipped (77) where the benchmark cannot mount (not root).
 * argv[1]: the shmrt program. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "command_output.h"
#include "json_document.h"

static double positive(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	CHECK(json_is_number(v), "\"%s\" is not a number", key);
	double x = json_number_value(v);
	CHECK(isfinite(x) && x > 0, "\"%s\" = %g", key, x);
	return x;
}

static json_int_t integer(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	CHECK(json_is_integer(v), "\"%s\" is not an integer", key);
	return json_integer_value(v);
}

static void check_refused(const json_t *row)
{
	const char *msg = json_string_value(json_object_get(row, "refusal"));
	CHECK(!json_is_true(json_object_get(row, "started")) && msg && strstr(msg, "needs") &&
		      strstr(msg, "sharedMemorySizeMb"),
	      "1 MiB: started, or no sizing message: %s", msg ? msg : "(none)");
}

static void check_started(const json_t *row, json_int_t budget)
{
	CHECK(json_is_true(json_object_get(row, "started")), "%lld MiB did not start: %s", (long long)budget,
	      json_string_value(json_object_get(row, "refusal")));
	positive(row, "tokens_per_s_batch1");
	positive(row, "tokens_per_s_batch_large");
	positive(row, "allreduce_gbps");
	json_int_t arena = integer(row, "arena_bytes"), used = integer(row, "shm_used_bytes");
	json_int_t touched = integer(row, "touched_bytes");
	CHECK(arena <= budget << 20 && used == arena, "%lld MiB: arena %lld, the tmpfs used %lld", (long long)budget,
	      (long long)arena, (long long)used);
	CHECK(touched > 0 && touched < arena, "%lld MiB: touched %lld of %lld", (long long)budget, (long long)touched,
	      (long long)arena);
	CHECK(json_array_size(json_object_get(row, "allreduce")) == 3, "three all-reduce sizes");
}

static void check_ratios(const json_t *rows)
{
	static const char *cols[] = {"ratio_batch1", "ratio_batch_large", "ratio_allreduce"};
	for (int c = 0; c < 3; c++) {
		double top = 0;
		for (size_t i = 1; i < json_array_size(rows); i++) {
			double r = json_number_value(json_object_get(json_array_get(rows, i), cols[c]));
			CHECK(r > 0 && r <= 1, "%s %g", cols[c], r);
			top = r > top ? r : top;
		}
		CHECK(top == 1, "%s: the best is not 1", cols[c]);
	}
}

static void check_csv(const char *csv)
{
	FILE *f = fopen(csv, "r");
	CHECK(f, "no CSV %s", csv);
	static const int budgets[] = {1, 4, 16};
	char line[1024];
	int n = 0;
	CHECK(fgets(line, sizeof(line), f) && !strncmp(line, "budget_mib,started,", 19), "CSV header");
	for (; fgets(line, sizeof(line), f); n++)
		CHECK(n < 3 && atoi(line) == budgets[n], "CSV row %d: %s", n, line);
	fclose(f);
	CHECK(n == 3, "%d CSV rows", n);
}

static void check_plot(const char *png)
{
	int tools = system("gnuplot --version >/dev/null 2>&1") == 0 ||
		    system("python3 -c 'import matplotlib' >/dev/null 2>&1") == 0;
	FILE *f = fopen(png, "rb");
	unsigned char magic[8] = {0};
	if (f) {
		CHECK(fread(magic, 1, 8, f) == 8, "short PNG");
		fclose(f);
	}
	CHECK(tools == (f != NULL), "plot: tools %d, file %d", tools, f != NULL);
	CHECK(!f || !memcmp(magic, "\x89PNG\r\n\x1a\n", 8), "not a PNG");
	printf("plot: %s\n", f ? "PNG written" : "no plotting tool installed, none (as the message says)");
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: %s SHMRT_PROGRAM", argv[0]);
	char base[] = "/tmp/test-bench-shm-XXXXXX", csv[64], png[64], cmd[4096];
	CHECK(mkdtemp(base), "mkdtemp");
	snprintf(csv, sizeof(csv), "%s/rows.csv", base);
	snprintf(png, sizeof(png), "%s/curve.png", base);
	snprintf(cmd, sizeof(cmd),
		 "'%s' bench shm --preset tiny --budgets 1,4,16 --batch 4 --steps 4 --json --csv %s --plot %s",
		 argv[1], csv, png);
	int status;
	char *out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %#x", cmd, status);
	json_t *doc = json_document(out);
	if (json_is_true(json_object_get(doc, "skipped"))) {
		rmdir(base);
		SKIP("bench shm could not mount a tmpfs (not root)");
	}
	json_t *rows = json_object_get(doc, "rows");
	CHECK(json_array_size(rows) == 3, "%zu rows", json_array_size(rows));
	check_refused(json_array_get(rows, 0));
	check_started(json_array_get(rows, 1), 4);
	check_started(json_array_get(rows, 2), 16);
	json_int_t min = integer(doc, "min_mib");
	CHECK(min > 1 && min <= 4, "the minimum %lld: 1 MiB refused, 4 started", (long long)min);
	CHECK(integer(json_array_get(rows, 2), "xfer_chunk") > integer(json_array_get(rows, 1), "xfer_chunk"),
	      "the staging's chunk does not grow with the budget");
	check_ratios(rows);
	check_csv(csv);
	check_plot(png);
	printf("bench shm: minimum %lld MiB, chunks %lld and %lld\n", (long long)min,
	       (long long)integer(json_array_get(rows, 1), "xfer_chunk"),
	       (long long)integer(json_array_get(rows, 2), "xfer_chunk"));
	json_decref(doc);
	free(out);
	unlink(csv);
	unlink(png);
	rmdir(base);
	return 0;
}

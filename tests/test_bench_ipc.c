/* `shmrt bench ipc --quick --json` prints one JSON document with a row for
 * every transport at every record size, and its figures are sane: present
 * where they apply, positive and finite. Not a speed test: figures are not
 * compared with targets here. argv[1]: the shmrt program. */
#include <jansson.h>
#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "shmrt_config.h"
#include "check.h"
#include "command_output.h"
#include "json_document.h"
#include "array_size.h"

static const char *const transports[] = {
	"floor", "shmrt-spin", "shmrt-futex", "pipe", "uds",
#if SHMRT_HAVE_ZMQ
	"zmq",
#endif
	"memcpy",
};
#define N_TRANSPORTS (ARRAY_SIZE(transports))
static const json_int_t sizes[] = {64, 4096, 65536, 1048576};
#define N_SIZES (ARRAY_SIZE(sizes))

/* Runs the benchmark and returns all it wrote on stdout. */
static char *run_bench(const char *shmrt)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "'%s' bench ipc --quick --json", shmrt);
	int status;
	char *out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %#x", cmd, status);
	return out;
}

/* A number that is positive and finite, or null when null_expected. */
static void check_figure(const json_t *row, const char *key, bool null_expected)
{
	const char *t = json_string_value(json_object_get(row, "transport"));
	json_int_t bytes = json_integer_value(json_object_get(row, "bytes"));
	json_t *v = json_object_get(row, key);
	CHECK(v, "%s %lld: no \"%s\"", t, (long long)bytes, key);
	if (null_expected) {
		CHECK(json_is_null(v), "%s %lld: \"%s\" should be null", t, (long long)bytes, key);
		return;
	}
	CHECK(json_is_number(v), "%s %lld: \"%s\" is not a number", t, (long long)bytes, key);
	double x = json_number_value(v);
	CHECK(isfinite(x) && x > 0, "%s %lld: \"%s\" = %g", t, (long long)bytes, key, x);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: %s SHMRT_PROGRAM", argv[0]);
	cpu_set_t cpus;
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) < 2)
		SKIP("the benchmark needs two CPUs");

	char *out = run_bench(argv[1]);
	json_t *doc = json_document(out);
	json_t *results = json_object_get(doc, "results");
	CHECK(json_is_array(results), "no \"results\" array");

	int seen[N_TRANSPORTS][N_SIZES] = {{0}};
	size_t i;
	json_t *row;
	json_array_foreach(results, i, row) {
		const char *t = json_string_value(json_object_get(row, "transport"));
		json_t *b = json_object_get(row, "bytes");
		CHECK(t && json_is_integer(b), "row %zu: no transport or bytes", i);
		size_t ti = 0, si = 0;
		while (ti < N_TRANSPORTS && strcmp(transports[ti], t))
			ti++;
		while (si < N_SIZES && sizes[si] != json_integer_value(b))
			si++;
		CHECK(ti < N_TRANSPORTS && si < N_SIZES, "row %zu: unexpected %s, %lld bytes", i, t,
		      (long long)json_integer_value(b));
		seen[ti][si]++;
		bool is_memcpy = !strcmp(t, "memcpy"), is_floor = !strcmp(t, "floor");
		check_figure(row, "p50_ns", is_memcpy);
		check_figure(row, "p99_ns", is_memcpy);
		check_figure(row, "mb_per_s", is_floor);
		if (!is_memcpy)
			CHECK(json_number_value(json_object_get(row, "p99_ns")) >=
				      json_number_value(json_object_get(row, "p50_ns")),
			      "%s %lld: p99 below p50", t, (long long)json_integer_value(b));
	}
	for (size_t t = 0; t < N_TRANSPORTS; t++)
		for (size_t s = 0; s < N_SIZES; s++)
			CHECK(seen[t][s] == 1, "%s at %lld bytes: %d rows", transports[t], (long long)sizes[s],
			      seen[t][s]);

	json_t *idle = json_object_get(doc, "idle_consumer_cpu_percent");
	CHECK(json_is_number(idle), "no \"idle_consumer_cpu_percent\"");
	double x = json_number_value(idle);
	/* One single-threaded process: at most one core, give or take rounding. */
	CHECK(isfinite(x) && x >= 0 && x <= 101, "idle_consumer_cpu_percent = %g", x);
	json_t *dram = json_object_get(doc, "memcpy_dram_mb_per_s");
	CHECK(json_is_number(dram) && isfinite(json_number_value(dram)) && json_number_value(dram) > 0,
	      "no positive \"memcpy_dram_mb_per_s\"");

	json_decref(doc);
	free(out);
	return 0;
}

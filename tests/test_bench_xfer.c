/* `shmrt bench xfer --quick --json` prints one JSON document with a row of
 * shm and of shm-buf for every worker count and size, a memcpy figure for every size, and
 * figures that hold together: positive and finite, best call <= median,
 * busbw = algbw * 2(W-1)/W,
 * the ratios = busbw / memcpy (one thread, and each of W at once) at that
 * size, the oversubscribed flag where
 * W > CPUs, and the note "nccl: no GPU" on a machine without one. Not a
 * speed test: nothing is compared with the target here. argv[1]: the
 * shmrt program. */
#include <jansson.h>
#include <math.h>
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

static const json_int_t sizes[] = {4 << 10, 64 << 10, 1 << 20, 16 << 20};
#define N_SIZES (int)(ARRAY_SIZE(sizes))
static const int workers[] = {2, 4};
#define N_WORKERS (int)(ARRAY_SIZE(workers))
static const char *const host_transports[] = {"shm", "shm-buf"};
#define N_HOST 2

static char *run_bench(const char *shmrt)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "'%s' bench xfer --quick --json", shmrt);
	int status;
	char *out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %#x", cmd, status);
	return out;
}

static double number(const json_t *obj, const char *key, const char *where)
{
	json_t *v = json_object_get(obj, key);
	CHECK(json_is_number(v), "%s: \"%s\" is not a number", where, key);
	double x = json_number_value(v);
	CHECK(isfinite(x) && x > 0, "%s: \"%s\" = %g", where, key, x);
	return x;
}

static bool close_to(double a, double b)
{
	return fabs(a - b) <= 1e-6 * fabs(b);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: %s SHMRT_PROGRAM", argv[0]);
	char *out = run_bench(argv[1]);
	json_t *doc = json_document(out);

	double cpus = number(doc, "cpus", "document");
	double memcpy_gbps[N_SIZES] = {0}, memcpy_par_gbps[N_WORKERS][N_SIZES] = {{0}};
	json_t *mc = json_object_get(doc, "memcpy"), *row;
	CHECK(json_is_array(mc) && json_array_size(mc) == N_SIZES, "\"memcpy\": one entry per size");
	size_t i;
	json_array_foreach(mc, i, row) {
		CHECK(json_integer_value(json_object_get(row, "bytes")) == sizes[i], "memcpy[%zu]: bytes", i);
		memcpy_gbps[i] = number(row, "gbps", "memcpy");
		json_t *par = json_object_get(row, "concurrent_gbps");
		for (int w = 0; w < N_WORKERS; w++) {
			char key[16];
			snprintf(key, sizeof(key), "%d", workers[w]);
			memcpy_par_gbps[w][i] = number(par, key, "memcpy concurrent_gbps");
		}
	}

	int seen[N_HOST][N_WORKERS][N_SIZES] = {{{0}}};
	json_t *results = json_object_get(doc, "results");
	CHECK(json_is_array(results), "no \"results\" array");
	json_array_foreach(results, i, row) {
		char where[64];
		const char *t = json_string_value(json_object_get(row, "transport"));
		json_int_t w = json_integer_value(json_object_get(row, "workers"));
		json_int_t b = json_integer_value(json_object_get(row, "bytes"));
		snprintf(where, sizeof(where), "%s W=%lld %lld B", t ? t : "?", (long long)w, (long long)b);
		CHECK(t, "row %zu: no transport", i);
		double med = number(row, "time_us", where), best = number(row, "best_us", where);
		number(row, "mean_us", where);
		CHECK(best <= med, "%s: best call %g us, median %g us", where, best, med);
		CHECK(number(row, "iters", where) >= 1, "%s: no call timed", where);
		double alg = number(row, "algbw_gbps", where), bus = number(row, "busbw_gbps", where);
		CHECK(close_to(bus, alg * 2 * (double)(w - 1) / (double)w), "%s: busbw %g, algbw %g", where, bus, alg);
		int ti = 0, wi = 0, si = 0;
		while (ti < N_HOST && strcmp(host_transports[ti], t))
			ti++;
		if (ti == N_HOST)
			continue; /* GPU rows: checked for their shape above */
		while (wi < N_WORKERS && workers[wi] != w)
			wi++;
		while (si < N_SIZES && sizes[si] != b)
			si++;
		CHECK(wi < N_WORKERS && si < N_SIZES, "unexpected row %s", where);
		seen[ti][wi][si]++;
		double ratio = number(row, "busbw_over_memcpy", where);
		CHECK(close_to(ratio, bus / memcpy_gbps[si]), "%s: ratio %g, busbw / memcpy %g", where, ratio,
		      bus / memcpy_gbps[si]);
		double ratio_xw = number(row, "busbw_over_memcpy_xw", where);
		CHECK(close_to(ratio_xw, bus / memcpy_par_gbps[wi][si]), "%s: ratio to memcpy xW %g", where, ratio_xw);
		json_t *over = json_object_get(row, "oversubscribed");
		CHECK(json_is_boolean(over) && json_is_true(over) == (w > cpus), "%s: oversubscribed flag", where);
	}
	for (int t = 0; t < N_HOST; t++)
		for (int w = 0; w < N_WORKERS; w++)
			for (int s = 0; s < N_SIZES; s++)
				CHECK(seen[t][w][s] == 1, "%s W=%d at %lld bytes: %d rows", host_transports[t], workers[w],
				      (long long)sizes[s], seen[t][w][s]);

	/* The NCCL part says why it is missing. */
	json_t *notes = json_object_get(doc, "notes");
	CHECK(json_is_array(notes), "no \"notes\"");
	bool nccl_built = json_is_true(json_object_get(doc, "nccl_built"));
	CHECK(nccl_built == SHMRT_HAVE_NCCL, "nccl_built disagrees with the build");
	if (json_integer_value(json_object_get(doc, "gpus")) == 0) {
		const char *want = nccl_built ? "nccl: no GPU" : "nccl: not built (shmrt was built without NCCL)";
		bool found = false;
		json_t *n;
		json_array_foreach(notes, i, n) found |= !strcmp(json_string_value(n), want);
		CHECK(found, "no note \"%s\"", want);
	}
	json_decref(doc);
	free(out);
	return 0;
}

/* `shmrt bench kernels --quick --json` prints one JSON document of the
 * shape issue 3 asks for, and its figures are sane: the CPU limits and
 * every CPU kernel row present, rates positive and finite, fractions in a
 * plausible range. Not a speed test: nothing is compared with a target.
 * With --quick the buffers are small enough to sit in cache, so a
 * fraction of the memory limit may pass 1; only absurd values fail.
 * Where a GPU is present (gpu_copy_gb_per_s not null) its rows are
 * checked too. argv[1]: the shmrt program. */
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
#include "json_document.h"
#include "array_size.h"

static char *run_bench(const char *shmrt, const char *args)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "'%s' bench kernels %s", shmrt, args);
	int status;
	char *out = command_output(cmd, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %#x", cmd, status);
	return out;
}

static bool positive(const json_t *v)
{
	return json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) > 0;
}

static const char *str(const json_t *row, const char *key)
{
	return json_string_value(json_object_get(row, key));
}

/* What each kind of row must carry. */
struct kind {
	const char *kernel, *backend;
	bool gb, gflop; /* gb_per_s / gflop_per_s positive (else null) */
	const char *of; /* fraction_of */
	int min_rows;
	int seen;
};

static void check_row(const json_t *row, size_t i, struct kind *kinds, size_t n_kinds, double cpu_mem,
		      double gpu_copy)
{
	const char *kernel = str(row, "kernel"), *backend = str(row, "backend");
	CHECK(kernel && backend, "row %zu: no kernel or backend", i);
	CHECK(json_is_object(json_object_get(row, "shape")) && json_object_size(json_object_get(row, "shape")) > 0,
	      "row %zu (%s): no shape object", i, kernel);
	for (const char *k = "gb_per_s\0gflop_per_s\0fraction_of_limit\0fraction_of\0"; *k; k += strlen(k) + 1)
		CHECK(json_object_get(row, k), "row %zu (%s): no \"%s\"", i, kernel, k);
	json_t *frac = json_object_get(row, "fraction_of_limit");
	const char *of = str(row, "fraction_of");
	if (of) {
		CHECK(positive(frac) && json_number_value(frac) < 20, "row %zu (%s %s): fraction_of_limit %g", i,
		      kernel, backend, json_number_value(frac));
		CHECK(strcmp(of, "cpu_mem") || !isnan(cpu_mem), "row %zu: of cpu_mem without that limit", i);
		CHECK(strcmp(of, "gpu_copy") || !isnan(gpu_copy), "row %zu: of gpu_copy without that limit", i);
	} else {
		CHECK(json_is_null(frac), "row %zu (%s): a fraction of nothing", i, kernel);
	}
	for (size_t k = 0; k < n_kinds; k++) {
		struct kind *w = &kinds[k];
		if (strcmp(w->kernel, kernel) || strcmp(w->backend, backend) || !of || strcmp(w->of, of))
			continue;
		CHECK(w->gb ? positive(json_object_get(row, "gb_per_s")) : json_is_null(json_object_get(row, "gb_per_s")),
		      "row %zu (%s of %s): gb_per_s", i, kernel, of);
		CHECK(w->gflop ? positive(json_object_get(row, "gflop_per_s"))
			       : json_is_null(json_object_get(row, "gflop_per_s")),
		      "row %zu (%s of %s): gflop_per_s", i, kernel, of);
		w->seen++;
	}
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: %s SHMRT_PROGRAM", argv[0]);
	char *out = run_bench(argv[1], "--quick --json");
	json_t *doc = json_document(out);

	json_t *limits = json_object_get(doc, "limits"), *results = json_object_get(doc, "results");
	CHECK(json_is_object(limits) && json_object_size(limits) == 2, "\"limits\" is not an object of two");
	json_t *mem = json_object_get(limits, "cpu_mem_gb_per_s"), *copy = json_object_get(limits, "gpu_copy_gb_per_s");
	CHECK(positive(mem), "cpu_mem_gb_per_s is not a positive number");
	CHECK(copy && (json_is_null(copy) || positive(copy)), "gpu_copy_gb_per_s is neither null nor positive");
	bool gpu = !json_is_null(copy);
	json_t *ghz = json_object_get(doc, "cpu_ghz"); /* the clock the peaks are checked against */
	CHECK(json_is_null(ghz) || positive(ghz), "cpu_ghz is neither null nor positive");
	CHECK(json_is_array(results), "no \"results\" array");

	struct kind kinds[] = {
		{"mem_read", "cpu", true, false, "cpu_mem", 1, 0},
		{"mem_triad", "cpu", true, false, "cpu_mem", 1, 0},
		{"fma_peak", "cpu", false, true, "cpu_fma", 1, 0},
		{"bf16dot_peak", "cpu", false, true, "cpu_bf16dot", 0, 0}, /* where the CPU has AVX512-BF16 */
		{"matmul", "cpu", true, true, "cpu_mem", 4, 0},  /* decode: m 1 and 16, bf16 and f32 */
		{"matmul", "cpu", true, true, "cpu_fma", 1, 0},  /* prefill: f32 w, and bf16 but with the bf16 dot */
		{"matmul", "cpu", true, true, "cpu_bf16dot", 0, 0}, /* prefill, bf16 w, SHMRT_CPU_BF16DOT=on */
		{"attention_decode", "cpu", true, true, "cpu_mem", 1, 0},
		{"attention_prefill", "cpu", false, true, "cpu_fma", 1, 0},
		/* The GPU part (min_rows 0 without a GPU). */
		{"copy_d2d", "cuda", true, false, "gpu_copy", gpu, 0},
		{"matmul", "cublas", true, true, "gpu_copy", gpu, 0}, /* decode shapes */
		{"matmul", "cuda", true, true, "gpu_copy", gpu, 0},
		{"matmul", "cuda", true, true, "cublas", gpu, 0},     /* large shapes */
		{"attention_decode", "cuda", true, true, "gpu_copy", gpu, 0},
		{"attention_prefill", "cuda", false, true, "cublas_max", gpu, 0},
	};
	size_t n_kinds = ARRAY_SIZE(kinds), i;
	json_t *row;
	json_array_foreach(results, i, row)
	{
		check_row(row, i, kinds, n_kinds, json_number_value(mem), gpu ? json_number_value(copy) : NAN);
		if (!strcmp(str(row, "kernel"), "mem_read"))
			CHECK(fabs(json_number_value(json_object_get(row, "gb_per_s")) - json_number_value(mem)) <=
				      1e-6 * json_number_value(mem),
			      "mem_read's gb_per_s is not limits.cpu_mem_gb_per_s");
		if (!strcmp(str(row, "kernel"), "matmul")) {
			json_t *shape = json_object_get(row, "shape");
			CHECK(json_integer_value(json_object_get(shape, "m")) > 0 &&
				      json_integer_value(json_object_get(shape, "n")) > 0 &&
				      json_integer_value(json_object_get(shape, "k")) > 0 &&
				      json_is_string(json_object_get(shape, "w")),
			      "row %zu: matmul shape lacks m, n, k or w", i);
		}
	}
	for (size_t k = 0; k < n_kinds; k++)
		CHECK(kinds[k].seen >= kinds[k].min_rows, "%s on %s (of %s): %d rows, expected %d or more", kinds[k].kernel,
		      kinds[k].backend, kinds[k].of, kinds[k].seen, kinds[k].min_rows);
	json_decref(doc);
	free(out);

	/* --csv writes the same rows (and a header). */
	char csv[] = "/tmp/shmrt-bench-kernels-XXXXXX";
	int fd = mkstemp(csv);
	CHECK(fd >= 0, "mkstemp");
	close(fd);
	char args[128];
	snprintf(args, sizeof(args), "--quick --csv %s", csv);
	free(run_bench(argv[1], args));
	FILE *f = fopen(csv, "r");
	CHECK(f, "%s not written", csv);
	char line[512];
	int lines = 0;
	while (fgets(line, sizeof(line), f))
		lines++;
	fclose(f);
	unlink(csv);
	CHECK(lines == (int)i + 1, "%s: %d lines for %zu rows", csv, lines, i);
	return 0;
}

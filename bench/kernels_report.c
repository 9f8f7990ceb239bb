/* shmrt bench kernels' output: the table with ratios and issue 3's
 * targets, the JSON document, the CSV rows. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static void put_num(double x, int width, int precision)
{
	if (isnan(x))
		printf(" %*s", width, "-");
	else
		printf(" %*.*f", width, precision, x);
}

static bool is(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static const char *met(bool ok)
{
	return ok ? "met" : "NOT met";
}

/* Worst and median fraction over the rows of kernel on backend whose
 * fraction is of `of`; false when there are none. */
static bool fractions(const struct kb_report *r, const char *kernel, const char *backend, const char *of,
		      double *worst, double *median)
{
	double v[512];
	int n = 0;
	for (int i = 0; i < r->n_rows && n < 512; i++) {
		const struct kb_row *w = &r->rows[i];
		if (is(w->kernel, kernel) && is(w->backend, backend) && is(w->fraction_of, of) &&
		    !isnan(w->fraction_of_limit))
			v[n++] = w->fraction_of_limit;
	}
	if (!n)
		return false;
	*median = kb_median(v, n);
	*worst = v[0];
	return true;
}

static void target(const struct kb_report *r, const char *what, const char *kernel, const char *backend,
		   const char *of, double goal)
{
	double worst, median;
	if (fractions(r, kernel, backend, of, &worst, &median))
		printf("  %s: worst %.0f%%, median %.0f%% of %s (>= %.0f%%): %s\n", what, 100 * worst, 100 * median, of,
		       100 * goal, met(worst >= goal));
}

/* The FMA roof of a CPU decode matmul row, in weight GB/s: at m rows of
 * X each weight costs 2m flops, so fma_peak caps the weights per second. */
static double fma_roof(const struct kb_row *w, double fma_gflops)
{
	int m;
	char wd[8];
	if (sscanf(w->shape, "m=%d %*s %*s %*s w=%7s", &m, wd) != 2 || m <= 0)
		return NAN;
	return fma_gflops / (2.0 * m) * (strcmp(wd, "f32") ? 2 : 4);
}

/* The CPU decode target is out of reach wherever the FMA roof lies below
 * it (fp32 arithmetic on every weight); says where, and how the others
 * fare. */
static void cpu_decode_target(const struct kb_report *r, const char *backend)
{
	double fma = NAN, v[512], worst = INFINITY;
	int n = 0;
	for (int i = 0; i < r->n_rows; i++)
		if (is(r->rows[i].kernel, "fma_peak"))
			fma = r->rows[i].gflop_per_s;
	target(r, "CPU decode matmul (M <= 16)", "matmul", backend, "cpu_mem", 0.70);
	printf("  rows whose FMA roof (fma_peak / 2m flops per weight) is below 70%% of cpu_mem:\n   ");
	for (int i = 0; i < r->n_rows && n < 512; i++) {
		const struct kb_row *w = &r->rows[i];
		if (!is(w->kernel, "matmul") || !is(w->backend, backend) || !is(w->fraction_of, "cpu_mem"))
			continue;
		if (fma_roof(w, fma) < 0.70 * r->cpu_mem_gb_per_s) {
			printf(" [%s]", w->shape);
			continue;
		}
		v[n++] = w->fraction_of_limit;
		worst = w->fraction_of_limit < worst ? w->fraction_of_limit : worst;
	}
	printf("\n");
	if (n)
		printf("  the other rows: worst %.0f%%, median %.0f%% of cpu_mem (>= 70%%): %s\n", 100 * worst,
		       100 * kb_median(v, n), met(worst >= 0.70));
}

/* The compute peaks against the clock: FLOPs a cycle a thread, and the
 * most the instruction allows (cpu_peak.c). */
static void print_peaks(const struct kb_report *r)
{
	for (int i = 0; i < r->n_rows; i++) {
		const struct kb_row *w = &r->rows[i];
		int k = is(w->kernel, "fma_peak") ? 0 : is(w->kernel, "bf16dot_peak") ? 1 : -1;
		if (k < 0)
			continue;
		double per_cycle = w->gflop_per_s / r->cpu_threads / r->cpu_ghz;
		printf("%s %.1f GFLOP/s (best burst of the run) = %.1f FLOP/cycle a thread at %.2f GHz (the most: %.0f)%s\n",
		       w->kernel, w->gflop_per_s, per_cycle, r->cpu_ghz, r->cpu_flops_per_cycle_max[k],
		       per_cycle > 1.02 * r->cpu_flops_per_cycle_max[k] ? ": MORE than the core can do, a wrong clock" : "");
	}
}

/* Every compute-bound row within its peak (a fraction above 1.0 means the
 * peak was measured wrong), and the prefill matmul against it. */
static void compute_targets(const struct kb_report *r)
{
	double worst = 0;
	for (int i = 0; i < r->n_rows; i++) {
		const struct kb_row *w = &r->rows[i];
		if (w->fraction_of && (is(w->fraction_of, "cpu_fma") || is(w->fraction_of, "cpu_bf16dot")) &&
		    !is(w->kernel, "fma_peak") && !is(w->kernel, "bf16dot_peak") && w->fraction_of_limit > worst)
			worst = w->fraction_of_limit;
	}
	printf("  compute-bound rows within their peak: highest %.0f%% (<= 100%%): %s\n", 100 * worst,
	       met(worst <= 1.0));
	target(r, "CPU prefill matmul, bf16 dot", "matmul", "cpu", "cpu_bf16dot", 0.80);
	target(r, "CPU prefill matmul, fp32 FMA", "matmul", "cpu", "cpu_fma", 0.80);
}

static void print_targets(const struct kb_report *r)
{
	printf("\ntargets (issues 3 and 16):\n");
	if (!isnan(r->cpu_mem_gb_per_s))
		compute_targets(r);
	for (int i = 0; i < r->n_rows; i++) /* the CPU backend measured: the first matmul row's */
		if (is(r->rows[i].kernel, "matmul") && is(r->rows[i].fraction_of, "cpu_mem")) {
			cpu_decode_target(r, r->rows[i].backend);
			break;
		}
	target(r, "GPU decode attention", "attention_decode", "cuda", "gpu_copy", 0.80);
	target(r, "GPU decode matmul", "matmul", "cuda", "gpu_copy", 0.80);
	target(r, "GPU large matmul", "matmul", "cuda", "cublas", 0.90);
}

void kb_print_table(const struct kb_report *r)
{
	printf("shmrt bench kernels%s\n", r->quick ? " --quick" : "");
	if (!isnan(r->cpu_mem_gb_per_s))
		printf("CPU: %d threads, vector level %s; limit cpu_mem = %.1f GB/s (mem_read)\n", r->cpu_threads,
		       r->cpu_isa, r->cpu_mem_gb_per_s);
	if (!isnan(r->cpu_mem_gb_per_s))
		print_peaks(r);
	if (r->gpu_name[0])
		printf("GPU: %s; limit gpu_copy = %.1f GB/s (device-to-device copy, 2 x bytes / time)\n", r->gpu_name,
		       r->gpu_copy_gb_per_s);
	else if (r->gpu_note[0])
		printf("GPU: none (%s)\n", r->gpu_note);
	printf("GB/s: 10^9 bytes/s (matmul: weight bytes; attention_decode: K and V bytes read)\n"
	       "%% limit: fraction of the limit or peer named in \"of\"; of cpu_mem: the median over calls\n"
	       "of the call's rate / the read bandwidth measured just before it (same bytes, same threads)\n\n");
	printf("%-17s %-7s %9s %9s %8s %-8s %s\n", "kernel", "backend", "GB/s", "GFLOP/s", "% limit", "of", "shape");
	for (int i = 0; i < r->n_rows; i++) {
		const struct kb_row *w = &r->rows[i];
		if (i && strcmp(w->kernel, r->rows[i - 1].kernel))
			printf("\n");
		printf("%-17s %-7s", w->kernel, w->backend);
		put_num(w->gb_per_s, 9, 1);
		put_num(w->gflop_per_s, 9, 1);
		put_num(100 * w->fraction_of_limit, 8, 0);
		printf(" %-8s %s\n", w->fraction_of ? w->fraction_of : "-", w->shape);
	}
	print_targets(r);
}

static json_t *num_or_null(double x)
{
	return isnan(x) ? json_null() : json_real(x);
}

/* "m=1 n=4096 w=bf16" as {"m": 1, "n": 4096, "w": "bf16"}. */
static json_t *shape_object(const char *shape)
{
	json_t *o = json_object();
	char buf[sizeof(((struct kb_row *)0)->shape)], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", shape);
	for (char *word = strtok_r(buf, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(word, '='), *end;
		if (!eq)
			continue;
		*eq = 0;
		long long v = strtoll(eq + 1, &end, 10);
		json_object_set_new(o, word, *end || end == eq + 1 ? json_string(eq + 1) : json_integer(v));
	}
	return o;
}

int kb_print_json(const struct kb_report *r)
{
	json_t *doc = json_object(), *results = json_array();
	for (int i = 0; i < r->n_rows; i++) {
		const struct kb_row *w = &r->rows[i];
		json_array_append_new(results,
				      json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "kernel", w->kernel, "backend",
						w->backend, "shape", shape_object(w->shape), "gb_per_s",
						num_or_null(w->gb_per_s), "gflop_per_s", num_or_null(w->gflop_per_s),
						"fraction_of_limit", num_or_null(w->fraction_of_limit), "fraction_of",
						w->fraction_of ? json_string(w->fraction_of) : json_null()));
	}
	json_object_set_new(doc, "limits",
			    json_pack("{s:o, s:o}", "cpu_mem_gb_per_s", num_or_null(r->cpu_mem_gb_per_s),
				      "gpu_copy_gb_per_s", num_or_null(r->gpu_copy_gb_per_s)));
	json_object_set_new(doc, "results", results);
	json_object_set_new(doc, "cpu_threads", json_integer(r->cpu_threads));
	json_object_set_new(doc, "cpu_isa", r->cpu_isa ? json_string(r->cpu_isa) : json_null());
	json_object_set_new(doc, "cpu_ghz", num_or_null(r->cpu_ghz));
	json_object_set_new(doc, "gpu", r->gpu_name[0] ? json_string(r->gpu_name) : json_null());
	json_object_set_new(doc, "quick", json_boolean(r->quick));
	int rc = json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(6));
	printf("\n");
	json_decref(doc);
	return rc ? -EIO : 0;
}

int kb_write_csv(const struct kb_report *r, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "kernel,backend,shape,gb_per_s,gflop_per_s,fraction_of_limit,fraction_of\n");
	for (int i = 0; i < r->n_rows; i++) {
		const struct kb_row *w = &r->rows[i];
		double v[3] = {w->gb_per_s, w->gflop_per_s, w->fraction_of_limit};
		fprintf(f, "%s,%s,%s", w->kernel, w->backend, w->shape);
		for (int k = 0; k < 3; k++)
			if (isnan(v[k]))
				fprintf(f, ",");
			else
				fprintf(f, ",%.4g", v[k]);
		fprintf(f, ",%s\n", w->fraction_of ? w->fraction_of : "");
	}
	return fclose(f) ? -errno : 0;
}

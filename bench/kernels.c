/* shmrt bench kernels: decode and prefill matmul, decode and prefill
 * attention, as fractions of the machine's limits measured in the same run
 * (issue 3, "Benchmarks"). The CPU part is bench/kernels_cpu.c, the GPU
 * part bench/kernels_gpu.c, the output bench/kernels_report.c. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt_config.h"
#include "bench.h"
#include "kernels.h"

struct kb_row *kb_add(struct kb_report *r, const char *kernel, const char *backend, const char *shape_fmt, ...)
{
	if (r->n_rows == r->cap) {
		int cap = r->cap ? 2 * r->cap : 64;
		struct kb_row *rows = realloc(r->rows, sizeof(*rows) * (size_t)cap);
		if (!rows) {
			fprintf(stderr, "shmrt bench kernels: out of memory\n");
			return NULL;
		}
		r->rows = rows;
		r->cap = cap;
	}
	struct kb_row *w = &r->rows[r->n_rows++];
	*w = (struct kb_row){kernel, backend, "", NAN, NAN, NAN, NULL};
	va_list ap;
	va_start(ap, shape_fmt);
	vsnprintf(w->shape, sizeof(w->shape), shape_fmt, ap);
	va_end(ap);
	return w;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double kb_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#if !SHMRT_HAVE_CUDA
int kb_run_gpu(const struct kb_opts *o, struct kb_report *r)
{
	(void)o;
	snprintf(r->gpu_note, sizeof(r->gpu_note), "shmrt was built without CUDA");
	return -ENODEV;
}
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmrt bench kernels [--quick] [--json] [--csv FILE] [--backend NAME] [--verbose]\n\n"
		"The kernels of a decoder step against the machine's limits, measured in\n"
		"the same run. CPU (backend \"cpu\", its thread pool over all allowed CPUs):\n"
		"  mem_read          read bandwidth over a buffer >> last-level cache, the\n"
		"                    same threads: the limit cpu_mem_gb_per_s\n"
		"  mem_triad         STREAM triad a = b + s*c (3 arrays' bytes counted)\n"
		"  fma_peak          fp32 FMA throughput from registers, all threads\n"
		"  matmul (decode)   M = 1..16 rows against Llama-sized weights (f32, bf16),\n"
		"                    GB/s = weight bytes / time, weights rotated through\n"
		"                    copies larger than the cache, as a model's layers are;\n"
		"                    M = 1 and 8 against a 4096 x 4096 Q8_0 and Q4_1 W\n"
		"                    (GB/s of the blocks' bytes)\n"
		"  matmul (prefill)  large M, GFLOP/s = 2*M*N*K / time\n"
		"  attention_decode  one query per sequence over the paged KV cache, GB/s =\n"
		"                    K and V bytes read / time\n"
		"  attention_prefill causal, GFLOP/s = 4 * head_dim * heads * (q, k) pairs / time\n"
		"Each CPU kernel call is paired with a limit sample taken just before it (the\n"
		"same bytes read, or an FMA burst); a memory-bound kernel's fraction is the\n"
		"median of those ratios, so that a shared machine's changing load cancels out;\n"
		"a compute-bound one's is its median rate over the median FMA burst.\n"
		"GPU (when built with CUDA and the \"cuda\" backend finds a GPU): device copy\n"
		"bandwidth (the limit gpu_copy_gb_per_s, 2 * bytes / time), cuBLASLt bf16\n"
		"matmul as the peer, the cuda backend's matmul and attention.\n\n"
		"  --quick          a short run with small shapes (seconds), for tests\n"
		"  --json           one JSON document on stdout: {\"limits\": {\"cpu_mem_gb_per_s\",\n"
		"                   \"gpu_copy_gb_per_s\"}, \"results\": [{\"kernel\", \"backend\",\n"
		"                   \"shape\", \"gb_per_s\", \"gflop_per_s\", \"fraction_of_limit\",\n"
		"                   \"fraction_of\"}, ...]}\n"
		"  --csv FILE       also write the rows to FILE\n"
		"  --backend NAME   only this part: cpu, cpu-ref (the reference kernels) or cuda\n"
		"  --verbose        progress on stderr\n");
}

int bench_kernels(int argc, char **argv)
{
	struct kb_opts o = {0};
	bool json = false;
	const char *csv = NULL, *backend = NULL;
	static const struct option opts[] = {
		{"quick", no_argument, 0, 'q'},         {"json", no_argument, 0, 'j'},
		{"csv", required_argument, 0, 'c'},     {"backend", required_argument, 0, 'b'},
		{"verbose", no_argument, 0, 'v'},       {"help", no_argument, 0, 'h'},
		{0},
	};
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "qjc:b:vh", opts, NULL)) != -1;) {
		if (c == 'q')
			o.quick = true;
		else if (c == 'j')
			json = true;
		else if (c == 'c')
			csv = optarg;
		else if (c == 'b')
			backend = optarg;
		else if (c == 'v')
			o.verbose = true;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (optind < argc)
		return usage(stderr), 2;
	int device = backend ? shmrt_backend_device(backend) : -1;
	bool cpu_part = !backend || device == SHMRT_DEVICE_CPU;
	bool gpu_part = !backend || device == SHMRT_DEVICE_CUDA;
	if (!cpu_part && !gpu_part) {
		fprintf(stderr, "shmrt bench kernels: unknown backend '%s' (cpu, cpu-ref, cuda)\n", backend);
		return 2;
	}

	struct kb_report r = {.cpu_mem_gb_per_s = NAN, .gpu_copy_gb_per_s = NAN, .cpu_ghz = NAN, .quick = o.quick};
	int rc = 0;
	if (cpu_part)
		rc = kb_run_cpu(&o, backend ? backend : "cpu", &r);
	if (rc == 0 && gpu_part) {
		rc = kb_run_gpu(&o, &r);
		/* Without a GPU the default run is the CPU part alone. */
		if (rc == -ENODEV && !backend)
			rc = 0;
		else if (rc == -ENODEV)
			fprintf(stderr, "shmrt bench kernels: no GPU part: %s\n", r.gpu_note);
	}
	if (rc == 0)
		rc = json ? kb_print_json(&r) : (kb_print_table(&r), 0);
	if (rc == 0 && csv && (rc = kb_write_csv(&r, csv)) < 0)
		fprintf(stderr, "shmrt bench kernels: %s: %s\n", csv, strerror(-rc));
	free(r.rows);
	return rc < 0;
}

/* shmrt bench kernels: the compute kernels against the machine's limits,
 * measured in the same run. bench/kernels.c drives; the CPU part is
 * bench/kernels_cpu.c, the GPU part bench/kernels_gpu.c (built with CUDA,
 * run when the "cuda" backend is present), the output
 * bench/kernels_report.c. */
#ifndef SHMRT_BENCH_KERNELS_H
#define SHMRT_BENCH_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmrt/backend.h"
#include "cpu_isa.h"

/* One measured figure. NAN where it does not apply. shape is a list of
 * "key=value" words separated by single spaces (values are integers or
 * dtype names), printed as is in the table and CSV, as an object in JSON.
 * fraction_of names the denominator of fraction_of_limit: a limit
 * ("cpu_mem", "gpu_copy", "cpu_fma", "cpu_bf16dot") or a peer ("cublas"); NULL when
 * there is none. */
struct kb_row {
	const char *kernel;  /* "matmul", "attention_decode", "mem_read", ... */
	const char *backend; /* "cpu", "cuda", "cublas" */
	char shape[160];
	double gb_per_s, gflop_per_s;
	double fraction_of_limit;
	const char *fraction_of;
};

/* The rows of a run, in order, and the limits they are fractions of. */
struct kb_report {
	struct kb_row *rows;
	int n_rows, cap;
	double cpu_mem_gb_per_s;  /* NAN when the CPU part did not run */
	double gpu_copy_gb_per_s; /* NAN when no GPU part ran */
	bool quick;
	int cpu_threads;
	const char *cpu_isa;
	double cpu_ghz; /* the best kb_cpu_clock_ghz of the run, NAN when unknown */
	double cpu_flops_per_cycle_max[2]; /* per thread, by enum kb_peak */
	char gpu_name[256]; /* "" without a GPU part (cudaDeviceProp.name) */
	char gpu_note[256]; /* why there is no GPU part, or "" */
};

struct kb_opts {
	bool quick;
	bool verbose; /* progress lines on stderr */
};

/* Appends a row (with every figure NAN) and returns it; NULL (message on
 * stderr) when out of memory. shape is printf-style. */
struct kb_row *kb_add(struct kb_report *r, const char *kernel, const char *backend, const char *shape_fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Median of n values (reorders v). */
double kb_median(double *v, int n);

/* Read bandwidth on the CPU kernels' thread pool (the threads a decode
 * uses) over bytes (rounded down to 256) at buf, faulted in: the median
 * GB/s of passes over it for about budget_ns (at least 3). */
double kb_cpu_mem_read_buf(const float *buf, size_t bytes, int64_t budget_ns);

/* The compute peaks (bench/cpu_peak.c), on the same threads at the CPU's
 * vector level: fp32 FMA, and AVX512-BF16's dot product (the bf16 matmul
 * of matmul_bf16dot.c) where the CPU has it. */
enum kb_peak { KB_PEAK_FMA, KB_PEAK_BF16DOT };
/* One burst on every thread: GFLOP/s; 0 where this CPU lacks the
 * instruction. */
double kb_cpu_peak_burst(enum kb_peak kind);
/* The best of `bursts` bursts (a peak is a maximum: a burst slowed by
 * another job says nothing about the hardware). */
double kb_cpu_peak(enum kb_peak kind, int bursts);
/* The most FLOPs a cycle one thread can do with the burst's instruction at
 * vector level isa (two ports); 0 where it cannot run. */
double kb_peak_flops_per_cycle_max(enum kb_peak kind, enum shmrt_cpu_isa isa);
/* The core clock of the pool's threads from one chain of dependent adds
 * each, in GHz (a disturbed chain reads low: callers keep the best); NAN
 * off x86. */
double kb_cpu_clock_ghz(void);

/* n random values in [-1, 1) of dtype dt into device memory of b (for a
 * block format, n elements of random blocks with small scales). 0 or
 * -errno. */
int kb_fill(const struct shmrt_backend *b, void *dev, size_t n, enum shmrt_dtype dt, uint64_t seed);
/* b->alloc, then kb_fill; *dev is NULL on failure. */
int kb_alloc_random(const struct shmrt_backend *b, void **dev, size_t n, enum shmrt_dtype dt, uint64_t seed);

/* A batch for attention: n_seqs sequences of ctx_len cached tokens each;
 * decode: one new token per sequence (the last), prefill: all of them. */
struct kb_attn_shape {
	int n_seqs, ctx_len, n_heads, n_kv_heads, head_dim, block_size;
	bool prefill;
	enum shmrt_dtype dtype; /* q, out and cache */
};

/* Its arguments and device buffers, and what a call moves and computes. */
struct kb_attn {
	struct shmrt_attention_args a;
	void *k, *v, *q, *out;
	int32_t *cu_q_lens, *ctx_lens, *block_tables;
	double kv_bytes; /* every cached K and V element of the batch */
	double flops;    /* 4 * head_dim per (query head, visible key) */
};

/* Random q and cache on backend b, blocks dealt out in shuffled order.
 * 0 or -errno; kb_attn_free undoes it. */
int kb_attn_make(const struct shmrt_backend *b, const struct kb_attn_shape *s, struct kb_attn *t);
void kb_attn_free(const struct shmrt_backend *b, struct kb_attn *t);
/* The shape as "key=value" words (kb_row.shape). */
int kb_attn_shape_str(const struct kb_attn_shape *s, char *out, size_t cap);

/* The CPU part on backend `name` ("cpu" or "cpu-ref"): its limits (memory
 * read bandwidth and fma peak, all threads) and kernels. 0 or -errno
 * (message on stderr). */
int kb_run_cpu(const struct kb_opts *o, const char *name, struct kb_report *r);

/* The GPU part on the "cuda" backend: device copy bandwidth, cuBLASLt and
 * the backend's matmul, attention. 0, -ENODEV when no GPU part can run
 * (no CUDA build or no usable GPU; the reason in r->gpu_note), or -errno
 * (message on stderr). */
int kb_run_gpu(const struct kb_opts *o, struct kb_report *r);

/* The table with ratios and issue 3's targets, on stdout. */
void kb_print_table(const struct kb_report *r);
/* One JSON document on stdout. 0 or -errno. */
int kb_print_json(const struct kb_report *r);
/* The rows as CSV. 0 or -errno. */
int kb_write_csv(const struct kb_report *r, const char *path);

#endif

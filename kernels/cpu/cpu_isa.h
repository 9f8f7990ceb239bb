/* Internal: which x86 vector level the fast CPU kernels run at.
 *
 * The kernels that pay for it (measured in `shmrt bench kernels`) are
 * compiled several times with target attributes and picked at run time
 * with __builtin_cpu_supports: "avx512bf16" (avx512vnni and AVX512_BF16:
 * the bf16 dot products of matmul_bf16dot.c, when asked for),
 * "avx512vnni" (AVX-512F, BW, VL and VNNI:
 * the int8 dot products of the quantized matmul, matmul_quant.c), "avx512"
 * (AVX-512F), "avx2" (AVX2, FMA, F16C) and "generic" (the compiler's
 * baseline: SSE2 on x86-64, or any other architecture). Each level
 * includes the ones below it: kernels without a VNNI variant run their
 * avx512 code at the avx512vnni level. */
#ifndef SHMRT_CPU_ISA_H
#define SHMRT_CPU_ISA_H

enum shmrt_cpu_isa {
	SHMRT_ISA_GENERIC = 0,
	SHMRT_ISA_AVX2 = 1,
	SHMRT_ISA_AVX512 = 2,
	SHMRT_ISA_AVX512VNNI = 3,
	SHMRT_ISA_AVX512BF16 = 4,
};

/* The level in use: the best this CPU has, or $SHMRT_CPU_ISA
 * (generic|avx2|avx512|avx512vnni|avx512bf16) when set and supported. */
enum shmrt_cpu_isa shmrt_cpu_isa(void);

/* Forces a level (for benchmarks): 0, or -ENOTSUP if this CPU (or this
 * build) lacks it. Not thread-safe against running kernels. */
int shmrt_cpu_set_isa(enum shmrt_cpu_isa isa);

/* The best level this CPU and build support. */
enum shmrt_cpu_isa shmrt_cpu_isa_best(void);

const char *shmrt_cpu_isa_name(enum shmrt_cpu_isa isa);

#endif

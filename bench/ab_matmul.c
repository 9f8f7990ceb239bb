/* ab_matmul: the cpu backend's matmul of two or more builds of libshmrt,
 * compared call by call in one process (a developer's tool for kernel
 * changes; not installed).
 *
 *   build/bench/ab_matmul M REPS LIB [LIB ...]
 *   e.g. build/bench/ab_matmul 8 200 /tmp/before/libshmrt.so build/libshmrt.so
 *
 * Each LIB is dlopen()ed on its own (RTLD_LOCAL: its own thread pool and
 * kernels); for each shape the builds take turns call by call, in an order
 * that rotates every repetition, and each call reads another copy of W
 * (COPIES of them, 64 by default), so that no build reads W just read by
 * another. Prints each build's best GFLOP/s of REPS calls. On a shared
 * machine whose speed drifts from minute to minute, interleaving is what
 * makes two builds comparable; `shmrt bench kernels` and `bench e2e`, run
 * one after the other, moved 10-30% between runs of the same build
 * (bench/RESULTS.md).
 *
 * Shapes: $SHAPES as N:K,N:K,... (default: the small preset's matmuls,
 * fused qkv, o, gate_up, down, lm_head); W bf16 (constant values: the time
 * of these kernels does not depend on them), X and Y f32. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmrt/backend.h"

#define MAX_LIBS 8
#define MAX_SHAPES 16

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int parse_shapes(const char *s, int shapes[][2])
{
	int n = 0;
	while (*s && n < MAX_SHAPES) {
		char *end;
		shapes[n][0] = (int)strtol(s, &end, 10);
		if (*end != ':')
			return -1;
		shapes[n][1] = (int)strtol(end + 1, &end, 10);
		if (shapes[n][0] < 1 || shapes[n][1] < 1 || (*end && *end != ','))
			return -1;
		n++;
		s = *end ? end + 1 : end;
	}
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc - 3 > MAX_LIBS) {
		fprintf(stderr, "usage: ab_matmul M REPS LIB [LIB ...] (at most %d)\n", MAX_LIBS);
		return 2;
	}
	int m = atoi(argv[1]), reps = atoi(argv[2]), n_libs = argc - 3;
	const struct shmrt_backend *be[MAX_LIBS];
	for (int l = 0; l < n_libs; l++) {
		void *h = dlopen(argv[3 + l], RTLD_NOW | RTLD_LOCAL);
		int (*get)(const char *, const struct shmrt_backend **) = h ? dlsym(h, "shmrt_backend_get") : NULL;
		if (!get || get("cpu", &be[l])) {
			fprintf(stderr, "ab_matmul: %s: %s\n", argv[3 + l], h ? "no cpu backend" : dlerror());
			return 1;
		}
	}
	int shapes[MAX_SHAPES][2] = {{1280, 768}, {768, 768}, {4096, 768}, {768, 2048}, {32000, 768}};
	int n_shapes = getenv("SHAPES") ? parse_shapes(getenv("SHAPES"), shapes) : 5;
	int copies = getenv("COPIES") ? atoi(getenv("COPIES")) : 64;
	if (m < 1 || reps < 1 || n_shapes < 1 || copies < 1) {
		fprintf(stderr, "ab_matmul: M, REPS and $COPIES must be >= 1, $SHAPES N:K,N:K,...\n");
		return 2;
	}
	for (int s = 0; s < n_shapes; s++) {
		int n = shapes[s][0], k = shapes[s][1];
		size_t w_elems = (size_t)n * (size_t)k;
		float *x = aligned_alloc(64, ((size_t)m * k * sizeof(float) + 63) & ~(size_t)63);
		float *y = malloc((size_t)m * n * sizeof(float));
		uint16_t *w = malloc(w_elems * copies * sizeof(uint16_t));
		if (!x || !y || !w) {
			fprintf(stderr, "ab_matmul: no memory for %d copies of %d x %d\n", copies, n, k);
			return 1;
		}
		for (size_t i = 0; i < (size_t)m * k; i++)
			x[i] = (float)(i % 13) * 0.01f;
		for (size_t i = 0; i < w_elems * copies; i++)
			w[i] = (uint16_t)(0x3f80 + i % 7);
		double best[MAX_LIBS];
		for (int l = 0; l < n_libs; l++)
			best[l] = 1e30;
		for (int r = 0; r < reps; r++)
			for (int turn = 0; turn < n_libs; turn++) {
				int l = (turn + r) % n_libs;
				struct shmrt_matmul_args a = {
					.m = m, .n = n, .k = k, .x = x, .x_dtype = SHMRT_F32, .y = y, .y_dtype = SHMRT_F32,
					.w = w + w_elems * (size_t)((r * n_libs + turn) % copies), .w_dtype = SHMRT_BF16};
				double t = now_s();
				if (be[l]->matmul(NULL, &a)) {
					fprintf(stderr, "ab_matmul: %s: the matmul failed\n", argv[3 + l]);
					return 1;
				}
				t = now_s() - t;
				best[l] = t < best[l] ? t : best[l];
			}
		printf("m=%d n=%5d k=%5d", m, n, k);
		for (int l = 0; l < n_libs; l++)
			printf("  %s %6.1f GFLOP/s", argv[3 + l], 2.0 * m * n * k / best[l] * 1e-9);
		printf("\n");
		free(x);
		free(y);
		free(w);
	}
	return 0;
}

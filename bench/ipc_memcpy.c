/* The throughput limits. A shmrt ring carries a record as two copies: the
 * producer's into the ring and the consumer's out of it, on two cores at
 * once; each of them alone bounds the rate. The limit measured is the
 * producer's copy alone: records copied from one buffer into successive
 * slots of a buffer the size of the ring, the working set the ring itself
 * has. (For 1 MiB records that is an 8 MiB ring, which stays in this VM's
 * 32 MiB L3: a copy through memory would be a limit the ring is not held
 * to; ipc_memcpy_dram measures that one, for context.) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "clock.h"
#include "ipc.h"

/* MB/s of copying n-byte records from src (src_span bytes) into dst
 * (dst_span bytes), slot after slot, wrapping, for about budget_ns. */
static double copy_rate(char *dst, size_t dst_span, const char *src, size_t src_span, size_t n, int64_t budget_ns)
{
	size_t dst_slots = dst_span / n, src_slots = src_span / n, d = 0, s = 0;
	uint64_t copied = 0;
	int64_t t0 = shmrt_now_ns(), t1;
	do {
		for (int i = 0; i < 64; i++) {
			memcpy(dst + d * n, src + s * n, n);
			/* Keeps the compiler from merging or dropping copies. */
			__asm__ volatile("" : : "r"(dst) : "memory");
			d = d + 1 < dst_slots ? d + 1 : 0;
			s = s + 1 < src_slots ? s + 1 : 0;
		}
		copied += 64 * n;
		t1 = shmrt_now_ns();
	} while (t1 - t0 < budget_ns);
	return (double)copied * 1e3 / (double)(t1 - t0);
}

/* Two buffers with every page faulted in, or -ENOMEM. */
static int buffers(char **dst, size_t dst_span, char **src, size_t src_span)
{
	*dst = malloc(dst_span);
	*src = malloc(src_span);
	if (!*dst || !*src) {
		free(*dst);
		free(*src);
		return -ENOMEM;
	}
	memset(*dst, 2, dst_span);
	memset(*src, 1, src_span);
	return 0;
}

int ipc_memcpy_bandwidth(const size_t *sizes, int n_sizes, int64_t budget_ns, double *mb_per_s)
{
	for (int i = 0; i < n_sizes; i++) {
		char *dst, *src;
		size_t n = sizes[i], ring = ipc_ring_capacity(n);
		int rc = buffers(&dst, ring, &src, n);
		if (rc < 0)
			return rc;
		mb_per_s[i] = copy_rate(dst, ring, src, n, n, budget_ns);
		free(dst);
		free(src);
	}
	return 0;
}

int ipc_memcpy_dram(size_t bytes, int64_t budget_ns, double *mb_per_s)
{
	size_t span = 2 * bench_llc_bytes();
	if (span < (size_t)64 << 20)
		span = (size_t)64 << 20;
	if (span > (size_t)1 << 30)
		span = (size_t)1 << 30;
	char *dst, *src;
	int rc = buffers(&dst, span, &src, span);
	if (rc < 0)
		return rc;
	*mb_per_s = copy_rate(dst, span, src, span, bytes, budget_ns);
	free(dst);
	free(src);
	return 0;
}

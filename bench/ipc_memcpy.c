/* The throughput limit: one thread's memcpy bandwidth. Records of the given
 * size are copied one after another from one buffer into another, both
 * larger than the last-level cache, so every pass streams through memory
 * rather than the cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "futex.h"
#include "ipc.h"

/* The largest cache of CPU 0, in bytes, from sysfs (sysconf's
 * _SC_LEVEL3_CACHE_SIZE is wrong under some hypervisors: 320 MiB on this
 * VM, whose L3 is 32 MiB); 32 MiB when it cannot be read. */
static size_t llc_bytes(void)
{
	size_t best = 0;
	for (int i = 0; i < 8; i++) {
		char path[96];
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
		FILE *f = fopen(path, "r");
		if (!f)
			break;
		unsigned long kib;
		if (fscanf(f, "%luK", &kib) == 1 && kib * 1024 > best)
			best = kib * 1024;
		fclose(f);
	}
	return best ? best : (size_t)32 << 20;
}

int ipc_memcpy_bandwidth(const size_t *sizes, int n_sizes, int64_t budget_ns, double *mb_per_s)
{
	size_t span = 2 * llc_bytes();
	if (span < (size_t)64 << 20)
		span = (size_t)64 << 20;
	if (span > (size_t)1 << 30)
		span = (size_t)1 << 30;
	char *src = malloc(span), *dst = malloc(span);
	if (!src || !dst) {
		free(src);
		free(dst);
		return -ENOMEM;
	}
	/* Fault every page in before timing. */
	memset(src, 1, span);
	memset(dst, 2, span);
	for (int s = 0; s < n_sizes; s++) {
		size_t n = sizes[s], per_pass = span / n * n, copied = 0;
		int64_t t0 = shmrt_now_ns(), t1;
		do {
			for (size_t off = 0; off < per_pass; off += n) {
				memcpy(dst + off, src + off, n);
				/* Keeps the compiler from merging or dropping copies. */
				__asm__ volatile("" : : "r"(dst) : "memory");
			}
			copied += per_pass;
			t1 = shmrt_now_ns();
		} while (t1 - t0 < budget_ns);
		mb_per_s[s] = (double)copied * 1e3 / (double)(t1 - t0);
	}
	free(src);
	free(dst);
	return 0;
}

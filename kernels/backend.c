/* The backend registry: shmrt_backend_get(). */
#include <errno.h>
#include <string.h>

#include "shmrt_config.h"
#include "shmrt/backend.h"
#include "backends.h"
#include "fail.h"

int shmrt_backend_get(const char *name, const struct shmrt_backend **out)
{
	shmrt_clear_error();
	*out = NULL;
	if (!strcmp(name, "cpu-ref")) {
		*out = &shmrt_backend_cpu_ref;
		return 0;
	}
	if (!strcmp(name, "cpu")) {
		*out = &shmrt_backend_cpu;
		return 0;
	}
	if (!strcmp(name, "cuda")) {
#if SHMRT_HAVE_CUDA
		return shmrt_backend_cuda_open(out);
#else
		return shmrt_fail(ENODEV, "backend 'cuda' is not built in (configure with -Dcuda=enabled)");
#endif
	}
	return shmrt_fail(ENOENT, "unknown backend '%s' (known: cpu-ref, cpu, cuda)", name);
}

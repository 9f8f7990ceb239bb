/* The backend registry: shmrt_backend_get() and the dtype helpers. */
#include <errno.h>
#include <string.h>

#include "shmrt_config.h"
#include "shmrt/backend.h"
#include "backends.h"
#include "fail.h"

size_t shmrt_dtype_size(enum shmrt_dtype dt)
{
	switch (dt) {
	case SHMRT_F32:
		return 4;
	case SHMRT_BF16:
	case SHMRT_F16:
		return 2;
	}
	return 0;
}

const char *shmrt_dtype_name(enum shmrt_dtype dt)
{
	switch (dt) {
	case SHMRT_F32:
		return "f32";
	case SHMRT_BF16:
		return "bf16";
	case SHMRT_F16:
		return "f16";
	}
	return "?";
}

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

/* The thread-local error message behind shmrt_last_error(). */
#include <stdarg.h>
#include <stdio.h>

#include "shmrt_config.h"
#include "shmrt/error.h"
#include "fail.h"

static _Thread_local char last_error[512];

int shmrt_fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return -err;
}

void shmrt_clear_error(void)
{
	last_error[0] = '\0';
}

const char *shmrt_last_error(void)
{
	return last_error;
}

const char *shmrt_version(void)
{
	return SHMRT_VERSION;
}

const char *shmrt_build_features(void)
{
	/* Built once from the configuration; string literals concatenate. */
	return ""
#if SHMRT_HAVE_CUDA
	       "cuda "
#endif
#if SHMRT_HAVE_NCCL
	       "nccl "
#endif
#if SHMRT_HAVE_LIBURING
	       "liburing "
#endif
#if SHMRT_HAVE_HWLOC
	       "hwloc "
#endif
	    ;
}

const char *shmrt_cuda_archs(void)
{
	return SHMRT_CUDA_ARCHS;
}

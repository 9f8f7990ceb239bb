/* The backend registry: shmrt_backend_get(). */
#include <errno.h>
#include <string.h>

#include "shmrt_config.h"
#include "shmrt/backend.h"
#include "backends.h"
#include "array_size.h"
#include "fail.h"

static int open_cpu_ref(const struct shmrt_backend **out)
{
	*out = &shmrt_backend_cpu_ref;
	return 0;
}

static int open_cpu(const struct shmrt_backend **out)
{
	*out = &shmrt_backend_cpu;
	return 0;
}

static int open_cuda(const struct shmrt_backend **out)
{
#if SHMRT_HAVE_CUDA
	return shmrt_backend_cuda_open(out);
#else
	*out = NULL;
	return shmrt_fail(ENODEV, "backend 'cuda' is not built in (configure with -Dcuda=enabled)");
#endif
}

/* The backends by name: a new backend is one more line here (and its
 * table, which says the same device kind). */
static const struct registry_entry {
	const char *name;
	enum shmrt_device_kind device;
	int (*open)(const struct shmrt_backend **out);
} registry[] = {
	{"cpu-ref", SHMRT_DEVICE_CPU, open_cpu_ref},
	{"cpu", SHMRT_DEVICE_CPU, open_cpu},
	{"cuda", SHMRT_DEVICE_CUDA, open_cuda},
};

static const struct registry_entry *find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(registry); i++)
		if (!strcmp(name, registry[i].name))
			return &registry[i];
	return NULL;
}

int shmrt_backend_get(const char *name, const struct shmrt_backend **out)
{
	shmrt_clear_error();
	*out = NULL;
	const struct registry_entry *e = find(name);
	if (!e)
		return shmrt_fail(ENOENT, "unknown backend '%s' (known: cpu-ref, cpu, cuda)", name);
	return e->open(out);
}

int shmrt_backend_device(const char *name)
{
	const struct registry_entry *e = find(name);
	return e ? (int)e->device : -ENOENT;
}

/* Storage types: sizes and names (shmrt/dtype.h). */
#include <errno.h>
#include <strings.h>

#include "shmrt/dtype.h"
#include "array_size.h"

struct dtype_info {
	enum shmrt_dtype dt;
	const char *name;
	int block;          /* elements */
	size_t block_bytes; /* bytes */
};

/* Block sizes: GGML's ggml-common.h (QK8_0 = QK4_0 = QK4_1 = 32,
 * QK_K = 256; block_q4_K 2*2 + 12 + 128 bytes, block_q5_K 2*2 + 12 + 32 +
 * 128, block_q6_K 128 + 64 + 16 + 2). */
static const struct dtype_info infos[] = {
	{SHMRT_F32, "f32", 1, 4},      {SHMRT_BF16, "bf16", 1, 2},    {SHMRT_F16, "f16", 1, 2},
	{SHMRT_Q8_0, "q8_0", 32, 34},  {SHMRT_Q4_0, "q4_0", 32, 18},  {SHMRT_Q4_1, "q4_1", 32, 20},
	{SHMRT_Q4_K, "q4_k", 256, 144}, {SHMRT_Q5_K, "q5_k", 256, 176}, {SHMRT_Q6_K, "q6_k", 256, 210},
};

static const struct dtype_info *info(enum shmrt_dtype dt)
{
	for (size_t i = 0; i < ARRAY_SIZE(infos); i++)
		if (infos[i].dt == dt)
			return &infos[i];
	return NULL;
}

size_t shmrt_dtype_size(enum shmrt_dtype dt)
{
	const struct dtype_info *d = info(dt);
	return d && d->block == 1 ? d->block_bytes : 0;
}

const char *shmrt_dtype_name(enum shmrt_dtype dt)
{
	const struct dtype_info *d = info(dt);
	return d ? d->name : "?";
}

int shmrt_dtype_from_name(const char *name, enum shmrt_dtype *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(infos); i++)
		if (!strcasecmp(name, infos[i].name)) {
			*out = infos[i].dt;
			return 0;
		}
	return -ENOENT;
}

int shmrt_dtype_block(enum shmrt_dtype dt)
{
	const struct dtype_info *d = info(dt);
	return d ? d->block : 0;
}

size_t shmrt_dtype_block_bytes(enum shmrt_dtype dt)
{
	const struct dtype_info *d = info(dt);
	return d ? d->block_bytes : 0;
}

bool shmrt_dtype_is_quantized(enum shmrt_dtype dt)
{
	const struct dtype_info *d = info(dt);
	return d && d->block > 1;
}

uint64_t shmrt_dtype_row_bytes(enum shmrt_dtype dt, int64_t n)
{
	const struct dtype_info *d = info(dt);
	if (!d || n < 0 || n % d->block)
		return 0;
	return (uint64_t)(n / d->block) * d->block_bytes;
}

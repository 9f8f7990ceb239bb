/* Storage types: sizes and names (shmrt/dtype.h). */
#include "shmrt/dtype.h"

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

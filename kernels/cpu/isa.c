/* Run-time choice of the x86 vector level (cpu_isa.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "cpu_isa.h"
#include "fail.h"

static _Atomic int chosen = -1;

#if defined(__x86_64__) || defined(__i386__)
/* CPUID leaf 7 sub-leaf 1, EAX bit 5 (Intel SDM vol. 2, CPUID): GCC 12's
 * __builtin_cpu_supports does not know "avx512bf16". The OS saves the
 * ZMM state already (avx512f above is checked against XCR0). */
static int has_avx512_bf16(void)
{
	unsigned eax, ebx, ecx, edx;
	if (__get_cpuid_max(0, NULL) < 7)
		return 0;
	__cpuid_count(7, 1, eax, ebx, ecx, edx);
	return (eax >> 5) & 1;
}
#endif

enum shmrt_cpu_isa shmrt_cpu_isa_best(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
		return has_avx512_bf16() ? SHMRT_ISA_AVX512BF16 : SHMRT_ISA_AVX512VNNI;
	if (__builtin_cpu_supports("avx512f"))
		return SHMRT_ISA_AVX512;
	/* clang 14's __builtin_cpu_supports does not know "f16c": cpuid 1 */
	unsigned eax, ebx, ecx = 0, edx;
	__get_cpuid(1, &eax, &ebx, &ecx, &edx);
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && (ecx & bit_F16C))
		return SHMRT_ISA_AVX2;
#endif
	return SHMRT_ISA_GENERIC;
}

const char *shmrt_cpu_isa_name(enum shmrt_cpu_isa isa)
{
	static const char *const names[] = {"generic", "avx2", "avx512", "avx512vnni", "avx512bf16"};
	return (unsigned)isa < sizeof(names) / sizeof(names[0]) ? names[isa] : "?";
}

int shmrt_cpu_set_isa(enum shmrt_cpu_isa isa)
{
	if ((unsigned)isa > (unsigned)shmrt_cpu_isa_best())
		return shmrt_fail(ENOTSUP, "this CPU lacks %s", shmrt_cpu_isa_name(isa));
	atomic_store(&chosen, (int)isa);
	return 0;
}

enum shmrt_cpu_isa shmrt_cpu_isa(void)
{
	int isa = atomic_load(&chosen);
	if (isa >= 0)
		return (enum shmrt_cpu_isa)isa;
	int best = shmrt_cpu_isa_best();
	const char *env = getenv("SHMRT_CPU_ISA");
	isa = best;
	for (int i = 0; env && i <= best; i++)
		if (!strcmp(env, shmrt_cpu_isa_name((enum shmrt_cpu_isa)i)))
			isa = i;
	atomic_store(&chosen, isa);
	return (enum shmrt_cpu_isa)isa;
}

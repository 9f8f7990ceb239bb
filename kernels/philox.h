/* Internal: the counter-based random numbers of sampling, shared by the CPU
 * and CUDA backends so both draw the same numbers (hostdev.h).
 *
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
 * easy as 1, 2, 3", SC'11; the generator of cuRAND and PyTorch): a keyed
 * bijection of a 128-bit counter, so draw n of a stream costs the same as
 * draw 0 and needs no state. Checked against Random123's known-answer
 * vectors in tests/test_kernels_sample.c.
 *
 * Key = seed; counter = (step, seq_id): every (request, token) pair gets
 * its own independent draw whatever batch it runs in. */
#ifndef SHMRT_PHILOX_H
#define SHMRT_PHILOX_H

#include <stdint.h>

#include "hostdev.h"

static SHMRT_HD void shmrt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
	uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
	uint32_t k0 = key[0], k1 = key[1];
	for (int r = 0; r < 10; r++) {
		uint64_t p0 = (uint64_t)0xD2511F53u * c0;
		uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
		uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
		uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
		c1 = (uint32_t)p1;
		c3 = (uint32_t)p0;
		c0 = n0;
		c2 = n2;
		k0 += 0x9E3779B9u; /* Weyl sequence: golden ratio, sqrt(3) - 1 */
		k1 += 0xBB67AE85u;
	}
	out[0] = c0;
	out[1] = c1;
	out[2] = c2;
	out[3] = c3;
}

/* Four 32-bit words for (seed, seq_id, step). */
static SHMRT_HD void shmrt_rng_block(uint64_t seed, uint64_t seq_id, uint64_t step, uint32_t out[4])
{
	const uint32_t ctr[4] = {(uint32_t)step, (uint32_t)(step >> 32), (uint32_t)seq_id, (uint32_t)(seq_id >> 32)};
	const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
	shmrt_philox4x32_10(ctr, key, out);
}

/* A uniform float in [0, 1) with 24 random bits: what sampling draws. */
static SHMRT_HD float shmrt_rng_uniform(uint64_t seed, uint64_t seq_id, uint64_t step)
{
	uint32_t w[4];
	shmrt_rng_block(seed, seq_id, step, w);
	return (float)(w[0] >> 8) * 0x1p-24f;
}

#endif

/* Internal: RoPE's inverse frequencies, shared by the CPU and CUDA backends
 * (hostdev.h) so both rotate by the same angles. */
#ifndef SHMRT_ROPE_FREQ_H
#define SHMRT_ROPE_FREQ_H

#include <math.h>

#include "hostdev.h"
#include "shmrt/backend.h"

/* inv_freq of pair i (0 <= i < head_dim/2): theta^(-2i/head_dim), then,
 * for SHMRT_ROPE_LLAMA3, Llama 3.1's rescaling as Hugging Face transformers
 * computes it (modeling_rope_utils.py, _compute_llama3_parameters):
 * wavelengths shorter than original_max_position / high_freq_factor are
 * kept, longer than original_max_position / low_freq_factor are divided by
 * factor, and those between are blended by
 * smooth = (original_max_position / wavelen - low) / (high - low).
 * Computed in double and rounded once (HF computes in fp32; the results
 * differ by an ulp at most). */
static SHMRT_HD float shmrt_rope_inv_freq(const struct shmrt_rope_config *cfg, int head_dim, int i)
{
	double inv = 1.0 / pow((double)cfg->theta, (double)(2 * i) / head_dim);
	if (cfg->scaling != SHMRT_ROPE_LLAMA3)
		return (float)inv;
	double old_len = cfg->original_max_position;
	double low_wavelen = old_len / cfg->low_freq_factor;
	double high_wavelen = old_len / cfg->high_freq_factor;
	double wavelen = 2.0 * M_PI / inv;
	if (wavelen < high_wavelen)
		return (float)inv;
	if (wavelen > low_wavelen)
		return (float)(inv / cfg->factor);
	double smooth = (old_len / wavelen - cfg->low_freq_factor) /
			(cfg->high_freq_factor - cfg->low_freq_factor);
	return (float)((1.0 - smooth) * inv / cfg->factor + smooth * inv);
}

#endif

/* Internal: reference quantization of fp32 rows into llama.cpp's block
 * formats Q8_0, Q4_0 and Q4_K (quant_blocks.h), the one quantizer that
 * `shmrt quantize` (the GGUF writer) and `--quantize` at load share.
 *
 * Formulas after ggml-quants.c (quantize_row_q8_0_ref, quantize_row_q4_0_ref,
 * quantize_row_q4_K_ref and its make_qkx2_quants search); Q8_0 and Q4_0 give
 * the bytes of the `gguf` Python package's quantize (tests/gguf).
 *
 * Bounds (tests/test_quantize.c): per block of 32 with d its scale, Q8_0's
 * error is at most d/2 (+ the fp16 rounding of d: d = amax/127 rounded,
 * relative 2^-11); Q4_0's at most d/2 except the block's extreme, where it
 * may be up to d (q = 0 holds -8 d); Q4_K's at most half a step of its
 * sub-block plus the 6-bit rounding of the sub-block's scale and min. */
#ifndef SHMRT_QUANTIZE_H
#define SHMRT_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "shmrt/dtype.h"

/* One block (32 elements) of x into b. */
void shmrt_quantize_q8_0(const float *x, void *b);
void shmrt_quantize_q4_0(const float *x, void *b);
/* One super-block (256 elements) of x into b. */
void shmrt_quantize_q4_k(const float *x, void *b);

/* The types a weight may be quantized into (Q8_0, Q4_0, Q4_K). */
bool shmrt_quantize_supported(enum shmrt_dtype dt);

/* The type a row of cols elements is quantized into when want is asked:
 * want, or Q8_0 when the row is not whole blocks of want (llama.cpp's
 * fallback for the K-quants); false when it is not whole Q8_0 blocks
 * either (the row stays as it is). */
bool shmrt_quantize_row_type(enum shmrt_dtype want, int64_t cols, enum shmrt_dtype *out);

/* n elements of x (a whole number of dt's blocks) into out
 * (shmrt_dtype_row_bytes(dt, n) bytes): 0, or -EINVAL with a message when
 * dt is not one of the above or n not whole blocks. */
int shmrt_quantize_row(const float *x, int64_t n, enum shmrt_dtype dt, void *out);

#endif

/* Internal: a GGUF model file seen as a checkpoint (checkpoint.c opens a
 * .gguf through these): its hyperparameters as a model config
 * (gguf_config.c) and its tensors under the Hugging Face names the model
 * loads, with GGUF's shapes turned row-major (gguf_tensors.c).
 *
 * llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute)
 * reorders the rows of a llama model's q_proj and k_proj (and their
 * biases) within each head, so that its RoPE can rotate adjacent pairs:
 * GGUF row 2i + s of a head is Hugging Face row s * head_dim/2 + i. shmrt's
 * RoPE pairs dims i and i + head_dim/2 as Hugging Face does, so those
 * tensors are put back in Hugging Face order as they are loaded
 * (shmrt_gguf_unpermute); Qwen2 files are not permuted. */
#ifndef SHMRT_GGUF_MODEL_H
#define SHMRT_GGUF_MODEL_H

#include <stdint.h>

#include "gguf.h"
#include "safetensors.h"
#include "shmrt/model_config.h"

/* -EINVAL with a message when model is a file other than a GGUF file (it
 * would otherwise be taken for a directory without config.json). */
int shmrt_model_path_check(const char *model);

int shmrt_gguf_model_config(const struct shmrt_gguf *g, struct shmrt_model_config *out);

/* The tensors the model uses, named as in a Hugging Face checkpoint, their
 * file set to `file` (kept alive by the caller); head_rows[i] is the rows
 * per head of tensor i when its rows must be un-permuted, else 0 (one per
 * tensor, malloc'd). Tensors the model does not use are left out. */
int shmrt_gguf_tensor_table(const struct shmrt_gguf *g, const struct shmrt_model_config *cfg, const char *file,
			    struct shmrt_st_header *out, uint32_t **head_rows);

/* Puts rows of row_bytes at p (n_rows of them, whole heads of head_rows
 * each) from GGUF's order back into Hugging Face's. 0 or -ENOMEM. */
int shmrt_gguf_unpermute(void *p, uint64_t n_rows, uint64_t row_bytes, uint32_t head_rows);

/* The inverse: Hugging Face's order into GGUF's (the GGUF writer). */
int shmrt_gguf_permute(void *p, uint64_t n_rows, uint64_t row_bytes, uint32_t head_rows);

#endif

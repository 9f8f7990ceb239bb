/* shmrt — synthetic checkpoints for demos, tests and benchmarks.
 *
 * shmrt_mkmodel() writes a deterministic Hugging Face checkpoint directory:
 * config.json, model.safetensors and tokenizer.json. The same preset and
 * seed give the same bytes on every machine (integer random numbers from
 * Philox, rounded once to the preset's dtype), so a test can regenerate a
 * checkpoint from its seed instead of shipping it.
 *
 * Presets (Llama-family shapes; `shmrt mkmodel --help` lists them):
 *   tiny        Llama 3 style: GQA (4 heads, 2 kv heads), Llama 3 rope
 *               scaling, separate lm_head, bf16; about 1.4M parameters
 *   tiny-tied   Llama 2 style: no GQA, tied embeddings, default rope, f16
 *   tiny-qwen2  Qwen2: q/k/v biases, GQA, tied embeddings, f32
 *   small       Llama 3.2 style for benchmarks: 12 layers, hidden 768, GQA
 *               12/4, vocabulary 32000, tied, bf16; about 100M parameters
 *
 * Weights are uniform random numbers with the variance of a unit-gain
 * initialisation (linear layers 1/fan_in, norms 1 +- 0.2, embeddings
 * +-0.05), so logits are spread out and greedy decoding is stable against
 * rounding.
 *
 * The tokenizer is byte-level BPE (GPT-2's pre-tokenizer and byte table):
 * 256 byte tokens, merges learned from a built-in English text and then
 * deterministic letter merges up to the vocabulary size, and the special
 * tokens <|begin_of_text|> (bos, added in front by the post-processor) and
 * <|end_of_text|> (eos) as the last two ids. */
#ifndef SHMRT_MKMODEL_H
#define SHMRT_MKMODEL_H

#include "common.h"

/* Writes preset `preset` with `seed` into dir (created if missing; the
 * three files are replaced). -ENOENT for an unknown preset. */
SHMRT_API int shmrt_mkmodel(const char *preset, uint64_t seed, const char *dir);

/* The preset names, space separated. */
SHMRT_API const char *shmrt_mkmodel_presets(void);

#endif

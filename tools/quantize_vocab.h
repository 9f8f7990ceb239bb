/* `shmrt quantize`: a checkpoint's tokenizer.json as GGUF tokenizer
 * metadata (tokenizer.ggml.*), as llama.cpp's converter writes it for a
 * byte-level BPE tokenizer (convert_hf_to_gguf.py, get_vocab_base and
 * _set_vocab_gpt2): model "gpt2", the tokens by id (vocab_size of them,
 * "[PAD<id>]" for ids without one, type UNUSED), their types (NORMAL,
 * CONTROL for special added tokens, USER_DEFINED for the other added
 * ones), the merges as "a b" strings, bos/eos ids, add_bos/add_eos (from
 * the post-processor's template), and the pre-tokenizer's
 * name in llama.cpp's table ("gpt-2" for a plain ByteLevel pre-tokenizer,
 * else "default"). */
#ifndef SHMRT_TOOLS_QUANTIZE_VOCAB_H
#define SHMRT_TOOLS_QUANTIZE_VOCAB_H

#include "gguf_write.h"
#include "shmrt/model_config.h"

/* 0, or -errno with a message (a tokenizer.json that is not BPE, ids out
 * of the vocabulary). */
int quantize_vocab(const char *tokenizer_json, const struct shmrt_model_config *cfg, struct shmrt_gguf_writer *w);

#endif

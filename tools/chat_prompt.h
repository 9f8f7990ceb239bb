/* shmrt generate --chat: one user message through the model's chat
 * template (serve/chat_template.c: tokenizer_config.json's, or a GGUF
 * file's tokenizer.chat_template), encoded as the server encodes a chat
 * request (the template's special tokens as tokens, no BOS added: the
 * template writes it where the model wants one). */
#ifndef SHMRT_TOOLS_CHAT_PROMPT_H
#define SHMRT_TOOLS_CHAT_PROMPT_H

#include <stdint.h>

#include "shmrt/shmrt.h"

/* text into ids with the tokenizer's flags (*ids malloc'd): their count,
 * or -errno after "shmrt generate: cannot encode WHAT: why" on stderr. */
int encode_text(struct shmrt_tokenizer *tok, const char *text, unsigned flags, const char *what, int32_t **ids);

/* model: the checkpoint directory or .gguf file tok was loaded from. The
 * ids (malloc'd) and their count, or -errno after printing why. */
int chat_prompt_ids(const char *model, struct shmrt_tokenizer *tok, const char *user, int32_t **ids);

/* The same for the runtime called name: its model and tokenizer. */
int chat_prompt_ids_by_name(const char *name, const char *user, int32_t **ids);

#endif

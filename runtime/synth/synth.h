/* Internal: the synthetic checkpoint's tokenizer (synth/tokenizer.c). */
#ifndef SHMRT_MKMODEL_IMPL_H
#define SHMRT_MKMODEL_IMPL_H

/* Writes a byte-level BPE tokenizer.json of vocab_size ids (at least 258):
 * bytes 0..255 are ids 0..255, then merges, then <|begin_of_text|> and
 * <|end_of_text|> as the last two (mkmodel.h). */
int shmrt_mkmodel_tokenizer(const char *path, int vocab_size);

#endif

/* Internal: the tokenizer.json normalizer: Unicode normalization forms
 * (through utf8proc), Prepend and Replace, alone or in a Sequence. */
#ifndef SHMRT_NORMALIZER_H
#define SHMRT_NORMALIZER_H

#include <stddef.h>

#include <jansson.h>

#include "json_read.h"

struct tok_normalizer;

/* Builds the normalizer described by j; a null j gives *out = NULL (no
 * normalization). Unsupported types are -ENOTSUP. */
int tok_normalizer_parse(json_t *j, struct tok_json_at at, struct tok_normalizer **out);

/* Normalizes s[0..n); *res points to the result, valid until the next call
 * (s itself when nz is NULL). Bytes that are not UTF-8 pass through. */
int tok_normalize(struct tok_normalizer *nz, const char *s, size_t n, const char **res, size_t *res_n);

void tok_normalizer_free(struct tok_normalizer *nz);

#endif

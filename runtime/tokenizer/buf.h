/* Internal: growable byte and id arrays for the tokenizer. */
#ifndef SHMRT_TOK_BUF_H
#define SHMRT_TOK_BUF_H

#include <stddef.h>
#include <stdint.h>

struct tok_buf {
	char *p;
	size_t n, cap;
};

struct tok_ids {
	int32_t *v;
	size_t n, cap;
};

/* Room for extra more bytes; 0 or -ENOMEM (with the message set). */
int tok_buf_reserve(struct tok_buf *b, size_t extra);
int tok_buf_append(struct tok_buf *b, const void *p, size_t n);
void tok_buf_free(struct tok_buf *b);

int tok_ids_push(struct tok_ids *a, int32_t id);
int tok_ids_append(struct tok_ids *a, const int32_t *ids, size_t n);
void tok_ids_free(struct tok_ids *a);

#endif

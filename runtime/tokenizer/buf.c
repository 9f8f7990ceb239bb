/* Growable byte and id arrays (buf.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "buf.h"

/* Grows *p (of *cap elements of size elem) to hold need elements. */
static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t cap2 = *cap ? *cap : 64;
	while (cap2 < need) {
		if (cap2 > SIZE_MAX / 2 / elem)
			return shmrt_fail(ENOMEM, "tokenizer: buffer of %zu elements is too large", need);
		cap2 *= 2;
	}
	void *q = realloc(*p, cap2 * elem);
	if (!q)
		return shmrt_fail(ENOMEM, "tokenizer: out of memory (%zu bytes)", cap2 * elem);
	*p = q;
	*cap = cap2;
	return 0;
}

int tok_buf_reserve(struct tok_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->n)
		return shmrt_fail(ENOMEM, "tokenizer: buffer too large");
	return grow((void **)&b->p, &b->cap, b->n + extra, 1);
}

int tok_buf_append(struct tok_buf *b, const void *p, size_t n)
{
	int rc = tok_buf_reserve(b, n);
	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

void tok_buf_free(struct tok_buf *b)
{
	free(b->p);
	*b = (struct tok_buf){0};
}

int tok_ids_append(struct tok_ids *a, const int32_t *ids, size_t n)
{
	if (n > SIZE_MAX / sizeof(int32_t) - a->n)
		return shmrt_fail(ENOMEM, "tokenizer: too many ids");
	int rc = grow((void **)&a->v, &a->cap, a->n + n, sizeof(int32_t));
	if (rc < 0)
		return rc;
	if (n)
		memcpy(a->v + a->n, ids, n * sizeof(int32_t));
	a->n += n;
	return 0;
}

int tok_ids_push(struct tok_ids *a, int32_t id)
{
	return tok_ids_append(a, &id, 1);
}

void tok_ids_free(struct tok_ids *a)
{
	free(a->v);
	*a = (struct tok_ids){0};
}

/* Streaming detokenization (shmrt/tokenizer.h): each token's bytes join a
 * pending buffer, whose complete UTF-8 goes out; an unfinished character at
 * its end waits for the next token. Deciding byte by byte what is complete,
 * broken or unfinished gives the same text as converting the whole decoded
 * output at once (utf8.h), so the stream and shmrt_tokenizer_decode agree.
 * A run of ByteFallback byte tokens is held by the decoding itself until it
 * ends (decode_ids.c), since HF judges the run as a whole. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "shmrt/tokenizer.h"
#include "tokenizer_impl.h"
#include "utf8.h"

struct shmrt_detok_stream {
	const struct shmrt_tokenizer *tok;
	unsigned flags;
	struct tok_decoding dec;
	struct tok_buf pending;  /* decoded, not yet sent: an unfinished character */
	struct tok_buf out;      /* what the last call returned */
};

int shmrt_detok_stream_new(const struct shmrt_tokenizer *tok, unsigned flags, struct shmrt_detok_stream **out)
{
	shmrt_clear_error();
	if (!tok || !out)
		return shmrt_fail(EINVAL, "shmrt_detok_stream_new: a tokenizer and out are required");
	if (flags & ~(unsigned)(SHMRT_DECODE_SKIP_SPECIAL | SHMRT_DECODE_LOSSY))
		return shmrt_fail(EINVAL, "shmrt_detok_stream_new: unknown flags 0x%x", flags);
	struct shmrt_detok_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return shmrt_fail(ENOMEM, "shmrt_detok_stream_new: out of memory");
	s->tok = tok;
	s->flags = flags | SHMRT_DECODE_LOSSY;
	tok_decoding_begin(tok, &s->dec, s->flags);
	*out = s;
	return 0;
}

/* Sends what of pending is complete (everything, when final). */
static int emit(struct shmrt_detok_stream *s, bool final, const char **text)
{
	size_t used;
	s->out.n = 0;
	int rc = tok_utf8_lossy(s->pending.p ? s->pending.p : "", s->pending.n, final, &s->out, &used);
	if (rc < 0)
		return rc;
	if (used) {
		memmove(s->pending.p, s->pending.p + used, s->pending.n - used);
		s->pending.n -= used;
	}
	if (s->out.n > INT_MAX)
		return shmrt_fail(EOVERFLOW, "shmrt_detok_stream: %zu bytes do not fit an int", s->out.n);
	*text = s->out.p ? s->out.p : "";
	return (int)s->out.n;
}

int shmrt_detok_stream_push(struct shmrt_detok_stream *s, int32_t id, const char **text)
{
	shmrt_clear_error();
	if (!s || !text)
		return shmrt_fail(EINVAL, "shmrt_detok_stream_push: a stream and text are required");
	int rc = tok_decoding_push(s->tok, &s->dec, id, &s->pending);
	return rc < 0 ? rc : emit(s, false, text);
}

int shmrt_detok_stream_flush(struct shmrt_detok_stream *s, const char **text)
{
	shmrt_clear_error();
	if (!s || !text)
		return shmrt_fail(EINVAL, "shmrt_detok_stream_flush: a stream and text are required");
	int rc = tok_decoding_end(s->tok, &s->dec, &s->pending);
	if (rc == 0)
		rc = emit(s, true, text);
	s->pending.n = 0;
	tok_decoding_begin(s->tok, &s->dec, s->flags);
	return rc;
}

void shmrt_detok_stream_free(struct shmrt_detok_stream *s)
{
	if (!s)
		return;
	tok_decoding_free(&s->dec);
	tok_buf_free(&s->pending);
	tok_buf_free(&s->out);
	free(s);
}

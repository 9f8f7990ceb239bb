/* Server-sent events for stream: true (docs/SERVING.md, "OpenAI API"):
 * `data: <json>\n\n` per chunk, `data: [DONE]\n\n` at the end. The reply is
 * a libmicrohttpd callback response: in thread-per-connection mode the
 * callback may block, so it waits on the runtime's next chunk. When the
 * client goes away, the next write fails, libmicrohttpd frees the
 * response, and the free callback cancels what is still running: the
 * runtime frees its KV blocks. */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

/* A comment line after this long without a token, so that a client that
 * left is noticed (the write fails) and proxies keep the connection. */
#define KEEPALIVE_NS ((int64_t)5 * 1000000000)
#define WAIT_NS ((int64_t)200 * 1000000)

struct stream {
	struct serve *s;
	struct gen g;
	enum sse_kind kind;
	char model[256], id[64];
	long long created;
	int started, done;
	char *out;      /* bytes not yet handed to libmicrohttpd */
	size_t len, off;
	int64_t last_write;
	int next_choice; /* round robin over n choices */
};

static int emit(struct stream *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int emit(struct stream *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *more;
	int n = vasprintf(&more, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	char *joined = realloc(st->out, st->len + (size_t)n + 1);
	if (!joined) {
		free(more);
		return -ENOMEM;
	}
	memcpy(joined + st->len, more, (size_t)n + 1);
	free(more);
	st->out = joined;
	st->len += (size_t)n;
	st->last_write = serve_now_ns();
	return 0;
}

static int emit_json(struct stream *st, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (!text)
		return -ENOMEM;
	int rc = emit(st, "data: %s\n\n", text);
	free(text);
	return rc;
}

/* One chunk of choice i: a delta of text (NULL: none) and maybe its finish. */
static int emit_chunk(struct stream *st, int i, const char *text, size_t len, const char *finish, int role)
{
	json_t *choice;
	if (st->kind == SSE_CHAT) {
		json_t *delta = json_object();
		if (role)
			json_object_set_new(delta, "role", json_string("assistant"));
		if (text)
			json_object_set_new(delta, "content", json_stringn(text, len));
		choice = json_pack("{s:i, s:o, s:n, s:s?}", "index", i, "delta", delta, "logprobs", "finish_reason",
				   finish);
	} else {
		choice = json_pack("{s:i, s:s%, s:n, s:s?}", "index", i, "text", text ? text : "", text ? len : 0,
				   "logprobs", "finish_reason", finish);
	}
	json_t *doc = json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", st->id, "object",
				st->kind == SSE_CHAT ? "chat.completion.chunk" : "text_completion", "created",
				(json_int_t)st->created, "model", st->model, "choices", choice);
	if (doc && st->g.p.include_usage)
		json_object_set_new(doc, "usage", json_null());
	return emit_json(st, doc);
}

static int emit_end(struct stream *st)
{
	for (int i = 0; i < st->g.n; i++)
		if (st->g.c[i].finish == FINISH_ERROR || (st->g.c[i].finish == FINISH_ABORT && atomic_load(&st->s->stopping)))
			emit_json(st, error_object(MHD_HTTP_SERVICE_UNAVAILABLE, st->g.c[i].finish == FINISH_ERROR
										    ? st->g.c[i].error
										    : "the server is shutting down"));
	if (st->g.p.include_usage) {
		int completion = 0;
		for (int i = 0; i < st->g.n; i++)
			completion += st->g.c[i].n_generated;
		emit_json(st, json_pack("{s:s, s:s, s:I, s:s, s:[], s:{s:i, s:i, s:i}}", "id", st->id, "object",
					st->kind == SSE_CHAT ? "chat.completion.chunk" : "text_completion", "created",
					(json_int_t)st->created, "model", st->model, "choices", "usage",
					"prompt_tokens", st->g.n_ids, "completion_tokens", completion, "total_tokens",
					st->g.n_ids + completion));
	}
	st->done = 1;
	return emit(st, "data: [DONE]\n\n");
}

/* Waits for the next choice with something to say and writes its events. */
static int produce(struct stream *st)
{
	struct gen *g = &st->g;
	if (!st->started) {
		st->started = 1;
		if (st->kind == SSE_CHAT)
			for (int i = 0; i < g->n; i++)
				emit_chunk(st, i, "", 0, NULL, 1);
		return 0;
	}
	int open = 0;
	for (int k = 0; k < g->n; k++) {
		int i = (st->next_choice + k) % g->n;
		struct gen_choice *c = &g->c[i];
		if (c->reported)
			continue;
		open++;
		int rc = c->ended ? 1 : gen_step(g, i, g->n == 1 ? WAIT_NS : WAIT_NS / g->n);
		if (rc <= 0)
			continue;
		st->next_choice = (i + 1) % g->n;
		size_t upto = gen_emittable(g, i);
		if (upto > c->emitted)
			emit_chunk(st, i, c->text + c->emitted, upto - c->emitted, NULL, 0);
		c->emitted = upto;
		if (c->ended) {
			emit_chunk(st, i, st->kind == SSE_CHAT ? NULL : "", 0, finish_name(c->finish), 0);
			c->reported = 1;
		}
		return 0;
	}
	if (!open)
		return emit_end(st);
	if (atomic_load(&st->s->stopping) && serve_now_ns() > st->s->drain_deadline_ns)
		gen_cancel(g);
	else if (serve_now_ns() - st->last_write > KEEPALIVE_NS)
		return emit(st, ": keep-alive\n\n");
	return 0;
}

static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct stream *st = cls;
	while (st->off == st->len) {
		if (st->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		free(st->out);
		st->out = NULL;
		st->len = st->off = 0;
		if (produce(st) == -ENOMEM)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	size_t n = st->len - st->off < max ? st->len - st->off : max;
	memcpy(buf, st->out + st->off, n);
	st->off += n;
	return (ssize_t)n;
}

/* Called when the response is done with: the stream ended, or the client
 * left (then what still runs is cancelled by gen_free). */
static void free_stream(void *cls)
{
	struct stream *st = cls;
	gen_free(&st->g);
	free(st->out);
	free(st);
}

int sse_reply(struct serve *s, struct MHD_Connection *conn, struct gen *g, enum sse_kind kind, const char *model)
{
	struct stream *st = calloc(1, sizeof(*st));
	if (!st) {
		gen_free(g);
		return reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	st->s = s;
	st->g = *g;
	st->kind = kind;
	snprintf(st->model, sizeof(st->model), "%s", model);
	request_id(st->id, sizeof(st->id), kind == SSE_CHAT ? "chatcmpl" : "cmpl");
	st->created = (long long)time(NULL);
	st->last_write = serve_now_ns();
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_events, st,
								      free_stream);
	if (!resp) {
		free_stream(st);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	reply_status = MHD_HTTP_OK;
	int rc = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return rc;
}

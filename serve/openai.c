/* The OpenAI-compatible routes (docs/SERVING.md, "OpenAI API"):
 * POST /v1/completions, POST /v1/chat/completions (both with stream: true
 * as server-sent events) and GET /v1/models. */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

/* A model named in a request must be the one served (vLLM answers 404). */
static int check_model(struct serve *s, json_t *body, char *err, size_t cap)
{
	json_t *m = json_object_get(body, "model");
	if (!m || json_is_null(m))
		return 0;
	if (!json_is_string(m)) {
		snprintf(err, cap, "'model' must be a string");
		return MHD_HTTP_BAD_REQUEST;
	}
	if (strcmp(json_string_value(m), s->link.model_id)) {
		snprintf(err, cap, "The model '%.200s' does not exist; this server serves '%s'", json_string_value(m),
			 s->link.model_id);
		return MHD_HTTP_NOT_FOUND;
	}
	return 0;
}

/* A completion's prompt: a string, a list of token ids, or a list holding
 * one of those (one prompt per request). */
static int completion_prompt(struct serve *s, json_t *body, int32_t **ids, int *n, char *err, size_t cap)
{
	json_t *p = json_object_get(body, "prompt");
	if (json_is_array(p) && json_array_size(p) == 1 &&
	    (json_is_string(json_array_get(p, 0)) || json_is_array(json_array_get(p, 0))))
		p = json_array_get(p, 0);
	if (json_is_string(p)) {
		if (json_string_length(p) == 0) {
			snprintf(err, cap, "'prompt' is empty");
			return -EINVAL;
		}
		/* as the runtime encodes text (and `shmrt generate`): BOS, and
		 * special tokens in the text stay text */
		return link_encode(&s->link, json_string_value(p), json_string_length(p),
				   SHMRT_ENCODE_ADD_SPECIAL | SHMRT_ENCODE_SPECIAL_AS_TEXT, ids, n);
	}
	if (!json_is_array(p) || json_array_size(p) == 0) {
		snprintf(err, cap, "'prompt' must be a string or a list of token ids (one prompt per request)");
		return -EINVAL;
	}
	size_t count = json_array_size(p);
	int32_t *out = malloc(count * sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		json_t *t = json_array_get(p, i);
		json_int_t v = json_is_integer(t) ? json_integer_value(t) : -1;
		if (v < 0 || v >= s->link.info.vocab_size) {
			free(out);
			snprintf(err, cap, "'prompt' token %zu is not an id of the vocabulary (0 .. %d)", i,
				 s->link.info.vocab_size - 1);
			return -EINVAL;
		}
		out[i] = (int32_t)v;
	}
	*ids = out;
	*n = (int)count;
	return 0;
}

int openai_chat_prompt(struct serve *s, json_t *body, int32_t **ids, int *n, int *http, char *err, size_t cap)
{
	char *text = NULL;
	int rc = chat_template_render(&s->link.chat, json_object_get(body, "messages"), &text, err, cap);
	if (rc == 0) {
		/* The rendered template's special tokens are tokens (as
		 * apply_chat_template, vLLM and llama.cpp encode it); the
		 * template adds BOS itself where the model wants one. */
		rc = link_encode(&s->link, text, strlen(text), 0, ids, n);
		free(text);
		if (rc)
			snprintf(err, cap, "cannot encode the conversation: %s", shmrt_last_error());
	}
	*http = rc == -ENOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_BAD_REQUEST;
	return rc;
}

static json_t *usage(const struct gen *g)
{
	int completion = 0, prompt = g->n_ids;
	for (int i = 0; i < g->n; i++)
		completion += g->c[i].n_generated;
	return json_pack("{s:i, s:i, s:i}", "prompt_tokens", prompt, "completion_tokens", completion, "total_tokens",
			 prompt + completion);
}

/* A choice that ended in error makes the whole reply an error: 503 when
 * the runtime went away or is stopping (retry), else 500. */
static int failed(struct serve *s, struct MHD_Connection *conn, struct gen *g)
{
	for (int i = 0; i < g->n; i++) {
		struct gen_choice *c = &g->c[i];
		if (c->finish == FINISH_ERROR || (c->finish == FINISH_ABORT && atomic_load(&s->stopping))) {
			unsigned status = c->status == -ECONNRESET || c->status == -EPIPE || c->finish == FINISH_ABORT
						  ? MHD_HTTP_SERVICE_UNAVAILABLE
					  : c->status == -E2BIG || c->status == -EINVAL ? MHD_HTTP_BAD_REQUEST
											: MHD_HTTP_INTERNAL_SERVER_ERROR;
			return reply_error(conn, status, "%s",
					   c->finish == FINISH_ABORT ? "the server is shutting down" : c->error);
		}
	}
	return -1;
}

static json_t *text_value(const char *text, size_t len)
{
	json_t *j = json_stringn(text ? text : "", text ? len : 0);
	return j ? j : json_string("\xef\xbf\xbd"); /* never: the runtime sends UTF-8 */
}

static json_t *completion_object(struct gen *g, const char *model)
{
	char id[64];
	request_id(id, sizeof(id), "cmpl");
	json_t *choices = json_array();
	for (int i = 0; i < g->n; i++)
		json_array_append_new(choices, json_pack("{s:i, s:o, s:n, s:s}", "index", i, "text",
							 text_value(g->c[i].text, g->c[i].len), "logprobs",
							 "finish_reason", finish_name(g->c[i].finish)));
	return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", id, "object", "text_completion", "created",
			 (json_int_t)time(NULL), "model", model, "choices", choices, "usage", usage(g));
}

json_t *openai_chat_completion(struct gen *g, const char *model)
{
	char id[64];
	request_id(id, sizeof(id), "chatcmpl");
	json_t *choices = json_array();
	for (int i = 0; i < g->n; i++)
		json_array_append_new(
			choices, json_pack("{s:i, s:{s:s, s:o}, s:n, s:s}", "index", i, "message", "role", "assistant",
					   "content", text_value(g->c[i].text, g->c[i].len), "logprobs",
					   "finish_reason", finish_name(g->c[i].finish)));
	return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", id, "object", "chat.completion", "created",
			 (json_int_t)time(NULL), "model", model, "choices", choices, "usage", usage(g));
}

/* The common path of both routes: prompt, parameters, submit, then a
 * stream or one reply. */
static int complete(struct serve *s, struct MHD_Connection *conn, json_t *body, enum sse_kind kind)
{
	char err[1024];
	if (!json_is_object(body))
		return reply_error(conn, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
	struct gen_params p;
	params_defaults(&p, kind == SSE_CHAT ? 0 : 16); /* OpenAI's defaults: 16, chat: the rest of the context */
	if (params_read(&p, body, err, sizeof(err))) {
		gen_params_free(&p);
		return reply_error(conn, MHD_HTTP_BAD_REQUEST, "%s", err);
	}
	if (link_hold(&s->link, atomic_load(&s->stopping), err, sizeof(err))) {
		gen_params_free(&p);
		return reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	}
	int http = MHD_HTTP_BAD_REQUEST, rc;
	int32_t *ids = NULL;
	int n_ids = 0;
	if ((rc = check_model(s, body, err, sizeof(err)))) {
		http = rc;
	} else if (kind == SSE_CHAT) {
		rc = openai_chat_prompt(s, body, &ids, &n_ids, &http, err, sizeof(err));
	} else if ((rc = completion_prompt(s, body, &ids, &n_ids, err, sizeof(err))) == -ENOMEM) {
		http = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	if (rc) {
		link_release(&s->link);
		gen_params_free(&p);
		free(ids);
		return reply_error(conn, http, "%s", err);
	}
	char model[sizeof(s->link.model_id)];
	snprintf(model, sizeof(model), "%s", s->link.model_id);
	struct gen g;
	if (gen_submit(&g, s, ids, n_ids, &p, &http, err, sizeof(err))) {
		gen_free(&g);
		return reply_error(conn, http, "%s", err);
	}
	if (g.p.stream)
		return sse_reply(s, conn, &g, kind, model);
	gen_run(&g);
	rc = failed(s, conn, &g);
	if (rc < 0)
		rc = reply_json(conn, MHD_HTTP_OK,
				kind == SSE_CHAT ? openai_chat_completion(&g, model) : completion_object(&g, model));
	gen_free(&g);
	return rc;
}

int openai_completions(struct serve *s, struct MHD_Connection *conn, json_t *body)
{
	return complete(s, conn, body, SSE_COMPLETION);
}

int openai_chat(struct serve *s, struct MHD_Connection *conn, json_t *body)
{
	return complete(s, conn, body, SSE_CHAT);
}

int openai_models(struct serve *s, struct MHD_Connection *conn)
{
	char err[512];
	if (link_hold(&s->link, 0, err, sizeof(err)))
		return reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	json_t *doc = json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:i}]}", "object", "list", "data", "id",
				s->link.model_id, "object", "model", "created", (json_int_t)time(NULL), "owned_by",
				"shmrt", "max_model_len", s->link.info.max_model_len);
	link_release(&s->link);
	return reply_json(conn, MHD_HTTP_OK, doc);
}

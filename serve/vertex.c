/* Vertex AI's predict route (docs/SERVING.md, "Vertex AI"): POST
 * {"instances": [...], "parameters": {...}} -> {"predictions": [...]}, in
 * the field names of Google's vLLM Model Garden container, so that a
 * request written for it works here:
 *   instance: {"prompt", "max_tokens", "temperature", "top_p", "top_k", "n",
 *              "stop", "seed", "raw_response"} (a bare string is a prompt;
 *              TGI's "inputs" is read as the prompt too);
 *   "@requestFormat": "chatCompletions" makes the instance an OpenAI chat
 *   request ("messages", ...), whose prediction is the chat.completion.
 * Instance fields override parameters. Unlike Model Garden's server, which
 * reads instances[0] only, every instance runs, all submitted to the
 * runtime at once (one batch), predictions in instance order: n strings per
 * instance, "Prompt:\n<prompt>\nOutput:\n<text>" unless raw_response. */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

#define MAX_INSTANCES 256

struct instance {
	struct gen_params p;
	int32_t *ids;
	int n_ids;
	int chat;
	const char *prompt; /* in the request body */
	struct gen g;
	int submitted;
};

static const char *instance_prompt(json_t *inst)
{
	if (json_is_string(inst))
		return json_string_value(inst);
	json_t *p = json_object_get(inst, "prompt");
	if (!p)
		p = json_object_get(inst, "inputs");
	return json_is_string(p) && json_string_length(p) ? json_string_value(p) : NULL;
}

static int is_chat(json_t *inst)
{
	json_t *f = json_object_get(inst, "@requestFormat");
	return json_is_string(f) && !strcmp(json_string_value(f), "chatCompletions");
}

/* Parameters, prompt ids: what can be refused before anything runs. */
static int prepare(struct serve *s, struct instance *in, json_t *inst, json_t *params, int *http, char *err,
		   size_t cap)
{
	*http = MHD_HTTP_BAD_REQUEST;
	if (!json_is_object(inst) && !json_is_string(inst)) {
		snprintf(err, cap, "an instance must be an object or a string");
		return -EINVAL;
	}
	in->chat = is_chat(inst);
	params_defaults(&in->p, in->chat ? 0 : 16); /* vLLM's SamplingParams default: 16 */
	if ((params && params_read(&in->p, params, err, cap)) ||
	    (json_is_object(inst) && params_read(&in->p, inst, err, cap)))
		return -EINVAL;
	if (in->p.stream) {
		snprintf(err, cap, "streaming predictions are not supported: use /v1/completions with stream");
		return -EINVAL;
	}
	if (in->chat)
		return openai_chat_prompt(s, inst, &in->ids, &in->n_ids, http, err, cap);
	if (!(in->prompt = instance_prompt(inst))) {
		snprintf(err, cap, "the instance needs a non-empty string 'prompt'");
		return -EINVAL;
	}
	int rc = link_encode(&s->link, in->prompt, strlen(in->prompt),
			     SHMRT_ENCODE_ADD_SPECIAL | SHMRT_ENCODE_SPECIAL_AS_TEXT, &in->ids, &in->n_ids);
	if (rc) {
		*http = MHD_HTTP_INTERNAL_SERVER_ERROR;
		snprintf(err, cap, "cannot encode the prompt: %s", shmrt_last_error());
	}
	return rc;
}

static json_t *stripped(const char *s, size_t len, const char *chars)
{
	while (len && strchr(chars, s[len - 1]))
		len--;
	while (len && strchr(chars, *s))
		s++, len--;
	return json_stringn(s, len);
}

/* Model Garden's form: "Prompt:\n" + prompt.strip() + "\nOutput:\n" + text.strip("\n"). */
static json_t *prediction(const struct instance *in, const struct gen_choice *c)
{
	const char *text = c->text ? c->text : "";
	if (in->g.p.raw_response)
		return json_stringn(text, c->len);
	json_t *p = stripped(in->prompt, strlen(in->prompt), " \t\n\r\v\f"), *t = stripped(text, c->len, "\n");
	json_t *out = p && t ? json_sprintf("Prompt:\n%s\nOutput:\n%s", json_string_value(p), json_string_value(t))
			     : NULL;
	json_decref(p);
	json_decref(t);
	return out;
}

static int reply_predictions(struct serve *s, struct MHD_Connection *conn, struct instance *in, size_t n)
{
	json_t *preds = json_array();
	for (size_t i = 0; i < n; i++) {
		struct gen *g = &in[i].g;
		for (int k = 0; k < g->n; k++) {
			struct gen_choice *c = &g->c[k];
			if (c->finish == FINISH_ERROR || (c->finish == FINISH_ABORT && atomic_load(&s->stopping))) {
				json_decref(preds);
				return reply_error(conn,
						   c->status == -ECONNRESET || c->status == -EPIPE ||
								   c->finish == FINISH_ABORT
							   ? MHD_HTTP_SERVICE_UNAVAILABLE
							   : MHD_HTTP_INTERNAL_SERVER_ERROR,
						   "instance %zu: %s", i,
						   c->finish == FINISH_ABORT ? "the server is shutting down" : c->error);
			}
		}
		if (in[i].chat)
			json_array_append_new(preds, openai_chat_completion(g, s->link.model_id));
		else
			for (int k = 0; k < g->n; k++)
				json_array_append_new(preds, prediction(&in[i], &g->c[k]));
	}
	return reply_json(conn, MHD_HTTP_OK, json_pack("{s:o}", "predictions", preds));
}

int vertex_predict(struct serve *s, struct MHD_Connection *conn, json_t *body)
{
	json_t *insts = json_object_get(body, "instances"), *params = json_object_get(body, "parameters");
	if (!json_is_object(body) || !json_is_array(insts) || json_array_size(insts) == 0)
		return reply_error(conn, MHD_HTTP_BAD_REQUEST, "the body must be {\"instances\": [...], \"parameters\": {...}}");
	if (json_array_size(insts) > MAX_INSTANCES)
		return reply_error(conn, MHD_HTTP_BAD_REQUEST, "at most %d instances per request", MAX_INSTANCES);
	if (params && !json_is_null(params) && !json_is_object(params))
		return reply_error(conn, MHD_HTTP_BAD_REQUEST, "'parameters' must be an object");
	if (json_is_null(params))
		params = NULL;
	size_t n = json_array_size(insts);
	struct instance *in = calloc(n, sizeof(*in));
	if (!in)
		return reply_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	char err[1024], msg[1100];
	int http = 0, rc = 0;
	size_t i;
	if (link_hold(&s->link, atomic_load(&s->stopping), err, sizeof(err))) {
		free(in);
		return reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", err);
	}
	/* Refuse a bad instance before any runs... */
	for (i = 0; i < n && !rc; i++)
		if ((rc = prepare(s, &in[i], json_array_get(insts, i), params, &http, err, sizeof(err))))
			snprintf(msg, sizeof(msg), "instance %zu: %s", i, err);
	/* ...then submit all at once, each with a hold of its own. */
	for (i = 0; i < n && !rc; i++) {
		if (link_hold(&s->link, 0, err, sizeof(err))) { /* the runtime left READY meanwhile */
			http = MHD_HTTP_SERVICE_UNAVAILABLE;
			snprintf(msg, sizeof(msg), "%s", err);
			rc = -1;
			break;
		}
		in[i].submitted = 1;
		if ((rc = gen_submit(&in[i].g, s, in[i].ids, in[i].n_ids, &in[i].p, &http, err, sizeof(err))))
			snprintf(msg, sizeof(msg), "instance %zu: %s", i, err);
		in[i].ids = NULL; /* the gen's now */
		memset(&in[i].p, 0, sizeof(in[i].p));
	}
	link_release(&s->link);
	if (rc == 0) {
		for (i = 0; i < n; i++)
			gen_run(&in[i].g);
		rc = reply_predictions(s, conn, in, n);
	} else {
		rc = reply_error(conn, http, "%s", msg);
	}
	for (i = 0; i < n; i++) {
		if (in[i].submitted)
			gen_free(&in[i].g);
		gen_params_free(&in[i].p);
		free(in[i].ids);
	}
	free(in);
	return rc;
}

/* shmrt generate --name NAME: through the client API (generate_name.h). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "generate_name.h"

static const char *finish_name(enum shmrt_client_finish f)
{
	static const char *names[] = {"running", "length", "stop", "cancelled", "error"};
	return (unsigned)f < 5 ? names[f] : "?";
}

int generate_by_name(const struct generate_remote *g)
{
	struct shmrt_client *c;
	if (shmrt_client_attach(&c, g->name) < 0) {
		fprintf(stderr, "shmrt generate: %s\n", shmrt_last_error());
		return 1;
	}
	struct shmrt_request r = {.text = g->prompt, .text_len = g->prompt ? strlen(g->prompt) : 0,
				  .tokens = g->tokens, .n_tokens = g->n_tokens, .add_special = 1,
				  .max_tokens = g->max_tokens, .temperature = (float)g->temperature,
				  .top_p = (float)g->top_p, .seed = g->seed, .ignore_eos = g->ignore_eos};
	uint64_t id;
	int rc = shmrt_client_submit(c, &r, &id);
	json_t *ids = json_array();
	char *text = NULL;
	size_t len = 0;
	struct shmrt_response out = {0};
	while (rc == 0) {
		if ((rc = shmrt_client_next(c, id, &out, SHMRT_WAIT_FOREVER)) < 0)
			break;
		if (out.token >= 0)
			json_array_append_new(ids, json_integer(out.token));
		if (g->json) {
			char *t = realloc(text, len + out.text_len + 1);
			if (!t) {
				rc = -ENOMEM;
				break;
			}
			memcpy(t + len, out.text, out.text_len);
			len += out.text_len;
			text = t;
		} else {
			fwrite(out.text, 1, out.text_len, stdout);
			fflush(stdout);
		}
		if (out.finish)
			break;
	}
	if (rc == 0 && out.status)
		rc = out.status;
	if (rc < 0) {
		fprintf(stderr, "\nshmrt generate: %s\n", shmrt_last_error());
	} else if (g->json) {
		json_t *doc = json_pack("{s:s, s:i, s:i, s:o, s:s#, s:s, s:{s:f, s:f}}", "name", g->name, "prompt_tokens",
					out.n_prompt, "new_tokens", out.n_generated, "tokens", ids, "text",
					text ? text : "", len, "finish_reason", finish_name(out.finish), "timing",
					"first_token_seconds", out.first_token_s, "total_seconds", out.total_s);
		ids = NULL;
		json_dumpf(doc, stdout, JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(doc);
	} else {
		putchar('\n');
		fprintf(stderr, "[%d prompt tokens; %d new tokens, first after %.3f s, %.1f tokens/s after it; %s]\n",
			out.n_prompt, out.n_generated, out.first_token_s,
			out.n_generated > 1 && out.total_s > out.first_token_s
				? (out.n_generated - 1) / (out.total_s - out.first_token_s)
				: 0.0,
			finish_name(out.finish));
	}
	json_decref(ids);
	free(text);
	shmrt_client_detach(c);
	return rc < 0 ? 1 : 0;
}

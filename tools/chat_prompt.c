/* shmrt generate --chat (chat_prompt.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_prompt.h"
#include "../serve/serve.h"

int encode_text(struct shmrt_tokenizer *tok, const char *text, unsigned flags, const char *what, int32_t **ids)
{
	size_t len = strlen(text);
	int n = shmrt_tokenizer_encode(tok, text, len, flags, NULL, 0);
	if (n >= 0 && (*ids = malloc(((size_t)n + 1) * sizeof(int32_t))))
		n = shmrt_tokenizer_encode(tok, text, len, flags, *ids, (size_t)n);
	else if (n >= 0)
		n = -ENOMEM;
	if (n < 0)
		fprintf(stderr, "shmrt generate: cannot encode %s: %s\n", what,
			n == -ENOMEM ? "no memory" : shmrt_last_error());
	return n;
}

int chat_prompt_ids(const char *model, struct shmrt_tokenizer *tok, const char *user, int32_t **ids)
{
	struct chat_template t;
	int rc = shmrt_model_path_is_gguf(model) ? chat_template_from_tokenizer(&t, tok) : chat_template_load(&t, model);
	if (rc) {
		fprintf(stderr, "shmrt generate: cannot read the chat template of %s\n", model);
		return rc;
	}
	json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", user);
	char *text = NULL, err[256] = "";
	if (!msgs)
		rc = -ENOMEM;
	else if (t.style == CHAT_NONE)
		rc = -ENOTSUP;
	else
		rc = chat_template_render(&t, msgs, &text, err, sizeof(err));
	if (rc == -ENOTSUP)
		fprintf(stderr, "shmrt generate: --chat: %s (use --prompt)\n", t.why_none ? t.why_none : "no chat template");
	else if (rc)
		fprintf(stderr, "shmrt generate: --chat: %s\n", *err ? err : strerror(-rc));
	/* without BOS, special tokens parsed (openai_chat_prompt's way) */
	if (!rc)
		rc = encode_text(tok, text, 0, "the conversation", ids);
	free(text);
	json_decref(msgs);
	chat_template_free(&t);
	return rc;
}

int chat_prompt_ids_by_name(const char *name, const char *user, int32_t **ids)
{
	struct shmrt_client *c;
	struct shmrt_runtime_info info;
	struct shmrt_tokenizer *tok = NULL;
	char path[4200];
	int rc = shmrt_client_attach(&c, name);
	if (rc == 0) {
		rc = shmrt_client_info(c, &info);
		shmrt_client_detach(c);
	}
	if (rc == 0 && (rc = shmrt_model_path_tokenizer(info.model_dir, path, sizeof(path))) == 0)
		rc = shmrt_tokenizer_load(path, NULL, &tok);
	if (rc) {
		fprintf(stderr, "shmrt generate: %s\n", shmrt_last_error());
		return rc;
	}
	rc = chat_prompt_ids(info.model_dir, tok, user, ids);
	shmrt_tokenizer_free(tok);
	return rc;
}

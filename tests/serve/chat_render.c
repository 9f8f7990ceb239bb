/* chat_render MODEL MESSAGES.json: renders the conversation with MODEL's
 * template (a directory's tokenizer_config.json, or a GGUF file's
 * tokenizer.chat_template) as shmrt serve does (serve/chat_template.c) and
 * prints it; exit 3 with the message when the template refuses it. For
 * chat_template_golden.py, which compares with python3-jinja2. */
#include <stdio.h>
#include <stdlib.h>

#include "../../serve/serve.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: chat_render MODEL MESSAGES.json\n");
		return 2;
	}
	struct chat_template t;
	struct shmrt_tokenizer *tok = NULL;
	if (shmrt_model_path_is_gguf(argv[1])) {
		if (shmrt_tokenizer_load(argv[1], NULL, &tok) || chat_template_from_tokenizer(&t, tok)) {
			fprintf(stderr, "cannot load %s: %s\n", argv[1], shmrt_last_error());
			return 1;
		}
	} else if (chat_template_load(&t, argv[1])) {
		fprintf(stderr, "cannot load %s/tokenizer_config.json\n", argv[1]);
		return 1;
	}
	json_error_t je;
	json_t *msgs = json_load_file(argv[2], 0, &je);
	if (!msgs) {
		fprintf(stderr, "%s: %s\n", argv[2], je.text);
		return 1;
	}
	char *out = NULL, err[512];
	int rc = chat_template_render(&t, msgs, &out, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s\n", err);
	} else {
		fputs(out, stdout);
		free(out);
	}
	json_decref(msgs);
	chat_template_free(&t);
	shmrt_tokenizer_free(tok);
	return rc ? 3 : 0;
}

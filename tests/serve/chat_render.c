/* chat_render DIR MESSAGES.json: renders the conversation with DIR's
 * tokenizer_config.json as shmrt serve does (serve/chat_template.c) and
 * prints it; exit 3 with the message when the template refuses it. For
 * chat_template_golden.py, which compares with python3-jinja2. */
#include <stdio.h>
#include <stdlib.h>

#include "../../serve/serve.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: chat_render DIR MESSAGES.json\n");
		return 2;
	}
	struct chat_template t;
	if (chat_template_load(&t, argv[1])) {
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
	return rc ? 3 : 0;
}

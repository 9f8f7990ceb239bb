/* What --model names: a checkpoint directory or a GGUF file (checkpoint.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "shmrt/checkpoint.h"
#include "fail.h"
#include "gguf_model.h"

bool shmrt_model_path_is_gguf(const char *model)
{
	struct stat st;
	return stat(model, &st) == 0 && S_ISREG(st.st_mode) && shmrt_gguf_is_gguf(model);
}

int shmrt_model_path_check(const char *model)
{
	struct stat st;
	if (stat(model, &st) == 0 && !S_ISDIR(st.st_mode) && !shmrt_gguf_is_gguf(model))
		return shmrt_fail(EINVAL, "%s: neither a checkpoint directory nor a GGUF file (it does not start with "
				  "\"GGUF\")", model);
	return 0;
}

int shmrt_model_path_config(const char *model, struct shmrt_model_config *out)
{
	shmrt_clear_error();
	int rc = shmrt_model_path_check(model);
	if (rc)
		return rc;
	if (shmrt_model_path_is_gguf(model)) {
		struct shmrt_gguf *g;
		int rc = shmrt_gguf_open(model, &g);
		if (!rc)
			rc = shmrt_gguf_model_config(g, out);
		shmrt_gguf_close(g);
		return rc;
	}
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/config.json", model) >= sizeof(path))
		return shmrt_fail(ENAMETOOLONG, "%s: path too long", model);
	return shmrt_model_config_load(path, out);
}

int shmrt_model_path_tokenizer(const char *model, char *path, size_t cap)
{
	int n = shmrt_model_path_is_gguf(model) ? snprintf(path, cap, "%s", model)
						 : snprintf(path, cap, "%s/tokenizer.json", model);
	if (n < 0 || (size_t)n >= cap)
		return shmrt_fail(ENAMETOOLONG, "%s: path too long", model);
	return 0;
}

/* A model server's use of the runtime, built against an installed copy
 * with nothing but `pkg-config --cflags --libs shmrt` (scripts/dev.sh
 * test): starts the runtime (runtime.h) on a model with the shmrt program
 * given, streams a generation through the client API (client.h), stops.
 * Usage: pkgconfig_client SHMRT MODEL_DIR */
#include <shmrt/shmrt.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what)
{
	fprintf(stderr, "pkgconfig client: %s: %s\n", what, shmrt_last_error());
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: pkgconfig_client SHMRT MODEL_DIR\n");
		return 2;
	}
	struct shmrt_runtime_options o = {.model_dir = argv[2], .name = "pkgconfig-client", .exe = argv[1],
					  .max_seqs = 8, .kv_blocks = 64, .max_model_len = 128};
	struct shmrt_runtime *rt;
	struct shmrt_client *c;
	if (shmrt_runtime_start(&rt, &o) < 0)
		return fail("start");
	if (shmrt_runtime_wait_ready(rt, (int64_t)60 * 1000000000) < 0 || shmrt_client_attach(&c, o.name) < 0) {
		shmrt_runtime_stop(rt, 0);
		return fail("ready");
	}
	const char *prompt = "Hello";
	struct shmrt_request r = {.text = prompt, .text_len = strlen(prompt), .add_special = 1, .max_tokens = 16,
				  .ignore_eos = 1};
	uint64_t id;
	struct shmrt_response x = {0};
	int rc = shmrt_client_submit(c, &r, &id);
	while (rc == 0 && !x.finish && (rc = shmrt_client_next(c, id, &x, SHMRT_WAIT_FOREVER)) == 0)
		fwrite(x.text, 1, x.text_len, stdout);
	if (rc == 0 && (x.status || x.n_generated != 16))
		rc = -1;
	if (rc)
		fail("generate");
	else
		printf("\nshmrt %s linked through pkg-config: %d tokens through the runtime in %.3f s\n", shmrt_version(),
		       x.n_generated, x.total_s);
	shmrt_client_detach(c);
	shmrt_runtime_stop(rt, 0);
	return rc ? 1 : 0;
}

/* shmrt size: the shared memory the runtime's arena takes for a model and
 * serving limits, and the container settings to give it (runtime/sizing.h). */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "arena_space.h"
#include "cmd.h"
#include "sizing.h"
#include "token_list.h"

#define MARGIN_TEXT                                                                                         \
	"the arena plus a quarter for other users of /dev/shm (NCCL, PyTorch data loaders), rounded up to a " \
	"power of two below 1 GiB (64 MiB at least) and to whole GiB above"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmrt size (--model DIR | --config FILE) [--tp N] [--max-batch-tokens N]\n"
		"                  [--max-seqs N] [--max-model-len N] [--block-size N] [--kv-blocks N]\n"
		"                  [--clients N] [--json]\n\n"
		"The shared memory (/dev/shm) the runtime's arena takes for this model and these limits,\n"
		"region by region, and the container settings to give it: Docker --shm-size, Vertex AI\n"
		"sharedMemorySizeMb, a Kubernetes memory-backed emptyDir's sizeLimit.\n\n"
		"  --model DIR           a checkpoint directory (its config.json)\n"
		"  --config FILE         a config.json\n"
		"  --tp N                tensor-parallel workers (default 1)\n"
		"  --max-batch-tokens N  tokens per step (default %d)\n"
		"  --max-seqs N          sequences running at once (default %d)\n"
		"  --max-model-len N     prompt + output tokens (default: the model's context)\n"
		"  --block-size N        tokens per KV block (default %d)\n"
		"  --kv-blocks N         the KV cache's blocks, if known (default: as many as --max-seqs\n"
		"                        sequences of --max-model-len take; a step plan carries block ids)\n"
		"  --clients N           client response rings (default %d)\n"
		"  --json                one JSON document on stdout\n",
		SHMRT_SIZING_DEFAULT_MAX_BATCH_TOKENS, SHMRT_SIZING_DEFAULT_MAX_SEQS, SHMRT_SIZING_DEFAULT_BLOCK_SIZE,
		SHMRT_SIZING_DEFAULT_MAX_CLIENTS);
}

static double mib(uint64_t b)
{
	return (double)b / (1 << 20);
}

static void print_text(const struct shmrt_sizing *s, const char *docker, const char *k8s)
{
	const struct shmrt_sizing_params *p = &s->p;
	const struct shmrt_model_config *m = p->model;
	printf("model: %s, %d layers, hidden %d, context %d\n", shmrt_arch_name(m->arch), m->num_layers,
	       m->hidden_size, m->max_context);
	printf("limits: tp %d, max batch tokens %d, max seqs %d, max model len %d, KV blocks %d of %d tokens, "
	       "%d clients\n\n",
	       p->tp, p->max_batch_tokens, p->max_seqs, p->max_model_len, p->kv_blocks, p->block_size,
	       p->max_clients);
	printf("%-10s %14s %10s %14s %14s\n", "region", "bytes", "MiB", "ring capacity", "largest record");
	for (unsigned i = 0; i < s->n_regions; i++) {
		const struct shmrt_sizing_region *r = &s->regions[i];
		printf("%-10s %14llu %10.2f", r->name, (unsigned long long)r->bytes, mib(r->bytes));
		if (r->capacity)
			printf(" %14llu %14llu", (unsigned long long)r->capacity, (unsigned long long)r->max_record);
		printf("\n");
	}
	printf("%-10s %14llu %10.2f   (header and page alignment included)\n\n", "arena",
	       (unsigned long long)s->arena_bytes, mib(s->arena_bytes));
	if (p->tp > 1)
		printf("The largest all-reduce (%.1f MiB of activations) goes through the xfer staging in chunks.\n",
		       mib(s->allreduce_bytes));
	printf("Shared memory to give the container: %llu MiB (%s).\n", (unsigned long long)s->advised_mib,
	       MARGIN_TEXT);
	printf("  Docker:      docker run --shm-size=%s ...\n", docker);
	printf("  Vertex AI:   containerSpec.sharedMemorySizeMb: \"%llu\"\n", (unsigned long long)s->advised_mib);
	printf("  Kubernetes:  volume emptyDir: {medium: Memory, sizeLimit: %s} mounted at /dev/shm\n", k8s);
}

static int print_json(const struct shmrt_sizing *s, const char *docker, const char *k8s)
{
	const struct shmrt_sizing_params *p = &s->p;
	json_t *regions = json_array();
	for (unsigned i = 0; i < s->n_regions; i++) {
		const struct shmrt_sizing_region *r = &s->regions[i];
		json_array_append_new(regions, json_pack("{s:s, s:I, s:I, s:I}", "name", r->name, "bytes",
							 (json_int_t)r->bytes, "ring_capacity", (json_int_t)r->capacity,
							 "max_record", (json_int_t)r->max_record));
	}
	json_t *doc = json_pack(
		"{s:{s:s, s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i}, s:o, s:I, s:f, s:I, s:I, s:s, s:I, "
		"s:s, s:s}",
		"model", "arch", shmrt_arch_name(p->model->arch), "layers", p->model->num_layers, "hidden_size",
		p->model->hidden_size, "max_context", p->model->max_context, "limits", "tp", p->tp,
		"max_batch_tokens", p->max_batch_tokens, "max_seqs", p->max_seqs, "max_model_len", p->max_model_len,
		"block_size", p->block_size, "kv_blocks", p->kv_blocks, "clients", p->max_clients, "regions", regions,
		"arena_bytes", (json_int_t)s->arena_bytes, "arena_mib", mib(s->arena_bytes), "allreduce_bytes",
		(json_int_t)s->allreduce_bytes, "advised_mib", (json_int_t)s->advised_mib, "docker_shm_size", docker,
		"vertex_shared_memory_size_mb", (json_int_t)s->advised_mib, "kubernetes_size_limit", k8s, "margin",
		MARGIN_TEXT);
	if (!doc)
		return -1;
	json_dumpf(doc, stdout, JSON_INDENT(2));
	printf("\n");
	json_decref(doc);
	return 0;
}

int cmd_size(int argc, char **argv)
{
	const char *model_dir = NULL, *config = NULL;
	int json = 0;
	struct shmrt_sizing_params p = {0};
	static const struct option opts[] = {{"model", required_argument, 0, 'm'},
					     {"config", required_argument, 0, 'c'},
					     {"tp", required_argument, 0, 't'},
					     {"max-batch-tokens", required_argument, 0, 'b'},
					     {"max-seqs", required_argument, 0, 's'},
					     {"max-model-len", required_argument, 0, 'l'},
					     {"block-size", required_argument, 0, 'k'},
					     {"kv-blocks", required_argument, 0, 'n'},
					     {"clients", required_argument, 0, 'C'},
					     {"json", no_argument, 0, 'j'},
					     {"help", no_argument, 0, 'h'},
					     {0}};
	struct {
		int c;
		const char *name;
		int *dst;
	} ints[] = {{'t', "--tp", &p.tp},
		    {'b', "--max-batch-tokens", &p.max_batch_tokens},
		    {'s', "--max-seqs", &p.max_seqs},
		    {'l', "--max-model-len", &p.max_model_len},
		    {'k', "--block-size", &p.block_size},
		    {'n', "--kv-blocks", &p.kv_blocks},
		    {'C', "--clients", &p.max_clients}};
	for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
		if (c == 'm')
			model_dir = optarg;
		else if (c == 'c')
			config = optarg;
		else if (c == 'j')
			json = 1;
		else if (c == 'h')
			return usage(stdout), 0;
		else {
			size_t i = 0, n = sizeof(ints) / sizeof(ints[0]);
			while (i < n && ints[i].c != c)
				i++;
			long v;
			if (i == n || parse_int_arg("size", ints[i].name, optarg, 1, INT_MAX, &v))
				return usage(stderr), 2;
			*ints[i].dst = (int)v;
		}
	}
	if (optind < argc || !model_dir == !config) {
		fprintf(stderr, optind < argc ? "shmrt size: unexpected argument '%s'\n"
					      : "shmrt size: give one of --model DIR and --config FILE%s\n",
			optind < argc ? argv[optind] : "");
		return usage(stderr), 2;
	}
	char path[4096];
	if (model_dir)
		snprintf(path, sizeof(path), "%s/config.json", model_dir);
	else
		snprintf(path, sizeof(path), "%s", config);
	struct shmrt_model_config mc;
	if (shmrt_model_config_load(path, &mc) < 0) {
		fprintf(stderr, "shmrt size: %s\n", shmrt_last_error());
		return 1;
	}
	p.model = &mc;
	struct shmrt_sizing s;
	int rc = shmrt_sizing_compute(&p, &s);
	if (rc < 0) {
		fprintf(stderr, "shmrt size: %s\n", shmrt_last_error());
		return 2;
	}
	char docker[32], k8s[32];
	shmrt_shm_size_spellings(s.advised_mib, docker, k8s);
	if (json)
		return print_json(&s, docker, k8s) ? 1 : 0;
	print_text(&s, docker, k8s);
	return 0;
}

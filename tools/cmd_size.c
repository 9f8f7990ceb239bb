/* shmrt size: the shared memory the runtime's arena takes for a model and
 * serving limits, and the container settings to give it (runtime/procs/sizing.h). */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shmrt/shmrt.h"
#include "arena_space.h"
#include "cmd.h"
#include "sizing.h"
#include "token_list.h"
#include "array_size.h"

#define MARGIN_TEXT                                                                                         \
	"the arena and the shares counted by name, plus a quarter for users not counted, rounded up to a " \
	"power of two below 1 GiB (64 MiB at least) and to whole GiB above"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmrt size (--model DIR | --config FILE) [--tp N] [--max-batch-tokens N]\n"
		"                  [--max-seqs N] [--max-model-len N] [--block-size N] [--kv-blocks N]\n"
		"                  [--clients N] [--xfer-chunk BYTES] [--no-p2p | --gpu NAME]\n"
		"                  [--nccl-channels N] [--from-bench FILE] [--json]\n\n"
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
		"  --xfer-chunk BYTES    the shm transport's chunk (tp > 1): a power of two, 4096 ..\n"
		"                        16777216 (default 65536); what `shmrt start --xfer-chunk` takes\n"
		"  --no-p2p              the tp GPUs cannot reach each other as peers (PCIe without P2P,\n"
		"                        e.g. L4): count NCCL's SHM transport, which then stages in\n"
		"                        /dev/shm, from $NCCL_BUFFSIZE, $NCCL_LL_BUFFSIZE,\n"
		"                        $NCCL_LL128_BUFFSIZE (NCCL's defaults when unset)\n"
		"  --gpu NAME            l4 (= --no-p2p), a100 or h100 (NVLink: NCCL uses P2P, no SHM)\n"
		"  --nccl-channels N     NCCL's channels (default %d; NCCL_DEBUG=INFO prints them)\n"
		"  --from-bench FILE     advise the knee of a `shmrt bench shm --json` curve, rather\n"
		"                        than the rule\n"
		"  --json                one JSON document on stdout\n\n"
		"Minimum: the arena in whole MiB, the smallest /dev/shm in which `shmrt start` starts\n"
		"(it reserves the whole arena with posix_fallocate, so nothing fails later).\n"
		"Advised: " MARGIN_TEXT ";\n"
		"with --from-bench: the knee (the smallest budget within 95%% of the best on every\n"
		"figure, else the one whose worst figure is the highest), at least the minimum, plus\n"
		"the shares of the other users, 64 MiB at least (Docker's default).\n",
		SHMRT_SIZING_DEFAULT_MAX_BATCH_TOKENS, SHMRT_SIZING_DEFAULT_MAX_SEQS, SHMRT_SIZING_DEFAULT_BLOCK_SIZE,
		SHMRT_SIZING_DEFAULT_MAX_CLIENTS, SHMRT_NCCL_DEFAULT_CHANNELS);
}

static double mib(uint64_t b)
{
	return (double)b / (1 << 20);
}

static uint64_t mib_up(uint64_t b)
{
	return (b + ((uint64_t)1 << 20) - 1) >> 20;
}

/* What to give the container: the arena, the other users counted by name,
 * and the advised value by the rule or the measured knee. */
struct advice {
	int no_p2p;
	struct shmrt_nccl_shm nccl; /* bytes 0: not counted */
	const char *bench;          /* --from-bench FILE, or NULL */
	uint64_t knee_mib;
	uint64_t needed_mib; /* the minimum and the shares */
	uint64_t advised_mib;
	char rule[4608];
};

static uint64_t env_bytes(const char *name)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long x = v && *v ? strtoull(v, &end, 0) : 0;
	return x && !*end ? (uint64_t)x : 0;
}

/* NCCL's SHM segments: only between GPUs without P2P (with P2P, NCCL's
 * P2P transport moves the data and /dev/shm holds none of it). */
static int count_nccl(const struct shmrt_sizing *s, struct advice *a)
{
	if (!a->no_p2p || s->p.tp < 2) {
		a->nccl.bytes = 0;
		return 0;
	}
	a->nccl.ranks = s->p.tp;
	a->nccl.buffsize = env_bytes("NCCL_BUFFSIZE");
	a->nccl.ll_buffsize = env_bytes("NCCL_LL_BUFFSIZE");
	a->nccl.ll128_buffsize = env_bytes("NCCL_LL128_BUFFSIZE");
	return shmrt_sizing_nccl_shm(&a->nccl);
}

/* The rows of `shmrt bench shm --json` (bench/shm.c writes them). */
static int read_knee(const char *file, uint64_t *knee)
{
	json_error_t err;
	json_t *doc = json_load_file(file, 0, &err), *rows = doc ? json_object_get(doc, "rows") : NULL;
	if (!json_is_array(rows) || json_array_size(rows) == 0 || json_array_size(rows) > 256) {
		fprintf(stderr, "shmrt size: %s: not a `shmrt bench shm --json` document (%s)\n", file,
			doc ? "no \"rows\"" : err.text);
		json_decref(doc);
		return -1;
	}
	struct shmrt_sizing_point pts[256];
	size_t n = json_array_size(rows);
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_array_get(rows, i);
		pts[i] = (struct shmrt_sizing_point){
			.budget_mib = (uint64_t)json_integer_value(json_object_get(r, "budget_mib")),
			.started = json_is_true(json_object_get(r, "started")),
			.figures = {json_number_value(json_object_get(r, "tokens_per_s_batch1")),
				    json_number_value(json_object_get(r, "tokens_per_s_batch_large")),
				    json_number_value(json_object_get(r, "allreduce_gbps"))}};
	}
	json_decref(doc);
	if (shmrt_sizing_knee(pts, (unsigned)n, knee) < 0) {
		fprintf(stderr, "shmrt size: %s: %s\n", file, shmrt_last_error());
		return -1;
	}
	return 0;
}

static int advise(const struct shmrt_sizing *s, struct advice *a)
{
	if (count_nccl(s, a) < 0) {
		fprintf(stderr, "shmrt size: %s\n", shmrt_last_error());
		return -1;
	}
	a->needed_mib = s->min_mib + mib_up(a->nccl.bytes);
	if (!a->bench) {
		a->advised_mib = shmrt_shm_advised_mib(s->arena_bytes + a->nccl.bytes);
		snprintf(a->rule, sizeof(a->rule), "%s", MARGIN_TEXT);
		return 0;
	}
	if (read_knee(a->bench, &a->knee_mib) < 0)
		return -1;
	uint64_t base = a->knee_mib > s->min_mib ? a->knee_mib : s->min_mib;
	a->advised_mib = base + mib_up(a->nccl.bytes);
	/* Docker's default: a container has that much anyway. */
	if (a->advised_mib < 64)
		a->advised_mib = 64;
	snprintf(a->rule, sizeof(a->rule),
		 "the knee of %s (%llu MiB: the smallest budget within %.0f%% of the best on every figure, else the "
		 "one whose worst figure is the highest), at least the minimum, plus the shares counted by name, "
		 "64 MiB at least",
		 a->bench, (unsigned long long)a->knee_mib, SHMRT_SIZING_KNEE_FRACTION * 100);
	return 0;
}

static void print_shares(const struct shmrt_sizing *s, const struct advice *a)
{
	printf("Minimum that starts: %llu MiB (the arena, %llu bytes, in whole MiB: shmrt start reserves it\n"
	       "  all with posix_fallocate and refuses a smaller /dev/shm with the figures to set).\n",
	       (unsigned long long)s->min_mib, (unsigned long long)s->arena_bytes);
	printf("Other users of /dev/shm, by name:\n");
	if (a->nccl.bytes)
		printf("  nccl_shm   %8.1f MiB  NCCL's SHM transport between %d GPUs without P2P, when NCCL runs there\n"
		       "                         (SHMRT_TRANSPORT=nccl, or another NCCL program in the container): %llu connections\n"
		       "                         (%d channels x (ring %d + tree %d)) x %.2f MiB (LL %llu + LL128 %llu +\n"
		       "                         SIMPLE %llu B + 2 header pages); 0 with NCCL_SHM_DISABLE=1 or NCCL >= 2.24\n"
		       "                         putting it in cuMem host memory (NCCL_CUMEM_HOST_ENABLE)\n",
		       mib(a->nccl.bytes), a->nccl.ranks, (unsigned long long)a->nccl.connections, a->nccl.channels,
		       a->nccl.ranks, 2 * (a->nccl.ranks - 1), mib(a->nccl.per_connection),
		       (unsigned long long)(a->nccl.ll_buffsize ? a->nccl.ll_buffsize : SHMRT_NCCL_DEFAULT_LL_BUFFSIZE),
		       (unsigned long long)(a->nccl.ll128_buffsize ? a->nccl.ll128_buffsize
								   : SHMRT_NCCL_DEFAULT_LL128_BUFFSIZE),
		       (unsigned long long)(a->nccl.buffsize ? a->nccl.buffsize : SHMRT_NCCL_DEFAULT_BUFFSIZE));
	else
		printf("  nccl_shm          0 MiB  %s\n",
		       s->p.tp < 2 ? "one worker: no NCCL"
				   : "not counted: CPU workers, or GPUs with P2P (NVLink, PCIe P2P), where NCCL's P2P "
				     "transport puts nothing in /dev/shm (--no-p2p or --gpu l4 if they lack it)");
	printf("  data loaders      0 MiB  PyTorch-style loader workers do not apply to inference\n");
	printf("Needed: %llu MiB.\n\n", (unsigned long long)a->needed_mib);
}

/* The weights' bytes as the checkpoint has them and with --quantize of
 * each type (shmrt_model_weight_bytes): device or host memory, not shared
 * memory, printed so that the saving is known before a load. */
static const int quantize_types[] = {0, SHMRT_Q8_0, SHMRT_Q4_0, SHMRT_Q4_K};

static void print_weights(const struct shmrt_model_config *m)
{
	uint64_t base = shmrt_model_weight_bytes(m, 0);
	printf("weights (not in shared memory; the whole model, all ranks):\n");
	for (size_t i = 0; i < ARRAY_SIZE(quantize_types); i++) {
		uint64_t b = shmrt_model_weight_bytes(m, quantize_types[i]);
		printf("  %-14s %14llu bytes %10.2f MiB", i ? shmrt_dtype_name((enum shmrt_dtype)quantize_types[i])
							: shmrt_dtype_name(m->dtype),
		       (unsigned long long)b, mib(b));
		if (i)
			printf("  --quantize %s saves %.2f MiB", shmrt_dtype_name((enum shmrt_dtype)quantize_types[i]),
			       mib(base - b));
		printf("\n");
	}
	printf("\n");
}

static json_t *json_weights(const struct shmrt_model_config *m)
{
	json_t *o = json_object();
	json_object_set_new(o, "checkpoint_dtype", json_string(shmrt_dtype_name(m->dtype)));
	for (size_t i = 0; i < ARRAY_SIZE(quantize_types); i++)
		json_object_set_new(o, i ? shmrt_dtype_name((enum shmrt_dtype)quantize_types[i]) : "checkpoint",
				    json_integer((json_int_t)shmrt_model_weight_bytes(m, quantize_types[i])));
	return o;
}

static void print_text(const struct shmrt_sizing *s, const struct advice *a, const char *docker, const char *k8s)
{
	const struct shmrt_sizing_params *p = &s->p;
	const struct shmrt_model_config *m = p->model;
	printf("model: %s, %d layers, hidden %d, context %d\n", shmrt_arch_name(m->arch), m->num_layers,
	       m->hidden_size, m->max_context);
	printf("limits: tp %d, max batch tokens %d, max seqs %d, max model len %d, KV blocks %d of %d tokens, "
	       "%d clients\n\n",
	       p->tp, p->max_batch_tokens, p->max_seqs, p->max_model_len, p->kv_blocks, p->block_size,
	       p->max_clients);
	print_weights(m);
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
		printf("The largest all-reduce (%.1f MiB of activations) goes through the xfer staging in %zu-byte "
		       "chunks.\n\n",
		       mib(s->allreduce_bytes), s->xfer_chunk);
	print_shares(s, a);
	printf("Shared memory to give the container: %llu MiB (%s).\n", (unsigned long long)a->advised_mib, a->rule);
	printf("  Docker:      docker run --shm-size=%s ...\n", docker);
	printf("  Vertex AI:   containerSpec.sharedMemorySizeMb: \"%llu\"\n", (unsigned long long)a->advised_mib);
	printf("  Kubernetes:  volume emptyDir: {medium: Memory, sizeLimit: %s} mounted at /dev/shm\n", k8s);
}

static json_t *json_shares(const struct shmrt_sizing *s, const struct advice *a)
{
	json_t *nccl = json_pack("{s:s, s:I, s:I, s:b}", "name", "nccl_shm", "bytes", (json_int_t)a->nccl.bytes,
				 "mib", (json_int_t)mib_up(a->nccl.bytes), "counted", a->nccl.bytes != 0);
	if (a->nccl.bytes)
		json_object_update_new(nccl, json_pack("{s:i, s:i, s:I, s:I}", "ranks", a->nccl.ranks, "channels",
						       a->nccl.channels, "connections",
						       (json_int_t)a->nccl.connections, "per_connection",
						       (json_int_t)a->nccl.per_connection));
	return json_pack("[{s:s, s:I, s:I}, o, {s:s, s:I, s:I, s:b}]", "name", "shmrt_arena", "bytes",
			 (json_int_t)s->arena_bytes, "mib", (json_int_t)s->min_mib, nccl, "name", "data_loaders",
			 "bytes", (json_int_t)0, "mib", (json_int_t)0, "counted", 0);
}

static int print_json(const struct shmrt_sizing *s, const struct advice *a, const char *docker, const char *k8s)
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
		"{s:{s:s, s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i}, s:o, s:I, s:f, s:I, s:I, s:I, s:I, "
		"s:s, s:I, s:s, s:s}",
		"model", "arch", shmrt_arch_name(p->model->arch), "layers", p->model->num_layers, "hidden_size",
		p->model->hidden_size, "max_context", p->model->max_context, "limits", "tp", p->tp,
		"max_batch_tokens", p->max_batch_tokens, "max_seqs", p->max_seqs, "max_model_len", p->max_model_len,
		"block_size", p->block_size, "kv_blocks", p->kv_blocks, "clients", p->max_clients, "regions", regions,
		"arena_bytes", (json_int_t)s->arena_bytes, "arena_mib", mib(s->arena_bytes), "allreduce_bytes",
		(json_int_t)s->allreduce_bytes, "xfer_chunk", (json_int_t)s->xfer_chunk, "min_mib",
		(json_int_t)s->min_mib, "advised_mib", (json_int_t)a->advised_mib, "docker_shm_size", docker,
		"vertex_shared_memory_size_mb", (json_int_t)a->advised_mib, "kubernetes_size_limit", k8s, "margin",
		a->rule);
	if (!doc)
		return -1;
	json_object_set_new(doc, "shares", json_shares(s, a));
	json_object_set_new(doc, "weight_bytes", json_weights(p->model));
	json_object_set_new(doc, "needed_mib", json_integer((json_int_t)a->needed_mib));
	json_object_set_new(doc, "knee_mib", a->bench ? json_integer((json_int_t)a->knee_mib) : json_null());
	json_object_set_new(doc, "no_p2p", json_boolean(a->no_p2p));
	json_dumpf(doc, stdout, JSON_INDENT(2));
	printf("\n");
	json_decref(doc);
	return 0;
}

/* --gpu NAME: whether its GPUs reach each other as peers. */
static int gpu_no_p2p(const char *name, int *no_p2p)
{
	/* L4: PCIe, no NVLink, and P2P is not enabled on it (NCCL falls back to
	 * SHM; SERVING.md section 5); A100 and H100 SXM: NVLink. */
	if (!strcasecmp(name, "l4"))
		*no_p2p = 1;
	else if (!strcasecmp(name, "a100") || !strcasecmp(name, "h100"))
		*no_p2p = 0;
	else {
		fprintf(stderr, "shmrt size: --gpu %s: l4, a100 or h100 (or --no-p2p for any GPU without P2P)\n",
			name);
		return -1;
	}
	return 0;
}

static int parse(int argc, char **argv, struct shmrt_sizing_params *p, struct advice *a, const char **model_dir,
		 const char **config, int *json)
{
	static const struct option opts[] = {{"model", required_argument, 0, 'm'},
					     {"config", required_argument, 0, 'c'},
					     {"tp", required_argument, 0, 't'},
					     {"max-batch-tokens", required_argument, 0, 'b'},
					     {"max-seqs", required_argument, 0, 's'},
					     {"max-model-len", required_argument, 0, 'l'},
					     {"block-size", required_argument, 0, 'k'},
					     {"kv-blocks", required_argument, 0, 'n'},
					     {"clients", required_argument, 0, 'C'},
					     {"xfer-chunk", required_argument, 0, 'x'},
					     {"nccl-channels", required_argument, 0, 'N'},
					     {"no-p2p", no_argument, 0, 'P'},
					     {"gpu", required_argument, 0, 'g'},
					     {"from-bench", required_argument, 0, 'B'},
					     {"json", no_argument, 0, 'j'},
					     {"help", no_argument, 0, 'h'},
					     {0}};
	int chunk = 0;
	struct {
		int c;
		const char *name;
		int *dst;
	} ints[] = {{'t', "--tp", &p->tp},
		    {'b', "--max-batch-tokens", &p->max_batch_tokens},
		    {'s', "--max-seqs", &p->max_seqs},
		    {'l', "--max-model-len", &p->max_model_len},
		    {'k', "--block-size", &p->block_size},
		    {'n', "--kv-blocks", &p->kv_blocks},
		    {'C', "--clients", &p->max_clients},
		    {'x', "--xfer-chunk", &chunk},
		    {'N', "--nccl-channels", &a->nccl.channels}};
	for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
		if (c == 'm')
			*model_dir = optarg;
		else if (c == 'c')
			*config = optarg;
		else if (c == 'j')
			*json = 1;
		else if (c == 'P')
			a->no_p2p = 1;
		else if (c == 'B')
			a->bench = optarg;
		else if (c == 'g') {
			if (gpu_no_p2p(optarg, &a->no_p2p))
				return 2;
		} else if (c == 'h')
			return usage(stdout), 0;
		else {
			size_t i = 0, n = ARRAY_SIZE(ints);
			while (i < n && ints[i].c != c)
				i++;
			long v;
			if (i == n || parse_int_arg("size", ints[i].name, optarg, 1, INT_MAX, &v))
				return usage(stderr), 2;
			*ints[i].dst = (int)v;
		}
	}
	p->xfer_chunk = (size_t)chunk;
	if (optind < argc || !*model_dir == !*config) {
		fprintf(stderr, optind < argc ? "shmrt size: unexpected argument '%s'\n"
					      : "shmrt size: give one of --model DIR and --config FILE%s\n",
			optind < argc ? argv[optind] : "");
		return usage(stderr), 2;
	}
	return -1;
}

int cmd_size(int argc, char **argv)
{
	const char *model_dir = NULL, *config = NULL;
	int json = 0;
	struct shmrt_sizing_params p = {0};
	struct advice a = {.nccl.channels = SHMRT_NCCL_DEFAULT_CHANNELS};
	int rc = parse(argc, argv, &p, &a, &model_dir, &config, &json);
	if (rc >= 0)
		return rc;
	struct shmrt_model_config mc;
	if ((model_dir ? shmrt_model_path_config(model_dir, &mc) : shmrt_model_config_load(config, &mc)) < 0) {
		fprintf(stderr, "shmrt size: %s\n", shmrt_last_error());
		return 1;
	}
	p.model = &mc;
	struct shmrt_sizing s;
	if (shmrt_sizing_compute(&p, &s) < 0) {
		fprintf(stderr, "shmrt size: %s\n", shmrt_last_error());
		return 2;
	}
	if (advise(&s, &a) < 0)
		return 1;
	char docker[32], k8s[32];
	shmrt_shm_size_spellings(a.advised_mib, docker, k8s);
	if (json)
		return print_json(&s, &a, docker, k8s) ? 1 : 0;
	print_text(&s, &a, docker, k8s);
	return 0;
}

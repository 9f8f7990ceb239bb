/* Tensor parallelism of the model (model.h: options rank/world/xfer): W
 * forked CPU ranks over the shm transport run the same steps as one
 * process holding the whole model, on the tiny presets (GQA llama3,
 * tied embeddings with as many KV heads as heads, Qwen2 q/k/v biases,
 * and tiny given Llama's attention_bias: q/k/v and o_proj biases), with
 * f32 activations on "cpu", and bf16 activations on "cpu-ref":
 *   - the logits of a ragged prefill (every row) and of decode steps are
 *     within TOL (relative to the row's largest logit) of the single-rank
 *     model's: the same products, but o_proj and down_proj summed in
 *     another order (W partial sums, then the all-reduce);
 *   - every rank gets the same logits, bit for bit (the shm all-reduce
 *     gives all ranks the same bits);
 *   - greedy generation gives the same tokens (f32 activations);
 *   - each rank loads the replicated tensors plus 1/W of the sharded ones
 *     (sizes taken from the checkpoint, not from the shard plan), and its
 *     KV blocks are 1/W of the single-rank model's;
 *   - the same with the partial sums made in the transport's shared
 *     buffers (in-place all-reduce) where they fit;
 *   - a world the heads do not divide is -EINVAL naming the heads;
 *   - a rank killed (SIGKILL) after loading: the other's next step fails
 *     with -EPIPE, it does not hang.
 * o_proj's bias must be added once, not by every rank: added W times it
 * moves the logits far past TOL.
 * Leaving out either all-reduce of the step moves the logits by far more
 * than TOL (tried by hand: relative errors of order 1). */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "dtype_conv.h"
#include "model_test.h"
#include "safetensors.h"
#include "array_size.h"

/* Relative to the row's largest |logit|; f32 sums of a few hundred
 * products in another order differ by ~1e-6 of that. With bf16
 * activations each rank's partial sum is rounded to bf16 before the
 * all-reduce (one rank rounds the whole sum once): the bound of
 * test_model_batch for bf16 steps. */
#define TOL_F32 1e-4
#define TOL_BF16 2e-2

#define MAX_V 512
#define NSEQ 3
#define DECODES 4
#define ROWS (7 + 19 + 1 + DECODES * NSEQ)
#define GEN 16

static const int prompt_len[NSEQ] = {7, 19, 1};
static const char *backend = "cpu";
static enum shmrt_dtype act = SHMRT_F32;
/* Bytes of each rank's shared buffer in the transport's region (0: none). */
static size_t xfer_buffer;

/* What a run of the workload gives; in shared memory for the ranks. */
struct result {
	float logits[ROWS * MAX_V];
	int32_t gen[GEN];
	int n_gen;
	uint64_t load_bytes, kv_block_bytes;
};

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

/* A ragged prefill of NSEQ prompts (logits of every token), DECODES
 * decode steps of all of them, then a greedy generation. */
static void workload(struct shmrt_model *m, uint32_t seed, struct result *r)
{
	int V = shmrt_model_config(m)->vocab_size;
	CHECK(V <= MAX_V, "vocab %d", V);
	int32_t toks[NSEQ][64];
	for (int s = 0; s < NSEQ; s++)
		for (int i = 0; i < prompt_len[s] + DECODES; i++)
			toks[s][i] = (int32_t)(lcg(&seed) % (uint32_t)V);
	struct shmrt_kv_pool *p;
	CHECK_OK(shmrt_kv_pool_new(m, 16, 16, &p));
	struct shmrt_kv_seq seqs[NSEQ] = {0};
	struct shmrt_seq_input in[NSEQ];
	for (int s = 0; s < NSEQ; s++)
		in[s] = (struct shmrt_seq_input){.seq = &seqs[s], .tokens = toks[s], .n = prompt_len[s]};
	float *out = r->logits;
	int rows = shmrt_model_step(m, p, in, NSEQ, SHMRT_LOGITS_ALL, out);
	CHECK(rows == 7 + 19 + 1, "prefill gave %d rows (%s)", rows, shmrt_last_error());
	out += (size_t)rows * V;
	for (int d = 0; d < DECODES; d++) {
		for (int s = 0; s < NSEQ; s++)
			in[s] = (struct shmrt_seq_input){.seq = &seqs[s], .tokens = &toks[s][prompt_len[s] + d], .n = 1};
		rows = shmrt_model_step(m, p, in, NSEQ, SHMRT_LOGITS_LAST, out);
		CHECK(rows == NSEQ, "decode gave %d rows (%s)", rows, shmrt_last_error());
		out += (size_t)rows * V;
	}
	for (int s = 0; s < NSEQ; s++)
		shmrt_kv_seq_reset(p, &seqs[s]);
	shmrt_kv_pool_free(p);

	struct shmrt_gen_options go = {.max_tokens = GEN, .ignore_eos = 1};
	r->n_gen = shmrt_generate(m, toks[1], 5, &go, r->gen, GEN, NULL);
	CHECK(r->n_gen == GEN, "generate gave %d (%s)", r->n_gen, shmrt_last_error());
	struct shmrt_load_stats ls;
	shmrt_model_load_stats(m, &ls);
	r->load_bytes = ls.bytes;
	r->kv_block_bytes = shmrt_model_kv_block_bytes(m, 16);
}

/* Bytes of the tensors split across ranks (q/k/v and their biases, o,
 * gate, up, down), from the checkpoint. */
static uint64_t sharded_bytes(const char *dir, int world)
{
	static const char *const split[] = {".q_proj.", ".k_proj.", ".v_proj.", ".o_proj.weight", ".gate_proj.",
					    ".up_proj.", ".down_proj."};
	struct shmrt_checkpoint *ck;
	CHECK_OK(shmrt_checkpoint_open(dir, &ck));
	uint64_t n = 0;
	/* an untied lm_head is split by vocabulary where world divides it */
	bool vocab_split = shmrt_checkpoint_config(ck)->vocab_size % world == 0;
	for (size_t i = 0; i < shmrt_checkpoint_tensor_count(ck); i++) {
		const struct shmrt_tensor_info *t = shmrt_checkpoint_tensor(ck, i);
		for (size_t k = 0; k < ARRAY_SIZE(split); k++)
			if (strstr(t->name, split[k]))
				n += t->size;
		if (vocab_split && !strcmp(t->name, "lm_head.weight"))
			n += t->size;
	}
	shmrt_checkpoint_close(ck);
	return n;
}

/* Rewrites the checkpoint in dir (a llama bf16 one) with attention_bias:
 * q/k/v_proj and o_proj biases of random values in [-0.5, 0.5). */
static void add_attention_bias(const char *dir)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/config.json", dir);
	json_error_t err;
	json_t *cfg = json_load_file(path, 0, &err);
	CHECK(cfg, "%s: %s", path, err.text);
	CHECK_OK(json_object_set_new(cfg, "attention_bias", json_true()));
	CHECK_OK(json_dump_file(cfg, path, JSON_INDENT(2)));
	json_decref(cfg);

	struct shmrt_checkpoint *ck;
	CHECK_OK(shmrt_checkpoint_open(dir, &ck));
	const struct shmrt_model_config *c = shmrt_checkpoint_config(ck);
	size_t n = shmrt_checkpoint_tensor_count(ck), nb = 4 * (size_t)c->num_layers;
	struct shmrt_st_tensor *t = calloc(n + nb, sizeof(*t));
	char (*names)[64] = calloc(nb, sizeof(*names));
	CHECK(t && names, "no memory");
	for (size_t i = 0; i < n; i++) {
		const struct shmrt_tensor_info *ti = shmrt_checkpoint_tensor(ck, i);
		void *p = malloc(ti->size);
		CHECK(p, "no memory");
		CHECK_OK(shmrt_checkpoint_load_tensor(ck, ti->name, p, ti->size, NULL, NULL));
		t[i] = (struct shmrt_st_tensor){.name = ti->name, .dtype = ti->dtype, .ndim = ti->ndim, .data = p};
		memcpy(t[i].shape, ti->shape, sizeof(t[i].shape));
	}
	static const char *const part[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
	int64_t len[] = {(int64_t)c->num_heads * c->head_dim, (int64_t)c->num_kv_heads * c->head_dim,
			 (int64_t)c->num_kv_heads * c->head_dim, c->hidden_size};
	uint32_t seed = 99;
	for (size_t b = 0; b < nb; b++) {
		int l = (int)(b / 4), k = (int)(b % 4);
		snprintf(names[b], sizeof(names[b]), "model.layers.%d.self_attn.%s.bias", l, part[k]);
		uint16_t *p = malloc((size_t)len[k] * sizeof(uint16_t));
		CHECK(p, "no memory");
		for (int64_t i = 0; i < len[k]; i++)
			p[i] = shmrt_f32_to_bf16((float)(lcg(&seed) % 1024) / 1024.0f - 0.5f);
		t[n + b] = (struct shmrt_st_tensor){.name = names[b], .dtype = SHMRT_BF16, .ndim = 1,
						    .shape = {len[k]}, .data = p};
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	CHECK_OK(shmrt_st_write(path, t, n + nb));
	shmrt_checkpoint_close(ck);
	for (size_t i = 0; i < n + nb; i++)
		free((void *)t[i].data);
	free(t);
	free(names);
}

static void rank_main(const char *dir, int rank, int world, void *region, size_t region_size, uint32_t seed,
		      struct result *r)
{
	struct shmrt_xfer_config xc = {.rank = rank, .world = world, .region = region, .region_size = region_size,
				       .device = -1, .timeout_ns = 60 * 1000000000LL};
	struct shmrt_xfer *x;
	CHECK_OK(shmrt_xfer_open(&x, "shm", &xc));
	struct shmrt_model_options mo = {.backend = backend, .activations = act, .rank = rank, .world = world,
					 .xfer = x};
	struct shmrt_model *m;
	CHECK_OK(shmrt_model_load(dir, &mo, &m));
	workload(m, seed, r);
	shmrt_model_free(m);
	shmrt_xfer_close(x);
}

/* Runs the workload on world forked ranks into res[0 .. world). */
static void run_ranks(const char *dir, int world, uint32_t seed, struct result *res)
{
	size_t size = shmrt_xfer_footprint_buffers(world, 0, xfer_buffer);
	void *region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(region != MAP_FAILED, "mmap %zu: %m", size);
	CHECK_OK(shmrt_xfer_format_buffers(region, size, world, 0, xfer_buffer));
	pid_t pids[8];
	for (int r = 0; r < world; r++) {
		fflush(NULL);
		pids[r] = fork();
		CHECK(pids[r] >= 0, "fork: %m");
		if (pids[r] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			rank_main(dir, r, world, region, size, seed, &res[r]);
			_exit(0);
		}
	}
	for (int r = 0; r < world; r++) {
		int st;
		CHECK(waitpid(pids[r], &st, 0) == pids[r], "waitpid: %m");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rank %d of %d failed (status %#x)", r, world, st);
	}
	munmap(region, size);
}

static void run(const char *preset, uint64_t seed, int world, bool bias)
{
	struct test_model_dir d;
	test_model_make(&d, preset, seed);
	if (bias)
		add_attention_bias(d.path);
	size_t bytes = (size_t)(world + 1) * sizeof(struct result);
	struct result *res = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(res != MAP_FAILED, "mmap: %m");
	struct result *ref = &res[world];

	struct shmrt_model_options mo = {.backend = backend, .activations = act};
	struct shmrt_model *m;
	CHECK_OK(shmrt_model_load(d.path, &mo, &m));
	int V = shmrt_model_config(m)->vocab_size;
	workload(m, (uint32_t)seed, ref);
	shmrt_model_free(m);

	run_ranks(d.path, world, (uint32_t)seed, res);

	uint64_t split = sharded_bytes(d.path, world);
	CHECK(split % world == 0 && split < ref->load_bytes, "sharded %llu of %llu bytes", (unsigned long long)split,
	      (unsigned long long)ref->load_bytes);
	double worst = 0, TOL = act == SHMRT_BF16 ? TOL_BF16 : TOL_F32;
	for (int r = 0; r < world; r++) {
		CHECK(!memcmp(res[r].logits, res[0].logits, sizeof(float) * ROWS * V),
		      "%s W=%d: rank %d's logits differ from rank 0's", preset, world, r);
		for (int row = 0; row < ROWS; row++) {
			double e = test_row_error(res[r].logits + (size_t)row * V, ref->logits + (size_t)row * V, V);
			CHECK(e <= TOL, "%s W=%d rank %d: logits row %d off by %.3g relative (tolerance %g)", preset,
			      world, r, row, e, TOL);
			worst = fmax(worst, e);
		}
		/* bf16 rounding of the partial sums may flip a near tie */
		CHECK(act == SHMRT_BF16 || (res[r].n_gen == ref->n_gen && !memcmp(res[r].gen, ref->gen, sizeof(ref->gen))),
		      "%s W=%d rank %d: greedy tokens differ from the single rank's", preset, world, r);
		uint64_t want = ref->load_bytes - split + split / world;
		CHECK(res[r].load_bytes == want, "%s W=%d rank %d loaded %llu bytes, want %llu", preset, world, r,
		      (unsigned long long)res[r].load_bytes, (unsigned long long)want);
		CHECK(res[r].kv_block_bytes * world == ref->kv_block_bytes, "%s W=%d: kv block %zu bytes of %zu",
		      preset, world, (size_t)res[r].kv_block_bytes, (size_t)ref->kv_block_bytes);
	}
	printf("%-10s%s %s W=%d%s: logits within %.2g relative of one rank (tolerance %g), %s, "
	       "%llu of %llu bytes loaded per rank\n",
	       preset, bias ? " +attention_bias" : "", shmrt_dtype_name(act), world,
	       xfer_buffer ? " (shared buffers)" : "", worst, TOL,
	       act == SHMRT_BF16 ? "greedy tokens not compared" : "16 greedy tokens equal",
	       (unsigned long long)res[0].load_bytes, (unsigned long long)ref->load_bytes);
	munmap(res, bytes);
	test_model_remove(&d);
}

/* tiny has 2 KV heads: 4 ranks cannot split them. The load fails in
 * planning, before the transport is used, so no group is needed. */
static void bad_world(void)
{
	struct test_model_dir d;
	test_model_make(&d, "tiny", 1);
	struct shmrt_model *m;
	struct shmrt_model_options mo = {.backend = backend, .rank = 1, .world = 4,
					 .xfer = (struct shmrt_xfer *)&d /* never called */};
	CHECK(shmrt_model_load(d.path, &mo, &m) == -EINVAL, "tiny with W=4 loaded");
	CHECK(strstr(shmrt_last_error(), "num_key_value_heads"), "message: %s", shmrt_last_error());
	mo.xfer = NULL;
	mo.world = 2;
	CHECK(shmrt_model_load(d.path, &mo, &m) == -EINVAL, "W=2 without a transport loaded");
	mo = (struct shmrt_model_options){.backend = backend, .rank = 2, .world = 2, .xfer = mo.xfer};
	CHECK(shmrt_model_load(d.path, &mo, &m) == -EINVAL, "rank 2 of 2 loaded");
	test_model_remove(&d);
}

/* Rank 1 loads and dies; rank 0 then steps and must get -EPIPE. */
static void dead_peer(void)
{
	struct test_model_dir d;
	test_model_make(&d, "tiny", 2);
	size_t size = shmrt_xfer_footprint(2, 0);
	void *region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(region != MAP_FAILED, "mmap %zu: %m", size);
	CHECK_OK(shmrt_xfer_format(region, size, 2, 0));
	fflush(NULL);
	pid_t pids[2];
	for (int r = 0; r < 2; r++) {
		CHECK((pids[r] = fork()) >= 0, "fork: %m");
		if (pids[r])
			continue;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct shmrt_xfer_config xc = {.rank = r, .world = 2, .region = region, .region_size = size,
					       .device = -1, .timeout_ns = 60 * 1000000000LL};
		struct shmrt_xfer *x;
		CHECK_OK(shmrt_xfer_open(&x, "shm", &xc));
		struct shmrt_model_options mo = {.backend = backend, .rank = r, .world = 2, .xfer = x};
		struct shmrt_model *m;
		CHECK_OK(shmrt_model_load(d.path, &mo, &m));
		CHECK_OK(shmrt_xfer_barrier(x)); /* both loaded */
		if (r == 1)
			raise(SIGKILL);
		struct shmrt_kv_pool *p;
		CHECK_OK(shmrt_kv_pool_new(m, 4, 16, &p));
		struct shmrt_kv_seq seq = {0};
		int32_t toks[3] = {1, 2, 3};
		struct shmrt_seq_input in = {.seq = &seq, .tokens = toks, .n = 3};
		int rc = shmrt_model_step(m, p, &in, 1, SHMRT_LOGITS_LAST, NULL);
		CHECK(rc == -EPIPE, "step with a dead peer: %d (%s)", rc, shmrt_last_error());
		CHECK(seq.len == 0 && shmrt_kv_pool_free_blocks(p) == 4, "the failed step kept its blocks");
		_exit(0);
	}
	int st;
	CHECK(waitpid(pids[1], &st, 0) == pids[1] && WIFSIGNALED(st), "rank 1 did not die (status %#x)", st);
	CHECK(waitpid(pids[0], &st, 0) == pids[0] && WIFEXITED(st) && !WEXITSTATUS(st), "rank 0 failed (%#x)", st);
	munmap(region, size);
	test_model_remove(&d);
	printf("a dead peer: the step fails with -EPIPE\n");
}

/* CPU backends only: the ranks' transport runs on host memory (device -1). */
int main(void)
{
	bad_world();
	dead_peer();
	run("tiny", 11, 2, false);
	run("tiny-tied", 12, 2, false);
	run("tiny-tied", 13, 4, false);
	run("tiny-qwen2", 14, 2, false);
	run("tiny", 15, 2, true);
	/* partial sums in the transport's shared buffers where they fit: the
	 * decode steps (3 rows, 3 KiB) and generation, not the prefill of 27
	 * rows (27 KiB) */
	xfer_buffer = 16 << 10;
	run("tiny-tied", 17, 2, false);
	run("tiny-tied", 18, 4, false);
	xfer_buffer = 0;
	/* bf16 activations (and a bf16 all-reduce): cpu-ref runs them */
	backend = "cpu-ref";
	act = SHMRT_BF16;
	run("tiny", 16, 2, false);
	return 0;
}

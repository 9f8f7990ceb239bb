/* The runtime's arena sizing (runtime/procs/sizing.c) and `shmrt size`:
 *  - Llama 2 7B (defaults) and Llama 3.1 8B (tp 2) against figures worked
 *    out by hand below from the record formats (ring capacities, the
 *    largest records);
 *  - the advice rule and its Docker / Kubernetes spellings;
 *  - an arena created from the regions holds what they promise: every ring
 *    formats in its region and takes its largest record;
 *  - bad limits, and the program: text, --json (same figures), --model,
 *    usage errors.
 *  - the deployed models' fixtures and the README's table of what to set.
 * argv[1]: the shmrt program; argv[2]: tests/fixtures/config; argv[3]: README.md. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena_space.h"
#include "check.h"
#include "command_output.h"
#include "json_document.h"
#include "shm_tmpdir.h"
#include "shmrt/shmrt.h"
#include "sizing.h"
#include "array_size.h"

static const char *shmrt, *configs;
#define MiB ((uint64_t)1 << 20)
#define KiB ((uint64_t)1024)

static struct shmrt_model_config load(const char *file)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", configs, file);
	struct shmrt_model_config m;
	CHECK_OK(shmrt_model_config_load(path, &m));
	return m;
}

/* A ring's header: what shmrt_ring_footprint adds to the capacity. */
static uint64_t ring(enum shmrt_ring_kind kind, uint64_t cap, unsigned readers)
{
	return shmrt_ring_footprint(kind, cap, readers);
}

/* The submit ring registers a producer per client slot and the
 * supervisor's: with 64 slots, one word past the header's 64, a line. */
static uint64_t submit_ring(uint64_t cap)
{
	return ring(SHMRT_RING_MPSC, cap, 1) + 64;
}

struct want {
	const char *name;
	uint64_t bytes, capacity, max_record;
};

static void check_regions(const struct shmrt_sizing *s, const struct want *w, unsigned n)
{
	CHECK(s->n_regions == n, "%u regions, not %u", s->n_regions, n);
	struct shmrt_region_spec specs[SHMRT_SIZING_MAX_REGIONS];
	for (unsigned i = 0; i < n; i++) {
		const struct shmrt_sizing_region *r = &s->regions[i];
		CHECK(!strcmp(r->name, w[i].name) && r->bytes == w[i].bytes && r->capacity == w[i].capacity &&
			      r->max_record == w[i].max_record,
		      "region %s: %llu bytes, capacity %llu, record %llu; by hand %s: %llu, %llu, %llu", r->name,
		      (unsigned long long)r->bytes, (unsigned long long)r->capacity, (unsigned long long)r->max_record,
		      w[i].name, (unsigned long long)w[i].bytes, (unsigned long long)w[i].capacity,
		      (unsigned long long)w[i].max_record);
		specs[i] = (struct shmrt_region_spec){.name = w[i].name, .size = w[i].bytes, .numa_node = -1};
	}
	uint64_t total;
	CHECK_OK(shmrt_arena_footprint(specs, n, &total));
	CHECK(s->arena_bytes == total, "arena %llu, by hand %llu", (unsigned long long)s->arena_bytes,
	      (unsigned long long)total);
}

/* Llama 2 7B: context 4096, hidden 4096; defaults: tp 1, 2048 tokens, 256
 * sequences, blocks of 16, 64 clients. */
static void test_llama2_defaults(void)
{
	struct shmrt_model_config m = load("llama-2-7b-hf.json");
	struct shmrt_sizing s;
	CHECK_OK(shmrt_sizing_compute(&(struct shmrt_sizing_params){.model = &m}, &s));
	CHECK(s.p.tp == 1 && s.p.max_batch_tokens == 2048 && s.p.max_seqs == 256 && s.p.max_model_len == 4096 &&
		      s.p.block_size == 16 && s.p.max_clients == 64,
	      "defaults");
	/* KV blocks: 256 sequences x 4096 / 16 = 65536. */
	CHECK(s.p.kv_blocks == 65536, "kv blocks %d", s.p.kv_blocks);
	/* submit: 256 + 4096 x 8 = 33024 bytes; two (+16 each) fit in the
	 * 1 MiB floor. tokens: 256 + 4096 x 4 = 16640, the floor again.
	 * step: 32 + 48 x 256 + 4 x (2048 + 65536) = 282656; two of them
	 * (565344) round up to 1 MiB. sampled: 32 + 8 x 256 = 2080, events:
	 * 32 + 32 x 256 = 8224 (four: 32960): both the 64 KiB floor.
	 * responses: 64 rings of 256 KiB. state: 64 KiB. */
	struct want w[] = {
		{"submit", submit_ring(MiB), MiB, 33024},
		{"tokens", ring(SHMRT_RING_SPSC, MiB, 1), MiB, 16640},
		{"step", ring(SHMRT_RING_BROADCAST, MiB, 1), MiB, 282656},
		{"sampled", ring(SHMRT_RING_SPSC, 64 * KiB, 1), 64 * KiB, 2080},
		{"events", ring(SHMRT_RING_SPSC, 64 * KiB, 1), 64 * KiB, 8224},
		{"responses", 64 * ring(SHMRT_RING_SPSC, 256 * KiB, 1), 256 * KiB, 0},
		{"state", 64 * KiB, 0, 0},
	};
	check_regions(&s, w, ARRAY_SIZE(w));
	/* About 19.3 MiB; with a quarter more, 24 MiB: Docker's 64 MiB floor. */
	CHECK(s.arena_bytes > 19 * MiB && s.arena_bytes < 20 * MiB && s.advised_mib == 64, "%llu bytes, advice %llu",
	      (unsigned long long)s.arena_bytes, (unsigned long long)s.advised_mib);
	CHECK(s.allreduce_bytes == 2048ull * 4096 * 4, "all-reduce bytes");
}

/* Llama 3.1 8B (context 131072) over 2 workers. */
static void test_llama31_tp2(void)
{
	struct shmrt_model_config m = load("llama-3.1-8b-instruct.json");
	struct shmrt_sizing s;
	CHECK_OK(shmrt_sizing_compute(&(struct shmrt_sizing_params){.model = &m, .tp = 2}, &s));
	/* KV blocks: 256 x 131072 / 16 = 2097152. submit: 256 + 131072 x 8
	 * = 1048832, two: 2097696 -> 4 MiB. tokens: 256 + 131072 x 4 =
	 * 524544, two: 1049120 -> 2 MiB. step: 32 + 12288 + 4 x (2048 +
	 * 2097152) = 8409120, two: 16818272 -> 32 MiB, read by 2 workers. */
	CHECK(s.p.kv_blocks == 2097152, "kv blocks %d", s.p.kv_blocks);
	struct want w[] = {
		{"submit", submit_ring(4 * MiB), 4 * MiB, 1048832},
		{"tokens", ring(SHMRT_RING_SPSC, 2 * MiB, 1), 2 * MiB, 524544},
		{"step", ring(SHMRT_RING_BROADCAST, 32 * MiB, 2), 32 * MiB, 8409120},
		{"sampled", ring(SHMRT_RING_SPSC, 64 * KiB, 1), 64 * KiB, 2080},
		{"events", ring(SHMRT_RING_SPSC, 64 * KiB, 1), 64 * KiB, 8224},
		{"responses", 64 * ring(SHMRT_RING_SPSC, 256 * KiB, 1), 256 * KiB, 0},
		{"xfer", shmrt_xfer_footprint(2, 0), 0, 0},
		{"state", 64 * KiB, 0, 0},
	};
	check_regions(&s, w, ARRAY_SIZE(w));
	/* About 55.8 MiB; a quarter more is 69.7: 128 MiB. */
	CHECK(s.advised_mib == 128, "advice %llu", (unsigned long long)s.advised_mib);

	/* The KV cache's real block count shrinks the step ring: 30000
	 * blocks, 8192 tokens: 32 + 12288 + 4 x (2048 + 30000) = 140512. */
	CHECK_OK(shmrt_sizing_compute(
		&(struct shmrt_sizing_params){.model = &m, .tp = 2, .kv_blocks = 30000, .max_model_len = 8192}, &s));
	CHECK(s.regions[2].max_record == 140512 && s.regions[2].capacity == 512 * KiB, "step with 30000 blocks");
}

static void test_advice(void)
{
	CHECK(shmrt_shm_advised_mib(0) == 64, "floor");
	CHECK(shmrt_shm_advised_mib(100 * MiB) == 128, "125 MiB -> 128");
	CHECK(shmrt_shm_advised_mib(400 * MiB) == 512, "500 MiB -> 512");
	CHECK(shmrt_shm_advised_mib(900 * MiB) == 2048, "1125 MiB -> 2 GiB");
	char d[32], k[32];
	shmrt_shm_size_spellings(128, d, k);
	CHECK(!strcmp(d, "128m") && !strcmp(k, "128Mi"), "%s %s", d, k);
	shmrt_shm_size_spellings(3072, d, k);
	CHECK(!strcmp(d, "3g") && !strcmp(k, "3Gi"), "%s %s", d, k);
}

/* Creates the arena from the regions (tp 4, a small cache), formats every
 * ring in its region and checks it takes its largest record. */
static void test_arena_holds(void)
{
	shm_tmpdir();
	struct shmrt_model_config m = load("llama-3.1-8b-instruct.json");
	struct shmrt_sizing s;
	CHECK_OK(shmrt_sizing_compute(&(struct shmrt_sizing_params){.model = &m, .tp = 4, .max_model_len = 16384,
								   .kv_blocks = 20000, .max_clients = 8},
				      &s));
	struct shmrt_region_spec specs[SHMRT_SIZING_MAX_REGIONS];
	shmrt_sizing_specs(&s, specs);
	struct shmrt_arena *a;
	CHECK_OK(shmrt_arena_create(&a, "sizing", specs, s.n_regions));
	struct shmrt_arena_info info;
	CHECK_OK(shmrt_arena_info(a, &info));
	CHECK(info.bytes == s.arena_bytes, "file %llu bytes, sized %llu", (unsigned long long)info.bytes,
	      (unsigned long long)s.arena_bytes);
	static const struct {
		const char *name;
		enum shmrt_ring_kind kind;
		unsigned copies;
	} rings[] = {{"submit", SHMRT_RING_MPSC, 1}, {"tokens", SHMRT_RING_SPSC, 1}, {"step", SHMRT_RING_BROADCAST, 1},
		     {"sampled", SHMRT_RING_SPSC, 1}, {"events", SHMRT_RING_SPSC, 1},
		     {"responses", SHMRT_RING_SPSC, 8}};
	for (size_t i = 0; i < ARRAY_SIZE(rings); i++) {
		const struct shmrt_sizing_region *r = &s.regions[i];
		CHECK(!strcmp(r->name, rings[i].name), "region order");
		void *mem;
		size_t size;
		CHECK_OK(shmrt_arena_region(a, r->name, &mem, &size));
		unsigned readers = rings[i].kind == SHMRT_RING_BROADCAST ? 4 : 1;
		size_t one = shmrt_ring_footprint(rings[i].kind, r->capacity, readers);
		CHECK(size >= one * rings[i].copies, "%s: region of %zu bytes", r->name, size);
		for (unsigned c = 0; c < rings[i].copies; c++) {
			void *at = (char *)mem + c * one;
			CHECK_OK(shmrt_ring_format(at, one, rings[i].kind, r->capacity, readers));
			struct shmrt_ring *h;
			CHECK_OK(shmrt_ring_open(&h, at, one, SHMRT_RING_PRODUCER, 0));
			CHECK(shmrt_ring_max_record(h) >= 2 * (r->max_record + 16) - 16 || r->max_record == 0,
			      "%s: largest record %zu, two of %llu wanted", r->name, shmrt_ring_max_record(h),
			      (unsigned long long)r->max_record);
			shmrt_ring_close(h);
		}
	}
	void *mem;
	size_t size;
	CHECK_OK(shmrt_arena_region(a, "xfer", &mem, &size));
	CHECK_OK(shmrt_xfer_format(mem, size, 4, 0));
	CHECK_OK(shmrt_arena_destroy(a));
}

static void test_errors(void)
{
	struct shmrt_model_config m = load("llama-2-7b-hf.json");
	struct shmrt_sizing s;
	CHECK(shmrt_sizing_compute(&(struct shmrt_sizing_params){.model = &m, .tp = 3}, &s) == -EINVAL &&
		      strstr(shmrt_last_error(), "--tp 3"),
	      "tp 3 of 32 heads: %s", shmrt_last_error());
	CHECK(shmrt_sizing_compute(&(struct shmrt_sizing_params){.model = &m, .max_model_len = 4097}, &s) == -EINVAL,
	      "longer than the model's context");
	CHECK(shmrt_sizing_compute(&(struct shmrt_sizing_params){.model = &m, .max_seqs = 512, .max_batch_tokens = 256},
				   &s) == -EINVAL,
	      "budget below max_seqs");
	CHECK(shmrt_sizing_compute(&(struct shmrt_sizing_params){.model = NULL}, &s) == -EINVAL, "no model");
	struct shmrt_model_config l3 = load("llama-3.1-8b-instruct.json");
	/* 65536 sequences of 131072 tokens: a step record of 2 GiB. */
	CHECK(shmrt_sizing_compute(&(struct shmrt_sizing_params){.model = &l3, .max_seqs = 65536,
								   .max_batch_tokens = 65536},
				   &s) == -E2BIG &&
		      strstr(shmrt_last_error(), "step"),
	      "a step ring over 2 GiB: %s", shmrt_last_error());
}

/* NCCL's SHM share, worked out by hand from the figures cited in sizing.h:
 * a connection is 2 header pages + LL 524,288 + LL128 4,915,200 + SIMPLE
 * 4,194,304 = 9,641,984 B; per channel, ranks ring + 2 (ranks - 1) tree
 * connections. */
static void test_nccl_share(void)
{
	struct shmrt_nccl_shm n = {.ranks = 2, .channels = 2};
	CHECK_OK(shmrt_sizing_nccl_shm(&n));
	CHECK(n.connections == 8 && n.per_connection == 9641984 && n.bytes == 8 * 9641984ull,
	      "2 ranks, 2 channels: %llu x %llu", (unsigned long long)n.connections,
	      (unsigned long long)n.per_connection);
	n = (struct shmrt_nccl_shm){.ranks = 8, .channels = 4, .buffsize = MiB};
	CHECK_OK(shmrt_sizing_nccl_shm(&n));
	CHECK(n.connections == 4 * (8 + 14) && n.per_connection == 8192 + 524288 + 4915200 + MiB,
	      "8 ranks, 4 channels, NCCL_BUFFSIZE 1 MiB");
	n = (struct shmrt_nccl_shm){.ranks = 1, .channels = 2};
	CHECK(shmrt_sizing_nccl_shm(&n) == -EINVAL, "one rank");
}

/* The knee: the smallest budget that started within 95% of the best on
 * every measured figure, else the one whose worst figure is the best. */
static void test_knee(void)
{
	struct shmrt_sizing_point pts[] = {
		{512, 1, {10, 100, 4.0}}, {32, 0, {0, 0, 0}},	 {64, 1, {10, 80, 2.0}},
		{128, 1, {9.9, 96, 3.5}}, {256, 1, {10, 97, 3.9}}, {1024, 1, {10, 99, 0}},
	};
	uint64_t knee = 0;
	CHECK_OK(shmrt_sizing_knee(pts, 6, &knee));
	CHECK(knee == 256, "knee %llu, by hand 256 (128 has 3.5 < 0.95 x 4.0 GB/s)", (unsigned long long)knee);
	pts[3].figures[2] = 3.8;
	CHECK_OK(shmrt_sizing_knee(pts, 6, &knee));
	CHECK(knee == 128, "knee %llu, by hand 128", (unsigned long long)knee);
	CHECK(shmrt_sizing_knee(pts + 1, 1, &knee) == -ENOENT, "nothing started");
	/* None near the best on every figure: the highest worst ratio (64 and
	 * 128: 0.5; 256: 0.75). */
	struct shmrt_sizing_point apart[] = {{64, 1, {10, 100, 2}}, {128, 1, {5, 50, 4}}, {256, 1, {9, 90, 3}}};
	CHECK_OK(shmrt_sizing_knee(apart, 3, &knee));
	CHECK(knee == 256, "knee %llu, by hand 256", (unsigned long long)knee);
	apart[2].figures[0] = 5;
	CHECK_OK(shmrt_sizing_knee(apart, 3, &knee));
	CHECK(knee == 64, "knee %llu, by hand 64 (all 0.5: the smallest)", (unsigned long long)knee);
}

/* The budget rule: the largest power-of-two chunk whose arena fits. */
static void test_fit(void)
{
	struct shmrt_model_config m = load("llama-3.1-8b-instruct.json");
	struct shmrt_sizing_params p = {.model = &m, .tp = 2, .max_seqs = 64};
	struct shmrt_sizing small, fit, next;
	p.xfer_chunk = SHMRT_SIZING_MIN_CHUNK;
	CHECK_OK(shmrt_sizing_compute(&p, &small));
	uint64_t budget = small.arena_bytes + 40 * MiB;
	CHECK_OK(shmrt_sizing_fit(&p, budget, &fit));
	p.xfer_chunk = fit.xfer_chunk * 2;
	CHECK_OK(shmrt_sizing_compute(&p, &next));
	CHECK(fit.arena_bytes <= budget && next.arena_bytes > budget && fit.xfer_chunk > SHMRT_SIZING_MIN_CHUNK,
	      "chunk %zu: arena %llu, next %llu, budget %llu", fit.xfer_chunk, (unsigned long long)fit.arena_bytes,
	      (unsigned long long)next.arena_bytes, (unsigned long long)budget);
	/* the staging is about 5 x world^2 x chunk (transport.h): 20 x chunk for 2 */
	CHECK(fit.regions[6].bytes >= 20 * (uint64_t)fit.xfer_chunk, "xfer %llu for chunk %zu",
	      (unsigned long long)fit.regions[6].bytes, fit.xfer_chunk);
	CHECK_OK(shmrt_sizing_fit(&p, MiB, &fit));
	CHECK(fit.xfer_chunk == SHMRT_SIZING_MIN_CHUNK && fit.arena_bytes == small.arena_bytes, "below the minimum");
	CHECK(fit.min_mib == (small.arena_bytes + MiB - 1) / MiB, "min_mib");
	/* the supervisor formats the region with the chunk it was sized for */
	CHECK(shmrt_sizing_chunk_of_region(2, shmrt_xfer_footprint(2, 262144)) == 262144, "chunk of a region");
	CHECK(shmrt_sizing_chunk_of_region(2, shmrt_xfer_footprint(2, 0)) == 0, "default chunk");
	p.xfer_chunk = 3000;
	CHECK(shmrt_sizing_compute(&p, &fit) == -EINVAL && strstr(shmrt_last_error(), "--xfer-chunk"), "chunk 3000");
}

/* The deployed models' config.json fixtures, against their published values
 * (the model cards' config.json: hidden, layers, heads, kv heads,
 * intermediate, vocab, context), and what the sizing derives from them by
 * the record formats: the largest all-reduce (2048 tokens x hidden x 4 B)
 * and the submit ring's largest record (256 + 8 B a token of context). */
static const struct deployed {
	const char *file;
	int hidden, layers, heads, kv_heads, intermediate, vocab, context;
} deployed[] = {
	{"llama-3.1-8b-instruct.json", 4096, 32, 32, 8, 14336, 128256, 131072},
	{"llama-3.1-70b-instruct.json", 8192, 80, 64, 8, 28672, 128256, 131072},
	{"mistral-7b-instruct-v0.2.json", 4096, 32, 32, 8, 14336, 32000, 32768},
	{"qwen2-7b-instruct.json", 3584, 28, 28, 4, 18944, 152064, 32768},
	{"qwen2-72b-instruct.json", 8192, 80, 64, 8, 29568, 152064, 32768},
};

static void test_deployed_configs(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(deployed); i++) {
		const struct deployed *d = &deployed[i];
		struct shmrt_model_config m = load(d->file);
		CHECK(m.hidden_size == d->hidden && m.num_layers == d->layers && m.num_heads == d->heads &&
			      m.num_kv_heads == d->kv_heads && m.intermediate_size == d->intermediate &&
			      m.vocab_size == d->vocab && m.max_context == d->context,
		      "%s: published values", d->file);
		struct shmrt_sizing s;
		int tp = d->kv_heads >= 8 ? 8 : 4;
		CHECK_OK(shmrt_sizing_compute(&(struct shmrt_sizing_params){.model = &m, .tp = tp}, &s));
		CHECK(s.allreduce_bytes == 2048ull * (uint64_t)d->hidden * 4 &&
			      s.regions[0].max_record == 256 + 8ull * (uint64_t)d->context &&
			      s.regions[6].bytes == shmrt_xfer_footprint(tp, 0) &&
			      s.min_mib == (s.arena_bytes + MiB - 1) / MiB,
		      "%s at tp %d: derived figures", d->file, tp);
	}
}

/* Runs `shmrt ARGS`; returns the exit status, stdout in *out (if not NULL). */
static int run(const char *args, char **out)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "'%s' %s 2>/dev/null", shmrt, args);
	int st;
	char *buf = command_output(cmd, &st);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* --gpu l4 counts NCCL's SHM share by name (8 x 9,641,984 B for 2 ranks,
 * 2 channels, as test_nccl_share works out); --gpu h100 does not;
 * --from-bench advises the knee plus the share. */
static void test_program_shares(const struct shmrt_sizing *s)
{
	char args[8192], *out, bench[] = "/tmp/test-sizing-bench-XXXXXX";
	const uint64_t nccl = 8 * 9641984ull;
	snprintf(args, sizeof(args), "size --config '%s/llama-3.1-8b-instruct.json' --tp 2 --max-seqs 64 --gpu l4 --json",
		 configs);
	CHECK(run(args, &out) == 0, "--gpu l4");
	json_t *doc = json_document(out), *share = json_array_get(json_object_get(doc, "shares"), 1);
	CHECK(!strcmp(json_string_value(json_object_get(share, "name")), "nccl_shm") &&
		      json_integer_value(json_object_get(share, "bytes")) == (json_int_t)nccl,
	      "nccl share: %s", out);
	CHECK(json_integer_value(json_object_get(doc, "min_mib")) == (json_int_t)((s->arena_bytes + MiB - 1) / MiB) &&
		      json_integer_value(json_object_get(doc, "advised_mib")) ==
			      (json_int_t)shmrt_shm_advised_mib(s->arena_bytes + nccl),
	      "advised with the share: %s", out);
	json_decref(doc);
	free(out);
	snprintf(args, sizeof(args), "size --config '%s/llama-3.1-8b-instruct.json' --tp 2 --gpu h100 --json", configs);
	CHECK(run(args, &out) == 0, "--gpu h100");
	doc = json_document(out);
	share = json_array_get(json_object_get(doc, "shares"), 1);
	CHECK(json_integer_value(json_object_get(share, "bytes")) == 0, "no NCCL share with NVLink: %s", out);
	json_decref(doc);
	free(out);

	int fd = mkstemp(bench);
	CHECK(fd >= 0, "mkstemp");
	const char *rows = "{\"rows\": [{\"budget_mib\": 64, \"started\": false},"
			   " {\"budget_mib\": 512, \"started\": true, \"tokens_per_s_batch1\": 10,"
			   " \"tokens_per_s_batch_large\": 100, \"allreduce_gbps\": 4},"
			   " {\"budget_mib\": 256, \"started\": true, \"tokens_per_s_batch1\": 10,"
			   " \"tokens_per_s_batch_large\": 99, \"allreduce_gbps\": 3.9}]}";
	CHECK(write(fd, rows, strlen(rows)) == (ssize_t)strlen(rows), "write");
	close(fd);
	snprintf(args, sizeof(args),
		 "size --config '%s/llama-3.1-8b-instruct.json' --tp 2 --max-seqs 64 --gpu l4 --from-bench %s --json",
		 configs, bench);
	CHECK(run(args, &out) == 0, "--from-bench");
	doc = json_document(out);
	CHECK(json_integer_value(json_object_get(doc, "knee_mib")) == 256 &&
		      json_integer_value(json_object_get(doc, "advised_mib")) == 256 + (json_int_t)((nccl + MiB - 1) / MiB),
	      "knee 256 + the NCCL share: %s", out);
	json_decref(doc);
	free(out);
	/* tp 1: no share; the knee (256) is the advice, with no rounding. Then a
	 * knee below the minimum: the minimum, and 64 MiB at least. */
	snprintf(args, sizeof(args), "size --config '%s/llama-3.1-8b-instruct.json' --from-bench %s --json", configs,
		 bench);
	CHECK(run(args, &out) == 0, "--from-bench, tp 1");
	doc = json_document(out);
	CHECK(json_integer_value(json_object_get(doc, "advised_mib")) == 256, "knee 256 alone: %s", out);
	json_decref(doc);
	free(out);
	const char *small = "{\"rows\": [{\"budget_mib\": 8, \"started\": true, \"tokens_per_s_batch1\": 1}]}";
	FILE *f = fopen(bench, "w");
	CHECK(f && fputs(small, f) >= 0 && fclose(f) == 0, "rewrite %s", bench);
	CHECK(run(args, &out) == 0, "--from-bench, knee 8");
	doc = json_document(out);
	json_int_t min = json_integer_value(json_object_get(doc, "min_mib"));
	CHECK(json_integer_value(json_object_get(doc, "knee_mib")) == 8 &&
		      json_integer_value(json_object_get(doc, "advised_mib")) == (min > 64 ? min : 64),
	      "knee 8: the minimum %lld, 64 at least: %s", (long long)min, out);
	json_decref(doc);
	free(out);
	unlink(bench);
}

/* The README's table of what to set on Vertex AI: every cell "ADVISED
 * (NEEDED)" is what `shmrt size --json` says for that model and column,
 * "n/a" a tp the model's heads refuse (exit 2). */
static const struct {
	int tp;
	const char *gpu;
} columns[] = {{1, "h100"}, {2, "l4"}, {4, "l4"}, {8, "l4"}, {8, "h100"}};

static void check_cell(const char *file, int col, const char *cell)
{
	char args[4096], *out;
	snprintf(args, sizeof(args), "size --config '%s/%s' --tp %d --gpu %s --json", configs, file, columns[col].tp,
		 columns[col].gpu);
	if (!strncmp(cell, "n/a", 3)) {
		CHECK(run(args, NULL) == 2, "%s tp %d: README says n/a", file, columns[col].tp);
		return;
	}
	long advised, needed;
	CHECK(sscanf(cell, "%ld (%ld)", &advised, &needed) == 2, "README cell '%s'", cell);
	CHECK(run(args, &out) == 0, "%s", args);
	json_t *doc = json_document(out);
	CHECK(json_integer_value(json_object_get(doc, "advised_mib")) == advised &&
		      json_integer_value(json_object_get(doc, "needed_mib")) == needed,
	      "README says %s for %s tp %d %s; the program:\n%s", cell, file, columns[col].tp, columns[col].gpu, out);
	json_decref(doc);
	free(out);
}

static void test_readme_table(const char *readme)
{
	FILE *f = fopen(readme, "r");
	CHECK(f, "open %s", readme);
	char line[1024];
	int rows = 0, cells = 0;
	while (fgets(line, sizeof(line), f)) {
		char *q = strstr(line, ".json` |");
		if (strncmp(line, "| ", 2) || !q)
			continue;
		char *file = strchr(line, '`') + 1;
		*strchr(file, '`') = 0;
		char *cell = q + strlen(".json` |");
		for (int col = 0; col < 5; col++) {
			while (*cell == ' ')
				cell++;
			char *end = strchr(cell, '|');
			CHECK(end, "README row of %s: 5 columns", file);
			*end = 0;
			if (strncmp(cell, "\xe2\x80\x94", 3)) /* an em dash: the weights do not fit */
				check_cell(file, col, cell), cells++;
			cell = end + 1;
		}
		rows++;
	}
	fclose(f);
	CHECK(rows == 5 && cells >= 19, "README: %d rows, %d cells checked", rows, cells);
}

static void test_program(void)
{
	char args[8192], *out;
	struct shmrt_model_config m = load("llama-3.1-8b-instruct.json");
	struct shmrt_sizing s;
	CHECK_OK(shmrt_sizing_compute(&(struct shmrt_sizing_params){.model = &m, .tp = 2, .max_seqs = 64}, &s));

	snprintf(args, sizeof(args), "size --config '%s/llama-3.1-8b-instruct.json' --tp 2 --max-seqs 64 --json",
		 configs);
	CHECK(run(args, &out) == 0, "size --json");
	json_t *doc = json_document(out);
	CHECK(json_integer_value(json_object_get(doc, "arena_bytes")) == (json_int_t)s.arena_bytes &&
		      json_integer_value(json_object_get(doc, "vertex_shared_memory_size_mb")) ==
			      (json_int_t)s.advised_mib,
	      "figures differ from the library's");
	char d[32], k[32];
	shmrt_shm_size_spellings(s.advised_mib, d, k);
	CHECK(!strcmp(json_string_value(json_object_get(doc, "docker_shm_size")), d) &&
		      !strcmp(json_string_value(json_object_get(doc, "kubernetes_size_limit")), k) &&
		      json_string_value(json_object_get(doc, "margin")),
	      "spellings");
	json_t *regions = json_object_get(doc, "regions");
	CHECK(json_array_size(regions) == s.n_regions, "regions");
	for (unsigned i = 0; i < s.n_regions; i++) {
		json_t *r = json_array_get(regions, i);
		CHECK(!strcmp(json_string_value(json_object_get(r, "name")), s.regions[i].name) &&
			      json_integer_value(json_object_get(r, "bytes")) == (json_int_t)s.regions[i].bytes,
		      "region %u", i);
	}
	CHECK(json_integer_value(json_object_get(json_object_get(doc, "limits"), "max_seqs")) == 64, "limits");
	json_decref(doc);
	free(out);

	/* Text, through --model DIR (a directory with that config.json). */
	char dir[] = "/tmp/test-sizing-XXXXXX", path[4200], copy[8192];
	CHECK(mkdtemp(dir), "mkdtemp");
	snprintf(copy, sizeof(copy), "cp '%s/llama-3.1-8b-instruct.json' '%s/config.json'", configs, dir);
	CHECK(system(copy) == 0, "cp");
	snprintf(args, sizeof(args), "size --model '%s' --tp 2 --max-seqs 64", dir);
	CHECK(run(args, &out) == 0, "size --model");
	snprintf(copy, sizeof(copy), "--shm-size=%s", d);
	CHECK(strstr(out, copy) && strstr(out, "sharedMemorySizeMb") && strstr(out, k) && strstr(out, "step"),
	      "text output:\n%s", out);
	free(out);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	rmdir(dir);

	test_program_shares(&s);

	CHECK(run("size --help", NULL) == 0, "--help");
	CHECK(run("size", NULL) == 2, "neither --model nor --config");
	snprintf(args, sizeof(args), "size --config '%s/llama-2-7b-hf.json' --model /nonexistent", configs);
	CHECK(run(args, NULL) == 2, "both");
	CHECK(run("size --config /nonexistent/config.json", NULL) == 1, "missing file");
	snprintf(args, sizeof(args), "size --config '%s/llama-2-7b-hf.json' --tp 3", configs);
	CHECK(run(args, NULL) == 2, "--tp 3");
	snprintf(args, sizeof(args), "size --config '%s/llama-2-7b-hf.json' --max-seqs x", configs);
	CHECK(run(args, NULL) == 2, "--max-seqs x");
}

int main(int argc, char **argv)
{
	CHECK(argc == 4, "usage: test_sizing SHMRT CONFIG_DIR README");
	shmrt = argv[1];
	configs = argv[2];
	test_llama2_defaults();
	test_llama31_tp2();
	test_advice();
	test_arena_holds();
	test_errors();
	test_nccl_share();
	test_knee();
	test_fit();
	test_program();
	test_deployed_configs();
	test_readme_table(argv[3]);
	printf("sizing: ok\n");
	return 0;
}

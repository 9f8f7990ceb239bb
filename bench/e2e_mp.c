/* shmrt bench e2e, the multi-process part (e2e_mp.h). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "e2e.h"
#include "e2e_mp.h"
#include "fail.h"
#include "clock.h"
#include "proto.h"

/* The scheduler's decode-step sums (proto.h): each step's time and its
 * worker's time are added together, so a window between two snapshots
 * holds whole steps only. */
struct figures {
	uint64_t steps, seqs, finished;
	int64_t step_ns, worker_ns, plan_ns, to_worker_ns, back_ns, post_ns;
};

static void snap(const struct rt_state *st, struct figures *f)
{
	f->finished = atomic_load(&st->sched.finished);
	f->steps = atomic_load(&st->sched.decode_steps);
	f->seqs = atomic_load(&st->sched.decode_seqs);
	f->step_ns = atomic_load(&st->sched.decode_step_ns_sum);
	f->worker_ns = atomic_load(&st->sched.decode_worker_ns_sum);
	f->plan_ns = atomic_load(&st->sched.decode_plan_ns_sum);
	f->to_worker_ns = atomic_load(&st->sched.decode_to_worker_ns_sum);
	f->back_ns = atomic_load(&st->sched.decode_back_ns_sum);
	f->post_ns = atomic_load(&st->sched.decode_post_ns_sum);
}

/* The client can hear a request's end before the scheduler has added its
 * last step to the figures: wait for it to count n more finished. */
static int settle(const struct rt_state *st, const struct figures *f0, int n, struct figures *f1)
{
	for (int64_t end = shmrt_now_ns() + (int64_t)10 * 1000000000;;) {
		snap(st, f1);
		if (f1->finished >= f0->finished + (uint64_t)n)
			return 0;
		if (shmrt_now_ns() > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

/* Reads request id to its end (after its first chunk). */
static int finish(struct shmrt_client *c, uint64_t id)
{
	struct shmrt_response r;
	do {
		int rc = shmrt_client_next(c, id, &r, (int64_t)600 * 1000000000);
		if (rc)
			return rc;
	} while (!r.finish);
	return r.status;
}

int e2e_mp_run(struct shmrt_client *c, const struct rt_state *st, int batch, int prompt, int steps,
	       struct e2e_mp_result *out)
{
	int32_t *ids = malloc((size_t)prompt * sizeof(int32_t));
	uint64_t *req = calloc((size_t)batch, sizeof(uint64_t));
	int rc = ids && req ? 0 : -ENOMEM;
	for (int i = 0; i < prompt && !rc; i++)
		ids[i] = (int32_t)(1 + (i * 7919) % (st->model.vocab_size - 1));
	struct shmrt_request r = {.tokens = ids, .n_tokens = prompt, .max_tokens = steps + 1, .ignore_eos = 1};
	struct figures f0, f1;
	snap(st, &f0);
	for (int b = 0; b < batch && !rc; b++) {
		r.seed = (uint64_t)b;
		rc = shmrt_client_submit(c, &r, &req[b]);
	}
	/* Tokens/s as the client sees them: from the first token of every
	 * request (the prefills done) to the end of the last. */
	struct shmrt_response x;
	for (int b = 0; b < batch && !rc; b++)
		rc = shmrt_client_next(c, req[b], &x, (int64_t)600 * 1000000000);
	int64_t t0 = shmrt_now_ns();
	for (int b = 0; b < batch && !rc; b++)
		rc = finish(c, req[b]);
	int64_t t1 = shmrt_now_ns();
	if (!rc && (rc = settle(st, &f0, batch, &f1)))
		shmrt_fail(-rc, "the scheduler did not count %d finished requests in 10 s", batch);
	if (!rc) {
		double n = (double)(f1.steps - f0.steps);
		out->steps = (int)n;
		out->mean_batch = n > 0 ? (double)(f1.seqs - f0.seqs) / n : 0;
		out->step_ns = n > 0 ? (double)(f1.step_ns - f0.step_ns) / n : 0;
		out->worker_ns = n > 0 ? (double)(f1.worker_ns - f0.worker_ns) / n : 0;
		out->overhead_ns = out->step_ns - out->worker_ns;
		out->plan_ns = n > 0 ? (double)(f1.plan_ns - f0.plan_ns) / n : 0;
		out->to_worker_ns = n > 0 ? (double)(f1.to_worker_ns - f0.to_worker_ns) / n : 0;
		out->back_ns = n > 0 ? (double)(f1.back_ns - f0.back_ns) / n : 0;
		out->post_ns = n > 0 ? (double)(f1.post_ns - f0.post_ns) / n : 0;
		out->tokens_per_s = (double)batch * steps / ((double)(t1 - t0) * 1e-9);
	}
	free(ids);
	free(req);
	return rc;
}

int e2e_mp_measure(const char *model_dir, const char *exe, int workers, int quantize_to, int batch, int prompt,
		   int steps, struct e2e_mp_result *out, char *note, size_t note_cap)
{
	char name[64];
	snprintf(name, sizeof(name), "bench-e2e-%d", (int)getpid());
	int len = prompt + steps + 1, bs = 16;
	struct shmrt_runtime_options o = {.model_dir = model_dir, .name = name, .exe = exe, .workers = workers,
					  .max_seqs = batch, .max_batch_tokens = batch * prompt > batch ? batch * prompt
												 : batch,
					  .max_model_len = len, .block_size = bs,
					  .kv_blocks = batch * ((len + bs - 1) / bs), .max_clients = 1,
					  .quantize_to = quantize_to};
	memset(out, 0, sizeof(*out));
	out->workers = workers;
	out->batch = batch;
	struct shmrt_runtime *rt = NULL;
	struct shmrt_client *c = NULL;
	struct shmrt_arena *a = NULL;
	struct rt_state *st = NULL;
	int rc = shmrt_runtime_start(&rt, &o);
	if (!rc)
		rc = shmrt_runtime_wait_ready(rt, (int64_t)600 * 1000000000);
	if (!rc)
		rc = shmrt_client_attach(&c, name);
	if (!rc)
		rc = shmrt_arena_attach(&a, name);
	if (!rc)
		rc = rt_state_get(a, &st);
	if (!rc)
		rc = e2e_mp_run(c, st, batch, prompt, steps, out);
	if (rc)
		snprintf(note, note_cap, "multi-process runtime: %s", shmrt_last_error());
	if (a)
		shmrt_arena_detach(a);
	shmrt_client_detach(c);
	if (rt)
		shmrt_runtime_stop(rt, 0);
	return rc;
}

/* ---- the command ------------------------------------------------------------ */

#define MP_MAX_BATCHES 8

struct mp_args {
	const char *model, *preset;
	int workers, prompt, steps, json, quick;
	int batches[MP_MAX_BATCHES], n_batches;
	int quantize_to; /* --quantize (both paths) */
};

int e2e_mp_wanted(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--workers") || !strncmp(argv[i], "--workers=", 10))
			return 1;
	return 0;
}

/* The single-process path on the same batch (e2e_decode: shmrt_model_step
 * and shmrt_model_sample in this process), ns per decode step. */
static int single_process(struct shmrt_model *m, int B, int prompt, int steps, double *step_ns)
{
	int V = shmrt_model_config(m)->vocab_size;
	int32_t *prompts = malloc((size_t)B * (size_t)prompt * sizeof(int32_t));
	*step_ns = 0;
	if (!prompts)
		return shmrt_fail(ENOMEM, "no memory");
	for (int s = 0; s < B; s++)
		for (int i = 0; i < prompt; i++)
			prompts[s * prompt + i] = (int32_t)(1 + (i * 7919) % (V - 1)); /* as run() */
	int64_t ns;
	int rc = e2e_decode(m, B, prompts, prompt, steps, NULL, &ns);
	free(prompts);
	*step_ns = (double)ns / steps;
	return rc;
}

static void mp_usage(FILE *f)
{
	fprintf(f, "usage: shmrt bench e2e --workers W [--model DIR | --preset NAME] [--batch 1,8,32,128]\n"
		   "                       [--prompt N] [--steps N] [--quick] [--json]\n\n"
		   "Decode steps through the multi-process runtime (shmrt start's processes, W\n"
		   "workers) against the single-process path (shmrt_model_step in this process) on\n"
		   "the same model, batch and prompt, in the same run: time per step of each, the\n"
		   "workers' own time (forward + sampling) and what the step costs outside it\n"
		   "(scheduling, rings, wake-ups). Targets (issue 5): outside < 3%% of the step at\n"
		   "batch 32 with W = 1, and at most 50 us per step at batch 1.\n\n"
		   "  --model DIR     a checkpoint with tokenizer.json (default: --preset)\n"
		   "  --preset NAME   mkmodel preset written to a temporary directory (default small;\n"
		   "                  tiny with --quick)\n"
		   "  --batch LIST    batch sizes (default 1,8,32,128; 1,8 with --quick)\n"
		   "  --prompt N      prompt tokens (default 16)\n"
		   "  --steps N       decode steps measured per batch (default 64; 8 with --quick)\n"
		   "  --quantize TYPE q8_0, q4_0 or q4_k: weights quantized at load on both paths\n");
}

static int parse_quantize(const char *s, int *out)
{
	enum shmrt_dtype q;
	if (shmrt_dtype_from_name(s, &q) || (q != SHMRT_Q8_0 && q != SHMRT_Q4_0 && q != SHMRT_Q4_K)) {
		fprintf(stderr, "shmrt bench e2e: --quantize wants q8_0, q4_0 or q4_k, not '%s'\n", s);
		return -1;
	}
	*out = (int)q;
	return 0;
}

static int mp_parse(int argc, char **argv, struct mp_args *a)
{
	static const struct option opts[] = {
		{"workers", required_argument, 0, 'w'}, {"model", required_argument, 0, 'm'},
		{"preset", required_argument, 0, 'P'},	{"batch", required_argument, 0, 'b'},
		{"prompt", required_argument, 0, 'p'},	{"steps", required_argument, 0, 's'},
		{"quick", no_argument, 0, 'q'},		{"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},		{"quantize", required_argument, 0, 'Q'},
		{0}};
	const char *batches = NULL;
	*a = (struct mp_args){.workers = 1, .prompt = 16};
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "w:m:P:b:p:s:qjQ:h", opts, NULL)) != -1;) {
		char *end;
		long v = optarg ? strtol(optarg, &end, 10) : 0;
		int bad_num = optarg && (*end || v < 1 || v > 100000);
		switch (c) {
		case 'w': a->workers = (int)v; break;
		case 'p': a->prompt = (int)v; break;
		case 's': a->steps = (int)v; break;
		case 'm': a->model = optarg; bad_num = 0; break;
		case 'P': a->preset = optarg; bad_num = 0; break;
		case 'b': batches = optarg; bad_num = 0; break;
		case 'q': a->quick = 1; break;
		case 'j': a->json = 1; break;
		case 'Q': bad_num = 0; if (parse_quantize(optarg, &a->quantize_to)) return 2; break;
		case 'h': mp_usage(stdout); return 0;
		default: mp_usage(stderr); return 2;
		}
		if (bad_num) {
			fprintf(stderr, "shmrt bench e2e: --%s wants a number from 1 to 100000, not '%s'\n",
				opts[c == 'w' ? 0 : c == 'p' ? 4 : 5].name, optarg);
			return 2;
		}
	}
	if (optind < argc || (a->model && a->preset)) {
		mp_usage(stderr);
		return 2;
	}
	if (!batches)
		batches = a->quick ? "1,8" : "1,8,32,128";
	for (const char *p = batches; *p && a->n_batches < MP_MAX_BATCHES;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v < 1 || v > 1024 || (*end && *end != ',')) {
			fprintf(stderr, "shmrt bench e2e: --batch: a list of sizes 1..1024, not '%s'\n", batches);
			return 2;
		}
		a->batches[a->n_batches++] = (int)v;
		p = *end ? end + 1 : end;
	}
	if (!a->steps)
		a->steps = a->quick ? 8 : 64;
	if (!a->model && !a->preset)
		a->preset = a->quick ? "tiny" : "small";
	return -1;
}

static int mp_run(const struct mp_args *a, const char *dir)
{
	char exe[PATH_MAX], note[512] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return fprintf(stderr, "shmrt bench e2e: cannot find this program (/proc/self/exe)\n"), 1;
	exe[n] = '\0';
	struct shmrt_model *m;
	struct shmrt_model_options mo = {.backend = "cpu", .quantize_to = a->quantize_to};
	if (shmrt_model_load(dir, &mo, &m) < 0)
		return fprintf(stderr, "shmrt bench e2e: %s\n", shmrt_last_error()), 1;
	json_t *rows = json_array();
	struct e2e_mp_result parts[MP_MAX_BATCHES];
	if (!a->json)
		printf("%6s %7s %12s %12s %12s %12s %9s %12s %12s\n", "batch", "mean B", "single us", "multi us",
		       "worker us", "outside us", "outside%", "single tok/s", "multi tok/s");
	int rc = 0;
	for (int i = 0; i < a->n_batches && !rc; i++) {
		int B = a->batches[i];
		double sp_ns;
		struct e2e_mp_result r;
		if ((rc = single_process(m, B, a->prompt, a->steps, &sp_ns)) < 0) {
			fprintf(stderr, "shmrt bench e2e: batch %d: %s\n", B, shmrt_last_error());
			break;
		}
		if ((rc = e2e_mp_measure(dir, exe, a->workers, a->quantize_to, B, a->prompt, a->steps, &r, note, sizeof(note))) < 0) {
			fprintf(stderr, "shmrt bench e2e: batch %d: %s\n", B, note);
			break;
		}
		double pct = r.step_ns > 0 ? 100 * r.overhead_ns / r.step_ns : 0;
		json_array_append_new(rows, json_pack("{s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "batch",
						      B, "workers", a->workers, "steps", r.steps, "mean_batch",
						      r.mean_batch, "single_step_us",
						      sp_ns * 1e-3, "multi_step_us", r.step_ns * 1e-3, "worker_step_us",
						      r.worker_ns * 1e-3, "outside_us", r.overhead_ns * 1e-3,
						      "outside_percent", pct, "single_tokens_per_s", B * 1e9 / sp_ns,
						      "multi_tokens_per_s", r.tokens_per_s));
		json_object_set_new(json_array_get(rows, json_array_size(rows) - 1), "outside_parts_us",
				    json_pack("{s:f, s:f, s:f, s:f, s:f}", "plan", r.plan_ns * 1e-3, "to_worker",
					      r.to_worker_ns * 1e-3, "worker_other",
					      (r.overhead_ns - r.plan_ns - r.to_worker_ns - r.back_ns - r.post_ns) * 1e-3,
					      "back", r.back_ns * 1e-3, "post", r.post_ns * 1e-3));
		parts[i] = r;
		if (!a->json)
			printf("%6d %7.2f %12.1f %12.1f %12.1f %12.1f %8.2f%% %12.0f %12.0f\n", B, r.mean_batch, sp_ns * 1e-3,
			       r.step_ns * 1e-3,
			       r.worker_ns * 1e-3, r.overhead_ns * 1e-3, pct, B * 1e9 / sp_ns, r.tokens_per_s);
	}
	shmrt_model_free(m);
	if (!rc && a->json) {
		json_t *doc = json_pack("{s:s, s:s, s:i, s:i, s:i, s:o}", "benchmark", "e2e-multiprocess", "model", dir,
					"workers", a->workers, "prompt", a->prompt, "steps", a->steps, "rows", rows);
		json_dumpf(doc, stdout, JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(doc);
	} else {
		json_decref(rows);
		if (!rc) {
			printf("\nwhere the outside goes, us per step: the scheduler plans; the worker wakes;\n"
			       "the worker's own parsing; the scheduler wakes; it applies and sends events\n");
			printf("%6s %10s %10s %10s %10s %10s\n", "batch", "plan", "to worker", "worker etc", "back",
			       "post");
			for (int i = 0; i < a->n_batches; i++) {
				const struct e2e_mp_result *r = &parts[i];
				printf("%6d %10.1f %10.1f %10.1f %10.1f %10.1f\n", r->batch, r->plan_ns * 1e-3,
				       r->to_worker_ns * 1e-3,
				       (r->overhead_ns - r->plan_ns - r->to_worker_ns - r->back_ns - r->post_ns) * 1e-3,
				       r->back_ns * 1e-3, r->post_ns * 1e-3);
			}
			printf("targets: outside < 3%% of the step at batch 32 (W = 1), <= 50 us at batch 1\n");
		}
	}
	return rc < 0 ? 1 : 0;
}

int bench_e2e_mp(int argc, char **argv)
{
	struct mp_args a;
	int rc = mp_parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	char dir[64] = "";
	if (!a.model) {
		snprintf(dir, sizeof(dir), "/var/tmp/shmrt-bench-e2e-mp-XXXXXX");
		if (!mkdtemp(dir) || shmrt_mkmodel(a.preset, 0, dir) < 0) {
			fprintf(stderr, "shmrt bench e2e: mkmodel %s in %s: %s\n", a.preset, dir, shmrt_last_error());
			return 1;
		}
	}
	rc = mp_run(&a, a.model ? a.model : dir);
	/* what mkmodel writes */
	static const char *files[] = {"config.json", "model.safetensors", "tokenizer.json"};
	for (int i = 0; !a.model && i < 3; i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	if (!a.model)
		rmdir(dir);
	return rc;
}

/* shmrt bench shm: what a shared-memory budget buys (issue 10).
 *
 * For each budget (MiB) a tmpfs of exactly that size is mounted on a
 * private directory (in a mount namespace of our own when unshare lets us,
 * so that it vanishes with us) and SHMRT_SHM_DIR points the runtime there.
 * The runtime's arena is sized for the budget by shmrt_sizing_fit
 * (runtime/procs/sizing.h): the rings by the serving limits, which a budget
 * cannot change, and the shm transport's staging with the largest chunk
 * that fits what is left. Then, through the real runtime (the same
 * processes as `shmrt start`): whether it starts (the refusal otherwise),
 * decode tokens/s at batch 1 and at the large batch (e2e_mp_run), the
 * tmpfs's used bytes (statvfs) and the arena's touched bytes (shm_usage.h)
 * after the runs; once it has stopped, the transport's all-reduce bus
 * bandwidth with the same chunk in the same tmpfs, at the model's
 * activation sizes (hidden x 4 bytes a token: batch 1, the large batch, a
 * step of max batch tokens). Ratios are to the best budget of each
 * column; each figure is the best of --repeat measures (a shared machine
 * slows some of them; the best is the least disturbed). The knee
 * (shmrt_sizing_knee) is what `shmrt size --from-bench` advises. Mounting needs root (CAP_SYS_ADMIN): without it, a message and
 * nothing measured. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "arena_format.h"
#include "bench.h"
#include "e2e_mp.h"
#include "fail.h"
#include "proto.h"
#include "shm.h"
#include "shm_usage.h"
#include "sizing.h"

#define MiB ((uint64_t)1 << 20)

struct shm_args {
	const char *model, *preset, *csv, *plot;
	int workers, batch, prompt, steps, repeat, json;
	uint64_t budgets[SHM_MAX_BUDGETS];
	int n_budgets;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmrt bench shm [--model DIR | --preset NAME] [--workers N] [--budgets 64,128,...]\n"
		"                       [--batch N] [--prompt N] [--steps N] [--repeat N] [--json] [--csv F]\n"
		"                       [--plot F.png]\n\n"
		"For each shared-memory budget (MiB), mounts a tmpfs of exactly that size, starts the\n"
		"runtime in it (SHMRT_SHM_DIR) with the transport's staging sized to the budget\n"
		"(shmrt_sizing_fit: the largest power-of-two chunk that fits), and measures whether it\n"
		"starts (the refusal if not), decode tokens/s at batch 1 and at --batch, the tmpfs's\n"
		"used bytes and the arena's touched ones, then the transport's all-reduce bus\n"
		"bandwidth at the model's activation sizes in the same tmpfs. Ratios to the best\n"
		"budget; the knee is what `shmrt size --from-bench` advises. Needs root to mount.\n\n"
		"  --model DIR     a checkpoint with tokenizer.json (default: --preset)\n"
		"  --preset NAME   mkmodel preset written to a temporary directory (default small)\n"
		"  --workers N     tensor-parallel CPU workers (default 2)\n"
		"  --budgets LIST  MiB (default: the minimum - 1, the minimum, then powers of two up to\n"
		"                  where the chunk reaches 16 MiB)\n"
		"  --batch N       the large batch (default 32)\n"
		"  --prompt N      prompt tokens (default 16)\n"
		"  --steps N       decode steps measured per batch (default 32)\n"
		"  --repeat N      measures of each figure, the best kept (default 3: on a shared\n"
		"                  machine the best is the one the least disturbed)\n"
		"  --json          one JSON document on stdout (what `shmrt size --from-bench` reads)\n"
		"  --csv F         the rows as CSV\n"
		"  --plot F.png    tokens/s and all-reduce GB/s against the budget (gnuplot, else\n"
		"                  python3 matplotlib; a message when neither is installed)\n");
}

static int parse_budgets(const char *s, struct shm_args *a)
{
	for (const char *p = s; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v < 1 || v > 1 << 20 || (*end && *end != ',') || a->n_budgets == SHM_MAX_BUDGETS)
			return fprintf(stderr, "shmrt bench shm: --budgets: up to %d sizes in MiB, not '%s'\n",
				       SHM_MAX_BUDGETS, s), -1;
		a->budgets[a->n_budgets++] = (uint64_t)v;
		p = *end ? end + 1 : end;
	}
	return 0;
}

static int parse(int argc, char **argv, struct shm_args *a)
{
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'}, {"preset", required_argument, 0, 'P'},
		{"workers", required_argument, 0, 'w'}, {"budgets", required_argument, 0, 'B'},
		{"batch", required_argument, 0, 'b'}, {"prompt", required_argument, 0, 'p'},
		{"steps", required_argument, 0, 's'}, {"json", no_argument, 0, 'j'},
		{"csv", required_argument, 0, 'c'},   {"plot", required_argument, 0, 'g'},
		{"repeat", required_argument, 0, 'r'}, {"help", no_argument, 0, 'h'}, {0}};
	*a = (struct shm_args){.workers = 2, .batch = 32, .prompt = 16, .steps = 32, .repeat = 3};
	int *ints[128] = {['w'] = &a->workers, ['b'] = &a->batch, ['p'] = &a->prompt, ['s'] = &a->steps,
			  ['r'] = &a->repeat};
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
		char *end;
		long v;
		switch (c) {
		case 'm': a->model = optarg; break;
		case 'P': a->preset = optarg; break;
		case 'B': if (parse_budgets(optarg, a)) return 2; break;
		case 'j': a->json = 1; break;
		case 'c': a->csv = optarg; break;
		case 'g': a->plot = optarg; break;
		case 'w': case 'b': case 'p': case 's': case 'r':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > (c == 'w' ? SHMRT_XFER_MAX_WORLD : 4096))
				return fprintf(stderr, "shmrt bench shm: bad number '%s'\n", optarg), 2;
			*ints[c] = (int)v;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || (a->model && a->preset))
		return usage(stderr), 2;
	if (!a->model && !a->preset)
		a->preset = "small";
	return -1;
}

/* The serving limits of the runtime: e2e_mp_measure's for the large batch,
 * which also hold batch 1. */
static void limits(const struct shm_args *a, struct shmrt_runtime_options *o)
{
	int len = a->prompt + a->steps + 1, bs = 16;
	o->workers = a->workers;
	o->max_seqs = a->batch;
	o->max_batch_tokens = a->batch * a->prompt;
	o->max_model_len = len;
	o->block_size = bs;
	o->kv_blocks = a->batch * ((len + bs - 1) / bs);
	o->max_clients = 1;
}

static int sizing_for(const struct shm_args *a, const struct shmrt_model_config *m, uint64_t budget,
		      struct shmrt_sizing *s)
{
	struct shmrt_runtime_options o = {0};
	limits(a, &o);
	struct shmrt_sizing_params p = {.model = m, .tp = o.workers, .max_batch_tokens = o.max_batch_tokens,
					.max_seqs = o.max_seqs, .max_model_len = o.max_model_len,
					.block_size = o.block_size, .kv_blocks = o.kv_blocks,
					.max_clients = o.max_clients};
	return shmrt_sizing_fit(&p, budget, s);
}

/* Default budgets: the minimum - 1 (the refusal), the minimum, then powers
 * of two until the budget rule reaches the largest chunk. */
static void default_budgets(struct shm_args *a, const struct shmrt_model_config *m, uint64_t min_mib)
{
	if (min_mib > 1)
		a->budgets[a->n_budgets++] = min_mib - 1;
	a->budgets[a->n_budgets++] = min_mib;
	for (uint64_t b = 1; a->n_budgets < SHM_MAX_BUDGETS; b *= 2) {
		struct shmrt_sizing s;
		if (b <= min_mib)
			continue;
		a->budgets[a->n_budgets++] = b;
		if (a->workers < 2 || sizing_for(a, m, b * MiB, &s) || s.xfer_chunk >= SHMRT_SIZING_MAX_CHUNK)
			break;
	}
}

/* ---- one budget ------------------------------------------------------------ */

static char mnt[64];

static int mount_budget(uint64_t mib)
{
	char opts[48];
	snprintf(opts, sizeof(opts), "size=%llum,mode=0700", (unsigned long long)mib);
	return mount("tmpfs", mnt, "tmpfs", 0, opts) == 0 ? 0 : -errno;
}

static void unmount_budget(void)
{
	if (umount(mnt) != 0)
		umount2(mnt, MNT_DETACH);
}

/* Through the runtime while it runs: tokens/s, used and touched bytes. */
static int measure_runtime(const struct shm_args *a, const char *name, struct shm_row *row)
{
	struct shmrt_client *c = NULL;
	struct shmrt_arena *ar = NULL;
	struct rt_state *st = NULL;
	struct e2e_mp_result r1, rn;
	int rc = shmrt_client_attach(&c, name);
	if (!rc)
		rc = shmrt_arena_attach(&ar, name);
	if (!rc)
		rc = rt_state_get(ar, &st);
	for (int k = 0; k < a->repeat && !rc; k++) {
		if (!(rc = e2e_mp_run(c, st, 1, a->prompt, a->steps, &r1)) && r1.tokens_per_s > row->tps_b1)
			row->tps_b1 = r1.tokens_per_s;
		if (!rc && !(rc = e2e_mp_run(c, st, a->batch, a->prompt, a->steps, &rn)) && rn.tokens_per_s > row->tps_bn)
			row->tps_bn = rn.tokens_per_s;
	}
	if (!rc) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/" SHMRT_ARENA_PREFIX "%s", mnt, name);
		struct shm_usage u;
		rc = shm_fs_used(mnt, &row->fs_used);
		if (!rc && !(rc = shm_usage_of(path, &u)))
			row->touched = u.touched;
	}
	if (ar)
		shmrt_arena_detach(ar);
	shmrt_client_detach(c);
	return rc;
}

static int run_budget(const struct shm_args *a, const char *exe, const struct shmrt_model_config *m,
		      struct shm_row *row)
{
	struct shmrt_sizing s;
	int rc = sizing_for(a, m, row->budget_mib * MiB, &s);
	if (rc)
		return rc;
	row->arena_bytes = s.arena_bytes;
	row->xfer_chunk = a->workers > 1 ? s.xfer_chunk : 0;
	char name[64];
	snprintf(name, sizeof(name), "bench-shm-%d", (int)getpid());
	struct shmrt_runtime_options o = {.model_dir = a->model, .name = name, .exe = exe,
					  .xfer_chunk = row->xfer_chunk};
	limits(a, &o);
	struct shmrt_runtime *rt = NULL;
	rc = shmrt_runtime_start(&rt, &o);
	if (!rc)
		rc = shmrt_runtime_wait_ready(rt, (int64_t)600 * 1000000000);
	row->started = !rc;
	if (rc)
		snprintf(row->refusal, sizeof(row->refusal), "%s", shmrt_last_error());
	else if ((rc = measure_runtime(a, name, row)))
		fprintf(stderr, "shmrt bench shm: %llu MiB: %s\n", (unsigned long long)row->budget_mib,
			shmrt_last_error());
	if (rt)
		shmrt_runtime_stop(rt, 0);
	if (!row->started)
		return 0; /* a refusal is a result */
	if (!rc && a->workers > 1) {
		size_t h = (size_t)m->hidden_size * 4;
		size_t sizes[SHM_AR_SIZES] = {h, h * (size_t)a->batch, h * (size_t)a->batch * (size_t)a->prompt};
		memcpy(row->ar_bytes, sizes, sizeof(sizes));
		for (int k = 0; k < a->repeat && !rc; k++) {
			double g[SHM_AR_SIZES];
			rc = shm_allreduce_gbps(mnt, a->workers, row->xfer_chunk, sizes, SHM_AR_SIZES, g);
			for (int i = 0; i < SHM_AR_SIZES && !rc; i++)
				row->ar_gbps[i] = g[i] > row->ar_gbps[i] ? g[i] : row->ar_gbps[i];
		}
	}
	return rc;
}

/* ---- the command ------------------------------------------------------------ */

static int set_up_mounts(void)
{
	snprintf(mnt, sizeof(mnt), "/tmp/shmrt-bench-shm-XXXXXX");
	if (!mkdtemp(mnt))
		return shmrt_fail(errno, "mkdtemp %s: %m", mnt);
	/* Our own mount namespace where we may: the tmpfs then goes with us. */
	if (unshare(CLONE_NEWNS) == 0)
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	int rc = mount_budget(1);
	if (rc) {
		rmdir(mnt);
		return shmrt_fail(-rc, "cannot mount a tmpfs on %s (%s): run as root (or with CAP_SYS_ADMIN)",
				  mnt, strerror(-rc));
	}
	unmount_budget();
	setenv("SHMRT_SHM_DIR", mnt, 1);
	return 0;
}

static int run_all(struct shm_args *a, struct shm_run *r)
{
	char exe[PATH_MAX], path[4200];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return shmrt_fail(ENOENT, "cannot find this program (/proc/self/exe)");
	exe[n] = '\0';
	struct shmrt_model_config m;
	snprintf(path, sizeof(path), "%s/config.json", a->model);
	int rc = shmrt_model_config_load(path, &m);
	struct shmrt_sizing s;
	if (rc || (rc = sizing_for(a, &m, 0, &s)))
		return rc;
	*r = (struct shm_run){.model = a->model, .preset = a->preset, .workers = a->workers, .batch = a->batch,
			      .prompt = a->prompt, .steps = a->steps, .repeat = a->repeat, .hidden = m.hidden_size, .min_mib = s.min_mib};
	if (!a->n_budgets)
		default_budgets(a, &m, s.min_mib);
	for (int i = 0; i < a->n_budgets && !rc; i++) {
		struct shm_row *row = &r->rows[r->n_rows++];
		*row = (struct shm_row){.budget_mib = a->budgets[i]};
		if (!a->json)
			fprintf(stderr, "shmrt bench shm: %llu MiB ...\n", (unsigned long long)row->budget_mib);
		if ((rc = mount_budget(row->budget_mib)))
			return shmrt_fail(-rc, "mount a tmpfs of %llu MiB: %s", (unsigned long long)row->budget_mib,
					  strerror(-rc));
		rc = run_budget(a, exe, &m, row);
		unmount_budget();
	}
	struct shmrt_sizing_point pts[SHM_MAX_BUDGETS];
	for (int i = 0; i < r->n_rows; i++)
		pts[i] = (struct shmrt_sizing_point){.budget_mib = r->rows[i].budget_mib,
						     .started = r->rows[i].started,
						     .figures = {r->rows[i].tps_b1, r->rows[i].tps_bn,
								 r->rows[i].ar_gbps[SHM_AR_SIZES - 1]}};
	if (!rc)
		r->have_knee = shmrt_sizing_knee(pts, (unsigned)r->n_rows, &r->knee_mib) == 0;
	return rc;
}

static void remove_model(const char *dir)
{
	static const char *files[] = {"config.json", "model.safetensors", "tokenizer.json"};
	for (int i = 0; i < 3; i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static int report(const struct shm_args *a, const struct shm_run *r)
{
	if (a->json)
		shm_print_json(r);
	else
		shm_print_table(r);
	if (a->csv && shm_write_csv(r, a->csv) < 0)
		return fprintf(stderr, "shmrt bench shm: %s\n", shmrt_last_error()), 1;
	if (a->plot && shm_plot(r, a->plot) < 0)
		fprintf(stderr, "shmrt bench shm: no plot: %s\n", shmrt_last_error());
	return 0;
}

int bench_shm(int argc, char **argv)
{
	struct shm_args a;
	int rc = parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	if (set_up_mounts() < 0) {
		fprintf(stderr, "shmrt bench shm: skipped: %s\n", shmrt_last_error());
		if (a.json)
			printf("{\"benchmark\": \"shm\", \"skipped\": true, \"rows\": []}\n");
		return 0;
	}
	char dir[64] = "";
	if (!a.model) {
		snprintf(dir, sizeof(dir), "/var/tmp/shmrt-bench-shm-XXXXXX");
		if (!mkdtemp(dir) || shmrt_mkmodel(a.preset, 0, dir) < 0) {
			fprintf(stderr, "shmrt bench shm: mkmodel %s in %s: %s\n", a.preset, dir, shmrt_last_error());
			rmdir(mnt);
			return 1;
		}
		a.model = dir;
	}
	static struct shm_run r;
	rc = run_all(&a, &r);
	if (rc < 0)
		fprintf(stderr, "shmrt bench shm: %s\n", shmrt_last_error());
	else
		rc = report(&a, &r);
	if (*dir)
		remove_model(dir);
	rmdir(mnt);
	return rc ? 1 : 0;
}

/* shmrt bench shm: the table, CSV, JSON and plot (shm.h). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fail.h"
#include "shm.h"

#define AR_LAST (SHM_AR_SIZES - 1)

static double mib(uint64_t b)
{
	return (double)b / (1 << 20);
}

/* The best of a column over the budgets that started. */
static double best(const struct shm_run *r, int col)
{
	double b = 0;
	for (int i = 0; i < r->n_rows; i++) {
		const struct shm_row *w = &r->rows[i];
		double v = col == 0 ? w->tps_b1 : col == 1 ? w->tps_bn : w->ar_gbps[AR_LAST];
		if (w->started && v > b)
			b = v;
	}
	return b;
}

static double ratio(double v, double b)
{
	return b > 0 ? v / b : 0;
}

void shm_print_table(const struct shm_run *r)
{
	double b1 = best(r, 0), bn = best(r, 1), ba = best(r, 2);
	printf("model %s%s, %d workers, batch 1 and %d, prompt %d, %d decode steps, best of %d; minimum %llu MiB\n",
	       r->preset ? "preset " : "", r->preset ? r->preset : r->model, r->workers, r->batch, r->prompt,
	       r->steps, r->repeat, (unsigned long long)r->min_mib);
	printf("all-reduce of %zu bytes (a step of %d x %d tokens, f32); ratios to the best budget\n\n",
	       r->rows[0].ar_bytes[AR_LAST] ? r->rows[0].ar_bytes[AR_LAST] : (size_t)r->hidden * 4 * r->batch * r->prompt,
	       r->batch, r->prompt);
	printf("%8s %6s %9s %9s %9s %9s %16s %16s %16s\n", "budget", "starts", "chunk", "arena", "used", "touched",
	       "tok/s batch 1", "tok/s batch N", "all-reduce GB/s");
	printf("%8s %6s %9s %9s %9s %9s %16s %16s %16s\n", "MiB", "", "KiB", "MiB", "MiB", "MiB", "(x best)",
	       "(x best)", "(x best)");
	for (int i = 0; i < r->n_rows; i++) {
		const struct shm_row *w = &r->rows[i];
		printf("%8llu %6s %9zu %9.2f", (unsigned long long)w->budget_mib, w->started ? "yes" : "no",
		       w->xfer_chunk >> 10, mib(w->arena_bytes));
		if (!w->started) {
			printf("   refused\n");
			continue;
		}
		printf(" %9.2f %9.2f %8.0f (%4.2f) %8.0f (%4.2f) %8.2f (%4.2f)%s\n", mib(w->fs_used), mib(w->touched),
		       w->tps_b1, ratio(w->tps_b1, b1), w->tps_bn, ratio(w->tps_bn, bn), w->ar_gbps[AR_LAST],
		       ratio(w->ar_gbps[AR_LAST], ba), r->have_knee && w->budget_mib == r->knee_mib ? "  <- knee" : "");
	}
	for (int i = 0; i < r->n_rows; i++)
		if (!r->rows[i].started)
			printf("\n%llu MiB refused: %s\n", (unsigned long long)r->rows[i].budget_mib, r->rows[i].refusal);
	if (r->have_knee)
		printf("\nknee: %llu MiB, the smallest budget within 95%% of the best on every figure, else the\n"
		       "one whose worst figure is the highest (what `shmrt size --from-bench` advises, with\n"
		       "the shares of other /dev/shm users added)\n",
		       (unsigned long long)r->knee_mib);
	else
		printf("\nno knee: no budget started\n");
}

int shm_write_csv(const struct shm_run *r, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return shmrt_fail(errno, "%s: %m", path);
	double b1 = best(r, 0), bn = best(r, 1), ba = best(r, 2);
	fprintf(f, "budget_mib,started,xfer_chunk,arena_bytes,shm_used_bytes,touched_bytes,tokens_per_s_batch1,"
		   "tokens_per_s_batch_large,allreduce_bytes,allreduce_gbps,ratio_batch1,ratio_batch_large,"
		   "ratio_allreduce,knee\n");
	for (int i = 0; i < r->n_rows; i++) {
		const struct shm_row *w = &r->rows[i];
		fprintf(f, "%llu,%d,%zu,%llu,%llu,%llu,%.3f,%.3f,%zu,%.4f,%.4f,%.4f,%.4f,%d\n",
			(unsigned long long)w->budget_mib, w->started, w->xfer_chunk,
			(unsigned long long)w->arena_bytes, (unsigned long long)w->fs_used,
			(unsigned long long)w->touched, w->tps_b1, w->tps_bn, w->ar_bytes[AR_LAST], w->ar_gbps[AR_LAST],
			ratio(w->tps_b1, b1), ratio(w->tps_bn, bn), ratio(w->ar_gbps[AR_LAST], ba),
			r->have_knee && w->budget_mib == r->knee_mib);
	}
	return fclose(f) == 0 ? 0 : shmrt_fail(errno, "%s: %m", path);
}

static json_t *row_json(const struct shm_run *r, const struct shm_row *w)
{
	json_t *ar = json_array();
	for (int k = 0; k < SHM_AR_SIZES && w->started && w->ar_bytes[k]; k++)
		json_array_append_new(ar, json_pack("{s:I, s:f}", "bytes", (json_int_t)w->ar_bytes[k], "gbps",
						    w->ar_gbps[k]));
	json_t *o = json_pack("{s:I, s:b, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:o, s:f, s:f, s:f}", "budget_mib",
			      (json_int_t)w->budget_mib, "started", w->started, "xfer_chunk", (json_int_t)w->xfer_chunk,
			      "arena_bytes", (json_int_t)w->arena_bytes, "shm_used_bytes", (json_int_t)w->fs_used,
			      "touched_bytes", (json_int_t)w->touched, "tokens_per_s_batch1", w->tps_b1,
			      "tokens_per_s_batch_large", w->tps_bn, "allreduce_gbps", w->ar_gbps[AR_LAST], "allreduce",
			      ar, "ratio_batch1", ratio(w->tps_b1, best(r, 0)), "ratio_batch_large",
			      ratio(w->tps_bn, best(r, 1)), "ratio_allreduce", ratio(w->ar_gbps[AR_LAST], best(r, 2)));
	json_object_set_new(o, "refusal", w->started ? json_null() : json_string(w->refusal));
	return o;
}

void shm_print_json(const struct shm_run *r)
{
	json_t *rows = json_array();
	for (int i = 0; i < r->n_rows; i++)
		json_array_append_new(rows, row_json(r, &r->rows[i]));
	json_t *doc = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:o}", "benchmark", "shm", "model",
				r->model, "workers", r->workers, "batch", r->batch, "prompt", r->prompt, "steps", r->steps,
				"repeat", r->repeat,
				"hidden_size", r->hidden, "min_mib", (json_int_t)r->min_mib, "rows", rows);
	json_object_set_new(doc, "preset", r->preset ? json_string(r->preset) : json_null());
	json_object_set_new(doc, "knee_mib", r->have_knee ? json_integer((json_int_t)r->knee_mib) : json_null());
	json_dumpf(doc, stdout, JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(doc);
}

/* ---- the plot ----------------------------------------------------------------- */

static int have(const char *cmd)
{
	char sh[256];
	snprintf(sh, sizeof(sh), "%s >/dev/null 2>&1", cmd);
	int st = system(sh);
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* budget, tokens/s at 1 and N, all-reduce GB/s: the budgets that started. */
static int write_data(const struct shm_run *r, char *path, size_t cap)
{
	snprintf(path, cap, "/tmp/shmrt-bench-shm-plot-XXXXXX");
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		return shmrt_fail(errno, "plot data: %m");
	for (int i = 0; i < r->n_rows; i++)
		if (r->rows[i].started)
			fprintf(f, "%llu %.3f %.3f %.4f\n", (unsigned long long)r->rows[i].budget_mib, r->rows[i].tps_b1,
				r->rows[i].tps_bn, r->rows[i].ar_gbps[AR_LAST]);
	return fclose(f) == 0 ? 0 : shmrt_fail(errno, "plot data: %m");
}

static int run_script(const char *interp, const char *script)
{
	FILE *p = popen(interp, "w");
	if (!p)
		return shmrt_fail(errno, "%s: %m", interp);
	fputs(script, p);
	int st = pclose(p);
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0
								  : shmrt_fail(EIO, "%s failed (status %#x)", interp, st);
}

int shm_plot(const struct shm_run *r, const char *png)
{
	int gp = have("gnuplot --version"), mpl = !gp && have("python3 -c 'import matplotlib'");
	if (!gp && !mpl)
		return shmrt_fail(ENOENT, "neither gnuplot (Debian: gnuplot-nox) nor python3 matplotlib is installed");
	char data[64], script[4096];
	int rc = write_data(r, data, sizeof(data));
	if (rc)
		return rc;
	char title[256];
	snprintf(title, sizeof(title), "shmrt bench shm: %s, %d workers (ratios meaningful, machine shared)",
		 r->preset ? r->preset : "model", r->workers);
	long knee = r->have_knee ? (long)r->knee_mib : -1;
	if (gp)
		snprintf(script, sizeof(script),
			 "set terminal pngcairo size 960,540\nset output '%s'\nset title \"%s\"\n"
			 "set logscale x 2\nset xlabel 'shared memory budget (MiB)'\nset ylabel 'decode tokens/s'\n"
			 "set y2label 'all-reduce bus GB/s'\nset ytics nomirror\nset y2tics\nset key bottom right\n"
			 "set grid\nset yrange [0:*]\nset y2range [0:*]\n"
			 "if (%ld > 0) { set arrow from %ld, graph 0 to %ld, graph 1 nohead dt 2 lw 2 lc rgb 'red'; "
			 "set label 'advised (knee) %ld MiB' at %ld, graph 0.95 offset 0.5,0 tc rgb 'red' }\n"
			 "plot '%s' u 1:2 w lp pt 7 t 'tokens/s, batch 1', '' u 1:3 w lp pt 5 t 'tokens/s, batch %d', "
			 "'' u 1:4 axes x1y2 w lp pt 9 t 'all-reduce GB/s'\n",
			 png, title, knee, knee, knee, knee, knee, data, r->batch);
	else
		snprintf(script, sizeof(script),
			 "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
			 "d = [list(map(float, l.split())) for l in open('%s')]\n"
			 "fig, ax = plt.subplots(figsize=(9.6, 5.4))\nax2 = ax.twinx()\n"
			 "ax.plot([r[0] for r in d], [r[1] for r in d], 'o-', label='tokens/s, batch 1')\n"
			 "ax.plot([r[0] for r in d], [r[2] for r in d], 's-', label='tokens/s, batch %d')\n"
			 "ax2.plot([r[0] for r in d], [r[3] for r in d], 'd-', color='green', label='all-reduce GB/s')\n"
			 "ax.set_xscale('log', base=2)\nax.set_xlabel('shared memory budget (MiB)')\n"
			 "ax.set_ylabel('decode tokens/s')\nax2.set_ylabel('all-reduce bus GB/s')\n"
			 "ax.set_ylim(bottom=0)\nax2.set_ylim(bottom=0)\n"
			 "k = %ld\nif k > 0: ax.axvline(k, color='red', ls='--', label='advised (knee) %%d MiB' %% k)\n"
			 "ax.legend(loc='lower right')\nax.set_title(\"%s\")\nfig.savefig('%s', dpi=100)\n",
			 data, r->batch, knee, title, png);
	rc = run_script(gp ? "gnuplot" : "python3 -", script);
	unlink(data);
	return rc;
}

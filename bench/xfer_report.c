/* shmrt bench xfer's output: the table with ratios and the target, the
 * JSON document, the CSV rows. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "xfer.h"

/* Issue 5's target: the shm transport's busbw at 16 MiB is at least half
 * of memcpy's bandwidth at that size. */
#define TARGET_BYTES ((size_t)16 << 20)
#define TARGET_RATIO 0.5

static double memcpy_at(const struct xfer_report *r, size_t bytes)
{
	for (int s = 0; s < r->n_sizes; s++)
		if (r->sizes[s] == bytes)
			return r->memcpy_gbps[s];
	return NAN;
}

/* memcpy of W processes at once, per process, for a row of W workers. */
static double memcpy_par_at(const struct xfer_report *r, int workers, size_t bytes)
{
	for (int i = 0; i < r->n_workers; i++)
		for (int s = 0; s < r->n_sizes; s++)
			if (r->workers[i] == workers && r->sizes[s] == bytes)
				return r->memcpy_par_gbps[i][s];
	return NAN;
}

/* Rows of host buffers (the others are on GPUs: another limit). */
static bool host_row(const struct xfer_row *w)
{
	return !strcmp(w->transport, "shm") || !strcmp(w->transport, "shm-buf");
}

/* busbw / memcpy for host rows; NAN for device ones. */
static double ratio(const struct xfer_report *r, const struct xfer_row *w)
{
	return host_row(w) ? w->busbw_gbps / memcpy_at(r, w->bytes) : NAN;
}

/* busbw / memcpy of W processes at once (per process). */
static double ratio_par(const struct xfer_report *r, const struct xfer_row *w)
{
	return host_row(w) ? w->busbw_gbps / memcpy_par_at(r, w->workers, w->bytes) : NAN;
}

static bool oversubscribed(const struct xfer_report *r, const struct xfer_row *w)
{
	return host_row(w) && w->workers > r->cpus;
}

static const char *size_name(size_t bytes, char *out, size_t cap)
{
	if (bytes >= 1 << 20)
		snprintf(out, cap, "%zu MiB", bytes >> 20);
	else
		snprintf(out, cap, "%zu KiB", bytes >> 10);
	return out;
}

void xfer_print_table(const struct xfer_report *r)
{
	char sz[24];
	printf("shmrt bench xfer%s: all-reduce (sum, fp32) between W worker processes, %d CPU%s\n"
	       "shm: out of place, private buffers; shm-buf: in place in the ranks' shared buffers\n"
	       "time: per call (the slowest rank's), median over the run; mean: the run's mean\n"
	       "algbw = bytes / time; busbw = algbw * 2(W-1)/W (nccl-tests, doc/PERFORMANCE.md)\n"
	       "memcpy: one thread, same size, best in this run; memcpy xW: each of W processes copying\n"
	       "at once (what one rank can have); GB/s = 10^9 bytes/s\n\n",
	       r->quick ? " --quick" : "", r->cpus, r->cpus == 1 ? "" : "s");
	printf("%-9s %3s %8s %10s %10s %7s %11s %11s %8s %9s %9s %6s\n", "transport", "W", "size", "time us",
	       "mean us", "iters", "algbw GB/s", "busbw GB/s", "memcpy", "% memcpy", "memcpy xW", "% xW");
	for (int i = 0; i < r->n_rows; i++) {
		const struct xfer_row *w = &r->rows[i];
		if (i && (w->workers != r->rows[i - 1].workers || strcmp(w->transport, r->rows[i - 1].transport)))
			printf("\n");
		double x = ratio(r, w), m = host_row(w) ? memcpy_at(r, w->bytes) : NAN;
		printf("%-9s %3d %8s %10.1f %10.1f %7ld %11.2f %11.2f", w->transport, w->workers,
		       size_name(w->bytes, sz, sizeof(sz)), w->time_us, w->mean_us, w->iters, w->algbw_gbps,
		       w->busbw_gbps);
		if (isnan(x))
			printf(" %8s %9s %9s %6s\n", "-", "-", "-", "-");
		else
			printf(" %8.2f %8.0f%% %9.2f %5.0f%%%s\n", m, 100 * x, memcpy_par_at(r, w->workers, w->bytes),
			       100 * ratio_par(r, w), oversubscribed(r, w) ? "  (W > CPUs)" : "");
	}
	printf("\ntarget: shm busbw at 16 MiB >= %.0f%% of memcpy:\n", 100 * TARGET_RATIO);
	for (int i = 0; i < r->n_rows; i++) {
		const struct xfer_row *w = &r->rows[i];
		if (!host_row(w) || w->bytes != TARGET_BYTES)
			continue;
		double x = ratio(r, w);
		printf("  %-7s W=%d: %.1f%%: %s (%.0f%% of memcpy xW)%s\n", w->transport, w->workers, 100 * x,
		       x >= TARGET_RATIO ? "met" : "NOT met", 100 * ratio_par(r, w),
		       oversubscribed(r, w) ? " (more workers than CPUs: they take turns on the cores)" : "");
	}
	if (r->nccl_note)
		printf("\n%s\n", r->nccl_note);
}

static json_t *num_or_null(double x)
{
	return isnan(x) ? json_null() : json_real(x);
}

int xfer_print_json(const struct xfer_report *r)
{
	json_t *doc = json_object(), *results = json_array(), *mc = json_array(), *notes = json_array();
	for (int i = 0; i < r->n_rows; i++) {
		const struct xfer_row *w = &r->rows[i];
		json_array_append_new(results,
				      json_pack("{s:s, s:i, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:o, s:o, s:b}", "transport",
						w->transport, "workers", w->workers, "bytes", (json_int_t)w->bytes, "iters",
						(json_int_t)w->iters, "time_us", w->time_us, "mean_us", w->mean_us,
						"best_us", w->best_us, "algbw_gbps", w->algbw_gbps,
						"busbw_gbps", w->busbw_gbps, "busbw_over_memcpy", num_or_null(ratio(r, w)),
						"busbw_over_memcpy_xw", num_or_null(ratio_par(r, w)),
						"oversubscribed", oversubscribed(r, w)));
	}
	for (int s = 0; s < r->n_sizes; s++) {
		json_t *par = json_object();
		for (int i = 0; i < r->n_workers; i++) {
			char w[16];
			snprintf(w, sizeof(w), "%d", r->workers[i]);
			json_object_set_new(par, w, json_real(r->memcpy_par_gbps[i][s]));
		}
		json_array_append_new(mc, json_pack("{s:I, s:f, s:o}", "bytes", (json_int_t)r->sizes[s], "gbps",
						    r->memcpy_gbps[s], "concurrent_gbps", par));
	}
	if (r->nccl_note)
		json_array_append_new(notes, json_string(r->nccl_note));
	json_t *workers = json_array();
	for (int i = 0; i < r->n_workers; i++)
		json_array_append_new(workers, json_integer(r->workers[i]));
	json_object_set_new(doc, "results", results);
	json_object_set_new(doc, "memcpy", mc);
	json_object_set_new(doc, "workers", workers);
	json_object_set_new(doc, "cpus", json_integer(r->cpus));
	json_object_set_new(doc, "gpus", json_integer(r->gpus < 0 ? 0 : r->gpus));
	json_object_set_new(doc, "nccl_built", json_boolean(r->nccl_built));
	json_object_set_new(doc, "quick", json_boolean(r->quick));
	json_object_set_new(doc, "target", json_pack("{s:I, s:f}", "bytes", (json_int_t)TARGET_BYTES,
						    "busbw_over_memcpy", TARGET_RATIO));
	json_object_set_new(doc, "notes", notes);
	int rc = json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(8));
	printf("\n");
	json_decref(doc);
	return rc ? -EIO : 0;
}

int xfer_write_csv(const struct xfer_report *r, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "transport,workers,bytes,iters,time_us,mean_us,best_us,algbw_gbps,busbw_gbps,memcpy_gbps,"
		   "busbw_over_memcpy,memcpy_xw_gbps,busbw_over_memcpy_xw\n");
	for (int i = 0; i < r->n_rows; i++) {
		const struct xfer_row *w = &r->rows[i];
		double x = ratio(r, w);
		fprintf(f, "%s,%d,%zu,%ld,%.3f,%.3f,%.3f,%.4f,%.4f,", w->transport, w->workers, w->bytes, w->iters,
			w->time_us, w->mean_us, w->best_us, w->algbw_gbps, w->busbw_gbps);
		if (isnan(x))
			fprintf(f, ",,,\n");
		else
			fprintf(f, "%.4f,%.4f,%.4f,%.4f\n", memcpy_at(r, w->bytes), x, memcpy_par_at(r, w->workers, w->bytes),
				ratio_par(r, w));
	}
	return fclose(f) ? -errno : 0;
}

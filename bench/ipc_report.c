/* shmrt bench ipc's output: the table with ratios and targets, the JSON
 * document, the CSV rows. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "shmrt_config.h"
#include "ipc.h"

static const struct ipc_row *find_row(const struct ipc_report *r, const char *transport, size_t bytes)
{
	for (int i = 0; i < r->n_rows; i++)
		if (r->rows[i].bytes == bytes && !strcmp(r->rows[i].transport, transport))
			return &r->rows[i];
	return NULL;
}

/* a / b, NAN when either is missing. */
static double ratio(double a, double b)
{
	return isnan(a) || isnan(b) || b == 0 ? NAN : a / b;
}

/* The figure of a row that may be missing. */
#define FIGURE(row, field) ((row) ? (row)->field : NAN)

/* " x" right-aligned in width, or " -" when x is missing. */
static void put_num(double x, int width, int precision)
{
	if (isnan(x))
		printf(" %*s", width, "-");
	else
		printf(" %*.*f", width, precision, x);
}

static const char *size_name(size_t bytes, char *out, size_t cap)
{
	if (bytes >= 1 << 20)
		snprintf(out, cap, "%zu MiB", bytes >> 20);
	else if (bytes >= 1 << 10)
		snprintf(out, cap, "%zu KiB", bytes >> 10);
	else
		snprintf(out, cap, "%zu B", bytes);
	return out;
}

static const char *met(bool ok)
{
	return ok ? "met" : "NOT met";
}

/* Issue 2's targets, as ratios within this run. */
static void print_targets(const struct ipc_report *r)
{
	double fl = FIGURE(find_row(r, "floor", 64), p50_ns), sp = FIGURE(find_row(r, "shmrt-spin", 64), p50_ns);
	const struct ipc_row *zq = find_row(r, "zmq", 64);
	double x = ratio(sp, fl);
	printf("\ntargets:\n  shmrt-spin p50 at 64 B = %.2f x floor (<= 1.5): %s\n", x, met(x <= 1.5));
	if (zq) {
		x = ratio(zq->p50_ns, sp);
		printf("  zmq p50 at 64 B = %.0f x shmrt-spin (>= 50): %s\n", x, met(x >= 50));
	}
	x = 100 * ratio(FIGURE(find_row(r, "shmrt-spin", 1 << 20), mb_per_s),
			FIGURE(find_row(r, "memcpy", 1 << 20), mb_per_s));
	printf("  shmrt-spin at 1 MiB = %.0f%% of memcpy (>= 70%%): %s\n", x, met(x >= 70));
	printf("  idle blocked consumer = %.3f%% of a core (< 1%%): %s\n", r->idle_cpu_percent,
	       met(r->idle_cpu_percent < 1));
}

void ipc_print_table(const struct ipc_report *r)
{
	char sz[24];
	printf("shmrt bench ipc%s: process A on CPU %d, B on CPU %d, transports taking %d turn%s\n"
	       "latency: one way, = round trip / 2; MB/s: 10^6 payload bytes/s streamed A -> B\n"
	       "ratios: p50 / floor's p50, p50 / shmrt-spin's p50, MB/s / memcpy's MB/s\n\n",
	       r->quick ? " --quick" : "", r->cpu_a, r->cpu_b, r->rounds, r->rounds > 1 ? "s" : "");
	printf("%-12s %8s %10s %10s %10s %9s %9s %9s\n", "transport", "record", "p50 us", "p99 us", "MB/s",
	       "x floor", "x spin", "% memcpy");
	for (int i = 0; i < r->n_rows; i++) {
		const struct ipc_row *w = &r->rows[i];
		if (i && w->bytes != r->rows[i - 1].bytes)
			printf("\n");
		printf("%-12s %8s", w->transport, size_name(w->bytes, sz, sizeof(sz)));
		put_num(w->p50_ns / 1e3, 10, 2);
		put_num(w->p99_ns / 1e3, 10, 2);
		put_num(w->mb_per_s, 10, 0);
		put_num(ratio(w->p50_ns, FIGURE(find_row(r, "floor", w->bytes), p50_ns)), 9, 2);
		put_num(ratio(w->p50_ns, FIGURE(find_row(r, "shmrt-spin", w->bytes), p50_ns)), 9, 2);
		put_num(100 * ratio(w->mb_per_s, FIGURE(find_row(r, "memcpy", w->bytes), mb_per_s)), 9, 0);
		printf("\n");
	}
	printf("\nmemcpy: one thread copying records into a buffer the size of the shmrt rings;\n"
	       "through memory (buffers twice the last-level cache), 1 MiB records: %.0f MB/s,\n"
	       "shmrt-spin at 1 MiB = %.0f%% of that\n",
	       r->memcpy_dram_mb_per_s,
	       100 * ratio(FIGURE(find_row(r, "shmrt-spin", 1 << 20), mb_per_s), r->memcpy_dram_mb_per_s));
	printf("\nidle blocked consumer (shmrt ring, default spin then futex): %.3f%% of a core over %.1f s\n",
	       r->idle_cpu_percent, r->idle_window_s);
	print_targets(r);
#if !SHMRT_HAVE_ZMQ
	printf("\nnote: no zmq rows: shmrt was built without libzmq (install libzmq3-dev and reconfigure)\n");
#endif
}

static json_t *num_or_null(double x)
{
	return isnan(x) ? json_null() : json_real(x);
}

int ipc_print_json(const struct ipc_report *r)
{
	json_t *doc = json_object(), *results = json_array(), *notes = json_array();
	for (int i = 0; i < r->n_rows; i++) {
		const struct ipc_row *w = &r->rows[i];
		json_array_append_new(results, json_pack("{s:s, s:I, s:o, s:o, s:o}", "transport", w->transport,
							 "bytes", (json_int_t)w->bytes, "p50_ns", num_or_null(w->p50_ns),
							 "p99_ns", num_or_null(w->p99_ns), "mb_per_s",
							 num_or_null(w->mb_per_s)));
	}
#if !SHMRT_HAVE_ZMQ
	json_array_append_new(notes, json_string("no zmq rows: shmrt was built without libzmq"));
#endif
	json_object_set_new(doc, "results", results);
	json_object_set_new(doc, "idle_consumer_cpu_percent", json_real(r->idle_cpu_percent));
	json_object_set_new(doc, "idle_window_s", json_real(r->idle_window_s));
	json_object_set_new(doc, "memcpy_dram_mb_per_s", num_or_null(r->memcpy_dram_mb_per_s));
	json_object_set_new(doc, "cpus", json_pack("[i, i]", r->cpu_a, r->cpu_b));
	json_object_set_new(doc, "quick", json_boolean(r->quick));
	json_object_set_new(doc, "rounds", json_integer(r->rounds));
	json_object_set_new(doc, "notes", notes);
	int rc = json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(8));
	printf("\n");
	json_decref(doc);
	return rc ? -EIO : 0;
}

int ipc_write_csv(const struct ipc_report *r, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "transport,bytes,p50_ns,p99_ns,mb_per_s\n");
	for (int i = 0; i < r->n_rows; i++) {
		const struct ipc_row *w = &r->rows[i];
		double v[3] = {w->p50_ns, w->p99_ns, w->mb_per_s};
		fprintf(f, "%s,%zu", w->transport, w->bytes);
		for (int k = 0; k < 3; k++)
			if (isnan(v[k]))
				fprintf(f, ",");
			else
				fprintf(f, ",%.1f", v[k]);
		fprintf(f, "\n");
	}
	return fclose(f) ? -errno : 0;
}

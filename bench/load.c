/* shmrt bench load: checkpoint load GB/s with io_uring and with pread,
 * against plain read() of the same files into memory, in the same run.
 * Issue 4, "Loading".
 *
 * Each round runs the three methods in turn (the order rotating by round):
 * for each, the page cache of the files is dropped (posix_fadvise
 * DONTNEED per file, else /proc/sys/vm/drop_caches where writable; checked
 * with mincore) and the files are read cold; then they are read into the
 * page cache (untimed: O_DIRECT loads leave them out of it) and read again
 * warm. The loader reads through the page cache unless --cache direct. Every load is checked against what read() got (a hash
 * of the tensor bytes; the buffer is overwritten before each load). The
 * figures are bytes / wall time over all rounds; GB = 10^9 bytes.
 *
 * Without --model, a synthetic Llama checkpoint (bf16, real tensor names
 * and shapes, random bytes) is written into a fresh directory under
 * /var/tmp (--tmpdir): 1.56 GiB in two shards, or 59 MiB in one file with
 * --quick; it is removed afterwards. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <linux/magic.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "shmrt/checkpoint.h"
#include "shmrt/error.h"
#include "clock.h"
#include "bench.h"
#include "load.h"

enum method { M_READ, M_URING, M_PREAD, N_METHODS };
static const char *const method_names[N_METHODS] = {"read", "io_uring", "pread"};
enum cache { COLD, WARM, N_CACHES };
/* enum shmrt_load_cache's names, as --cache takes them. */
static const char *const cache_mode_names[] = {"buffered", "direct"};

/* TinyLlama-1.1B's shapes with 16 of its 22 layers: 1.56 GiB of bf16. */
static const struct load_synth full_model = {2048, 5632, 16, 32, 4, 32000, 2};
/* 59 MiB. */
static const struct load_synth quick_model = {512, 1408, 8, 8, 2, 8192, 1};

/* Above this share of its pages resident, a file is not cold. */
#define MAX_COLD_RESIDENT 0.01

struct bench {
	struct shmrt_checkpoint *ck;
	size_t nfiles;
	int *fds;          /* our own, for read() and the cache */
	uint64_t *size;    /* of each file */
	uint64_t *base;    /* where each file lands in buf */
	uint8_t *buf;      /* the files back to back */
	uint64_t file_bytes, tensor_bytes;
	struct shmrt_load_item *items;
	size_t n_items;
	struct shmrt_load_options opt;
	uint64_t want_hash; /* of the tensors, as read() got them */
	bool have_want, uring_ok;
	const char *dropped_by; /* what dropped the cache last: NULL if nothing did */
	double max_resident;    /* share of pages resident after a drop, the worst seen */
	double min_warm_resident; /* the same before a warm read */
	double bytes[N_CACHES][N_METHODS], ns[N_CACHES][N_METHODS];
	double read_bytes[N_CACHES][N_METHODS], direct_bytes[N_CACHES][N_METHODS]; /* the loader's */
	char uring_note[256];
};

/* ---- the page cache ---- */

/* The share of the files' pages in the page cache (mincore). */
static double resident_share(const struct bench *b)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), in = 0, all = 0;
	for (size_t f = 0; f < b->nfiles; f++) {
		size_t pages = (b->size[f] + page - 1) / page;
		if (!pages)
			continue;
		void *p = mmap(NULL, b->size[f], PROT_READ, MAP_SHARED, b->fds[f], 0);
		unsigned char *vec = malloc(pages);
		if (p != MAP_FAILED && vec && mincore(p, b->size[f], vec) == 0)
			for (size_t i = 0; i < pages; i++)
				in += vec[i] & 1;
		else
			in += pages; /* unknown: not cold */
		all += pages;
		free(vec);
		if (p != MAP_FAILED)
			munmap(p, b->size[f]);
	}
	return all ? (double)in / (double)all : 0;
}

static bool drop_caches_sysctl(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, "1", 1) == 1;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Drops the files from the page cache; the resident share afterwards. */
static double drop_cache(struct bench *b)
{
	for (size_t f = 0; f < b->nfiles; f++)
		posix_fadvise(b->fds[f], 0, 0, POSIX_FADV_DONTNEED);
	b->dropped_by = "posix_fadvise";
	double share = resident_share(b);
	if (share > MAX_COLD_RESIDENT && drop_caches_sysctl()) {
		b->dropped_by = "drop_caches";
		share = resident_share(b);
	}
	if (share > b->max_resident)
		b->max_resident = share;
	return share;
}

/* ---- the methods ---- */

static int read_file(int fd, uint8_t *dst, uint64_t size)
{
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	for (uint64_t done = 0; done < size;) {
		ssize_t n = read(fd, dst + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (uint64_t)n;
	}
	return 0;
}

static int run_read(struct bench *b, uint64_t *bytes)
{
	for (size_t f = 0; f < b->nfiles; f++) {
		int rc = read_file(b->fds[f], b->buf + b->base[f], b->size[f]);
		if (rc < 0) {
			fprintf(stderr, "shmrt bench load: read %s: %s\n", shmrt_checkpoint_file(b->ck, f),
				strerror(-rc));
			return rc;
		}
	}
	*bytes = b->file_bytes;
	return 0;
}

static int run_load(struct bench *b, enum shmrt_io_method m, enum cache c, uint64_t *bytes)
{
	struct shmrt_load_options opt = b->opt;
	opt.as_stored = true; /* the file's bytes, as read() gets them */
	opt.method = m;
	struct shmrt_load_stats st = {0};
	int rc = shmrt_checkpoint_load(b->ck, b->items, b->n_items, &opt, &st);
	if (rc < 0) {
		if (m == SHMRT_IO_URING && (rc == -ENOSYS || rc == -EPERM || rc == -ENOTSUP)) {
			snprintf(b->uring_note, sizeof(b->uring_note), "no io_uring rows: %s", shmrt_last_error());
			b->uring_ok = false;
			return 1;
		}
		fprintf(stderr, "shmrt bench load: %s: %s\n", shmrt_io_method_name(m), shmrt_last_error());
		return rc;
	}
	*bytes = st.bytes;
	b->read_bytes[c][m == SHMRT_IO_URING ? M_URING : M_PREAD] += (double)st.bytes_read;
	b->direct_bytes[c][m == SHMRT_IO_URING ? M_URING : M_PREAD] += (double)st.bytes_direct;
	return 0;
}

/* Reads the files once (untimed) so that they are in the page cache: a
 * load with O_DIRECT leaves them out. */
static int fill_cache(struct bench *b)
{
	uint64_t bytes;
	int rc = run_read(b, &bytes);
	double share = resident_share(b);
	if (share < b->min_warm_resident)
		b->min_warm_resident = share;
	return rc;
}

/* 64-bit FNV-style hash of the tensors' bytes in buf, four lanes. */
static uint64_t tensors_hash(const struct bench *b)
{
	uint64_t h[4] = {1, 2, 3, 4};
	for (size_t i = 0; i < b->n_items; i++) {
		const uint8_t *p = b->items[i].dst;
		uint64_t n = b->items[i].tensor->size, k = 0;
		for (; k + 32 <= n; k += 32)
			for (int l = 0; l < 4; l++) {
				uint64_t w;
				memcpy(&w, p + k + 8 * l, 8);
				h[l] = (h[l] ^ w) * 0x100000001B3ull;
			}
		for (; k < n; k++)
			h[0] = (h[0] ^ p[k]) * 0x100000001B3ull;
	}
	return h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7);
}

/* One timed run of method m; checks the tensors it delivered. Returns 1
 * when the method is not available here (io_uring). */
static int measure(struct bench *b, enum method m, enum cache c, int round)
{
	memset(b->buf, 0x11 * (round + 1) + m + c, b->file_bytes); /* stale bytes must not pass */
	uint64_t bytes = 0;
	int64_t t0 = shmrt_now_ns();
	int rc = m == M_READ ? run_read(b, &bytes) : run_load(b, m == M_URING ? SHMRT_IO_URING : SHMRT_IO_PREAD, c, &bytes);
	int64_t t1 = shmrt_now_ns();
	if (rc != 0)
		return rc;
	uint64_t h = tensors_hash(b);
	if (m == M_READ && !b->have_want) {
		b->want_hash = h;
		b->have_want = true;
	} else if (b->have_want && h != b->want_hash) {
		fprintf(stderr, "shmrt bench load: %s delivered other bytes than read() (tensor hash %016llx, want %016llx)\n",
			method_names[m], (unsigned long long)h, (unsigned long long)b->want_hash);
		return -EBADMSG;
	}
	b->bytes[c][m] += (double)bytes;
	b->ns[c][m] += (double)(t1 - t0);
	return 0;
}

/* A round: each method cold, then warm; read first in round 0 (it makes
 * the reference hash), the order rotating after that. */
static int run_round(struct bench *b, int round)
{
	for (int i = 0; i < N_METHODS; i++) {
		enum method m = (enum method)((round + i) % N_METHODS);
		if (m == M_URING && !b->uring_ok)
			continue;
		drop_cache(b);
		int rc = measure(b, m, COLD, round);
		if (rc == 0)
			rc = fill_cache(b);
		if (rc == 0)
			rc = measure(b, m, WARM, round);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- setting up ---- */

static int open_files(struct bench *b)
{
	b->nfiles = shmrt_checkpoint_file_count(b->ck);
	b->fds = malloc(b->nfiles * sizeof(*b->fds));
	b->size = calloc(b->nfiles, sizeof(*b->size));
	b->base = calloc(b->nfiles, sizeof(*b->base));
	if (!b->fds || !b->size || !b->base)
		return -ENOMEM;
	for (size_t f = 0; f < b->nfiles; f++) {
		const char *path = shmrt_checkpoint_file(b->ck, f);
		struct stat st;
		b->fds[f] = open(path, O_RDONLY | O_CLOEXEC);
		if (b->fds[f] < 0 || fstat(b->fds[f], &st) < 0) {
			fprintf(stderr, "shmrt bench load: %s: %s\n", path, strerror(errno));
			return -errno;
		}
		b->size[f] = (uint64_t)st.st_size;
		b->base[f] = b->file_bytes;
		b->file_bytes += b->size[f];
	}
	return 0;
}

/* Every tensor, placed where read() puts its bytes. */
static int make_items(struct bench *b)
{
	b->n_items = shmrt_checkpoint_tensor_count(b->ck);
	b->items = calloc(b->n_items ? b->n_items : 1, sizeof(*b->items));
	if (!b->items)
		return -ENOMEM;
	for (size_t i = 0; i < b->n_items; i++) {
		const struct shmrt_tensor_info *t = shmrt_checkpoint_tensor(b->ck, i);
		size_t f = 0;
		while (f < b->nfiles && strcmp(shmrt_checkpoint_file(b->ck, f), t->file))
			f++;
		if (f == b->nfiles)
			return -ENOENT;
		b->items[i] = (struct shmrt_load_item){.tensor = t, .dst = b->buf + b->base[f] + t->offset};
		b->tensor_bytes += t->size;
	}
	return 0;
}

static int bench_open(struct bench *b, const char *dir)
{
	int rc = shmrt_checkpoint_open(dir, &b->ck);
	if (rc < 0) {
		fprintf(stderr, "shmrt bench load: %s\n", shmrt_last_error());
		return rc;
	}
	if ((rc = open_files(b)) < 0)
		return rc;
	b->buf = malloc(b->file_bytes ? b->file_bytes : 1);
	if (!b->buf) {
		fprintf(stderr, "shmrt bench load: no memory for %llu bytes\n", (unsigned long long)b->file_bytes);
		return -ENOMEM;
	}
	return make_items(b);
}

static void bench_close(struct bench *b)
{
	for (size_t f = 0; b->fds && f < b->nfiles; f++)
		if (b->fds[f] >= 0)
			close(b->fds[f]);
	free(b->fds);
	free(b->size);
	free(b->base);
	free(b->items);
	free(b->buf);
	if (b->ck)
		shmrt_checkpoint_close(b->ck);
}

/* Removes our temporary directory and the plain files in it. */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
}

static bool on_tmpfs(const char *dir)
{
	struct statfs s;
	return statfs(dir, &s) == 0 && (s.f_type == TMPFS_MAGIC || s.f_type == RAMFS_MAGIC);
}

/* ---- the report ---- */

struct report {
	const char *dir;
	bool synthetic, quick, tmpfs;
	int rounds;
};

static double rate(const struct bench *b, enum cache c, enum method m)
{
	return b->ns[c][m] > 0 ? b->bytes[c][m] / b->ns[c][m] : NAN; /* bytes/ns = GB/s */
}

static double vs_read(const struct bench *b, enum cache c, enum method m)
{
	return rate(b, c, m) / rate(b, c, M_READ);
}

/* The share of the loader's bytes read with O_DIRECT; NAN for read(). */
static double direct_share(const struct bench *b, enum cache c, enum method m)
{
	return m == M_READ || !b->read_bytes[c][m] ? NAN : b->direct_bytes[c][m] / b->read_bytes[c][m];
}

static bool cold_ok(const struct bench *b)
{
	return b->max_resident <= MAX_COLD_RESIDENT;
}

static const char *cache_name(const struct bench *b, enum cache c)
{
	return c == WARM ? "warm" : cold_ok(b) ? "cold" : "cached";
}

static void print_table(const struct bench *b, const struct report *r)
{
	printf("shmrt bench load%s: %s (%s%zu file%s, %zu tensors, %.2f GiB), %d round%s, methods taking turns\n",
	       r->quick ? " --quick" : "", r->dir, r->synthetic ? "synthetic, " : "", b->nfiles,
	       b->nfiles > 1 ? "s" : "", b->n_items, (double)b->tensor_bytes / (1 << 30), r->rounds,
	       r->rounds > 1 ? "s" : "");
	if (cold_ok(b))
		printf("cold: page cache dropped before each cold read (%s), at most %.1f%% of pages resident "
		       "(mincore)\n",
		       b->dropped_by, 100 * b->max_resident);
	else
		printf("NOT cold: the page cache could not be dropped (up to %.0f%% of pages stayed resident): "
		       "the first rows are from cache too\n",
		       100 * b->max_resident);
	printf("warm: the files read into the page cache first (at least %.0f%% of pages resident)\n",
	       100 * b->min_warm_resident);
	printf("loader: queue depth %u (io_uring), reads of %zu KiB, page cache mode %s; GB = 10^9 bytes;\n"
	       "read = read() of whole files; O_DIRECT = share of the loader's bytes read with it\n\n",
	       b->opt.queue_depth, b->opt.block_bytes >> 10, cache_mode_names[b->opt.cache]);
	printf("%-10s %-7s %9s %9s %8s %9s\n", "method", "cache", "GB/s", "seconds", "% read", "O_DIRECT");
	for (int c = 0; c < N_CACHES; c++)
		for (int m = 0; m < N_METHODS; m++) {
			if (b->ns[c][m] <= 0)
				continue;
			printf("%-10s %-7s %9.2f %9.3f %8.0f", method_names[m], cache_name(b, c), rate(b, c, m),
			       b->ns[c][m] / 1e9 / r->rounds, 100 * vs_read(b, c, m));
			double d = direct_share(b, c, m);
			if (isnan(d))
				printf(" %9s\n", "-");
			else
				printf(" %8.0f%%\n", 100 * d);
		}
	if (b->uring_ok) {
		double x = 100 * vs_read(b, COLD, M_URING);
		printf("\ntarget: io_uring %s = %.0f%% of read (>= 90%%): %s\n", cache_name(b, COLD), x,
		       x >= 90 ? "met" : "NOT met");
	} else {
		printf("\n%s\n", b->uring_note);
	}
	if (r->tmpfs)
		printf("note: %s is on tmpfs: nothing is ever read from a disk there\n", r->dir);
	printf("note: seconds are per load (the mean over the rounds); a VM's host may still cache the disk\n");
}

static json_t *num_or_null(double x)
{
	return isnan(x) ? json_null() : json_real(x);
}

static int print_json(const struct bench *b, const struct report *r)
{
	json_t *rows = json_array(), *notes = json_array();
	for (int c = 0; c < N_CACHES; c++)
		for (int m = 0; m < N_METHODS; m++)
			if (b->ns[c][m] > 0)
				json_array_append_new(
					rows, json_pack("{s:s, s:s, s:I, s:f, s:o, s:o, s:o}", "method", method_names[m],
							"cache", cache_name(b, c), "bytes",
							(json_int_t)(b->bytes[c][m] / r->rounds), "seconds",
							b->ns[c][m] / 1e9 / r->rounds, "gb_per_s",
							num_or_null(rate(b, c, m)), "ratio_to_read",
							num_or_null(vs_read(b, c, m)), "direct_share",
							num_or_null(direct_share(b, c, m))));
	if (!b->uring_ok)
		json_array_append_new(notes, json_string(b->uring_note));
	if (r->tmpfs)
		json_array_append_new(notes, json_string("the checkpoint is on tmpfs: nothing is read from a disk"));
	json_t *doc = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:i, s:b, s:i, s:I, s:s, s:{s:b, s:o, s:f}, s:o, s:o}",
				"model", r->dir, "synthetic", r->synthetic, "files", (json_int_t)b->nfiles, "tensors",
				(json_int_t)b->n_items, "file_bytes", (json_int_t)b->file_bytes, "tensor_bytes",
				(json_int_t)b->tensor_bytes, "rounds", r->rounds, "quick", r->quick, "queue_depth",
				(int)b->opt.queue_depth, "block_bytes", (json_int_t)b->opt.block_bytes, "cache_mode",
				cache_mode_names[b->opt.cache], "cold", "cold",
				cold_ok(b), "dropped_by", b->dropped_by ? json_string(b->dropped_by) : json_null(),
				"max_resident_share", b->max_resident, "results", rows, "notes", notes);
	json_object_set_new(doc, "warm_min_resident_share", json_real(b->min_warm_resident));
	double x = vs_read(b, COLD, M_URING);
	json_object_set_new(doc, "target",
			    json_pack("{s:s, s:o, s:f, s:b}", "what", "io_uring cold GB/s / read cold GB/s",
				      "ratio", num_or_null(x), "min", 0.9, "met", !isnan(x) && x >= 0.9));
	int rc = json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(6));
	printf("\n");
	json_decref(doc);
	return rc ? -EIO : 0;
}

static int write_csv(const struct bench *b, const struct report *r, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "method,cache,bytes,seconds,gb_per_s,ratio_to_read,direct_share\n");
	for (int c = 0; c < N_CACHES; c++)
		for (int m = 0; m < N_METHODS; m++) {
			if (b->ns[c][m] <= 0)
				continue;
			fprintf(f, "%s,%s,%.0f,%.4f,%.4f,%.4f,", method_names[m], cache_name(b, c),
				b->bytes[c][m] / r->rounds, b->ns[c][m] / 1e9 / r->rounds, rate(b, c, m), vs_read(b, c, m));
			double d = direct_share(b, c, m);
			if (isnan(d))
				fprintf(f, "\n");
			else
				fprintf(f, "%.4f\n", d);
		}
	return fclose(f) ? -errno : 0;
}

/* ---- the command ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shmrt bench load [--model DIR] [--quick] [--json] [--csv FILE] [--rounds N]\n"
		"                        [--queue-depth N] [--block-kib N] [--cache buffered|direct]\n"
		"                        [--tmpdir DIR]\n\n"
		"Loads every tensor of a checkpoint with io_uring and with pread (shmrt's\n"
		"loader) and reads the same files with plain read() into memory, the three\n"
		"taking turns; cold (page cache dropped first) and warm. Prints GB/s and\n"
		"the ratio to read(). Target: io_uring cold >= 90%% of read.\n\n"
		"  --model DIR        a checkpoint (default: a synthetic one, 1.56 GiB of bf16\n"
		"                     in two shards, written under --tmpdir and removed after)\n"
		"  --quick            a short run: one round, a 59 MiB synthetic checkpoint\n"
		"  --json             one JSON document on stdout\n"
		"  --csv FILE         also write the rows to FILE\n"
		"  --rounds N         rounds (default 3; 1 with --quick)\n"
		"  --queue-depth N    io_uring reads in flight (default: the loader's, 4)\n"
		"  --block-kib N      size of one read (default: the loader's, 8192)\n"
		"  --cache MODE       buffered (default) or direct: the loader's reads through\n"
		"                     the page cache or with O_DIRECT (checkpoint.h)\n"
		"  --tmpdir DIR       where the synthetic checkpoint goes (default /var/tmp;\n"
		"                     not /dev/shm: a disk, so that cold means cold)\n");
}

struct args {
	const char *model, *csv, *tmpdir;
	bool quick, json;
	int rounds;
	unsigned depth;
	size_t block;
	enum shmrt_load_cache cache;
};

static bool cache_mode(const char *name, enum shmrt_load_cache *out)
{
	for (int i = 0; i < 2; i++)
		if (!strcmp(name, cache_mode_names[i]))
			return *out = (enum shmrt_load_cache)i, true;
	return false;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'}, {"quick", no_argument, 0, 'q'},
		{"json", no_argument, 0, 'j'},         {"csv", required_argument, 0, 'c'},
		{"rounds", required_argument, 0, 'r'}, {"queue-depth", required_argument, 0, 'd'},
		{"block-kib", required_argument, 0, 'b'}, {"tmpdir", required_argument, 0, 't'},
		{"cache", required_argument, 0, 'C'},
		{"help", no_argument, 0, 'h'},         {0},
	};
	*a = (struct args){.tmpdir = "/var/tmp"};
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "m:qjc:r:d:b:t:C:h", opts, NULL)) != -1;) {
		char end;
		unsigned long v = 0;
		bool num = (c == 'r' || c == 'd' || c == 'b') && sscanf(optarg, "%lu%c", &v, &end) == 1 && v > 0 &&
			   v < (1ul << 20);
		if (c == 'm')
			a->model = optarg;
		else if (c == 'q')
			a->quick = true;
		else if (c == 'j')
			a->json = true;
		else if (c == 'c')
			a->csv = optarg;
		else if (c == 't')
			a->tmpdir = optarg;
		else if (c == 'r' && num)
			a->rounds = (int)v;
		else if (c == 'd' && num)
			a->depth = (unsigned)v;
		else if (c == 'b' && num)
			a->block = v << 10;
		else if (c == 'C' && cache_mode(optarg, &a->cache))
			continue;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (optind < argc)
		return usage(stderr), 2;
	if (!a->rounds)
		a->rounds = a->quick ? 1 : 3;
	return -1;
}

/* The synthetic checkpoint in a new directory under tmpdir: its path in dir. */
static int make_synthetic(const struct args *a, char *dir, size_t cap)
{
	snprintf(dir, cap, "%s/shmrt-bench-load-XXXXXX", a->tmpdir);
	if (!mkdtemp(dir)) {
		fprintf(stderr, "shmrt bench load: mkdtemp %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	uint64_t bytes;
	int rc = load_write_checkpoint(dir, a->quick ? &quick_model : &full_model, &bytes);
	if (rc < 0)
		remove_dir(dir);
	return rc;
}

static int run(const struct args *a, const char *dir, bool synthetic)
{
	struct bench b = {.uring_ok = true,
			  .min_warm_resident = 1,
			  .opt = {.queue_depth = a->depth ? a->depth : SHMRT_LOAD_DEFAULT_QUEUE_DEPTH,
				  .block_bytes = a->block ? a->block : SHMRT_LOAD_DEFAULT_BLOCK_BYTES,
				  .cache = a->cache}};
	struct report r = {dir, synthetic, a->quick, on_tmpfs(dir), a->rounds};
	int rc = bench_open(&b, dir);
	for (int round = 0; rc == 0 && round < a->rounds; round++)
		rc = run_round(&b, round);
	if (rc == 0)
		rc = a->json ? print_json(&b, &r) : (print_table(&b, &r), 0);
	if (rc == 0 && a->csv && (rc = write_csv(&b, &r, a->csv)) < 0)
		fprintf(stderr, "shmrt bench load: %s: %s\n", a->csv, strerror(-rc));
	bench_close(&b);
	return rc;
}

int bench_load(int argc, char **argv)
{
	struct args a;
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	char dir[4096];
	if (a.model) {
		snprintf(dir, sizeof(dir), "%s", a.model);
	} else if (make_synthetic(&a, dir, sizeof(dir)) < 0) {
		return 1;
	}
	rc = run(&a, dir, !a.model);
	if (!a.model)
		remove_dir(dir);
	return rc < 0;
}

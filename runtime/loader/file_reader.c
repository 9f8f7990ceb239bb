/* Reading file ranges with io_uring or pread (file_reader.h). The two
 * backends share the cutting of requests into reads (next_read), the
 * bookkeeping of a read's result (advance) and of a finished read
 * (read_done); each is a small table of function pointers. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt_config.h"
#if SHMRT_HAVE_LIBURING
#include <liburing.h>
#endif

#include "fail.h"
#include "file_reader.h"
#include "clock.h"

#define MAX_DEPTH 256u
#define MIN_BLOCK ((size_t)4 << 10)
#define MAX_BLOCK ((size_t)1 << 30) /* an io_uring read length is 32-bit */
/* O_DIRECT wants offsets, lengths and buffers aligned to the logical
 * block size: 512 or 4096 on the devices we meet; 4096 serves both. */
#define DIRECT_ALIGN ((uint64_t)4096)

/* A file of the requests: the caller's fd, and one opened with O_DIRECT
 * (-1 when it is read through the cache). */
struct rfile {
	int fd, dfd;
};

/* One read: len bytes at file offset off into buf, done of them so far;
 * complete once need are there (a direct read, widened to DIRECT_ALIGN,
 * may stop at the end of the file past need). The wanted bytes start at
 * buf + skip. */
struct rd {
	int fd;          /* the file's dfd or fd */
	int buffered_fd; /* the file's fd: where a direct read goes on when it cannot */
	const char *path, *name;
	uint64_t off;
	uint8_t *buf;
	size_t len, done, need, skip;
	/* buf is a staging slot: copy need - skip bytes to copy_to, or, for a
	 * staged slice, runs [run, run + nruns) of req, a stride apart, to
	 * req->dst. Both NULL: buf is the destination itself. */
	uint8_t *copy_to;
	const struct shmrt_read_req *req;
	uint64_t run, nruns;
};

struct reader {
	const struct shmrt_read_req *reqs;
	size_t n;
	size_t block;
	unsigned depth;
	struct rfile *files; /* the distinct fds of reqs */
	size_t nfiles;
	bool any_direct;
	/* Where next_read goes on: request ri, its run `run`, byte pos of it. */
	size_t ri;
	uint64_t run, pos;
	struct rd *rds;    /* [depth]: the reads in flight, by slot */
	uint8_t *staging;  /* [depth][slot_bytes], when some read is staged */
	size_t slot_bytes; /* block, + 2 DIRECT_ALIGN with direct files */
	uint64_t bytes, bytes_read, bytes_direct;
#if SHMRT_HAVE_LIBURING
	struct io_uring ring;
#endif
};

struct backend {
	enum shmrt_io_method method;
	int (*init)(struct reader *r);
	int (*run)(struct reader *r);
	void (*fini)(struct reader *r);
};

/* "FILE: tensor 'NAME': read at offset N: why" (no tensor part without a name). */
static int read_error(const char *path, const char *name, uint64_t off, int err)
{
	const char *why = err ? strerror(err) : "unexpected end of file (truncated after it was opened?)";
	return shmrt_fail(err ? err : EIO, "%s: %s%s%sread at offset %llu: %s", path, name ? "tensor '" : "",
			  name ? name : "", name ? "': " : "", (unsigned long long)off, why);
}

int shmrt_pread_full(int fd, const char *path, void *buf, size_t len, uint64_t off)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return read_error(path, NULL, off + done, n < 0 ? errno : 0);
		done += (size_t)n; /* a short read: go on from where it stopped */
	}
	return 0;
}

/* Runs that follow one another in the file merge into one. */
static bool merged(const struct shmrt_read_req *q)
{
	return q->count > 1 && q->stride == q->length;
}

static uint64_t runs_of(const struct shmrt_read_req *q)
{
	return merged(q) ? 1 : q->count;
}

static uint64_t run_length(const struct shmrt_read_req *q)
{
	return merged(q) ? q->length * q->count : q->length;
}

static bool staged(const struct reader *r, const struct shmrt_read_req *q)
{
	return runs_of(q) > 1 && q->length < r->block / 4 && q->stride >= q->length && q->stride <= r->block;
}

static const struct rfile *file_of(const struct reader *r, int fd)
{
	for (size_t i = 0; i < r->nfiles; i++)
		if (r->files[i].fd == fd)
			return &r->files[i];
	return NULL; /* not reached: every request's fd is in the table */
}

/* Points rd at len bytes from file offset off, for dst (NULL: a staged
 * slice, already set in rd). A direct file's read widens to DIRECT_ALIGN
 * and lands in the staging slot. */
static void place(struct rd *rd, const struct rfile *f, uint64_t off, size_t len, uint8_t *dst, uint8_t *slot)
{
	if (f && f->dfd >= 0) {
		uint64_t a0 = off & ~(DIRECT_ALIGN - 1), a1 = (off + len + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1);
		rd->fd = f->dfd;
		rd->off = a0;
		rd->len = (size_t)(a1 - a0);
		rd->skip = (size_t)(off - a0);
		rd->need = rd->skip + len;
		rd->buf = slot;
		rd->copy_to = dst;
		return;
	}
	rd->off = off;
	rd->len = rd->need = len;
	rd->buf = dst ? dst : slot;
}

/* The next read into *rd (slot: its staging buffer); false when every
 * request has been cut. */
static bool next_read(struct reader *r, struct rd *rd, uint8_t *slot)
{
	while (r->ri < r->n) {
		const struct shmrt_read_req *q = &r->reqs[r->ri];
		uint64_t len = run_length(q), nruns = runs_of(q);
		if (r->run >= nruns || len == 0) {
			r->ri++;
			r->run = r->pos = 0;
			continue;
		}
		*rd = (struct rd){.fd = q->fd, .buffered_fd = q->fd, .path = q->path, .name = q->name};
		uint64_t run_start = q->offset + r->run * q->stride;
		if (staged(r, q)) {
			uint64_t k = r->block / q->stride;
			if (k > nruns - r->run)
				k = nruns - r->run;
			rd->req = q;
			rd->run = r->run;
			rd->nruns = k;
			r->run += k;
			place(rd, file_of(r, q->fd), run_start, (size_t)((k - 1) * q->stride + q->length), NULL, slot);
			return true;
		}
		uint64_t start = run_start + r->pos, end = run_start + len;
		uint64_t boundary = (start / r->block + 1) * r->block;
		if (end > boundary)
			end = boundary;
		uint8_t *dst = (uint8_t *)q->dst + r->run * q->length + r->pos;
		r->pos += end - start;
		if (r->pos == len) {
			r->run++;
			r->pos = 0;
		}
		place(rd, file_of(r, q->fd), start, (size_t)(end - start), dst, slot);
		return true;
	}
	return false;
}

enum step { STEP_DONE, STEP_MORE, STEP_FAIL };

/* Takes in the result of a read of rd (bytes, or -errno): done, more to
 * read (from rd->done on), or failed (*err: the errno; 0 for an end of
 * file before the range's end). */
static enum step advance(struct rd *rd, long res, int *err)
{
	if (res == -EINTR || res == -EAGAIN)
		return STEP_MORE;
	if (res == -EINVAL && rd->fd != rd->buffered_fd) { /* no O_DIRECT for this read after all */
		rd->fd = rd->buffered_fd;
		return STEP_MORE;
	}
	if (res <= 0) {
		*err = (int)-res;
		return STEP_FAIL;
	}
	rd->done += (size_t)res;
	if (rd->done >= rd->need)
		return STEP_DONE;
	/* A short read: go on from where it stopped, through the cache if
	 * that is no longer aligned for O_DIRECT. */
	if (rd->fd != rd->buffered_fd && (rd->off + rd->done) % DIRECT_ALIGN)
		rd->fd = rd->buffered_fd;
	return STEP_MORE;
}

static void read_done(struct reader *r, const struct rd *rd)
{
	r->bytes_read += rd->done;
	if (rd->fd != rd->buffered_fd)
		r->bytes_direct += rd->done;
	const uint8_t *src = rd->buf + rd->skip;
	const struct shmrt_read_req *q = rd->req;
	if (q) {
		for (uint64_t k = 0; k < rd->nruns; k++)
			memcpy((uint8_t *)q->dst + (rd->run + k) * q->length, src + k * q->stride, q->length);
		r->bytes += rd->nruns * q->length;
		return;
	}
	if (rd->copy_to)
		memcpy(rd->copy_to, src, rd->need - rd->skip);
	r->bytes += rd->need - rd->skip;
}

static int pread_init(struct reader *r)
{
	(void)r;
	return 0;
}

static int pread_run(struct reader *r)
{
	struct rd rd;
	while (next_read(r, &rd, r->staging)) {
		for (enum step st = STEP_MORE; st != STEP_DONE;) {
			ssize_t n = pread(rd.fd, rd.buf + rd.done, rd.len - rd.done, (off_t)(rd.off + rd.done));
			int err;
			if ((st = advance(&rd, n < 0 ? -errno : n, &err)) == STEP_FAIL)
				return read_error(rd.path, rd.name, rd.off + rd.done, err);
		}
		read_done(r, &rd);
	}
	return 0;
}

static void pread_fini(struct reader *r)
{
	(void)r;
}

static const struct backend pread_backend = {SHMRT_IO_PREAD, pread_init, pread_run, pread_fini};

#if SHMRT_HAVE_LIBURING

static int uring_init(struct reader *r)
{
	return io_uring_queue_init(r->depth, &r->ring, 0);
}

static void uring_fini(struct reader *r)
{
	io_uring_queue_exit(&r->ring);
}

/* Queues (the rest of) the read in slot s. At most depth reads are in
 * flight in a ring of depth entries, so a free entry is always there. */
static void uring_queue(struct reader *r, unsigned s)
{
	struct rd *rd = &r->rds[s];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	io_uring_prep_read(sqe, rd->fd, rd->buf + rd->done, (unsigned)(rd->len - rd->done), rd->off + rd->done);
	io_uring_sqe_set_data(sqe, (void *)(uintptr_t)s);
}

/* Handles one completion; returns true when slot s is free again. The
 * first error is kept in *err; after it nothing new is queued. */
static bool uring_complete(struct reader *r, unsigned s, int res, int *err)
{
	struct rd *rd = &r->rds[s];
	int e;
	enum step st = advance(rd, res, &e);
	if (st == STEP_MORE && !*err) {
		uring_queue(r, s);
		return false;
	}
	if (st == STEP_FAIL && !*err)
		*err = read_error(rd->path, rd->name, rd->off + rd->done, e);
	else if (st == STEP_DONE && !*err)
		read_done(r, rd);
	return true;
}

static int uring_run(struct reader *r)
{
	unsigned free_slots[MAX_DEPTH], nfree = 0, inflight = 0;
	for (unsigned s = r->depth; s-- > 0;)
		free_slots[nfree++] = s;
	int err = 0;
	bool more = true;
	for (;;) {
		while (!err && more && nfree) {
			unsigned s = free_slots[nfree - 1];
			uint8_t *slot = r->staging ? r->staging + (size_t)s * r->slot_bytes : NULL;
			if (!(more = next_read(r, &r->rds[s], slot)))
				break;
			nfree--;
			inflight++;
			uring_queue(r, s);
		}
		if (!inflight)
			return err;
		int rc = io_uring_submit_and_wait(&r->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			/* The reads already submitted still land in the
			 * caller's buffers: with the ring unusable we cannot
			 * wait for them, so say so. */
			return err ? err : shmrt_fail(-rc, "io_uring_submit_and_wait: %s (%u reads in flight)",
						       strerror(-rc), inflight);
		}
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&r->ring, head, cqe) {
			unsigned s = (unsigned)(uintptr_t)io_uring_cqe_get_data(cqe);
			seen++;
			if (uring_complete(r, s, cqe->res, &err)) {
				free_slots[nfree++] = s;
				inflight--;
			}
		}
		io_uring_cq_advance(&r->ring, seen);
	}
}

static const struct backend uring_backend = {SHMRT_IO_URING, uring_init, uring_run, uring_fini};

#endif

const char *shmrt_io_method_name(enum shmrt_io_method m)
{
	switch (m) {
	case SHMRT_IO_AUTO:
		return "auto";
	case SHMRT_IO_URING:
		return "io_uring";
	case SHMRT_IO_PREAD:
		return "pread";
	}
	return "?";
}

#if SHMRT_HAVE_LIBURING
static bool uring_disabled_by_env(void)
{
	const char *v = getenv("SHMRT_NO_IO_URING");
	return v && *v && strcmp(v, "0");
}
#endif

/* Picks the backend and starts it: AUTO falls back to pread when the
 * environment says so or io_uring cannot be set up. */
static int start_backend(struct reader *r, enum shmrt_io_method m, const struct backend **out)
{
	const struct backend *be = &pread_backend;
#if SHMRT_HAVE_LIBURING
	if (m == SHMRT_IO_URING || (m == SHMRT_IO_AUTO && !uring_disabled_by_env()))
		be = &uring_backend;
#else
	if (m == SHMRT_IO_URING)
		return shmrt_fail(ENOTSUP, "shmrt was built without liburing; use pread");
#endif
	int rc = be->init(r);
	if (rc < 0 && m == SHMRT_IO_AUTO)
		rc = (be = &pread_backend)->init(r);
	if (rc < 0)
		return shmrt_fail(-rc, "io_uring is not available here (io_uring_queue_init: %s); use pread",
				  strerror(-rc));
	*out = be;
	return 0;
}

static int apply_options(struct reader *r, const struct shmrt_load_options *opt)
{
	r->depth = opt && opt->queue_depth ? opt->queue_depth : SHMRT_LOAD_DEFAULT_QUEUE_DEPTH;
	r->block = opt && opt->block_bytes ? opt->block_bytes : SHMRT_LOAD_DEFAULT_BLOCK_BYTES;
	if (r->depth > MAX_DEPTH)
		return shmrt_fail(EINVAL, "queue_depth %u is more than %u", r->depth, MAX_DEPTH);
	if (r->block < MIN_BLOCK || r->block > MAX_BLOCK)
		return shmrt_fail(EINVAL, "block_bytes %zu is outside [%zu, %zu]", r->block, MIN_BLOCK, MAX_BLOCK);
	if (opt && (unsigned)opt->method > SHMRT_IO_PREAD)
		return shmrt_fail(EINVAL, "unknown I/O method %d", (int)opt->method);
	if (opt && (unsigned)opt->cache > SHMRT_CACHE_DIRECT)
		return shmrt_fail(EINVAL, "unknown cache mode %d", (int)opt->cache);
	return 0;
}

/* The same file opened again with O_DIRECT, or -1 where it cannot be. */
static int open_direct(int fd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
}

/* The files of the requests, and which are read with O_DIRECT. */
static int open_files(struct reader *r, enum shmrt_load_cache cache)
{
	r->files = calloc(r->n ? r->n : 1, sizeof(*r->files));
	if (!r->files)
		return shmrt_fail(ENOMEM, "no memory for %zu requests", r->n);
	for (size_t i = 0; i < r->n; i++) {
		int fd = r->reqs[i].fd;
		if (file_of(r, fd))
			continue;
		struct rfile *f = &r->files[r->nfiles++];
		*f = (struct rfile){.fd = fd, .dfd = -1};
		if (cache == SHMRT_CACHE_DIRECT)
			f->dfd = open_direct(fd);
		r->any_direct |= f->dfd >= 0;
	}
	return 0;
}

static void close_files(struct reader *r)
{
	for (size_t i = 0; i < r->nfiles; i++)
		if (r->files[i].dfd >= 0)
			close(r->files[i].dfd);
	free(r->files);
}

static int alloc_slots(struct reader *r, unsigned slots)
{
	bool any_staged = r->any_direct;
	for (size_t i = 0; i < r->n; i++)
		any_staged |= staged(r, &r->reqs[i]);
	r->slot_bytes = r->block + (r->any_direct ? 2 * DIRECT_ALIGN : 0);
	r->rds = calloc(slots, sizeof(*r->rds));
	if (any_staged && posix_memalign((void **)&r->staging, DIRECT_ALIGN, (size_t)slots * r->slot_bytes))
		r->staging = NULL;
	if (!r->rds || (any_staged && !r->staging))
		return shmrt_fail(ENOMEM, "no memory for %u reads of %zu bytes", slots, r->slot_bytes);
	return 0;
}

int shmrt_read_files(const struct shmrt_read_req *reqs, size_t n, const struct shmrt_load_options *opt,
		     struct shmrt_load_stats *stats)
{
	struct reader r = {.reqs = reqs, .n = n};
	const struct backend *be = NULL;
	int rc = apply_options(&r, opt);
	if (rc < 0 || (rc = start_backend(&r, opt ? opt->method : SHMRT_IO_AUTO, &be)) < 0)
		return rc;
	int64_t t0 = shmrt_now_ns();
	rc = open_files(&r, opt ? opt->cache : SHMRT_CACHE_BUFFERED);
	if (rc == 0)
		rc = alloc_slots(&r, be->method == SHMRT_IO_URING ? r.depth : 1);
	if (rc == 0)
		rc = be->run(&r);
	double seconds = (double)(shmrt_now_ns() - t0) * 1e-9;
	be->fini(&r);
	close_files(&r);
	free(r.rds);
	free(r.staging);
	if (stats) {
		stats->method = be->method;
		stats->bytes += r.bytes;
		stats->bytes_read += r.bytes_read;
		stats->bytes_direct += r.bytes_direct;
		stats->seconds += seconds;
		stats->gb_per_s = stats->seconds > 0 ? (double)stats->bytes / stats->seconds * 1e-9 : 0;
	}
	return rc;
}

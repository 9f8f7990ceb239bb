/* Internal: reading byte ranges of files into memory, with io_uring or pread.
 *
 * Requests are cut into reads of at most block_bytes, split at multiples of
 * block_bytes in the file (so reads stay aligned whatever the tensor
 * offsets). io_uring keeps queue_depth of them in flight; pread does one at
 * a time. Both resume a short read where it stopped and retry EINTR and
 * EAGAIN; any other failure, and an end of file before the range ends, is
 * an error naming the file and offset. On an error, reads already in flight
 * are waited for before returning (the destinations are the caller's).
 *
 * Files read with O_DIRECT (SHMRT_CACHE_DIRECT) are reopened through
 * /proc/self/fd (the same inode) with O_DIRECT; each read then widens to
 * 4 KiB boundaries into a staging slot, and the wanted bytes are copied
 * out. A direct read the file system refuses (EINVAL) is read again
 * through the cache. */
#ifndef SHMRT_FILE_READER_H
#define SHMRT_FILE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "shmrt/checkpoint.h" /* options, stats, methods */

/* count runs of length bytes, stride apart in the file from offset, read to
 * dst back to back. Runs shorter than a quarter block are read through
 * whole strides into a staging buffer, several runs per read, and copied
 * out (see shard_plan.h for why); longer runs are read in place. */
struct shmrt_read_req {
	int fd;
	const char *path, *name; /* for messages: the file, the tensor (or NULL) */
	uint64_t offset, length, stride, count;
	void *dst;
};

/* Reads every request, in the order given. Adds to *stats (bytes, bytes
 * read, seconds) and sets its method. */
int shmrt_read_files(const struct shmrt_read_req *reqs, size_t n, const struct shmrt_load_options *opt,
		     struct shmrt_load_stats *stats);

/* pread of exactly len bytes at off, resuming short reads; an end of file
 * first is -EIO. */
int shmrt_pread_full(int fd, const char *path, void *buf, size_t len, uint64_t off);

#endif

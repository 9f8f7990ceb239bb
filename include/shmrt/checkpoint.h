/* shmrt — a Hugging Face checkpoint directory and reading its tensors.
 *
 * A checkpoint is a directory with config.json and either model.safetensors
 * or model.safetensors.index.json naming shard files (its weight_map maps
 * each tensor to a file). shmrt_checkpoint_open() reads the config and
 * every safetensors header, checks them (a header length past the file, bad
 * JSON, offsets that disagree with shape and dtype, overlap or run outside
 * the data, a tensor the index names but its file lacks, a dtype other than
 * BF16, F16, F32: each an error naming the file and the tensor) and keeps
 * the files open. No tensor data is read until a load.
 *
 * Loads copy bytes, unconverted, into destinations the caller owns (host
 * memory: malloc'ed, pinned, or a worker's slice of the arena). They read
 * with io_uring when the kernel allows it, in large reads kept queue_depth
 * deep, and with pread otherwise: io_uring_queue_init fails with ENOSYS or
 * EPERM under some container seccomp profiles; SHMRT_NO_IO_URING=1 in the
 * environment makes SHMRT_IO_AUTO use pread as well.
 *
 * Reads go through the page cache unless the options ask for O_DIRECT
 * (SHMRT_CACHE_DIRECT): 4 KiB-aligned reads into aligned staging buffers
 * copied out to the destinations, asynchronous to the disk, with no page
 * cache to fill. Which is faster depends on the machine. On this
 * project's 2-vCPU VM (bench/RESULTS.md, "shmrt bench load"), with the
 * CPUs to the load, buffered reads came to 54-104% of read()'s GB/s and
 * O_DIRECT to 30-50% in most runs; with the CPUs taken by other jobs, it was
 * 4-10x read(), as it needs far less CPU. `shmrt bench load --cache
 * direct` measures it. File systems without O_DIRECT (tmpfs before Linux
 * 6.6) are read through the cache either way.
 *
 * A checkpoint may be loaded from several threads at once (each load sets
 * up its own reader). */
#ifndef SHMRT_CHECKPOINT_H
#define SHMRT_CHECKPOINT_H

#include <stdbool.h>

#include "common.h"
#include "dtype.h"
#include "model_config.h"

#define SHMRT_TENSOR_MAX_DIMS 8

/* One tensor of the checkpoint. Pointers stay valid until the close. */
struct shmrt_tensor_info {
	const char *name;
	enum shmrt_dtype dtype;
	int ndim;
	int64_t shape[SHMRT_TENSOR_MAX_DIMS]; /* row-major, outermost first */
	const char *file; /* path of the .safetensors file holding it */
	uint64_t offset;  /* of its first byte in that file */
	uint64_t size;    /* bytes: product of shape x dtype size */
};

struct shmrt_checkpoint;

/* Opens the checkpoint in dir (config.json plus model.safetensors or
 * model.safetensors.index.json and its shards), or a GGUF file (llama.cpp's
 * format; dir is then the file's path): its config from the metadata, its
 * tensors under the Hugging Face names (model.layers.N.self_attn.q_proj.weight,
 * ...), in their own dtypes (block formats included). */
SHMRT_API int shmrt_checkpoint_open(const char *dir, struct shmrt_checkpoint **out);

/* A model given as --model is a checkpoint directory or a .gguf file. The
 * model's config (DIR/config.json, or the GGUF metadata), and where its
 * tokenizer is (DIR/tokenizer.json, or the GGUF file itself) into
 * path[cap]. 0 or -errno with a message. */
SHMRT_API int shmrt_model_path_config(const char *model, struct shmrt_model_config *out);
SHMRT_API int shmrt_model_path_tokenizer(const char *model, char *path, size_t cap);
/* True when model is a GGUF file (not a directory). */
SHMRT_API bool shmrt_model_path_is_gguf(const char *model);
SHMRT_API void shmrt_checkpoint_close(struct shmrt_checkpoint *ck);

SHMRT_API const struct shmrt_model_config *shmrt_checkpoint_config(const struct shmrt_checkpoint *ck);

/* The tensors, sorted by name: i in [0, count). */
SHMRT_API size_t shmrt_checkpoint_tensor_count(const struct shmrt_checkpoint *ck);
SHMRT_API const struct shmrt_tensor_info *shmrt_checkpoint_tensor(const struct shmrt_checkpoint *ck, size_t i);

/* The tensor called name; -ENOENT (message naming it) if there is none. */
SHMRT_API int shmrt_checkpoint_find(const struct shmrt_checkpoint *ck, const char *name,
				    const struct shmrt_tensor_info **out);

/* The .safetensors files (paths), i in [0, count), in index order. */
SHMRT_API size_t shmrt_checkpoint_file_count(const struct shmrt_checkpoint *ck);
SHMRT_API const char *shmrt_checkpoint_file(const struct shmrt_checkpoint *ck, size_t i);

enum shmrt_io_method {
	SHMRT_IO_AUTO = 0,  /* io_uring, else pread (see above) */
	SHMRT_IO_URING = 1, /* io_uring or an error */
	SHMRT_IO_PREAD = 2,
};

/* "auto", "io_uring", "pread". */
SHMRT_API const char *shmrt_io_method_name(enum shmrt_io_method m);

/* How loads use the page cache (see above). */
enum shmrt_load_cache {
	SHMRT_CACHE_BUFFERED = 0, /* through the page cache */
	SHMRT_CACHE_DIRECT = 1,   /* O_DIRECT wherever the file system has it */
};

/* Four 8 MiB reads in flight: of the shapes tried with `shmrt bench load`
 * on the 2-vCPU VM (2 MiB x 16, 4 MiB x 8, 8 MiB x 4, 16 MiB x 4) none
 * stood out beyond the noise; this one was among the best cold and warm. */
#define SHMRT_LOAD_DEFAULT_QUEUE_DEPTH 4u
#define SHMRT_LOAD_DEFAULT_BLOCK_BYTES ((size_t)8 << 20)

/* Zeroed fields take the defaults. */
struct shmrt_load_options {
	enum shmrt_io_method method;
	unsigned queue_depth; /* reads in flight (io_uring): default 4, at most 256 */
	size_t block_bytes;   /* size of one read: default 8 MiB, at least 4 KiB, at most 1 GiB */
	enum shmrt_load_cache cache;
};

/* Loads add to these; zero them before the first. */
struct shmrt_load_stats {
	enum shmrt_io_method method; /* the one used (never AUTO) */
	uint64_t bytes;              /* delivered into the destinations */
	uint64_t bytes_read;         /* read from the files (more for strided slices and O_DIRECT's alignment) */
	uint64_t bytes_direct;       /* of bytes_read, read with O_DIRECT */
	double seconds;
	double gb_per_s; /* bytes / seconds / 10^9 over all the loads added */
	/* Set by shmrt_model_load only: bytes of weights placed on the
	 * backend, and the bytes that quantizing them at load
	 * (shmrt_model_options.quantize_to) saved against the checkpoint's
	 * own dtypes (0 without it). */
	uint64_t weight_bytes, quantize_saved;
};

/* Which bytes of a tensor to read: count runs of length bytes, the first
 * at byte offset of the tensor, each stride after the previous one. They
 * land back to back at the destination (count * length bytes). A slice
 * with count 0 means the whole tensor. A tensor-parallel shard of a
 * row-major [N][K] matrix split along K is such a strided slice. */
struct shmrt_tensor_slice {
	uint64_t offset, length, stride, count;
};

struct shmrt_load_item {
	const struct shmrt_tensor_info *tensor; /* of this checkpoint */
	struct shmrt_tensor_slice slice;
	void *dst;
};

/* Reads every item (in file order, whatever the order given). Adds the
 * bytes and seconds to *stats when stats is not NULL (zero it first). On
 * an error no read is left in flight; destinations hold partial data. */
SHMRT_API int shmrt_checkpoint_load(struct shmrt_checkpoint *ck, const struct shmrt_load_item *items, size_t n,
				    const struct shmrt_load_options *opt, struct shmrt_load_stats *stats);

/* Reads the whole tensor called name into dst (dst_size >= its size). */
SHMRT_API int shmrt_checkpoint_load_tensor(struct shmrt_checkpoint *ck, const char *name, void *dst, size_t dst_size,
					   const struct shmrt_load_options *opt, struct shmrt_load_stats *stats);

#endif

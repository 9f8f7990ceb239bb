/* Transport regions and handles (include/shmrt/transport.h): layout,
 * format and validation, joining a group, choosing its backend, and the
 * calls that route to the backend's table. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmrt/devices.h"
#include "fail.h"
#include "proc.h"
#include "ring_layout.h" /* ring_peer_pack, ring_peer_alive */
#include "xfer_layout.h"

#define PAGE ((size_t)4096)
/* Spin before sleeping: a few microseconds cover a peer that is a chunk
 * behind; SHMRT_XFER_SPIN_NS overrides (tuning). */
#define DEFAULT_SPIN_NS (50 * (int64_t)1000)
/* All-reduces of at most this many bytes times W take one step (every
 * rank reads and sums all W buffers) rather than two (reduce-scatter,
 * all-gather): W times the reads, half the synchronisations. On this
 * project's 2-vCPU VM (bench/RESULTS.md, `SHMRT_XFER_ONESHOT_MAX=0 shmrt
 * bench xfer`) one step was faster up to 64 KiB with W = 2 (2.9 against
 * 3.5 us at 64 KiB) and up to 16 KiB with W = 4, slower at 64 KiB with
 * W = 4 (18 against 11 us): 128 KiB of reads in all. SHMRT_XFER_ONESHOT_MAX,
 * read at format, overrides (0: always two steps). */
#define DEFAULT_ONESHOT_MAX ((size_t)128 << 10)

struct shmrt_xfer {
	const struct shmrt_transport *t;
	void *state;
	struct xfer_region r;
};

static size_t round_up(size_t x, size_t a)
{
	return (x + a - 1) / a * a;
}

static size_t fixed_bytes(int world)
{
	return round_up(sizeof(struct xfer_hdr) + (size_t)world * sizeof(struct xfer_rank), PAGE);
}

size_t xfer_staging_per_rank(int world, size_t chunk)
{
	return XFER_SLOTS * ((size_t)world * chunk + chunk);
}

static bool geometry_ok(int world, size_t chunk)
{
	return world >= 1 && world <= SHMRT_XFER_MAX_WORLD && chunk >= XFER_LINE && chunk <= XFER_MAX_CHUNK &&
	       chunk % XFER_LINE == 0;
}

static size_t env_size(const char *name, size_t dflt)
{
	const char *v = getenv(name);
	char *end;
	if (!v || !*v)
		return dflt;
	unsigned long long x = strtoull(v, &end, 10);
	return *end ? dflt : (size_t)x;
}

/* Chunk 0: SHMRT_XFER_DEFAULT_CHUNK, or SHMRT_XFER_CHUNK (for tuning with
 * `shmrt bench xfer`; footprint and format read it alike). */
static size_t default_chunk(void)
{
	return env_size("SHMRT_XFER_CHUNK", SHMRT_XFER_DEFAULT_CHUNK);
}

size_t xfer_buffer_round(size_t bytes)
{
	return round_up(bytes, PAGE);
}

/* Where the shared buffers start, a page after the staging. */
static size_t buffers_off(int world, size_t chunk)
{
	return round_up(fixed_bytes(world) + (size_t)world * xfer_staging_per_rank(world, chunk), PAGE);
}

size_t shmrt_xfer_footprint_buffers(int world, size_t chunk, size_t buffer_bytes)
{
	if (chunk == 0)
		chunk = default_chunk();
	if (!geometry_ok(world, chunk) || buffer_bytes > XFER_MAX_BUFFER)
		return 0;
	if (buffer_bytes == 0)
		return fixed_bytes(world) + (size_t)world * xfer_staging_per_rank(world, chunk);
	return buffers_off(world, chunk) + (size_t)world * xfer_buffer_round(buffer_bytes);
}

size_t shmrt_xfer_footprint(int world, size_t chunk)
{
	return shmrt_xfer_footprint_buffers(world, chunk, 0);
}

int shmrt_xfer_format(void *mem, size_t size, int world, size_t chunk)
{
	return shmrt_xfer_format_buffers(mem, size, world, chunk, 0);
}

int shmrt_xfer_format_buffers(void *mem, size_t size, int world, size_t chunk, size_t buffer_bytes)
{
	shmrt_clear_error();
	if (chunk == 0)
		chunk = default_chunk();
	if (!geometry_ok(world, chunk) || buffer_bytes > XFER_MAX_BUFFER)
		return shmrt_fail(EINVAL, "xfer: bad geometry: world %d (1..%d), chunk %zu bytes (a multiple of "
				  "64, at most 16 MiB), buffers of %zu bytes (at most 1 TiB)", world,
				  SHMRT_XFER_MAX_WORLD, chunk, buffer_bytes);
	size_t need = shmrt_xfer_footprint_buffers(world, chunk, buffer_bytes);
	if (!mem || (uintptr_t)mem % XFER_LINE)
		return shmrt_fail(EINVAL, "xfer: the region must be 64-byte aligned");
	if (size < need)
		return shmrt_fail(EINVAL, "xfer: region of %zu bytes, %zu needed for %d ranks with %zu-byte "
				  "chunks (shmrt_xfer_footprint)", size, need, world, chunk);
	/* Nobody has the region open (the contract): plain stores, then the
	 * magic last, after a release fence, for ranks racing to open. */
	memset(mem, 0, fixed_bytes(world));
	struct xfer_hdr *h = mem;
	h->version = XFER_VERSION;
	h->world = (uint32_t)world;
	h->size = need;
	h->chunk = chunk;
	h->slots = XFER_SLOTS;
	h->oneshot_max = (uint32_t)env_size("SHMRT_XFER_ONESHOT_MAX", DEFAULT_ONESHOT_MAX);
	h->staging_off = fixed_bytes(world);
	h->buffer_bytes = xfer_buffer_round(buffer_bytes);
	h->buffers_off = buffer_bytes ? buffers_off(world, chunk) : 0;
	struct xfer_rank *ranks = (struct xfer_rank *)(h + 1);
	for (int q = 0; q < world; q++)
		ranks[q].device = -1;
	atomic_thread_fence(memory_order_release);
	h->magic = XFER_MAGIC;
	return 0;
}

int xfer_region_map(struct xfer_region *r, const struct shmrt_xfer_config *cfg)
{
	struct xfer_hdr *h = cfg->region;
	if (cfg->region_size < sizeof(*h) || (uintptr_t)h % XFER_LINE)
		return shmrt_fail(EINVAL, "xfer: region too small or not 64-byte aligned");
	uint64_t magic = h->magic;
	atomic_thread_fence(memory_order_acquire); /* pairs with format's fence */
	if (magic != XFER_MAGIC)
		return shmrt_fail(EBADMSG, "xfer: the region holds no transport (format it first)");
	if (h->version != XFER_VERSION)
		return shmrt_fail(EPROTO, "xfer: region version %u, this library speaks %d", h->version,
				  XFER_VERSION);
	/* Read each field once: a peer could change them under us. */
	uint32_t world = h->world;
	uint64_t chunk = h->chunk, size = h->size, staging = h->staging_off, buf = h->buffer_bytes;
	uint64_t bufs = h->buffers_off;
	if (world != (uint32_t)cfg->world || !geometry_ok((int)world, chunk) || h->slots != XFER_SLOTS ||
	    buf > XFER_MAX_BUFFER || buf % PAGE || size != shmrt_xfer_footprint_buffers((int)world, chunk, buf) ||
	    size > cfg->region_size || staging != fixed_bytes((int)world) ||
	    bufs != (buf ? buffers_off((int)world, chunk) : 0))
		return shmrt_fail(EBADMSG, "xfer: region geometry (world %u, chunk %llu, %llu bytes) does not "
				  "match this group (world %d, region of %zu bytes)", world,
				  (unsigned long long)chunk, (unsigned long long)size, cfg->world, cfg->region_size);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int64_t spin = (int64_t)env_size("SHMRT_XFER_SPIN_NS", DEFAULT_SPIN_NS);
	*r = (struct xfer_region){
		.hdr = h,
		.ranks = (struct xfer_rank *)(h + 1),
		.staging = (unsigned char *)h + staging,
		.buffers = buf ? (unsigned char *)h + bufs : NULL,
		.buffer_bytes = buf,
		.rank = cfg->rank,
		.world = cfg->world,
		.chunk = chunk,
		.oneshot_max = h->oneshot_max,
		.timeout_ns = cfg->timeout_ns == 0 ? SHMRT_XFER_DEFAULT_TIMEOUT_NS : cfg->timeout_ns,
		.spin_ns = spin,
		.oversubscribed = cpus > 0 && cfg->world > cpus,
	};
	return 0;
}

unsigned char *xfer_in_slot(const struct xfer_region *r, int q, uint32_t step)
{
	size_t in_bytes = (size_t)r->world * r->chunk;
	return r->staging + (size_t)q * xfer_staging_per_rank(r->world, r->chunk) + step % XFER_SLOTS * in_bytes;
}

unsigned char *xfer_out_slot(const struct xfer_region *r, int q, uint32_t step)
{
	size_t in_bytes = (size_t)r->world * r->chunk;
	return r->staging + (size_t)q * xfer_staging_per_rank(r->world, r->chunk) + XFER_SLOTS * in_bytes +
	       step % XFER_SLOTS * r->chunk;
}

const struct shmrt_transport *shmrt_transport_find(const char *name)
{
	if (!name)
		return NULL;
	if (!strcmp(name, xfer_shm_transport.name))
		return &xfer_shm_transport;
#if SHMRT_HAVE_NCCL
	if (!strcmp(name, xfer_nccl_transport.name))
		return &xfer_nccl_transport;
#endif
	return NULL;
}

static int check_config(const struct shmrt_xfer_config *c)
{
	if (!c || !c->region || c->world < 1 || c->world > SHMRT_XFER_MAX_WORLD || c->rank < 0 ||
	    c->rank >= c->world || c->device < -1)
		return shmrt_fail(EINVAL, "xfer: bad config (rank %d, world %d, device %d, region %p)",
				  c ? c->rank : -1, c ? c->world : -1, c ? c->device : -2, c ? c->region : NULL);
	return 0;
}

/* The name asked for: SHMRT_TRANSPORT, else name, else "auto"; the
 * backend it names, NULL for auto. */
static int resolve_name(const char *name, const struct shmrt_transport **t)
{
	const char *env = getenv("SHMRT_TRANSPORT");
	if (env && *env)
		name = env;
	*t = NULL;
	if (!name || !strcmp(name, "auto"))
		return 0;
	if ((*t = shmrt_transport_find(name)))
		return 0;
	if (!strcmp(name, "nccl"))
		return shmrt_fail(ENOTSUP, "xfer: transport nccl is not built in (shmrt was built without NCCL)%s",
				  env && *env ? "; unset SHMRT_TRANSPORT or set it to shm" : "");
	return shmrt_fail(EINVAL, "xfer: unknown transport '%s'%s (shm, nccl, auto)", name,
			  env && *env ? " in SHMRT_TRANSPORT" : "");
}

/* Claims the rank's slot and says who we are and which GPU we hold. */
static int join(struct xfer_region *r, int device)
{
	struct shmrt_proc_id me;
	int rc = shmrt_proc_identify(0, &me);
	if (rc < 0)
		return shmrt_fail(-rc, "xfer: cannot read this process's identity");
	uint64_t id = ring_peer_pack(me.pid, me.start_time), old = 0;
	struct xfer_rank *k = &r->ranks[r->rank];
	/* release: pairs with peers_alive's acquire. */
	if (!atomic_compare_exchange_strong_explicit(&k->id, &old, id, memory_order_release, memory_order_relaxed)) {
		if (old != XFER_CLOSED && ring_peer_alive(old))
			return shmrt_fail(EBUSY, "xfer: rank %d is held by live pid %d", r->rank,
					  (int)(old & RING_PID_MASK));
		return shmrt_fail(ESTALE, "xfer: rank %d was used by an earlier group; format the region again",
				  r->rank);
	}
	k->device = device;
	memset(k->pci_bus_id, 0, sizeof(k->pci_bus_id));
	struct shmrt_device_info info;
	if (device >= 0 && shmrt_device_info(device, &info) == 0)
		memcpy(k->pci_bus_id, info.pci_bus_id, sizeof(k->pci_bus_id) - 1);
	xfer_publish(&k->joined, 1);
	return 0;
}

static enum xfer_backend_id choose_auto(struct xfer_region *r)
{
#if SHMRT_HAVE_NCCL
	for (int q = 0; q < r->world; q++)
		if (r->ranks[q].device < 0)
			return XFER_SHM;
	return xfer_nccl_p2p(r) ? XFER_NCCL : XFER_SHM;
#else
	(void)r;
	return XFER_SHM;
#endif
}

/* Rank 0 chooses once all joined (a rank's GPU is known after its joined
 * word); the others take its choice. */
static int agree(struct xfer_region *r, const struct shmrt_transport *asked, const struct shmrt_transport **out)
{
	for (int q = 0; q < r->world; q++) {
		int rc = xfer_wait(r, &r->ranks[q].joined, 1, q);
		if (rc < 0)
			return rc;
	}
	uint32_t id;
	if (r->rank == 0) {
		id = asked ? (asked == &xfer_shm_transport ? XFER_SHM : XFER_NCCL) : choose_auto(r);
		xfer_publish(&r->hdr->backend, id);
	} else {
		int rc = xfer_wait(r, &r->hdr->backend, XFER_SHM, 0);
		if (rc < 0)
			return rc;
		id = atomic_load_explicit(&r->hdr->backend.seq, memory_order_acquire);
	}
	*out = id == XFER_SHM ? &xfer_shm_transport : shmrt_transport_find("nccl");
	if (!*out || (id != XFER_SHM && id != XFER_NCCL))
		return shmrt_fail(EPROTO, "xfer: rank 0 chose backend %u, which this process lacks", id);
	if (asked && asked != *out)
		return shmrt_fail(EINVAL, "xfer: rank 0 chose %s, rank %d asked for %s (SHMRT_TRANSPORT differs?)",
				  (*out)->name, r->rank, asked->name);
	return 0;
}

static void leave(struct xfer_region *r)
{
	/* release: a peer that sees CLOSED sees all this rank published. */
	atomic_store_explicit(&r->ranks[r->rank].id, XFER_CLOSED, memory_order_release);
}

int shmrt_xfer_open(struct shmrt_xfer **out, const char *name, const struct shmrt_xfer_config *cfg)
{
	shmrt_clear_error();
	*out = NULL;
	const struct shmrt_transport *asked;
	int rc = check_config(cfg);
	if (rc == 0)
		rc = resolve_name(name, &asked);
	if (rc < 0)
		return rc;
	struct shmrt_xfer *x = calloc(1, sizeof(*x));
	if (!x)
		return shmrt_fail(ENOMEM, "xfer: out of memory");
	if ((rc = xfer_region_map(&x->r, cfg)) < 0 || (rc = join(&x->r, cfg->device)) < 0) {
		free(x);
		return rc;
	}
	if ((rc = agree(&x->r, asked, &x->t)) == 0)
		rc = x->t->init(&x->state, cfg);
	if (rc < 0) {
		/* The others would wait for this rank: tell them. */
		xfer_break(&x->r, -rc);
		leave(&x->r);
		free(x);
		return rc;
	}
	*out = x;
	return 0;
}

static int check_call(struct shmrt_xfer *x, const void *send, void *recv, size_t count, enum shmrt_dtype dtype)
{
	shmrt_clear_error();
	if (dtype != SHMRT_F32 && dtype != SHMRT_BF16 && dtype != SHMRT_F16)
		return shmrt_fail(EINVAL, "xfer: dtype %d (f32, bf16, f16 only)", (int)dtype);
	if (count && (!send || !recv))
		return shmrt_fail(EINVAL, "xfer: NULL buffer");
	if (count > SIZE_MAX / 4 / SHMRT_XFER_MAX_WORLD)
		return shmrt_fail(EINVAL, "xfer: count %zu too large", count);
	return xfer_check_broken(&x->r);
}

/* A backend's failure breaks the group for every rank, as its doc says. */
static int after_call(struct shmrt_xfer *x, int rc)
{
	return rc < 0 && rc != -EINVAL ? xfer_break(&x->r, -rc) : rc;
}

int shmrt_xfer_all_reduce(struct shmrt_xfer *x, const void *send, void *recv, size_t count,
			  enum shmrt_dtype dtype, void *stream)
{
	int rc = check_call(x, send, recv, count, dtype);
	return rc < 0 ? rc : after_call(x, x->t->all_reduce(x->state, send, recv, count, dtype, stream));
}

int shmrt_xfer_all_gather(struct shmrt_xfer *x, const void *send, void *recv, size_t count,
			  enum shmrt_dtype dtype, void *stream)
{
	int rc = check_call(x, send, recv, count, dtype);
	return rc < 0 ? rc : after_call(x, x->t->all_gather(x->state, send, recv, count, dtype, stream));
}

int shmrt_xfer_barrier(struct shmrt_xfer *x)
{
	shmrt_clear_error();
	int rc = xfer_check_broken(&x->r);
	return rc < 0 ? rc : after_call(x, x->t->barrier(x->state));
}

int shmrt_xfer_buffer(struct shmrt_xfer *x, void **ptr, size_t *bytes)
{
	shmrt_clear_error();
	if (!x->r.buffers || x->t != &xfer_shm_transport)
		return shmrt_fail(ENOENT, "xfer: no shared buffer (%s)", x->r.buffers ? "the nccl backend has none"
						       : "the region was formatted without buffers");
	*ptr = x->r.buffers + (size_t)x->r.rank * x->r.buffer_bytes;
	*bytes = x->r.buffer_bytes;
	return 0;
}

const char *shmrt_xfer_backend(const struct shmrt_xfer *x)
{
	return x->t->name;
}

void shmrt_xfer_close(struct shmrt_xfer *x)
{
	if (!x)
		return;
	x->t->destroy(x->state);
	leave(&x->r);
	free(x);
}

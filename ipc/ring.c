/* Ring set-up: layout, validation, opening and closing handles, and the
 * registry of live producers and consumers (see ring_layout.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/ring.h"
#include "fail.h"
#include "proc.h"
#include "ring_layout.h"

#define DEFAULT_SPIN_NS (50 * 1000)

/* The header, the readers, the producer words past the header's (MPSC),
 * to a whole line. */
static size_t data_offset(unsigned n_readers, unsigned n_producers)
{
	size_t extra = n_producers > SHMRT_RING_MAX_PRODUCERS ? n_producers - SHMRT_RING_MAX_PRODUCERS : 0;
	size_t end = sizeof(struct ring_shared) + (size_t)n_readers * sizeof(struct ring_reader) + extra * 8;
	return (end + RING_LINE - 1) / RING_LINE * RING_LINE;
}

static unsigned default_producers(enum shmrt_ring_kind kind)
{
	return kind == SHMRT_RING_MPSC ? SHMRT_RING_MAX_PRODUCERS : 1;
}

size_t ring_footprint_n(enum shmrt_ring_kind kind, size_t capacity, unsigned n_readers, unsigned n_producers)
{
	if (kind != SHMRT_RING_SPSC && kind != SHMRT_RING_MPSC && kind != SHMRT_RING_BROADCAST)
		return 0;
	if (capacity < RING_MIN_CAPACITY || capacity > RING_MAX_CAPACITY || (capacity & (capacity - 1)))
		return 0;
	unsigned max_readers = kind == SHMRT_RING_BROADCAST ? SHMRT_RING_MAX_READERS : 1;
	if (n_readers < 1 || n_readers > max_readers)
		return 0;
	if (kind == SHMRT_RING_MPSC ? n_producers < SHMRT_RING_MAX_PRODUCERS || n_producers > RING_MAX_PRODUCERS_ALL
				    : n_producers != 1)
		return 0;
	return data_offset(n_readers, n_producers) + capacity;
}

size_t shmrt_ring_footprint(enum shmrt_ring_kind kind, size_t capacity, unsigned n_readers)
{
	return ring_footprint_n(kind, capacity, n_readers, default_producers(kind));
}

int shmrt_ring_format(void *mem, size_t mem_size, enum shmrt_ring_kind kind, size_t capacity,
		      unsigned n_readers)
{
	return ring_format_n(mem, mem_size, kind, capacity, n_readers, default_producers(kind));
}

int ring_format_n(void *mem, size_t mem_size, enum shmrt_ring_kind kind, size_t capacity, unsigned n_readers,
		  unsigned n_producers)
{
	shmrt_clear_error();
	size_t need = ring_footprint_n(kind, capacity, n_readers, n_producers);
	if (!need)
		return shmrt_fail(EINVAL, "ring: bad kind %d, capacity %zu (a power of two, %llu..%llu), "
				  "reader count %u or producer count %u", (int)kind, capacity,
				  (unsigned long long)RING_MIN_CAPACITY, (unsigned long long)RING_MAX_CAPACITY, n_readers,
				  n_producers);
	if (!mem || (uintptr_t)mem % RING_LINE)
		return shmrt_fail(EINVAL, "ring: memory must be %d-byte aligned", RING_LINE);
	if (mem_size < need)
		return shmrt_fail(EINVAL, "ring: needs %zu bytes, region has %zu", need, mem_size);
	/* The data needs no clearing but for the first header, the
	 * terminator the consumers poll until the first record (see
	 * ring_layout.h): every later one is written before the record
	 * ahead of it is published. */
	memset(mem, 0, data_offset(n_readers, n_producers));
	struct ring_rec *first = (struct ring_rec *)((unsigned char *)mem + data_offset(n_readers, n_producers));
	atomic_store_explicit(&first->size, 0, memory_order_relaxed);
	atomic_store_explicit(&first->len, 0, memory_order_relaxed);
	atomic_store_explicit(&first->pid, 0, memory_order_relaxed);
	atomic_store_explicit(&first->state, REC_EMPTY, memory_order_relaxed);
	struct ring_shared *sh = mem;
	sh->version = RING_VERSION;
	sh->kind = (uint32_t)kind;
	sh->capacity = capacity;
	sh->n_readers = n_readers;
	sh->n_producers = n_producers;
	sh->magic = RING_MAGIC;
	return 0;
}

int ring_reformat_n(void *mem, size_t mem_size, enum shmrt_ring_kind kind, size_t capacity, unsigned n_readers,
		    unsigned n_producers)
{
	size_t need = ring_footprint_n(kind, capacity, n_readers, n_producers);
	if (!need || need > mem_size || !mem)
		return ring_format_n(mem, mem_size, kind, capacity, n_readers, n_producers); /* its error */
	struct shmrt_ring view = {.sh = mem, .n_readers = n_readers};
	uint64_t *saved = malloc((size_t)n_producers * sizeof(*saved));
	if (!saved)
		return shmrt_fail(ENOMEM, "ring: no memory");
	for (unsigned i = 0; i < n_producers; i++)
		saved[i] = atomic_load(ring_producer_word(&view, i));
	uint64_t ever = atomic_load(&view.sh->producers_ever);
	int rc = ring_format_n(mem, mem_size, kind, capacity, n_readers, n_producers);
	if (!rc) {
		for (unsigned i = 0; i < n_producers; i++)
			atomic_store(ring_producer_word(&view, i), saved[i]);
		atomic_store(&view.sh->producers_ever, ever);
	}
	free(saved);
	return rc;
}

/* Producers: SPSC and broadcast have one slot, MPSC one per process
 * handle. A slot whose process died may be taken over (a restarted
 * producer). */
static int register_producer(struct shmrt_ring *r)
{
	struct ring_shared *sh = r->sh;
	unsigned n = r->n_producers;
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < n; i++) {
			uint64_t cur = atomic_load_explicit(ring_producer_word(r, i), memory_order_relaxed);
			if (pass == 0 ? cur != 0 : cur == 0 || ring_peer_alive(cur))
				continue;
			/* acq_rel: orders us after the slot's previous owner. */
			if (atomic_compare_exchange_strong_explicit(ring_producer_word(r, i), &cur, r->id,
								    memory_order_acq_rel, memory_order_relaxed)) {
				r->slot = i;
				/* release: a consumer that reads ever != 0 sees our slot. */
				atomic_fetch_add_explicit(&sh->producers_ever, 1, memory_order_release);
				return 0;
			}
		}
	}
	return shmrt_fail(EBUSY, "ring: all %u producer slots are taken by live processes", n);
}

/* A consumer slot is free when never used, closed, or its process died. */
static int register_consumer(struct shmrt_ring *r)
{
	struct ring_reader *rd = &r->sh->readers[r->reader];
	uint64_t cur = atomic_load_explicit(&rd->id, memory_order_relaxed);
	for (;;) {
		if (cur != 0 && cur != RING_PEER_CLOSED && ring_peer_alive(cur))
			return shmrt_fail(EBUSY, "ring: reader %u is already open in pid %d", r->reader,
					  (int)(cur & RING_PID_MASK));
		/* acquire: we continue from the position the last reader
		 * stored before it closed (or died). */
		if (atomic_compare_exchange_weak_explicit(&rd->id, &cur, r->id, memory_order_acquire,
							  memory_order_relaxed))
			break;
	}
	r->tail = atomic_load_explicit(&rd->pos, memory_order_acquire);
	r->head_seen = r->tail;
	return 0;
}

/* Copies the header into locals once and checks it against mem_size. */
static int validate(struct shmrt_ring *r, void *mem, size_t mem_size)
{
	if (mem_size < sizeof(struct ring_shared))
		return shmrt_fail(EBADMSG, "ring: region of %zu bytes is smaller than a ring header", mem_size);
	const struct ring_shared *sh = mem;
	uint64_t magic = sh->magic, cap = sh->capacity;
	uint32_t version = sh->version, kind = sh->kind, n = sh->n_readers, np = sh->n_producers;
	if (magic != RING_MAGIC)
		return shmrt_fail(EBADMSG, "ring: bad magic %#llx (not a formatted ring)", (unsigned long long)magic);
	if (version != RING_VERSION)
		return shmrt_fail(EBADMSG, "ring: layout version %u, this library knows %u", version, RING_VERSION);
	size_t need = cap <= RING_MAX_CAPACITY ? ring_footprint_n(kind, (size_t)cap, n, np) : 0;
	if (!need)
		return shmrt_fail(EBADMSG, "ring: bad header (kind %u, capacity %llu, %u readers, %u producers)", kind,
				  (unsigned long long)cap, n, np);
	if (need > mem_size)
		return shmrt_fail(EBADMSG, "ring: header says %zu bytes, region has %zu", need, mem_size);
	r->sh = mem;
	r->kind = kind;
	r->cap = cap;
	r->n_readers = n;
	r->n_producers = np;
	r->data = (unsigned char *)mem + data_offset(n, np);
	return 0;
}

int ring_repair(struct shmrt_ring *r)
{
	if (r->role != SHMRT_RING_CONSUMER)
		return 0;
	if (r->kind == SHMRT_RING_SPSC && ring_check_head_spsc(r)) /* head, which a new producer starts from */
		return 1;
	struct ring_shared *sh = r->sh;
	struct ring_reader *rd = &sh->readers[r->reader];
	const char *what = sh->magic != RING_MAGIC		 ? "magic"
			   : sh->version != RING_VERSION	 ? "version"
			   : sh->kind != (uint32_t)r->kind	 ? "kind"
			   : sh->capacity != r->cap		 ? "capacity"
			   : sh->n_readers != r->n_readers	 ? "reader count"
			   : sh->n_producers != r->n_producers	 ? "producer count"
			   : atomic_load(&rd->id) != r->id	 ? "reader's id"
			   : atomic_load(&rd->pos) != r->tail	 ? "reader's position"
								 : NULL;
	if (!what)
		return 0;
	sh->magic = RING_MAGIC;
	sh->version = RING_VERSION;
	sh->kind = (uint32_t)r->kind;
	sh->capacity = r->cap;
	sh->n_readers = r->n_readers;
	sh->n_producers = r->n_producers;
	atomic_store(&rd->id, r->id);
	atomic_store(&rd->pos, r->tail);
	shmrt_fail(EBADMSG, "ring %p: its %s had been rewritten", (void *)sh, what);
	return 1;
}

int shmrt_ring_open(struct shmrt_ring **out, void *mem, size_t mem_size, enum shmrt_ring_role role,
		    unsigned reader)
{
	shmrt_clear_error();
	if (!out || !mem || (uintptr_t)mem % RING_LINE)
		return shmrt_fail(EINVAL, "ring: open needs an output and %d-byte aligned memory", RING_LINE);
	*out = NULL;
	if (role != SHMRT_RING_PRODUCER && role != SHMRT_RING_CONSUMER)
		return shmrt_fail(EINVAL, "ring: bad role %d", (int)role);
	struct shmrt_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return shmrt_fail(ENOMEM, "ring: out of memory");
	int rc = validate(r, mem, mem_size);
	if (rc < 0)
		goto fail;
	if (role == SHMRT_RING_CONSUMER && reader >= r->n_readers) {
		rc = shmrt_fail(EINVAL, "ring: reader %u of %u", reader, r->n_readers);
		goto fail;
	}
	struct shmrt_proc_id me;
	rc = shmrt_proc_identify(0, &me);
	if (rc < 0) {
		rc = shmrt_fail(-rc, "ring: cannot identify this process");
		goto fail;
	}
	r->pid = me.pid;
	r->id = ring_peer_pack(me.pid, me.start_time);
	r->role = role;
	r->reader = role == SHMRT_RING_CONSUMER ? reader : 0;
	atomic_init(&r->spin_ns, DEFAULT_SPIN_NS);
	rc = role == SHMRT_RING_PRODUCER ? register_producer(r) : register_consumer(r);
	if (rc < 0)
		goto fail;
	if (role == SHMRT_RING_CONSUMER && r->tail % RING_ALIGN) { /* our records are not read from it */
		rc = ring_corrupt(r, "reader position", r->tail);
		shmrt_ring_close(r); /* gives the reader back */
		return rc;
	}
	if (role == SHMRT_RING_PRODUCER && r->kind != SHMRT_RING_MPSC) {
		/* Owner of head from now on; limit == head makes the first
		 * reserve look at the readers. */
		r->head = atomic_load_explicit(&r->sh->head, memory_order_acquire);
		if (r->head % RING_ALIGN) { /* its record is not read */
			rc = ring_corrupt(r, "head", r->head);
			shmrt_ring_close(r); /* gives the slot back */
			return rc;
		}
		/* head is stored after the record's header: a producer that
		 * died between the two left a published record at head (the
		 * header there is otherwise the terminator). Step over it,
		 * checked, or the next record would overwrite it. */
		struct ring_rec *rec = ring_rec_at(r, r->head);
		uint32_t state = atomic_load_explicit(&rec->state, memory_order_acquire);
		uint32_t size = atomic_load_explicit(&rec->size, memory_order_relaxed);
		uint64_t off = r->head & (r->cap - 1);
		if ((state == REC_COMMITTED || state == REC_SKIP) && size >= sizeof(*rec) && size % RING_ALIGN == 0 &&
		    size <= r->cap - off)
			r->head += size;
		r->limit = r->head;
	}
	*out = r;
	return 0;
fail:
	free(r);
	return rc;
}

void ring_forget(struct shmrt_ring *r)
{
	free(r);
}

void shmrt_ring_close(struct shmrt_ring *r)
{
	if (!r)
		return;
	uint64_t mine = r->id;
	if (r->role == SHMRT_RING_PRODUCER) {
		/* release: our last records are published before we leave. */
		atomic_compare_exchange_strong_explicit(ring_producer_word(r, r->slot), &mine, 0,
							memory_order_release, memory_order_relaxed);
	} else {
		atomic_compare_exchange_strong_explicit(&r->sh->readers[r->reader].id, &mine, RING_PEER_CLOSED,
							memory_order_release, memory_order_relaxed);
	}
	free(r);
}

size_t shmrt_ring_max_record(const struct shmrt_ring *r)
{
	return r->cap - sizeof(struct ring_rec) - RING_TERM;
}

void shmrt_ring_set_spin(struct shmrt_ring *r, int64_t spin_ns)
{
	/* relaxed: threads sharing an MPSC handle read it at their next wait. */
	atomic_store_explicit(&r->spin_ns, spin_ns, memory_order_relaxed);
}

int shmrt_ring_occupancy(const struct shmrt_ring *r, size_t *used, size_t *capacity)
{
	/* Positions first, then head: a position never passes head, so each
	 * difference is >= 0 unless the memory is corrupt; it may exceed the
	 * capacity when records moved in between (clamped). */
	uint64_t low = 0;
	for (unsigned i = 0; i < r->n_readers; i++) {
		uint64_t pos = atomic_load_explicit(&r->sh->readers[i].pos, memory_order_acquire);
		if (i == 0 || (int64_t)(pos - low) < 0)
			low = pos; /* the slowest reader */
	}
	uint64_t head = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	/* SPSC/broadcast head may lag a reader by one record (ring_layout.h). */
	if ((int64_t)(head - low) < 0 && low - head > r->cap)
		return ring_corrupt(r, "reader position", low);
	if ((int64_t)(head - low) < 0)
		low = head;
	*used = head - low < r->cap ? head - low : r->cap;
	*capacity = r->cap;
	return 0;
}

int ring_corrupt(const struct shmrt_ring *r, const char *what, uint64_t value)
{
	return shmrt_fail(EBADMSG, "ring %p: corrupt %s (%llu)", (void *)r->sh, what, (unsigned long long)value);
}

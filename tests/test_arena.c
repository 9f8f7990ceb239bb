/* The arena: create, attach, regions, health, info, detach, destroy; bad
 * arguments; and headers corrupted one field at a time, which must be
 * refused with a clean error (run under ASan: no read outside the file). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "arena_format.h"
#include "fail.h"
#include "check.h"
#include "shm_tmpdir.h"
#include "array_size.h"

static uint64_t page;

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static const struct shmrt_region_spec specs[] = {
	{"a", 100, 0, -1},   /* page-aligned by default */
	{"b", 10, 1, -1},    /* asks for 1, gets a cache line */
	{"c", 5000, 0, 0},   /* NUMA node 0: page-aligned, owns its last page */
	{"d.tail", 1, 256, -1},
};
#define N_SPECS 4

/* Where the regions must land, worked out by hand from the rules in
 * arena.h (for 4 KiB pages: 4096, 4224, 8192, 16384; file 20480 bytes). */
static void expected_layout(uint64_t off[N_SPECS], uint64_t *total)
{
	uint64_t header = round_up(128 + N_SPECS * 64, page);
	off[0] = header;
	off[1] = round_up(off[0] + 100, 64);
	off[2] = round_up(off[1] + 10, page);
	off[3] = round_up(off[2] + 5000, page); /* c's last page is its own */
	*total = round_up(off[3] + 1, page);
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_layout_and_data(const char *dir)
{
	uint64_t off[N_SPECS], total, bytes = 0;
	expected_layout(off, &total);
	CHECK_OK(shmrt_arena_footprint(specs, N_SPECS, &bytes));
	CHECK(bytes == total, "footprint %llu, expected %llu", (unsigned long long)bytes, (unsigned long long)total);

	int64_t t0 = realtime_ns();
	struct shmrt_arena *owner, *peer;
	CHECK_OK(shmrt_arena_create(&owner, "main", specs, N_SPECS));
	int64_t t1 = realtime_ns();

	/* The file: mode 0600, the planned size, every byte allocated. */
	char path[256];
	snprintf(path, sizeof(path), "%s/shmrt-main", dir);
	struct stat st;
	CHECK(stat(path, &st) == 0, "no file %s", path);
	CHECK((st.st_mode & 0777) == 0600, "mode %o", st.st_mode & 0777);
	CHECK((uint64_t)st.st_size == total, "size %lld", (long long)st.st_size);
	CHECK((uint64_t)st.st_blocks * 512 >= total, "only %lld blocks allocated: not fallocated",
	      (long long)st.st_blocks);

	CHECK_OK(shmrt_arena_attach(&peer, "main"));
	void *p[N_SPECS], *q;
	size_t size;
	for (int i = 0; i < N_SPECS; i++) {
		CHECK_OK(shmrt_arena_region(owner, specs[i].name, &p[i], &size));
		CHECK(size == specs[i].size, "region %s size %zu", specs[i].name, size);
		/* Offsets relative to region a, which sits at off[0]. */
		CHECK((uint64_t)((char *)p[i] - (char *)p[0]) == off[i] - off[0], "region %s at +%td, expected +%llu",
		      specs[i].name, (char *)p[i] - (char *)p[0], (unsigned long long)(off[i] - off[0]));
		memset(p[i], 0x11 * (i + 1), size);
	}
	CHECK((uintptr_t)p[0] % page == 0 && (uintptr_t)p[2] % page == 0, "regions a and c not page-aligned");
	CHECK((uintptr_t)p[1] % 64 == 0 && (uintptr_t)p[3] % 256 == 0, "regions b, d misaligned");

	/* The peer's mapping sees the owner's bytes, region by region. */
	for (int i = 0; i < N_SPECS; i++) {
		const char *name;
		CHECK_OK(shmrt_arena_region_at(peer, (unsigned)i, &name, &q, &size));
		CHECK(!strcmp(name, specs[i].name) && size == specs[i].size, "peer region %d is %s", i, name);
		CHECK(q != p[i], "the peer should have its own mapping");
		for (size_t j = 0; j < size; j++)
			CHECK(((unsigned char *)q)[j] == 0x11 * (i + 1), "region %s byte %zu differs", name, j);
	}
	CHECK(shmrt_arena_region(peer, "nope", &q, &size) == -ENOENT, "missing region found");
	CHECK(shmrt_arena_region_at(peer, N_SPECS, NULL, &q, &size) == -ENOENT, "region past the end");

	/* Health travels between handles. */
	unsigned progress = 99;
	CHECK(shmrt_arena_health(peer, &progress) == SHMRT_HEALTH_STARTING && progress == 0, "initial health");
	CHECK_OK(shmrt_arena_set_health(owner, SHMRT_HEALTH_LOADING, 420));
	CHECK(shmrt_arena_health(peer, &progress) == SHMRT_HEALTH_LOADING && progress == 420, "loading 420");
	CHECK_OK(shmrt_arena_set_health(peer, SHMRT_HEALTH_READY, 0));
	CHECK(shmrt_arena_health(owner, NULL) == SHMRT_HEALTH_READY, "ready");
	CHECK(shmrt_arena_set_health(owner, (enum shmrt_health)5, 0) == -EINVAL, "state 5 accepted");
	CHECK(shmrt_arena_set_health(owner, SHMRT_HEALTH_LOADING, 1001) == -EINVAL, "progress 1001 accepted");
	CHECK(!strcmp(shmrt_health_name(SHMRT_HEALTH_DEGRADED), "degraded"), "name");
	CHECK(!strcmp(shmrt_health_name((enum shmrt_health)7), "invalid"), "name of 7");

	struct shmrt_arena_info info;
	CHECK_OK(shmrt_arena_info(peer, &info));
	CHECK(!strcmp(info.name, "main") && info.bytes == total && info.n_regions == N_SPECS, "info %s", info.name);
	CHECK(info.owner_pid == getpid() && info.owner_alive, "owner %d alive %d", info.owner_pid, info.owner_alive);
	CHECK(info.created_ns >= t0 && info.created_ns <= t1, "created_ns");
	CHECK(info.health == SHMRT_HEALTH_READY, "info health %d", info.health);

	/* A live name cannot be taken, even by its own process. */
	struct shmrt_arena *again;
	CHECK(shmrt_arena_create(&again, "main", specs, 1) == -EEXIST, "second create of a live name");
	CHECK(strstr(shmrt_last_error(), "alive"), "message: %s", shmrt_last_error());

	/* Destroy: the name is gone, the peer's mapping stays valid. */
	CHECK_OK(shmrt_arena_destroy(owner));
	CHECK(stat(path, &st) != 0 && errno == ENOENT, "destroy left %s", path);
	CHECK_OK(shmrt_arena_region(peer, "d.tail", &q, &size));
	CHECK(*(unsigned char *)q == 0x44, "peer's mapping lost its data");
	CHECK(shmrt_arena_attach(&again, "main") == -ENOENT, "attach after destroy");
	shmrt_arena_detach(peer);
}

static void test_bad_arguments(void)
{
	struct shmrt_arena *a;
	uint64_t bytes;
	char long_name[SHMRT_ARENA_NAME_MAX + 2];
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	const char *bad_names[] = {"", "a/b", "x y", "..\n", long_name};
	for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
		CHECK(shmrt_arena_create(&a, bad_names[i], specs, 1) == -EINVAL, "name '%s'", bad_names[i]);
		CHECK(shmrt_arena_attach(&a, bad_names[i]) == -EINVAL, "attach '%s'", bad_names[i]);
	}
	long_name[SHMRT_ARENA_NAME_MAX] = '\0'; /* exactly the longest */
	CHECK_OK(shmrt_arena_create(&a, long_name, specs, 1));
	CHECK_OK(shmrt_arena_destroy(a));
	CHECK(shmrt_arena_attach(&a, "absent") == -ENOENT, "attach absent");

	const struct shmrt_region_spec bad[][2] = {
		{{"x", 8, 0, -1}, {"x", 8, 0, -1}},                      /* same name twice */
		{{"x", 0, 0, -1}, {"y", 8, 0, -1}},                      /* empty */
		{{"x", 8, 3, -1}, {"y", 8, 0, -1}},                      /* not a power of two */
		{{"x", 8, (size_t)page * 2, -1}, {"y", 8, 0, -1}},       /* beyond a page */
		{{"x", 8, 0, -2}, {"y", 8, 0, -1}},                      /* NUMA node -2 */
		{{NULL, 8, 0, -1}, {"y", 8, 0, -1}},                     /* no name */
		{{"a-name-of-forty-characters-is-too-long.x", 8, 0, -1}, {"y", 8, 0, -1}},
		{{"x", (size_t)1 << 62, 0, -1}, {"y", 8, 0, -1}},        /* 4 EiB */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int rc = shmrt_arena_footprint(bad[i], 2, &bytes);
		CHECK(rc == -EINVAL || rc == -EFBIG, "bad spec %zu accepted (%d)", i, rc);
		CHECK(*shmrt_last_error(), "bad spec %zu: no message", i);
		CHECK(shmrt_arena_create(&a, "bad", bad[i], 2) == rc, "create with bad spec %zu", i);
	}
	CHECK(shmrt_arena_footprint(specs, SHMRT_ARENA_MAX_REGIONS + 1, &bytes) == -EINVAL, "65 regions");
}

/* --- corrupted headers ------------------------------------------------ */

/* A valid arena file's bytes, to corrupt copies of. */
static unsigned char *image;
static size_t image_len;

static void read_file(const char *path, unsigned char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	CHECK(fd >= 0 && fstat(fd, &st) == 0, "open %s", path);
	*len = (size_t)st.st_size;
	*buf = malloc(*len);
	CHECK(*buf && pread(fd, *buf, *len, 0) == (ssize_t)*len, "read %s", path);
	close(fd);
}

/* Corruption k of a header copy (len: the file's length, may be cut);
 * returns the errno the check must give, or -1 past the last one. */
static int corrupt(int k, struct shmrt_arena_header *h, size_t *len)
{
	struct shmrt_arena_region *r = h->regions;
	switch (k) {
	case 0: *len = 0; return EBADMSG;
	case 1: *len = sizeof(*h) - 1; return EBADMSG;
	case 2: h->magic = 0; return EAGAIN;
	case 3: h->magic ^= 0x100; return EBADMSG;
	case 4: h->abi_version = SHMRT_ARENA_ABI + 1; return EPROTO;
	case 5: h->total_size += page; return EBADMSG;
	case 6: *len -= page; return EBADMSG; /* the file is shorter than its header says */
	case 7: h->n_regions = SHMRT_ARENA_MAX_REGIONS + 1; return EBADMSG;
	case 8: h->n_regions = UINT32_MAX; return EBADMSG;
	case 9: h->n_regions = N_SPECS + 1; return EBADMSG; /* an all-zero entry */
	case 10: h->header_size = 100; return EBADMSG;
	case 11: h->header_size = (uint32_t)*len + 64; return EBADMSG;
	case 12: h->header_size += 1; return EBADMSG;
	case 13: memset(h->name, 'n', sizeof(h->name)); return EBADMSG; /* unterminated */
	case 14: h->name[0] = '/'; return EBADMSG;
	case 15: h->owner_pid = 0; return EBADMSG;
	case 16: memset(r[0].name, 'r', sizeof(r[0].name)); return EBADMSG;
	case 17: r[2].name[0] = '\0'; return EBADMSG;
	case 18: r[3].offset = *len; return EBADMSG;
	case 19: r[3].size = UINT64_MAX; return EBADMSG;
	case 20: r[3].offset = UINT64_MAX & ~(uint64_t)0xfff; return EBADMSG;
	case 21: r[0].offset = 64, r[0].align = 64; return EBADMSG; /* inside the header */
	case 22: r[1].offset = r[0].offset; return EBADMSG;         /* on top of a */
	case 23: r[1].align = 0; return EBADMSG;
	case 24: r[1].align = 96; return EBADMSG;
	case 25: r[1].offset += 8; return EBADMSG;
	case 26: r[2].size = 0; return EBADMSG;
	case 27: strcpy(r[1].name, "a"); return EBADMSG;
	case 28: r[3].size += page; return EBADMSG; /* past the end */
	case 29: r[0].size = 200; return EBADMSG;   /* into b */
	case 30: r[3].name[1] = '\n'; return EBADMSG;
	case 31: r[1].numa_node = -2; return EBADMSG;
	default: return -1;
	}
}

/* An independent statement of what a valid layout means. */
static void check_layout_sane(const struct shmrt_arena_layout *l, size_t len)
{
	uint64_t end = l->header_size;
	CHECK(l->total_size == len && l->n_regions <= SHMRT_ARENA_MAX_REGIONS, "accepted a bad size");
	for (unsigned i = 0; i < l->n_regions; i++) {
		const struct shmrt_arena_region *r = &l->regions[i];
		CHECK(r->offset >= end && r->size > 0 && r->offset + r->size <= len && r->offset % 64 == 0,
		      "accepted region %u at %llu+%llu in %zu bytes", i, (unsigned long long)r->offset,
		      (unsigned long long)r->size, len);
		CHECK(memchr(r->name, 0, sizeof(r->name)), "accepted an unterminated name");
		end = r->offset + r->size;
	}
}

static void test_corrupt_copies(void)
{
	uint64_t off[N_SPECS], total;
	expected_layout(off, &total);
	struct shmrt_arena_layout l;
	CHECK_OK(shmrt_arena_header_check(image, image_len, &l));
	CHECK(l.n_regions == N_SPECS && l.total_size == total && l.owner.pid == getpid(), "valid image");
	for (int i = 0; i < N_SPECS; i++)
		CHECK(l.regions[i].offset == off[i] && !strcmp(l.regions[i].name, specs[i].name), "region %d", i);

	unsigned char *copy = malloc(image_len);
	for (int k = 0;; k++) {
		memcpy(copy, image, image_len);
		size_t len = image_len;
		int err = corrupt(k, (struct shmrt_arena_header *)copy, &len);
		if (err < 0)
			break;
		shmrt_clear_error();
		int rc = shmrt_arena_header_check(copy, len, &l);
		CHECK(rc == -err, "corruption %d: got %d, expected %d (%s)", k, rc, -err, shmrt_last_error());
		CHECK(*shmrt_last_error(), "corruption %d: no message", k);
	}

	/* Every single-bit flip of the header and table: an error, or a
	 * layout that really is inside the file. Flips in fields with no rule
	 * (start and creation time, bytes after a name's NUL, ...) pass; none
	 * in the magic, version, header size or file size may. */
	memcpy(copy, image, image_len);
	size_t n_accepted = 0;
	for (size_t byte = 0; byte < sizeof(struct shmrt_arena_header) + N_SPECS * 64; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			copy[byte] ^= (unsigned char)(1 << bit);
			if (shmrt_arena_header_check(copy, image_len, &l) == 0) {
				CHECK(byte >= offsetof(struct shmrt_arena_header, n_regions), "flip of byte %zu bit %d passed",
				      byte, bit);
				check_layout_sane(&l, image_len);
				n_accepted++;
			}
			copy[byte] = image[byte];
		}
	}
	CHECK(n_accepted > 0, "no flip passed: the sweep checks nothing");
	free(copy);
}

/* The same through attach, on a real file. */
static void write_at(int fd, size_t off, const void *p, size_t n)
{
	CHECK(pwrite(fd, p, n, (off_t)off) == (ssize_t)n, "pwrite");
}

static void expect_attach(int err, const char *what)
{
	struct shmrt_arena *a;
	int rc = shmrt_arena_attach(&a, "victim");
	CHECK(rc == -err, "%s: attach gave %d, expected %d (%s)", what, rc, -err, shmrt_last_error());
	CHECK(err == EAGAIN || strstr(shmrt_last_error(), "shmrt-victim"), "%s: message %s", what,
	      shmrt_last_error());
}

static void test_corrupt_files(const char *dir)
{
	struct shmrt_arena *a;
	CHECK_OK(shmrt_arena_create(&a, "victim", specs, N_SPECS));
	shmrt_arena_detach(a);
	char path[256];
	snprintf(path, sizeof(path), "%s/shmrt-victim", dir);
	unsigned char *orig;
	size_t len;
	read_file(path, &orig, &len);
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0, "open %s", path);
	CHECK_OK(shmrt_arena_attach(&a, "victim"));
	shmrt_arena_detach(a);

	const uint64_t bad_magic = 0x1234, far = (uint64_t)len * 2;
	const uint32_t bad_abi = SHMRT_ARENA_ABI + 1;
	const struct shmrt_arena_header *h = (const void *)orig;
	write_at(fd, offsetof(struct shmrt_arena_header, magic), &bad_magic, 8);
	expect_attach(EBADMSG, "magic");
	write_at(fd, 0, orig, sizeof(*h));
	write_at(fd, offsetof(struct shmrt_arena_header, abi_version), &bad_abi, 4);
	expect_attach(EPROTO, "ABI version");
	write_at(fd, 0, orig, sizeof(*h));
	write_at(fd, sizeof(*h) + 64 + offsetof(struct shmrt_arena_region, offset), &far, 8);
	expect_attach(EBADMSG, "region offset");
	write_at(fd, 0, orig, len);
	CHECK(ftruncate(fd, (off_t)(len + page)) == 0, "grow");
	expect_attach(EBADMSG, "file longer than the header says");
	/* Shorter than the header says: refused before any page past the end
	 * is read (that would be SIGBUS). */
	CHECK(ftruncate(fd, (off_t)page) == 0, "shrink");
	expect_attach(EBADMSG, "file shorter than the header says");
	CHECK(ftruncate(fd, 64) == 0, "shrink");
	expect_attach(EBADMSG, "file smaller than a header");
	CHECK(ftruncate(fd, 0) == 0, "empty");
	expect_attach(EAGAIN, "empty file");
	CHECK(ftruncate(fd, (off_t)len) == 0, "regrow");
	expect_attach(EAGAIN, "zero magic");
	write_at(fd, 0, orig, len);
	CHECK_OK(shmrt_arena_attach(&a, "victim"));
	CHECK_OK(shmrt_arena_destroy(a));
	close(fd);
	free(orig);
}

/* The fuzz target's seeds: valid-* pass the check, the others fail it. */
static void test_seeds(const char *corpus)
{
	DIR *d = opendir(corpus);
	CHECK(d, "no corpus %s", corpus);
	int n_valid = 0, n_bad = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", corpus, e->d_name);
		unsigned char *buf;
		size_t len;
		read_file(path, &buf, &len);
		struct shmrt_arena_layout l;
		int rc = shmrt_arena_header_check(buf, len, &l);
		bool valid = !strncmp(e->d_name, "valid-", 6);
		CHECK(valid ? rc == 0 : rc < 0, "seed %s: %d (%s)", e->d_name, rc, shmrt_last_error());
		valid ? n_valid++ : n_bad++;
		free(buf);
	}
	closedir(d);
	CHECK(n_valid >= 2 && n_bad >= 5, "%d valid and %d broken seeds", n_valid, n_bad);
}

int main(int argc, char **argv)
{
	page = (uint64_t)sysconf(_SC_PAGESIZE);
	const char *dir = shm_tmpdir();
	test_layout_and_data(dir);
	test_bad_arguments();

	struct shmrt_arena *a;
	CHECK_OK(shmrt_arena_create(&a, "img", specs, N_SPECS));
	char path[256];
	snprintf(path, sizeof(path), "%s/shmrt-img", dir);
	read_file(path, &image, &image_len);
	CHECK_OK(shmrt_arena_destroy(a));
	test_corrupt_copies();
	test_corrupt_files(dir);
	free(image);
	if (argc > 1)
		test_seeds(argv[1]);
	return 0;
}

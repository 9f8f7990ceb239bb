/* Stale arenas: an owner killed with SIGKILL leaves an arena that a create
 * of the same name replaces and `shmrt clean` removes; a live owner's arena
 * is never removed, not even by racing creators and cleaners; files that
 * are not arenas are left alone.
 *   test_arena_stale [PATH_TO_SHMRT]   (the program, for `shmrt clean`) */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "check.h"
#include "json_document.h"
#include "shm_tmpdir.h"

static const struct shmrt_region_spec spec = {"data", 4096, 0, -1};
static const char *dir;

static uint32_t read_mark(const struct shmrt_arena *a)
{
	void *p;
	size_t n;
	CHECK_OK(shmrt_arena_region(a, "data", &p, &n));
	return *(volatile uint32_t *)p;
}

static void write_mark(struct shmrt_arena *a, uint32_t mark)
{
	void *p;
	size_t n;
	CHECK_OK(shmrt_arena_region(a, "data", &p, &n));
	*(volatile uint32_t *)p = mark;
}

/* A child that creates arena `name` marked `mark`, READY, and then waits
 * to be killed. */
static pid_t spawn_owner(const char *name, uint32_t mark)
{
	int fds[2];
	CHECK(pipe(fds) == 0, "pipe");
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		struct shmrt_arena *a;
		char ok = shmrt_arena_create(&a, name, &spec, 1) == 0;
		if (ok) {
			write_mark(a, mark);
			shmrt_arena_set_health(a, SHMRT_HEALTH_READY, 0);
		} else {
			fprintf(stderr, "owner of %s: %s\n", name, shmrt_last_error());
		}
		if (write(fds[1], &ok, 1) != 1 || !ok)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	char ok = 0;
	CHECK(read(fds[0], &ok, 1) == 1 && ok, "the owner of %s could not create it", name);
	close(fds[0]);
	return pid;
}

static void kill_owner(pid_t pid)
{
	kill(pid, SIGKILL);
	CHECK(waitpid(pid, NULL, 0) == pid, "waitpid");
}

static bool exists(const char *fname)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/%s", dir, fname);
	return access(path, F_OK) == 0;
}

static void make_file(const char *fname, const void *data, size_t len)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/%s", dir, fname);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && (len == 0 || write(fd, data, len) == (ssize_t)len), "write %s", path);
	close(fd);
}

/* What a clean reported, by name. */
struct seen {
	char names[8][SHMRT_ARENA_NAME_MAX + 1];
	int removed[8], pid[8], n;
};

static void on_arena(const struct shmrt_arena_info *info, int removed, void *arg)
{
	struct seen *s = arg;
	CHECK(s->n < 8, "too many arenas reported");
	strcpy(s->names[s->n], info->name);
	s->removed[s->n] = removed;
	s->pid[s->n++] = info->owner_pid;
}

/* 1 removed, 0 kept, -1 not reported. */
static int seen(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return s->removed[i];
	return -1;
}

static void test_killed_owner(void)
{
	pid_t pid = spawn_owner("s1", 0xabcd);
	struct shmrt_arena *old, *fresh;
	CHECK_OK(shmrt_arena_attach(&old, "s1"));
	struct shmrt_arena_info info;
	CHECK_OK(shmrt_arena_info(old, &info));
	CHECK(info.owner_pid == pid && info.owner_alive && read_mark(old) == 0xabcd, "owner %d alive %d",
	      info.owner_pid, info.owner_alive);
	CHECK(shmrt_arena_create(&fresh, "s1", &spec, 1) == -EEXIST, "took a live arena");
	char pid_text[32];
	snprintf(pid_text, sizeof(pid_text), "pid %d", (int)pid);
	CHECK(strstr(shmrt_last_error(), pid_text), "message: %s", shmrt_last_error());
	struct seen s = {0};
	CHECK(shmrt_arena_clean(NULL, on_arena, &s) == 0 && seen(&s, "s1") == 0, "clean of a live arena");

	/* Killed, not yet reaped: a zombie is dead. */
	kill(pid, SIGKILL);
	siginfo_t si;
	CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0, "waitid");
	CHECK_OK(shmrt_arena_info(old, &info));
	CHECK(!info.owner_alive, "a dead owner is alive");
	CHECK_OK(shmrt_arena_create(&fresh, "s1", &spec, 1));
	CHECK(read_mark(fresh) == 0 && read_mark(old) == 0xabcd, "not a fresh arena");
	CHECK_OK(shmrt_arena_info(fresh, &info));
	CHECK(info.owner_pid == getpid() && info.owner_alive, "new owner");
	CHECK(waitpid(pid, NULL, 0) == pid, "reap");
	CHECK_OK(shmrt_arena_destroy(fresh));
	shmrt_arena_detach(old);
}

static void test_not_arenas(void)
{
	/* Creations that never finished (their creator died before the
	 * magic): empty, or sized and zero. Create and clean take them. */
	static const char zeros[8192];
	make_file("shmrt-empty", NULL, 0);
	make_file("shmrt-zeroed", zeros, sizeof(zeros));
	struct shmrt_arena *a;
	CHECK_OK(shmrt_arena_create(&a, "empty", &spec, 1));
	CHECK_OK(shmrt_arena_destroy(a));
	CHECK(shmrt_arena_attach(&a, "zeroed") == -EAGAIN, "attach of an unfinished arena");

	/* Someone else's files: never touched. */
	const char text[] = "hello, I am not an arena";
	make_file("shmrt-foreign", text, sizeof(text));
	make_file("notours", zeros, sizeof(zeros));
	make_file("target", zeros, sizeof(zeros));
	char path[300];
	snprintf(path, sizeof(path), "%s/shmrt-link", dir);
	CHECK(symlink("target", path) == 0, "symlink");
	CHECK(shmrt_arena_create(&a, "foreign", &spec, 1) == -EEXIST, "took a foreign file");
	CHECK(strstr(shmrt_last_error(), "not a shmrt arena"), "message: %s", shmrt_last_error());
	CHECK(shmrt_arena_attach(&a, "foreign") == -EBADMSG, "attached a foreign file");
	CHECK(shmrt_arena_create(&a, "link", &spec, 1) == -EEXIST, "took a symlink");

	struct seen s = {0};
	CHECK(shmrt_arena_clean(NULL, on_arena, &s) == 1, "clean removed %d", s.n);
	CHECK(s.n == 1 && seen(&s, "zeroed") == 1 && s.pid[0] == 0, "clean reported %d arenas", s.n);
	CHECK(!exists("shmrt-zeroed"), "unfinished arena left");
	CHECK(exists("shmrt-foreign") && exists("notours") && exists("target") && exists("shmrt-link"),
	      "clean removed a file that is not an arena");
	const char *gone[] = {"shmrt-foreign", "notours", "target", "shmrt-link"};
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, gone[i]);
		unlink(path);
	}
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Creators and a cleaner hammer one name. Whoever has created it must find
 * its own mark through the name until it destroys it: no cleaner and no
 * other creator may have removed or replaced a live arena. */
static void racer(int cleaner, int64_t until, _Atomic int *wins)
{
	uint32_t me = (uint32_t)getpid();
	while (now_ns() < until) {
		if (cleaner) {
			if (shmrt_arena_clean("race", NULL, NULL) < 0)
				_exit(1);
			continue;
		}
		struct shmrt_arena *a, *b;
		int rc = shmrt_arena_create(&a, "race", &spec, 1);
		if (rc == -EEXIST || rc == -EBUSY)
			continue;
		if (rc < 0) {
			fprintf(stderr, "racer: %s\n", shmrt_last_error());
			_exit(1);
		}
		write_mark(a, me);
		if (shmrt_arena_attach(&b, "race") != 0 || read_mark(b) != me) {
			fprintf(stderr, "racer %u: my arena was taken (%s)\n", me, shmrt_last_error());
			_exit(1);
		}
		shmrt_arena_detach(b);
		if (shmrt_arena_destroy(a) != 0)
			_exit(1);
		atomic_fetch_add(wins, 1);
	}
	_exit(0);
}

static void test_race(void)
{
	_Atomic int *wins = mmap(NULL, sizeof(*wins), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(wins != MAP_FAILED, "mmap");
	int64_t until = now_ns() + 300 * 1000000;
	pid_t pids[4];
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0, "fork");
		if (pids[i] == 0)
			racer(i == 0, until, wins);
	}
	for (int i = 0; i < 4; i++) {
		int status;
		CHECK(waitpid(pids[i], &status, 0) == pids[i], "waitpid");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "racer %d failed", i);
	}
	CHECK(*wins > 0, "no racer ever created the arena");
	CHECK(!exists("shmrt-race"), "the race left its arena");
	munmap(wins, sizeof(*wins));
}

/* --- the shmrt program ------------------------------------------------- */

/* Runs `shmrt clean ARGS...`; its stdout into out. Returns the exit status. */
static int run_clean(const char *shmrt, char *out, size_t cap, const char *a1, const char *a2)
{
	int fds[2];
	CHECK(pipe(fds) == 0, "pipe");
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(shmrt, shmrt, "clean", a1, a2, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	size_t n = 0;
	for (ssize_t r; n + 1 < cap && (r = read(fds[0], out + n, cap - 1 - n)) > 0;)
		n += (size_t)r;
	out[n] = '\0';
	close(fds[0]);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status), "shmrt clean crashed");
	CHECK(WEXITSTATUS(status) != 127, "cannot run %s", shmrt);
	return WEXITSTATUS(status);
}

/* A string member of a JSON object, "" if there is none. */
static const char *str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "";
}

/* The entry for `name` in `shmrt clean --json`'s arenas, or NULL. */
static json_t *entry(json_t *doc, const char *name)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(doc, "arenas"), i, e)
		if (!strcmp(str(e, "name"), name))
			return e;
	return NULL;
}

static void test_tool(const char *shmrt)
{
	char out[8192];
	pid_t dead = spawn_owner("dead", 1), live = spawn_owner("live", 2);
	kill_owner(dead);
	make_file("shmrt-abandoned", NULL, 0);
	make_file("shmrt-foreign", "x", 1);

	CHECK(run_clean(shmrt, out, sizeof(out), "--json", NULL) == 0, "shmrt clean --json failed");
	json_t *doc = json_document(out);
	CHECK(!strcmp(str(doc, "dir"), dir), "dir: %s", out);
	CHECK(json_integer_value(json_object_get(doc, "removed")) == 2, "removed: %s", out);
	CHECK(json_array_size(json_object_get(doc, "arenas")) == 3, "arenas: %s", out);
	json_t *e = entry(doc, "dead");
	CHECK(e && json_is_true(json_object_get(e, "removed")) &&
		      json_integer_value(json_object_get(e, "owner_pid")) == dead,
	      "dead: %s", out);
	CHECK((e = entry(doc, "abandoned")) && json_is_true(json_object_get(e, "removed")), "abandoned: %s", out);
	e = entry(doc, "live");
	CHECK(e && json_is_false(json_object_get(e, "removed")) &&
		      json_integer_value(json_object_get(e, "owner_pid")) == live &&
		      !strcmp(str(e, "health"), "ready"),
	      "live: %s", out);
	json_decref(doc);
	CHECK(!exists("shmrt-dead") && !exists("shmrt-abandoned"), "stale arenas left");
	CHECK(exists("shmrt-live") && exists("shmrt-foreign"), "removed a live arena or a foreign file");

	CHECK(run_clean(shmrt, out, sizeof(out), "--name", "live") == 0, "clean --name live");
	CHECK(strstr(out, "kept") && strstr(out, "shmrt-live") && exists("shmrt-live"), "output: %s", out);
	kill_owner(live);
	CHECK(run_clean(shmrt, out, sizeof(out), "--name", "live") == 0, "clean --name live");
	CHECK(strstr(out, "removed") && strstr(out, "shmrt-live") && !exists("shmrt-live"), "output: %s", out);
	CHECK(run_clean(shmrt, out, sizeof(out), NULL, NULL) == 0 && strstr(out, "no arenas"), "output: %s", out);
	CHECK(exists("shmrt-foreign"), "removed a foreign file");

	CHECK(run_clean(shmrt, out, sizeof(out), "--help", NULL) == 0 && strstr(out, "usage: shmrt clean"),
	      "--help: %s", out);
	CHECK(run_clean(shmrt, out, sizeof(out), "--name", "a/b") == 2, "a bad name is a usage error");
	CHECK(run_clean(shmrt, out, sizeof(out), "--bogus", NULL) == 2, "an unknown option is a usage error");
}

int main(int argc, char **argv)
{
	dir = shm_tmpdir();
	test_killed_owner();
	test_not_arenas();
	test_race();
	if (argc > 1)
		test_tool(argv[1]);
	return 0;
}

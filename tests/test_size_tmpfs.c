/* `shmrt size`'s minimum is exact, checked against a real tmpfs: mounted at
 * exactly min_mib MiB, `shmrt start` starts and serves a request; at one
 * MiB less it exits 1 with the sizing message (never a signal, never
 * SIGBUS); a larger budget serves the same greedy tokens. Once with one
 * worker, once with two and the shm transport's staging grown (a chunk
 * of 256 KiB). `shmrt stat` reports the arena's reserved bytes (what the
 * tmpfs uses) and the touched ones. Needs to mount a tmpfs (root); skipped (77) otherwise.
 * argv[1]: the shmrt program. */
#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "command_output.h"
#include "json_document.h"

static const char *shmrt;
static char model[] = "/tmp/test-size-tmpfs-model-XXXXXX";
static char mnt[] = "/tmp/test-size-tmpfs-XXXXXX";
/* Serving limits small enough for a quick start; the same for size and start. */
#define LIMITS "--max-seqs 8 --max-model-len 128 --kv-blocks 64 --clients 4"

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Mounts a tmpfs of mib MiB at mnt: 0, or -errno (refused). */
static int mount_mib(long mib)
{
	char opts[32];
	snprintf(opts, sizeof(opts), "size=%ldm", mib);
	return mount("tmpfs", mnt, "tmpfs", 0, opts) == 0 ? 0 : -errno;
}

static void unmount(void)
{
	if (umount(mnt) != 0)
		umount2(mnt, MNT_DETACH);
}

/* The minimum `shmrt size --json` gives for these workers and extra flags. */
static long arena_bytes; /* of the case being checked, as `shmrt size` says */

static long size_min_mib(int workers, const char *extra)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "'%s' size --model '%s' --tp %d " LIMITS " %s --json", shmrt, model, workers,
		 extra);
	int st;
	char *out = command_output(cmd, &st);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", cmd);
	json_t *doc = json_document(out);
	long min = (long)json_integer_value(json_object_get(doc, "min_mib"));
	long arena = (long)json_integer_value(json_object_get(doc, "arena_bytes"));
	/* independent of the tool's rounding: the arena fits in min, not in min - 1 */
	CHECK(min > 1 && arena <= min << 20 && arena > (min - 1) << 20, "min_mib %ld for arena %ld", min, arena);
	arena_bytes = arena;
	json_decref(doc);
	free(out);
	return min;
}

static pid_t spawn_start(int workers, const char *extra, const char *err_file)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "exec '%s' start --model '%s' --name sz --workers %d " LIMITS " %s 2>'%s'", shmrt,
		 model, workers, extra, err_file);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Waits for READY, or for the start to exit (returns 0 then, *status set). */
static int wait_ready(pid_t pid, int *status)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "'%s' probe --name sz --ready >/dev/null 2>&1", shmrt);
	for (int64_t t0 = now_ns(); now_ns() - t0 < (int64_t)120 * 1000000000;) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return 0;
		if (system(cmd) == 0)
			return 1;
		usleep(20000);
	}
	CHECK(0, "shmrt start neither got ready nor exited in 120 s");
	return 0;
}

/* Greedy tokens of one request through the running runtime, as JSON text. */
static char *serve_one(void)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "'%s' generate --name sz --tokens 1,2,3 --max-tokens 6 --temperature 0 --json", shmrt);
	int st;
	char *out = command_output(cmd, &st);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "generate --name: status %d: %s", st, out);
	json_t *doc = json_document(out);
	CHECK(json_integer_value(json_object_get(doc, "new_tokens")) == 6, "6 new tokens: %s", out);
	char *tokens = json_dumps(json_object_get(doc, "tokens"), JSON_COMPACT);
	json_decref(doc);
	free(out);
	return tokens;
}

/* `shmrt stat --json`'s shared memory: reserved and allocated are the
 * arena's size, which is also what the tmpfs says it uses (statvfs);
 * touched is some of it and not all (the response rings of 3 idle client
 * slots, for one, are never written). */
static void check_stat(void)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "'%s' stat --name sz --json", shmrt);
	int st;
	char *out = command_output(cmd, &st);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "stat: %s", out);
	json_t *doc = json_document(out), *shm = json_object_get(doc, "shm");
	struct statvfs v;
	CHECK(statvfs(mnt, &v) == 0, "statvfs");
	long used = (long)((v.f_blocks - v.f_bfree) * v.f_frsize);
	long reserved = (long)json_integer_value(json_object_get(shm, "reserved_bytes"));
	long touched = (long)json_integer_value(json_object_get(shm, "touched_bytes"));
	CHECK(reserved == arena_bytes && used == arena_bytes &&
		      json_integer_value(json_object_get(shm, "allocated_bytes")) == arena_bytes,
	      "stat's shm %s: the arena is %ld bytes, the tmpfs uses %ld", out, arena_bytes, used);
	CHECK(touched > 0 && touched < reserved / 2 && json_integer_value(json_object_get(shm, "mapped_by")) >= 4,
	      "touched %ld of %ld bytes: %s", touched, reserved, out);
	json_decref(doc);
	free(out);
}

/* At mib MiB: serves (returns its tokens), or is refused (NULL). */
static char *try_budget(long mib, int workers, const char *extra)
{
	CHECK(mount_mib(mib) == 0, "mount %ld MiB", mib);
	char err_file[64];
	snprintf(err_file, sizeof(err_file), "/tmp/test-size-tmpfs-err-%d", (int)getpid());
	pid_t pid = spawn_start(workers, extra, err_file);
	int status = 0;
	char *tokens = NULL;
	if (wait_ready(pid, &status)) {
		tokens = serve_one();
		check_stat();
		CHECK(kill(pid, SIGTERM) == 0, "SIGTERM");
		CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "shmrt start at %ld MiB: status %d", mib, status);
	} else {
		CHECK(WIFEXITED(status), "shmrt start at %ld MiB died of signal %d (SIGBUS is %d)", mib,
		      WTERMSIG(status), SIGBUS);
		CHECK(WEXITSTATUS(status) == 1, "shmrt start at %ld MiB: exit %d", mib, WEXITSTATUS(status));
		int st;
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "cat '%s'", err_file);
		char *msg = command_output(cmd, &st), want[128];
		snprintf(want, sizeof(want), "needs %ld MiB in %s but %ld MiB are free", mib + 1, mnt, mib);
		CHECK(strstr(msg, want) && strstr(msg, "sharedMemorySizeMb="), "refusal at %ld MiB: '%s' lacks '%s'",
		      mib, msg, want);
		free(msg);
	}
	unlink(err_file);
	unmount();
	return tokens;
}

static void check_case(int workers, const char *extra)
{
	long min = size_min_mib(workers, extra);
	char *at_min = try_budget(min, workers, extra);
	CHECK(at_min, "%d worker(s) %s: the minimum, %ld MiB, did not start", workers, extra, min);
	CHECK(!try_budget(min - 1, workers, extra), "%d worker(s): %ld MiB started", workers, min - 1);
	char *more = try_budget(min + 16, workers, extra);
	CHECK(more && !strcmp(at_min, more), "greedy tokens at %ld MiB %s, at %ld MiB %s", min, at_min, min + 16,
	      more ? more : "(none)");
	printf("%d worker(s) %s: starts at %ld MiB, refused at %ld, tokens %s\n", workers, extra, min, min - 1,
	       at_min);
	free(at_min);
	free(more);
}

static void run(void)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "'%s' mkmodel --preset tiny --out '%s' >/dev/null", shmrt, model);
	CHECK(system(cmd) == 0, "%s", cmd);
	check_case(1, "");
	check_case(2, "--xfer-chunk 262144");
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: test_size_tmpfs SHMRT");
	shmrt = argv[1];
	CHECK(mkdtemp(mnt) && mkdtemp(model), "mkdtemp");
	/* A private mount namespace when we may: the tmpfs vanishes with us. */
	if (unshare(CLONE_NEWNS) == 0)
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	int rc = mount_mib(8);
	if (rc) {
		rmdir(mnt);
		rmdir(model);
		SKIP("cannot mount a tmpfs on %s: %s", mnt, strerror(-rc));
	}
	unmount();
	setenv("SHMRT_SHM_DIR", mnt, 1);
	/* The checks in a child, so that the clean-up below happens whatever
	 * becomes of them. */
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		run();
		fflush(stdout);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	unmount();
	rmdir(mnt);
	char rm[128];
	snprintf(rm, sizeof(rm), "rm -rf '%s'", model);
	if (system(rm) != 0)
		fprintf(stderr, "could not remove %s\n", model);
	CHECK(WIFEXITED(status), "checks died of signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

/* shmrt start: run the runtime (runtime.h) in the foreground until SIGTERM
 * or SIGINT; and the hidden `shmrt __child` its children run. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shmrt/shmrt.h"
#include "cmd.h"
#include "runtime_flags.h"
#include "token_list.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt start --model DIR --name NAME [--workers N] [--restart]\n"
		   "                   [--max-seqs N] [--max-batch-tokens N] [--max-model-len N]\n"
		   "                   [--block-size N] [--kv-blocks N] [--clients N] [--backend NAME]\n"
		   "                   [--drain-seconds S] [--hang-seconds S] [--xfer-chunk BYTES]\n\n"
		   "Creates the arena NAME in $SHMRT_SHM_DIR (/dev/shm), runs the tokenizer, the\n"
		   "scheduler and N workers as processes and watches them until SIGTERM or SIGINT,\n"
		   "which drain the requests in flight (up to --drain-seconds, default 5), end the\n"
		   "rest with an error, stop the children and remove the arena. Clients attach by\n"
		   "name (shmrt generate --name NAME, the C API of client.h); shmrt probe and\n"
		   "shmrt stat watch it. Sizes as `shmrt size` prints them.\n\n"
		   "  --model DIR          a checkpoint directory with tokenizer.json\n"
		   "  --name NAME          the runtime's name\n"
		   "  --drain-seconds S    requests in flight may finish for S seconds (default 5)\n");
	runtime_flags_usage(f);
}

static void log_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "shmrt start: %s\n", line);
}

static int parse(int argc, char **argv, struct shmrt_runtime_options *o, long *drain)
{
	struct option opts[RUNTIME_FLAGS_COUNT + 5] = {
		{"model", required_argument, 0, 'm'}, {"name", required_argument, 0, 'N'},
		{"drain-seconds", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'}};
	memcpy(opts + 4, runtime_flag_options, sizeof(runtime_flag_options));
	for (int c; (c = getopt_long(argc, argv, "m:N:d:h" RUNTIME_FLAGS_SHORT, opts, NULL)) != -1;) {
		int ours = runtime_flag("start", c, optarg, o);
		if (ours < 0)
			return 2;
		if (ours)
			continue;
		switch (c) {
		case 'm': o->model_dir = optarg; break;
		case 'N': o->name = optarg; break;
		case 'd':
			if (parse_int_arg("start", "--drain-seconds", optarg, 0, 3600, drain))
				return 2;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || !o->model_dir || !o->name) {
		fprintf(stderr, "shmrt start: --model and --name are required\n");
		return usage(stderr), 2;
	}
	return -1;
}

int cmd_start(int argc, char **argv)
{
	struct shmrt_runtime_options o = {.exe = "/proc/self/exe", .log = log_line};
	long drain = 5;
	int rc = parse(argc, argv, &o, &drain);
	if (rc >= 0)
		return rc;
	/* The children run this very program (its path may be relative). */
	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		o.exe = exe;
	}
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before the watching thread starts */
	struct shmrt_runtime *rt;
	if (shmrt_runtime_start(&rt, &o) < 0) {
		fprintf(stderr, "shmrt start: %s\n", shmrt_last_error());
		return 1;
	}
	fprintf(stderr, "shmrt start: runtime '%s' from %s (pid %d)\n", o.name, o.model_dir, (int)getpid());
	int status = 0;
	for (;;) {
		struct timespec tick = {0, 100 * 1000000};
		int sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig > 0) {
			fprintf(stderr, "shmrt start: %s: draining for up to %ld s, then stopping\n", strsignal(sig),
				drain);
			break;
		}
		if (shmrt_runtime_health(rt, NULL) == SHMRT_HEALTH_FAILED) {
			/* why, said here too: the watching thread's line may not
			 * come when the arena was lost (it stops at once) */
			shmrt_runtime_wait_ready(rt, 0);
			fprintf(stderr, "shmrt start: %s\n", shmrt_last_error());
			status = 1;
			break;
		}
	}
	shmrt_runtime_stop(rt, drain * 1000000000);
	fprintf(stderr, "shmrt start: stopped, arena removed\n");
	return status;
}

int cmd_child(int argc, char **argv)
{
	int rc = shmrt_runtime_child_main(argc, argv);
	if (rc)
		fprintf(stderr, "shmrt %s %s: %s\n", argc > 1 ? (argv[1][0] == '0'   ? "tokenizer"
							       : argv[1][0] == '1' ? "scheduler"
										   : "worker")
							 : "child",
			argc > 2 ? argv[2] : "", shmrt_last_error());
	return rc;
}

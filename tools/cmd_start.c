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
		   "  --workers N          tensor-parallel workers (default 1)\n"
		   "  --restart            start a new family of processes when one dies\n"
		   "                       (default: the runtime FAILs and this program exits 1)\n"
		   "  --hang-seconds S     a ready process silent for S seconds is hung: killed,\n"
		   "                       then handled as a death (default 60; 0: never)\n"
		   "  --max-seqs N         running sequences (default 256)\n"
		   "  --max-batch-tokens N tokens per step (default 2048)\n"
		   "  --max-model-len N    prompt + output tokens (default: the model's context)\n"
		   "  --block-size N       KV cache block (default 16)\n"
		   "  --kv-blocks N        KV cache blocks (default: max-seqs full sequences)\n"
		   "  --clients N          client slots (default 64)\n"
		   "  --backend NAME       cpu (default), cpu-ref or cuda\n"
		   "  --xfer-chunk BYTES   the shm transport's chunk between workers: a power of two,\n"
		   "                       4096 .. 16777216 (default 65536; `shmrt size` prints its cost)\n");
}

static void log_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "shmrt start: %s\n", line);
}

static int parse(int argc, char **argv, struct shmrt_runtime_options *o, long *drain)
{
	static const struct option opts[] = {
		{"model", required_argument, 0, 'm'},	    {"name", required_argument, 0, 'N'},
		{"workers", required_argument, 0, 'w'},	    {"restart", no_argument, 0, 'r'},
		{"max-seqs", required_argument, 0, 's'},    {"max-batch-tokens", required_argument, 0, 't'},
		{"max-model-len", required_argument, 0, 'l'}, {"block-size", required_argument, 0, 'b'},
		{"kv-blocks", required_argument, 0, 'k'},   {"clients", required_argument, 0, 'c'},
		{"backend", required_argument, 0, 'B'},	    {"drain-seconds", required_argument, 0, 'd'},
		{"hang-seconds", required_argument, 0, 'H'}, {"help", no_argument, 0, 'h'},
		{"xfer-chunk", required_argument, 0, 'x'},  {0}};
	int *ints[] = {['w'] = &o->workers, ['s'] = &o->max_seqs, ['t'] = &o->max_batch_tokens,
		       ['l'] = &o->max_model_len, ['b'] = &o->block_size, ['k'] = &o->kv_blocks,
		       ['c'] = &o->max_clients};
	for (int c; (c = getopt_long(argc, argv, "m:N:w:rs:t:l:b:k:c:B:d:H:x:h", opts, NULL)) != -1;) {
		long v;
		switch (c) {
		case 'm': o->model_dir = optarg; break;
		case 'N': o->name = optarg; break;
		case 'r': o->restart = 1; break;
		case 'B': o->backend = optarg; break;
		case 'd':
			if (parse_int_arg("start", "--drain-seconds", optarg, 0, 3600, drain))
				return 2;
			break;
		case 'H':
			if (parse_int_arg("start", "--hang-seconds", optarg, 0, 86400, &v))
				return 2;
			o->hang_timeout_ns = v ? v * (int64_t)1000000000 : -1;
			break;
		case 'x': /* checked by the sizing */
			if (parse_int_arg("start", "--xfer-chunk", optarg, 1, 16 << 20, &v))
				return 2;
			o->xfer_chunk = (size_t)v;
			break;
		case 'w': case 's': case 't': case 'l': case 'b': case 'k': case 'c':
			if (parse_int_arg("start", argv[optind - 1], optarg, 1, INT_MAX / 2, &v))
				return 2;
			*ints[c] = (int)v;
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

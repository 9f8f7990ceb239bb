/* shmrt probe: exit 0 when the runtime NAME is ready (--ready) or alive
 * (--live); a container's startup and liveness probe. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "cmd.h"
#include "clock.h"
#include "proto.h"

/* A process whose heartbeat is older than the runtime's hang timeout is
 * hung (children beat at least every 100 ms while idle and between steps);
 * with hang detection off, this. */
#define STALE_NS SHMRT_HANG_TIMEOUT_DEFAULT_NS
/* Restarts in a row without READY that make the runtime not alive. */
#define CRASH_LOOP 2

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt probe --name NAME (--ready | --live) [--trust-owner USER]\n\n"
		   "  --ready   exit 0 once every worker has loaded its weights and run a\n"
		   "            warm-up step (health READY): a startup or readiness probe\n"
		   "  --live    exit 0 while the supervisor lives, the runtime has not FAILED,\n"
		   "            is not in a crash loop (two restarts in a row that did not get\n"
		   "            ready) and every process has beaten its heart within the\n"
		   "            runtime's hang timeout (shmrt start --hang-seconds, default 60 s;\n"
		   "            the supervisor kills a process silent for longer)\n"
		   "  --trust-owner USER  the runtime may be USER's (by default only this\n"
		   "            user's; as $SHMRT_TRUSTED_OWNER)\n"
		   "Exit 1 otherwise, with the reason on stderr.\n");
}

static int live(const struct shmrt_arena *a, const struct shmrt_arena_info *info, int h, char *why, size_t cap)
{
	struct rt_state *st;
	if (!info->owner_alive)
		return snprintf(why, cap, "the supervisor (pid %d) is gone", info->owner_pid), 0;
	if (h == SHMRT_HEALTH_FAILED)
		return snprintf(why, cap, "failed"), 0;
	if (rt_state_get(a, &st))
		return snprintf(why, cap, "%s", shmrt_last_error()), 0;
	/* Restarts that make no progress: as Kubernetes' CrashLoopBackOff,
	 * visible, so that whoever runs the container can act. */
	uint32_t loop = atomic_load(&st->crash_loop);
	if (loop >= CRASH_LOOP)
		return snprintf(why, cap, "a crash loop: %u restarts in a row did not get ready (%.*s)", loop,
				(int)strnlen(st->reason, sizeof(st->reason)), st->reason),
		       0;
	int64_t now = shmrt_now_ns(), stale = st->hang_timeout_ns > 0 ? st->hang_timeout_ns : STALE_NS;
	unsigned n_workers = *(volatile uint32_t *)&st->n_workers;
	n_workers = n_workers < RT_MAX_WORKERS ? n_workers : RT_MAX_WORKERS;
	for (unsigned i = 0; i < RT_PROC_WORKER0 + n_workers; i++) {
		struct rt_proc *p = &st->procs[i];
		int pid = atomic_load(&p->pid);
		if (h == SHMRT_HEALTH_READY && pid && now - atomic_load(&p->heartbeat_ns) > stale)
			return snprintf(why, cap, "the %s (pid %d) has not beaten its heart for %.1f s",
					rt_role_name((int)i), pid,
					(double)(now - atomic_load(&p->heartbeat_ns)) * 1e-9),
			       0;
	}
	return 1;
}

int cmd_probe(int argc, char **argv)
{
	static const struct option opts[] = {{"name", required_argument, 0, 'n'}, {"ready", no_argument, 0, 'r'},
					      {"live", no_argument, 0, 'l'},	    {"help", no_argument, 0, 'h'},
					      {"trust-owner", required_argument, 0, 'O'},
					      {0}};
	const char *name = NULL;
	int ready = 0, alive = 0;
	for (int c; (c = getopt_long(argc, argv, "n:rlh", opts, NULL)) != -1;) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'O': setenv("SHMRT_TRUSTED_OWNER", optarg, 1); break;
		case 'r': ready = 1; break;
		case 'l': alive = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!name || ready == alive || optind < argc) {
		fprintf(stderr, "shmrt probe: --name and one of --ready or --live are required\n");
		return usage(stderr), 2;
	}
	struct shmrt_arena *a;
	if (shmrt_arena_attach(&a, name) < 0) {
		fprintf(stderr, "shmrt probe: %s\n", shmrt_last_error());
		return 1;
	}
	struct shmrt_arena_info info;
	char why[RT_REASON_MAX + 64] = "";
	int ok = 0;
	if (shmrt_arena_info(a, &info) < 0) {
		snprintf(why, sizeof(why), "%s", shmrt_last_error());
	} else if (alive) {
		ok = live(a, &info, (int)info.health, why, sizeof(why));
	} else {
		ok = info.owner_alive && info.health == SHMRT_HEALTH_READY;
		snprintf(why, sizeof(why), "%s (%u/%u)", info.owner_alive ? shmrt_health_name(info.health) : "no supervisor",
			 info.progress, SHMRT_HEALTH_PROGRESS_MAX);
	}
	if (!ok)
		fprintf(stderr, "shmrt probe: '%s' is not %s: %s\n", name, alive ? "alive" : "ready", why);
	shmrt_arena_detach(a);
	return ok ? 0 : 1;
}

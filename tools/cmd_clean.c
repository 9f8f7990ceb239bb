/* shmrt clean: remove the arenas whose owner died. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "shmrt/shmrt.h"
#include "cmd.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shmrt clean [--name NAME] [--json]\n\n"
		   "Removes the arenas in the shared-memory directory ($SHMRT_SHM_DIR, default\n"
		   "/dev/shm) whose owner process has died, and lists them. Arenas with a live\n"
		   "owner are kept (and listed); files that are not shmrt arenas are never touched.\n\n"
		   "  --name NAME  only the arena NAME (file shmrt-NAME)\n"
		   "  --json       one JSON document on stdout\n");
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

struct report {
	int json;
	int count;
};

static void on_arena(const struct shmrt_arena_info *info, int removed, void *arg)
{
	struct report *r = arg;
	if (removed < 0 && r->json) {
		printf("%s{\"name\": \"%s\", \"removed\": false, \"error\": ", r->count ? ", " : "", info->name);
		json_string(shmrt_last_error());
		putchar('}');
	} else if (removed < 0) {
		printf("%-8s shmrt-%s  cannot be opened: %s\n", "skipped", info->name, shmrt_last_error());
	} else if (r->json) {
		/* Arena names are [A-Za-z0-9_.-]: nothing to escape. */
		printf("%s{\"name\": \"%s\", \"removed\": %s, \"bytes\": %llu, \"owner_pid\": %d, \"health\": \"%s\"}",
		       r->count ? ", " : "", info->name, removed ? "true" : "false",
		       (unsigned long long)info->bytes, info->owner_pid, shmrt_health_name(info->health));
	} else if (!info->owner_pid) {
		printf("%-8s shmrt-%s  %.1f MiB  (its creation never finished)\n", removed ? "removed" : "kept",
		       info->name, info->bytes / 1048576.0);
	} else {
		printf("%-8s shmrt-%s  %.1f MiB  owner pid %d %s, %s\n", removed ? "removed" : "kept", info->name,
		       info->bytes / 1048576.0, info->owner_pid, removed ? "is gone" : "is alive",
		       shmrt_health_name(info->health));
	}
	r->count++;
}

int cmd_clean(int argc, char **argv)
{
	struct report r = {0};
	const char *name = NULL;
	static const struct option opts[] = {
		{"name", required_argument, 0, 'n'}, {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0}};
	for (int c; (c = getopt_long(argc, argv, "n:jh", opts, NULL)) != -1;) {
		if (c == 'n')
			name = optarg;
		else if (c == 'j')
			r.json = 1;
		else if (c == 'h')
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (optind < argc) {
		fprintf(stderr, "shmrt clean: unexpected argument '%s'\n", argv[optind]);
		return usage(stderr), 2;
	}
	if (r.json) {
		printf("{\"dir\": ");
		json_string(shmrt_shm_dir());
		printf(", \"arenas\": [");
	}
	int removed = shmrt_arena_clean(name, on_arena, &r);
	if (r.json)
		printf("], \"removed\": %d}\n", removed < 0 ? 0 : removed);
	if (removed < 0) {
		fprintf(stderr, "shmrt clean: %s\n", shmrt_last_error());
		return removed == -EINVAL ? 2 : 1;
	}
	if (!r.json && r.count == 0)
		printf("no arenas in %s\n", shmrt_shm_dir());
	return 0;
}

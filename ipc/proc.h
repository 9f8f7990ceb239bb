/* Internal: naming a process so that a reused pid is not mistaken for it.
 *
 * A pid alone can be recycled after its owner dies; the pair (pid, start
 * time in clock ticks since boot, field 22 of /proc/PID/stat) cannot. */
#ifndef SHMRT_PROC_H
#define SHMRT_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct shmrt_proc_id {
	int32_t pid;
	uint64_t start_time;
};

/* The identity of process pid (0: this process). Returns 0 or -errno
 * (-ESRCH when no such process). */
int shmrt_proc_identify(pid_t pid, struct shmrt_proc_id *out);

/* False when the process named by id has exited (or its pid now belongs to
 * another process). A zero pid is never alive. */
bool shmrt_proc_alive(const struct shmrt_proc_id *id);

#endif

/* Internal: the clock of our waits, timeouts and statistics. */
#ifndef SHMRT_CLOCK_H
#define SHMRT_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t shmrt_now_ns(void);

#endif

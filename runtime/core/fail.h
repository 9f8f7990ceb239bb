/* Internal: recording the thread-local error message. */
#ifndef SHMRT_FAIL_H
#define SHMRT_FAIL_H

/* Formats the thread's error message and returns -err, so a failing path
 * reads: return shmrt_fail(ENOSPC, "need %zu MiB", n); */
int shmrt_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears the message (start of a public call that may succeed). */
void shmrt_clear_error(void);

#endif

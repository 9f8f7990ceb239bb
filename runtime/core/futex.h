/* Internal: sleeping on a 32-bit word in shared memory (Linux futex). */
#ifndef SHMRT_FUTEX_H
#define SHMRT_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleeps while *word == expected, at most timeout_ns (< 0: forever).
 * Returns 0 when woken (or the word already differed: -EAGAIN folded to 0),
 * -ETIMEDOUT, or -EINTR. Shared (not FUTEX_PRIVATE): works across processes. */
int shmrt_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);

/* Wakes up to n sleepers on word (INT32_MAX: all). */
void shmrt_futex_wake(_Atomic uint32_t *word, int n);


#endif

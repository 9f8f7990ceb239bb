/* Minimal assertions for the test programs: a failed CHECK prints where and
 * why and exits 1; SKIP exits 77, meson's "skipped". */
#ifndef SHMRT_TESTS_CHECK_H
#define SHMRT_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                 \
			fprintf(stderr, "\n");                                        \
			exit(1);                                                      \
		}                                                                     \
	} while (0)

/* A call returning 0 or -errno must succeed. */
#define CHECK_OK(call)                                                                \
	do {                                                                          \
		int check_rc_ = (call);                                               \
		CHECK(check_rc_ >= 0, "%s returned %d (%s)", #call, check_rc_, shmrt_last_error()); \
	} while (0)

#define SKIP(...)                                                                     \
	do {                                                                          \
		fprintf(stderr, "SKIP: " __VA_ARGS__);                                \
		fprintf(stderr, "\n");                                                \
		exit(77);                                                             \
	} while (0)

#endif

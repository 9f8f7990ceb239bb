/* The table of benchmarks `shmrt bench` knows. */
#include <stddef.h>

#include "bench.h"

const struct shmrt_bench shmrt_benches[] = {
	{"ipc", "ring latency and throughput vs pipe, UDS, ZeroMQ, cache-line floor, memcpy", bench_ipc},
	{NULL, NULL, NULL},
};

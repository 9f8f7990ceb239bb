/* The table of benchmarks `shmrt bench` knows. */
#include <stddef.h>

#include "bench.h"

const struct shmrt_bench shmrt_benches[] = {
	{"ipc", "ring latency and throughput vs pipe, UDS, ZeroMQ, cache-line floor, memcpy", bench_ipc},
	{"load", "checkpoint load GB/s: io_uring and pread vs plain read(), cold and warm", bench_load},
	{"e2e", "decode tokens/s at batch 1, 8, 32 vs the memory-bandwidth ceiling and llama.cpp", bench_e2e},
	{"kernels", "matmul and attention vs memory bandwidth, FMA peak, device copy, cuBLASLt", bench_kernels},
	{"xfer", "all-reduce bus bandwidth of the shm transport (W workers) vs memcpy; NCCL with GPUs", bench_xfer},
	{"shm", "per /dev/shm budget (a tmpfs of that size): starts?, tokens/s, all-reduce GB/s, bytes touched",
	 bench_shm},
	{"serve", "shmrt serve's HTTP streams vs the C client API on one runtime; 1,000 idle connections",
	 bench_serve},
	{"tokenize", "encode tokens/s on one thread vs Hugging Face tokenizers or tiktoken", bench_tokenize},
	{NULL, NULL, NULL},
};

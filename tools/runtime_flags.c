/* The runtime's flags of `shmrt start` and `shmrt serve` (runtime_flags.h). */
#include <limits.h>

#include "runtime_flags.h"
#include "token_list.h"

const struct option runtime_flag_options[RUNTIME_FLAGS_COUNT] = {
	{"workers", required_argument, 0, 'w'},	      {"restart", no_argument, 0, 'r'},
	{"max-seqs", required_argument, 0, 's'},      {"max-batch-tokens", required_argument, 0, 't'},
	{"max-model-len", required_argument, 0, 'l'}, {"block-size", required_argument, 0, 'b'},
	{"kv-blocks", required_argument, 0, 'k'},     {"clients", required_argument, 0, 'c'},
	{"backend", required_argument, 0, 'B'},	      {"hang-seconds", required_argument, 0, 'H'},
	{"xfer-chunk", required_argument, 0, 'x'},    {"max-restarts", required_argument, 0, 'R'},
	{"quantize", required_argument, 0, 'q'},
};

void runtime_flags_usage(FILE *f)
{
	fprintf(f, "  --workers N          tensor-parallel workers (default 1)\n"
		   "  --restart            start a new family of processes when one dies\n"
		   "                       (default: the runtime FAILs and this program exits 1)\n"
		   "  --max-restarts N     give up (FAILED) after N restarts in a row that do not\n"
		   "                       get ready, each after a longer pause (default 5; 0: never)\n"
		   "  --hang-seconds S     a ready process silent for S seconds is hung: killed,\n"
		   "                       then handled as a death (default 60; 0: never)\n"
		   "  --max-seqs N         running sequences (default 256)\n"
		   "  --max-batch-tokens N tokens per step (default 2048)\n"
		   "  --max-model-len N    prompt + output tokens (default: the model's context)\n"
		   "  --block-size N       KV cache block (default 16)\n"
		   "  --kv-blocks N        KV cache blocks (default: max-seqs full sequences, at\n"
		   "                       most what a quarter of the memory holds)\n"
		   "  --clients N          client slots (default 64)\n"
		   "  --backend NAME       cpu (default), cpu-ref or cuda\n"
		   "  --quantize TYPE      q8_0, q4_0 or q4_k: the workers quantize the 2-D weights\n"
		   "                       of a bf16/f16/f32 checkpoint as they load them\n"
		   "  --xfer-chunk BYTES   the shm transport's chunk between workers: a power of two,\n"
		   "                       4096 .. 16777216 (default 65536; `shmrt size` prints its cost)\n");
}

int runtime_flag(const char *cmd, int c, const char *arg, struct shmrt_runtime_options *o)
{
	int *ints[] = {['w'] = &o->workers, ['s'] = &o->max_seqs, ['t'] = &o->max_batch_tokens,
		       ['l'] = &o->max_model_len, ['b'] = &o->block_size, ['k'] = &o->kv_blocks,
		       ['c'] = &o->max_clients};
	long v;
	switch (c) {
	case 'r': o->restart = 1; return 1;
	case 'B': o->backend = arg; return 1;
	case 'q': return parse_quantize(cmd, arg, &o->quantize_to) ? -1 : 1;
	case 'R':
		if (parse_int_arg(cmd, "--max-restarts", arg, 0, 1000000, &v))
			return -1;
		o->max_restarts = v ? (int)v : -1;
		return 1;
	case 'H':
		if (parse_int_arg(cmd, "--hang-seconds", arg, 0, 86400, &v))
			return -1;
		o->hang_timeout_ns = v ? v * (int64_t)1000000000 : -1;
		return 1;
	case 'x': /* checked by the sizing */
		if (parse_int_arg(cmd, "--xfer-chunk", arg, 1, 16 << 20, &v))
			return -1;
		o->xfer_chunk = (size_t)v;
		return 1;
	case 'w': case 's': case 't': case 'l': case 'b': case 'k': case 'c':
		for (unsigned i = 0; i < RUNTIME_FLAGS_COUNT; i++)
			if (runtime_flag_options[i].val == c) {
				char opt[32];
				snprintf(opt, sizeof(opt), "--%s", runtime_flag_options[i].name);
				if (parse_int_arg(cmd, opt, arg, 1, INT_MAX / 2, &v))
					return -1;
			}
		*ints[c] = (int)v;
		return 1;
	default: return 0;
	}
}

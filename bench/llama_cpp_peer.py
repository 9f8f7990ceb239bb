#!/usr/bin/env python3
"""The llama.cpp peer of `shmrt bench e2e`: batched greedy decode with
llama-cpp-python's low-level API (PyPI; it builds llama.cpp), timed like
shmrt's decode.

  llama_cpp_peer.py --probe
      prints llama_cpp's version; exits non-zero when llama_cpp or gguf
      cannot be imported
  llama_cpp_peer.py --model DIR_OR_GGUF --gguf FILE --threads N
                    --prompts PROMPTS --batch 1,8 --steps S [--quantize TYPE]
      FILE is the model when it is not empty (a .gguf given as --model is
      passed as FILE itself: no conversion); else DIR is converted into it
      first (to_gguf.py beside this script; --quantize q8_0|q4_0 quantizes
      the matrices as shmrt's --quantize does). PROMPTS is a file of token
      ids, one sequence a line, comma separated: batch B decodes its first
      B lines. For each batch B, in a context of n_seq_max = B sequences:
      each prompt is prefilled as its own sequence (seq_id s, positions
      0..P-1), then S decode steps, each one llama_decode of B tokens (the
      last greedy token of every sequence, seq_id s at position P+step).
      Prints one JSON line: {"version", "dtype", "results": [{"batch",
      "decode_seconds", "tokens"}]}: the time of the S decode steps
      (greedy choices included, as shmrt's sampling) and sequence 0's S
      greedy tokens (the first from its prompt's logits).
      With --prefill N the file's last line is an N-token prompt instead:
      after the batches it is prefilled in one llama_decode (n_batch =
      n_ubatch = N) in a fresh context, twice (the first warms up), and
      the second's time is "prefill_seconds".

llama.cpp runs with n_threads = n_threads_batch = N. The weights are the
file's (a GGUF), else the checkpoint's dtype or --quantize's type.
"""
import argparse
import ctypes
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def probe():
    import gguf  # noqa: F401  (to_gguf.py needs it)
    import llama_cpp
    print(llama_cpp.__version__)


def weight_type(path):
    """The type most of the file's matrices have ("q4_1", "bf16", ...)."""
    import gguf
    counts = {}
    for t in gguf.GGUFReader(path).tensors:
        if len(t.shape) == 2:
            counts[t.tensor_type.name.lower()] = counts.get(t.tensor_type.name.lower(), 0) + 1
    return max(counts, key=counts.get) if counts else "?"


def decode_batch(llama_cpp, np, model, n_vocab, threads, prompts, steps):
    """Decodes len(prompts) sequences: (seconds of the decode steps, sequence 0's tokens)."""
    B, P = len(prompts), max(len(p) for p in prompts)
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx = B * ((P + steps + 16 + 255) // 256 * 256)  # whole 256s a sequence, as llama.cpp pads
    cp.n_batch = cp.n_ubatch = max(P, B, 32)
    cp.n_seq_max = B
    cp.n_threads = cp.n_threads_batch = threads
    ctx = llama_cpp.llama_init_from_model(model, cp)
    if not ctx:
        raise SystemExit(f"llama_init_from_model failed at batch {B}")
    batch = llama_cpp.llama_batch_init(max(P, B), 0, 1)

    def fill(items):  # items: (token, seq_id, position, wants logits)
        for i, (tok, s, pos, logits) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, pos, 1
            batch.seq_id[i][0], batch.logits[i] = s, logits
        batch.n_tokens = len(items)
        rc = llama_cpp.llama_decode(ctx, batch)
        if rc != 0:
            raise SystemExit(f"llama_decode returned {rc} at batch {B}")

    def greedy(i):
        ptr = llama_cpp.llama_get_logits_ith(ctx, i)
        return int(np.argmax(np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)),
                                                   shape=(n_vocab,))))

    try:
        nxt = []
        for s, p in enumerate(prompts):  # the prompts, one sequence at a time
            fill([(t, s, i, i == len(p) - 1) for i, t in enumerate(p)])
            nxt.append(greedy(len(p) - 1))
        tokens = []
        t0 = time.perf_counter()
        for step in range(steps):
            tokens.append(nxt[0])
            fill([(nxt[s], s, len(prompts[s]) + step, True) for s in range(B)])
            nxt = [greedy(s) for s in range(B)]
        seconds = time.perf_counter() - t0
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
    return seconds, tokens


def prefill(llama_cpp, model, threads, tokens):
    """Seconds of one llama_decode of tokens in a fresh context (the second of two)."""
    n = len(tokens)
    seconds = None
    for _ in range(2):
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = (n + 16 + 255) // 256 * 256
        cp.n_batch = cp.n_ubatch = n
        cp.n_seq_max = 1
        cp.n_threads = cp.n_threads_batch = threads
        ctx = llama_cpp.llama_init_from_model(model, cp)
        if not ctx:
            raise SystemExit("llama_init_from_model failed for the prefill")
        batch = llama_cpp.llama_batch_init(n, 0, 1)
        try:
            for i, t in enumerate(tokens):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = t, i, 1
                batch.seq_id[i][0], batch.logits[i] = 0, i == n - 1
            batch.n_tokens = n
            t0 = time.perf_counter()
            rc = llama_cpp.llama_decode(ctx, batch)
            seconds = time.perf_counter() - t0
            if rc != 0:
                raise SystemExit(f"llama_decode returned {rc} for the prefill of {n} tokens")
        finally:
            llama_cpp.llama_batch_free(batch)
            llama_cpp.llama_free(ctx)
    return seconds


def decode(a):
    import numpy as np
    import llama_cpp
    import llama_cpp._logger
    from to_gguf import convert

    if not os.path.exists(a.gguf) or os.path.getsize(a.gguf) == 0:
        convert(a.model, a.gguf, a.quantize)
    with open(a.prompts) as f:
        prompts = [[int(t) for t in line.split(",")] for line in f if line.strip()]
    prefill_prompt = prompts.pop() if a.prefill else None
    if prefill_prompt is not None and len(prefill_prompt) != a.prefill:
        raise SystemExit(f"{a.prompts}: the last line has {len(prefill_prompt)} tokens, not --prefill {a.prefill}")
    batches = [int(b) for b in a.batch.split(",")]
    if max(batches) > len(prompts):
        raise SystemExit(f"{a.prompts}: {len(prompts)} prompts for batch {max(batches)}")
    llama_cpp._logger.set_verbose(False)
    llama_cpp.llama_backend_init()
    model = llama_cpp.llama_model_load_from_file(a.gguf.encode(), llama_cpp.llama_model_default_params())
    if not model:
        raise SystemExit(f"{a.gguf}: llama.cpp cannot load it")
    n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
    doc = {"version": llama_cpp.__version__, "dtype": weight_type(a.gguf), "results": []}
    try:
        for B in batches:
            seconds, tokens = decode_batch(llama_cpp, np, model, n_vocab, a.threads, prompts[:B], a.steps)
            doc["results"].append({"batch": B, "decode_seconds": seconds, "tokens": tokens})
        if prefill_prompt:
            doc["prefill_seconds"] = prefill(llama_cpp, model, a.threads, prefill_prompt)
    finally:
        llama_cpp.llama_model_free(model)
    print(json.dumps(doc))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--probe", action="store_true")
    p.add_argument("--model")
    p.add_argument("--gguf")
    p.add_argument("--threads", type=int)
    p.add_argument("--prompts")
    p.add_argument("--batch", default="1")
    p.add_argument("--steps", type=int)
    p.add_argument("--quantize")
    p.add_argument("--prefill", type=int, default=0)
    a = p.parse_args()
    if a.probe:
        probe()
    else:
        decode(a)


if __name__ == "__main__":
    main()

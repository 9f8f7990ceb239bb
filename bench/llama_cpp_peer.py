#!/usr/bin/env python3
"""The llama.cpp peer of `shmrt bench e2e`: greedy decode at batch 1 with
llama-cpp-python (PyPI; it builds llama.cpp), timed like shmrt's decode.

  llama_cpp_peer.py --probe
      prints llama_cpp's version; exits non-zero when llama_cpp or gguf
      cannot be imported
  llama_cpp_peer.py --model DIR --gguf FILE --threads N --prompt 1,2,3 --steps S
      converts DIR to FILE first when FILE is missing or empty
      (to_gguf.py beside this script), evaluates the prompt, then S decode
      steps, each feeding the last greedy token; prints one JSON line:
      {"version", "decode_seconds", "tokens"}: the time of the S decode
      evaluations and the S greedy tokens (the first from the prompt's
      logits).

llama.cpp runs with n_threads = n_threads_batch = N, and the weights'
dtype is the checkpoint's (to_gguf.py converts nothing but layout).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def probe():
    import gguf  # noqa: F401  (to_gguf.py needs it)
    import llama_cpp
    print(llama_cpp.__version__)


def decode(a):
    import numpy as np
    import llama_cpp
    from to_gguf import convert

    if not os.path.exists(a.gguf) or os.path.getsize(a.gguf) == 0:
        convert(a.model, a.gguf)
    prompt = [int(t) for t in a.prompt.split(",")]
    llm = llama_cpp.Llama(model_path=a.gguf, n_threads=a.threads, n_threads_batch=a.threads,
                          n_ctx=len(prompt) + a.steps + 16, n_batch=max(len(prompt), 32), verbose=False)
    n_vocab = llm.n_vocab()

    def last_logits():  # Llama.eval keeps no scores unless logits_all
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm.ctx), shape=(n_vocab,))

    llm.eval(prompt)
    tokens = []
    t0 = time.perf_counter()
    for _ in range(a.steps):
        tok = int(np.argmax(last_logits()))
        tokens.append(tok)
        llm.eval([tok])
    seconds = time.perf_counter() - t0
    print(json.dumps({"version": llama_cpp.__version__, "decode_seconds": seconds, "tokens": tokens}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--probe", action="store_true")
    p.add_argument("--model")
    p.add_argument("--gguf")
    p.add_argument("--threads", type=int)
    p.add_argument("--prompt")
    p.add_argument("--steps", type=int)
    a = p.parse_args()
    if a.probe:
        probe()
    else:
        decode(a)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`shmrt quantize` (tools/cmd_quantize.c, runtime/core/gguf_write.c) against
llama.cpp itself (llama-cpp-python) and against shmrt's own --quantize.

Synthetic models of `shmrt mkmodel` (tiny-tied: llama, f16, tied
embeddings; tiny-qwen2: qwen2, f32, q/k/v biases) are written as GGUF files
of q8_0, q4_0 and q4_k; for each:
  - the `gguf` package reads the file: architecture, tensor names, types
    (matrices in the type, norms and biases f32), alignment 32; a matrix
    whose rows are not whole blocks (tiny-qwen2's FFN of 320 for q4_k) in
    Q8_0, and the command says so;
  - shmrt loads it back (cpu-ref) and its logits equal those of the
    checkpoint with --quantize of the same type (cpu-ref) to float
    rounding (max error <= 1e-5 of the spread): the file holds the same
    blocks, llama's q/k rows permuted as llama.cpp's converter does and
    put back by shmrt's loader;
  - llama.cpp loads and runs it (Llama(model_path, logits_all=True)): its
    logits on a token sequence against shmrt's on the same file: top-1
    agreement >= 80% (the random model has near-ties; llama.cpp rounds the
    activations to 8 bits in its matmuls) and max error <= 3% of the
    logits' spread;
  - llama.cpp's tokenizer (tokenizer.ggml.* written from tokenizer.json)
    encodes a text as `shmrt tokenize` does with the tokenizer.json, and
    adds the bos token as its post-processor does (add_bos_token);
The `tiny` preset (Llama 3 rope scaling) is refused with the reason.
Skips (77) without llama_cpp or gguf.

usage: test_quantize_gguf.py SHMRT
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

try:
    import gguf
    from llama_cpp import Llama
except ImportError:
    print("SKIP: llama-cpp-python or gguf is not installed")
    sys.exit(77)

SHMRT = sys.argv[1]
FAILED = []
TOKENS = [510] + [(i * 37 + 11) % 500 for i in range(31)]
TEXT = "the quick brown fox, 12 cats and the hello world"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILED.append(what)


def shmrt(*args):
    r = subprocess.run([SHMRT, *args], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"shmrt {' '.join(args)} failed: {r.stderr}")
    return r.stdout


def logits(model, out, *extra):
    shmrt("logits", "--model", model, "--backend", "cpu-ref", "--tokens", ",".join(map(str, TOKENS)), "--out", out,
          *extra)
    return np.fromfile(out, dtype=np.float32).reshape(len(TOKENS), -1)


def check_file(path, arch, qtype):
    r = gguf.GGUFReader(path)
    f = r.fields["general.architecture"]
    got_arch = bytes(f.parts[f.data[0]]).decode()
    types = {t.name: t.tensor_type.name for t in r.tensors}
    block = 256 if qtype == "q4_k" else 32
    # rows not whole blocks of the type fall back to Q8_0, as in llama.cpp
    want = {t.name: qtype.upper() if int(t.shape[0]) % block == 0 else "Q8_0" for t in r.tensors
            if t.name.endswith(".weight") and "norm" not in t.name}
    check(got_arch == arch, f"{path}: general.architecture {got_arch}")
    check(all(types[n] == w for n, w in want.items()),
          f"{path}: every matrix is {qtype} or its Q8_0 fallback ({sum(w != qtype.upper() for w in want.values())} fell back)")
    return sum(w != qtype.upper() for w in want.values())
    check(all(types[n] == "F32" for n in types if "norm" in n or n.endswith(".bias")), f"{path}: norms, biases f32")
    check(r.alignment == 32 and all(t.data_offset % 32 == 0 for t in r.tensors), f"{path}: aligned to 32")


def check_llama_cpp(path, ours):
    m = Llama(model_path=path, logits_all=True, verbose=False, n_ctx=64, n_threads=1)
    m.eval(TOKENS)
    ref = np.array(m.scores[:len(TOKENS)], dtype=np.float32)
    top1 = float(np.mean(ref.argmax(1) == ours.argmax(1)))
    err = float(np.abs(ref - ours).max() / (ours.max() - ours.min()))
    check(top1 >= 0.8, f"{path}: llama.cpp against shmrt: top-1 agreement {top1:.3f} >= 0.8")
    check(err <= 0.03, f"{path}: llama.cpp against shmrt: max error {err:.4f} of the spread <= 0.03")
    return m


def check_tokenizer(m, model_dir, path):
    ours = json.loads(shmrt("tokenize", "--tokenizer", os.path.join(model_dir, "tokenizer.json"), "--text", TEXT,
                            "--json"))["ids"]
    theirs = m.tokenize(TEXT.encode(), add_bos=False, special=False)
    check(list(theirs) == list(ours), f"{path}: llama.cpp's tokenization {list(theirs)[:8]}... == shmrt's")
    # tokenizer.json's post-processor starts with <|begin_of_text|>: add_bos_token
    with_bos = m.tokenize(TEXT.encode(), add_bos=True, special=False)
    check(list(with_bos) == [TOKENS[0]] + list(ours), f"{path}: llama.cpp adds the bos token {TOKENS[0]}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for preset, arch in (("tiny-tied", "llama"), ("tiny-qwen2", "qwen2")):
            model = os.path.join(tmp, preset)
            shmrt("mkmodel", "--preset", preset, "--out", model)
            for q in ("q8_0", "q4_0", "q4_k"):
                path = os.path.join(tmp, f"{preset}-{q}.gguf")
                r = subprocess.run([SHMRT, "quantize", "--model", model, "--out", path, "--type", q],
                                   capture_output=True, text=True)
                saved = re.search(r"([\d.]+) MiB saved", r.stdout)
                check(r.returncode == 0 and saved and float(saved.group(1)) > 0,
                      f"shmrt quantize --type {q} {preset}: {r.stdout.strip()}")
                fallbacks = check_file(path, arch, q)
                check(r.stderr.count("not whole") == fallbacks, f"{path}: the {fallbacks} fallbacks are reported")
                ours = logits(path, os.path.join(tmp, "gguf.f32"))
                again = logits(model, os.path.join(tmp, "load.f32"), "--quantize", q)
                err = float(np.abs(ours - again).max() / (again.max() - again.min()))
                check(err <= 1e-5, f"{path}: shmrt on the file == --quantize {q} at load (error {err:.2e})")
                m = check_llama_cpp(path, ours)
                if q == "q8_0":
                    check_tokenizer(m, model, path)
                del m
        model = os.path.join(tmp, "tiny")
        shmrt("mkmodel", "--preset", "tiny", "--out", model)
        r = subprocess.run([SHMRT, "quantize", "--model", model, "--out", os.path.join(tmp, "t.gguf"), "--type",
                            "q8_0"], capture_output=True, text=True)
        check(r.returncode == 1 and "rope scaling" in r.stderr and not os.path.exists(os.path.join(tmp, "t.gguf")),
              f"tiny (llama3 rope scaling) is refused: {r.stderr.strip()}")
    sys.exit(1 if FAILED else 0)


main()

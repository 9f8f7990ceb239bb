#!/usr/bin/env python3
"""--quantize at load (shmrt_model_options.quantize_to, runtime/model/model.c):
a synthetic bf16 model's logits with its weights quantized to q8_0, q4_0 and
q4_k as they are loaded, against its own bf16 logits (shmrt logits, cpu-ref:
the same kernels, so the difference is the quantization's alone).

The model's weights are random, so its logits have small margins between
the top tokens (near-ties everywhere): top-1 agreement is a weak measure
there and the bounds below are what 8.5 and 4.5 bits a weight give on it:
  q8_0: top-1 agreement >= 90%, max |error| <= 3% of the logits' spread,
        correlation >= 0.999;
  q4_0, q4_k: top-1 >= 40%, max |error| <= 25% (q4_0), 20% (q4_k) of the
        spread, correlation >= 0.95; q4_k's RMS error <= q4_0's (its
        fitted scales and mins).
Tensor-parallel ranks quantize their own parts (q8_0 over 2 ranks gives
the logits of one). The runtime's workers get the option (shmrt start --quantize). Also the
bytes saved that the load reports, the same as `shmrt size`
computes from the config, and a bad --quantize refused.

usage: test_quantize_load.py SHMRT
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

SHMRT = sys.argv[1]
FAILED = []
TOKENS = [510] + [(i * 37 + 11) % 500 for i in range(47)]


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILED.append(what)


def logits(model, out, *extra):
    r = subprocess.run([SHMRT, "logits", "--model", model, "--backend", "cpu-ref", "--tokens",
                        ",".join(map(str, TOKENS)), "--out", out, *extra], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"shmrt logits {' '.join(extra)} failed: {r.stderr}")
    return np.fromfile(out, dtype=np.float32).reshape(len(TOKENS), -1), r.stderr


def generate(*args, env=None):
    r = subprocess.run([SHMRT, "generate", "--tokens", "510,5,17", "--max-tokens", "8", "--temperature", "0",
                        "--json", *args], capture_output=True, text=True, env=env)
    return json.loads(r.stdout)["tokens"] if r.returncode == 0 else r.stderr


def check_runtime(model, tmp):
    """The option travels to the runtime's workers: `shmrt start --quantize
    q4_k` generates the tokens `generate --model --quantize q4_k` does."""
    env = dict(os.environ, SHMRT_SHM_DIR=tmp)
    name = f"quantize-{os.getpid()}"
    start = subprocess.Popen([SHMRT, "start", "--model", model, "--name", name, "--quantize", "q4_k"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            if subprocess.run([SHMRT, "probe", "--name", name, "--ready"], env=env,
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.25)
        got = generate("--name", name, env=env)
    finally:
        start.terminate()
        start.wait(timeout=30)
    want, plain = generate("--model", model, "--quantize", "q4_k"), generate("--model", model)
    check(got == want and want != plain, f"shmrt start --quantize q4_k generates {got}, as generate --quantize "
          f"q4_k does ({want}; bf16: {plain})")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny")
        subprocess.run([SHMRT, "mkmodel", "--preset", "tiny", "--out", model], check=True, capture_output=True)
        ref, _ = logits(model, os.path.join(tmp, "bf16.f32"))
        spread = float(ref.max() - ref.min())
        bounds = {"q8_0": (0.90, 0.03, 0.999), "q4_0": (0.40, 0.25, 0.95), "q4_k": (0.40, 0.20, 0.95)}
        sizes = json.loads(subprocess.run([SHMRT, "size", "--model", model, "--json"], capture_output=True,
                                          text=True, check=True).stdout)["weight_bytes"]
        rms = {}
        for q, (top1_min, err_max, corr_min) in bounds.items():
            got, err = logits(model, os.path.join(tmp, q + ".f32"), "--quantize", q)
            top1 = float(np.mean(got.argmax(1) == ref.argmax(1)))
            rel = float(np.abs(got - ref).max()) / spread
            corr = float(np.corrcoef(got.ravel(), ref.ravel())[0, 1])
            rms[q] = float(np.sqrt(np.mean((got - ref) ** 2)))
            check(top1 >= top1_min, f"{q}: top-1 agreement {top1:.3f} >= {top1_min}")
            check(rel <= err_max, f"{q}: max error {rel:.4f} of the spread <= {err_max}")
            check(corr >= corr_min, f"{q}: correlation {corr:.5f} >= {corr_min}")
            m = re.search(r"quantized to (\S+) at load: ([\d.]+) MiB, ([\d.]+) MiB saved", err)
            check(m and m.group(1) == q and float(m.group(3)) > 0,
                  f"{q}: the load reports the bytes saved ({m.group(0) if m else err.strip()})")
            saved = (sizes["checkpoint"] - sizes[q]) / 1048576
            check(m and abs(float(m.group(3)) - saved) < 0.006,
                  f"{q}: shmrt size's weight bytes say the same saving ({saved:.2f} MiB)")
        check(rms["q4_k"] <= rms["q4_0"], f"q4_k's RMS error {rms['q4_k']:.4f} <= q4_0's {rms['q4_0']:.4f}")
        # tensor parallel: each rank quantizes its own rows and columns
        # (whole Q8_0 blocks on both ranks here): the same logits
        one, _ = logits(model, os.path.join(tmp, "tp1.f32"), "--quantize", "q8_0")
        two, _ = logits(model, os.path.join(tmp, "tp2.f32"), "--quantize", "q8_0", "--workers", "2")
        err = float(np.abs(one - two).max()) / spread
        check(err <= 1e-5, f"q8_0 with --workers 2 == --workers 1 (error {err:.1e} of the spread)")
        check_runtime(model, tmp)
        r = subprocess.run([SHMRT, "logits", "--model", model, "--tokens", "1", "--out", os.path.join(tmp, "x"),
                            "--quantize", "q6_k"], capture_output=True, text=True)
        check(r.returncode == 2 and "--quantize wants q8_0, q4_0 or q4_k" in r.stderr,
              f"--quantize q6_k is refused ({r.stderr.strip()})")
    sys.exit(1 if FAILED else 0)


main()

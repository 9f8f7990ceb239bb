#!/usr/bin/env python3
"""shmrt's reference quantizers (runtime/core/quantize.c) against the `gguf`
package's (gguf.quants.quantize, a port of ggml-quants.c's _ref functions;
an implementation independent of shmrt's) for Q8_0 and Q4_0: the bytes must
be equal. Rows of normal values, outliers, tiny (fp16-subnormal scales) and
zero blocks, ties (values at exact halves of a step) included. The gguf
package has no Q4_K quantizer; Q4_K is checked by its round trip in
tests/test_quantize.c.

usage: test_quantize.py TEST_QUANTIZE (the program of tests/test_quantize.c)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    import gguf
    from gguf.quants import quantize
except ImportError:
    print("SKIP: the gguf package is not installed (pip install gguf)")
    sys.exit(77)

PROG = sys.argv[1]


def rows(rng):
    n = 32 * 64
    yield "normal", rng.normal(0, 1, n)
    out = rng.normal(0, 0.02, n)
    out[::97] *= 2000
    yield "outliers", out
    yield "tiny", rng.uniform(-1e-3, 1e-3, n)
    z = rng.normal(0, 1, n)
    z[:64] = 0
    yield "zero blocks", z
    # exact halves of a Q8_0 step: amax 127 gives d = 1
    t = rng.integers(-254, 255, n) / 2.0
    t[::32] = 127
    yield "ties", t


def main():
    rng = np.random.default_rng(17)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "x.f32"), os.path.join(tmp, "q.bin")
        for what, x in rows(rng):
            x = x.astype(np.float32)
            x.tofile(src)
            for name in ("Q8_0", "Q4_0"):
                subprocess.run([PROG, "--row", name.lower(), src, dst], check=True)
                ours = np.fromfile(dst, dtype=np.uint8)
                ref = quantize(x.reshape(1, -1), getattr(gguf.GGMLQuantizationType, name)).reshape(-1)
                same = ours.shape == ref.shape and np.array_equal(ours, ref)
                diff = "" if same else f": {int(np.sum(ours != ref))} of {ref.size} bytes differ"
                print(("ok   " if same else "FAIL ") + f"{name} {what}{diff}")
                failed += not same
    sys.exit(1 if failed else 0)


main()

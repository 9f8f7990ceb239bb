"""shmrt's reference dequantization of llama.cpp's block formats
(runtime/core/quant_blocks.h, through tests/quant_dequant_tool) against the
`gguf` package's own (gguf.quants.dequantize: numpy, written apart from
ggml's C), on random blocks of every format shmrt reads: random bytes, with
the fp16 scales set to finite values of every kind (normal, subnormal,
zero, negative, large). Each value must match to 1 ulp of fp32 (the order
of the multiplications is the same; a fused multiply-add in either may
round once less). Usage: quant_gguf_check.py QUANT_DEQUANT_TOOL"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize
except ImportError:
    print("SKIP: the gguf and numpy packages are not installed (scripts/dev.sh installs them)")
    sys.exit(77)

# shmrt's name, gguf's type, the byte offsets of the block's fp16 scales
# (ggml-common.h: block_q8_0 ... block_q6_K)
TYPES = [
    ("q8_0", GGMLQuantizationType.Q8_0, [0]),
    ("q4_0", GGMLQuantizationType.Q4_0, [0]),
    ("q4_1", GGMLQuantizationType.Q4_1, [0, 2]),
    ("q4_k", GGMLQuantizationType.Q4_K, [0, 2]),
    ("q5_k", GGMLQuantizationType.Q5_K, [0, 2]),
    ("q6_k", GGMLQuantizationType.Q6_K, [208]),
]
N_BLOCKS = 4096


def random_scales(rng, n):
    """fp16 scales: mostly small normal values, some of every other kind."""
    s = (rng.standard_normal(n) * 0.05).astype(np.float16)
    kind = rng.integers(0, 16, n)
    s[kind == 0] = 0
    s[kind == 1] = (rng.integers(1, 1024, (kind == 1).sum()).astype(np.uint16)
                    | np.uint16(0x8000) * rng.integers(0, 2, (kind == 1).sum()).astype(np.uint16)).view(np.float16)
    s[kind == 2] = (rng.standard_normal((kind == 2).sum()) * 1000).astype(np.float16)
    s[~np.isfinite(s)] = np.float16(1)
    return s


def check(tool, tmp, rng, name, qtype, scale_at):
    block, block_bytes = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, (N_BLOCKS, block_bytes), dtype=np.uint8)
    for at in scale_at:
        blocks[:, at:at + 2] = random_scales(rng, N_BLOCKS).view(np.uint8).reshape(N_BLOCKS, 2)
    want = dequantize(blocks, qtype).astype(np.float32).reshape(-1)
    src, dst = os.path.join(tmp, name + ".bin"), os.path.join(tmp, name + ".f32")
    blocks.tofile(src)
    subprocess.run([tool, name, src, dst], check=True)
    got = np.fromfile(dst, dtype="<f4")
    assert got.shape == want.shape, f"{name}: {got.shape[0]} values, want {want.shape[0]}"
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    ulp = np.spacing(np.maximum(np.abs(got), np.abs(want)).astype(np.float32)).astype(np.float64)
    bad = np.flatnonzero(err > ulp)
    exact = int((err == 0).sum())
    if bad.size:
        i = bad[0]
        print(f"FAIL {name}: {bad.size} values off by more than 1 ulp; element {i} "
              f"(block {i // block}) is {got[i]!r}, gguf says {want[i]!r}")
        return False
    print(f"ok {name}: {want.size} values, {exact} bit-exact, {want.size - exact} off by 1 ulp")
    return True


def main():
    tool = sys.argv[1]
    rng = np.random.default_rng(17)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name, qtype, scale_at in TYPES:
            ok = check(tool, tmp, rng, name, qtype, scale_at) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

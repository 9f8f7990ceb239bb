#!/usr/bin/env python3
"""Writes the GGUF header fuzzer's seeds into tests/corpus/gguf (committed):
valid-* files written by the gguf package, bad-* ones broken by hand.

usage: make_corpus.py DIR"""
import os
import struct
import sys

import numpy as np
import gguf
from gguf.quants import quantize

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1)


def write_valid(name, qtype):
    p = os.path.join(out, name)
    w = gguf.GGUFWriter(p, "llama")
    w.add_block_count(1)
    w.add_embedding_length(32)
    w.add_head_count(2)
    w.add_token_list(["<s>", "a", "b", "ab"])
    w.add_token_types([3, 1, 1, 1])
    w.add_token_merges(["a b"])
    w.add_token_scores([0.0, -1.0, -2.0, -0.5])
    w.add_bool("test.flag", True)
    w.add_array("test.i32", [1, -2, 3])
    w.add_float64("test.f64", 0.5)
    x = rng.normal(0, 1, (4, 32)).astype(np.float32)
    w.add_tensor("token_embd.weight", quantize(x, qtype) if qtype != gguf.GGMLQuantizationType.F32 else x,
                 raw_dtype=qtype if qtype != gguf.GGMLQuantizationType.F32 else None)
    w.add_tensor("output_norm.weight", np.ones(32, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return open(p, "rb").read()


Q = gguf.GGMLQuantizationType
good = write_valid("valid-f32", Q.F32)
write_valid("valid-q8_0", Q.Q8_0)
bad = {
    "bad-truncated-header": good[:50],
    "bad-truncated-data": good[:-8],
    "bad-magic": b"GGUX" + good[4:],
    "bad-version-1": good[:4] + struct.pack("<I", 1) + good[8:],
    "bad-tensor-count": good[:8] + struct.pack("<Q", 1 << 40) + good[16:],
    "bad-kv-count": good[:16] + struct.pack("<Q", 1 << 31) + good[24:],
    "bad-short": good[:7],
}
# the first key's length (at 24) made huge
bad["bad-key-length"] = good[:24] + struct.pack("<Q", 1 << 60) + good[32:]
for name, blob in bad.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(blob)

#!/usr/bin/env python3
"""GGUF model files against an independent reference (issue 17).

For every weight type shmrt runs (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K,
Q5_K, Q6_K) a small llama model is written as a GGUF file by the `gguf`
package (PyPI; llama.cpp's own writer), its q/k rows permuted as llama.cpp's
converter does (convert_hf_to_gguf.py, LlamaModel.permute). The same weights,
dequantized by `gguf.quants.dequantize` (an implementation independent of
shmrt's) and put back in Hugging Face order, are written as an f32
safetensors checkpoint. `shmrt logits` of both must agree:
  - cpu-ref on the GGUF file vs cpu-ref on the checkpoint: the same values
    reach the same double-accumulating kernels, so the logits agree to
    float rounding (relative error < 1e-4 of the logits' spread); this
    checks the loader's names, shapes, permutation and each format's
    dequantization;
  - the fast cpu backend on the GGUF file (integer dot products on 8-bit
    activations for Q8_0/Q4_0/Q4_1) vs the same reference: top-1 equal at
    every position and error < 3% of the spread.
Also a qwen2 file (biases, no permutation), a tied model (no output.weight)
and files whose fused parts differ in type (Q4_K_M-like: q, k Q4_K, v Q6_K).
Then malformed files are refused with a clear message, never a crash.

usage: test_gguf_model.py SHMRT
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

try:
    import gguf
    from gguf.quants import dequantize, quantize
except ImportError:
    print("SKIP: the gguf package is not installed (pip install gguf)")
    sys.exit(77)

SHMRT = sys.argv[1]
Q = gguf.GGMLQuantizationType
FAILED = []

CFG = dict(hidden=256, ff=512, layers=2, heads=4, kv_heads=2, vocab=96, ctx=64)
HEAD_DIM = CFG["hidden"] // CFG["heads"]
TOKENS = [1, 17, 33, 5, 90, 64, 2, 41, 8, 77, 13, 50]


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILED.append(what)


def permute(w, n_head):
    """llama.cpp's converter: rows of each head from HF's rotate_half order
    into adjacent pairs (LlamaModel.permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_weights(rng, qkv_bias=False, tied=False):
    H, I, V, D = CFG["hidden"], CFG["ff"], CFG["vocab"], HEAD_DIM
    qd, kvd = CFG["heads"] * D, CFG["kv_heads"] * D
    w = {"model.embed_tokens.weight": rng.normal(0, 1, (V, H)), "model.norm.weight": 1 + rng.normal(0, 0.1, H)}
    if not tied:
        w["lm_head.weight"] = rng.normal(0, 0.05, (V, H))
    for l in range(CFG["layers"]):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, H)
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, H)
        for name, rows, cols in (("self_attn.q_proj", qd, H), ("self_attn.k_proj", kvd, H),
                                 ("self_attn.v_proj", kvd, H), ("self_attn.o_proj", H, qd),
                                 ("mlp.gate_proj", I, H), ("mlp.up_proj", I, H), ("mlp.down_proj", H, I)):
            w[p + name + ".weight"] = rng.normal(0, 0.06, (rows, cols))
        if qkv_bias:
            for name, rows in (("q_proj", qd), ("k_proj", kvd), ("v_proj", kvd)):
                w[p + "self_attn." + name + ".bias"] = rng.normal(0, 0.1, rows)
    return {k: v.astype(np.float32) for k, v in w.items()}


GGUF_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
              "lm_head.weight": "output.weight"}
LAYER_NAMES = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
               "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
               "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
               "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
               "self_attn.v_proj.bias": "attn_v.bias",
               "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
               "mlp.down_proj.weight": "ffn_down.weight"}


def gguf_name(hf):
    if hf in GGUF_NAMES:
        return GGUF_NAMES[hf]
    parts = hf.split(".")
    return f"blk.{parts[2]}." + LAYER_NAMES[".".join(parts[3:])]


def k_quant_blocks(rng, rows, cols, qtype):
    """Random valid super-blocks: random bytes, fp16 scales set small."""
    bs, tb = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, (rows, cols // bs, tb), dtype=np.uint8)
    half = lambda v: np.frombuffer(np.float16(v).tobytes(), np.uint8)
    if qtype == Q.Q6_K:  # d at the end, int8 scales before it
        blocks[:, :, 208:210] = half(0.00006)
    else:  # d, dmin first
        blocks[:, :, 0:2] = half(0.0012 if qtype == Q.Q4_K else 0.0006)
        blocks[:, :, 2:4] = half(0.0015 if qtype == Q.Q4_K else 0.0008)
    return blocks.reshape(rows, -1)


def encode(rng, w, qtype):
    """(GGUF bytes or array, the values it dequantizes to)."""
    if w.ndim == 1 or qtype == Q.F32:
        return w, w
    if qtype == Q.F16:
        h = w.astype(np.float16)
        return h, h.astype(np.float32)
    if qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
        raw = k_quant_blocks(rng, w.shape[0], w.shape[1], qtype)
    else:
        raw = quantize(w, qtype)
    return raw, dequantize(raw, qtype).reshape(w.shape).astype(np.float32)


# llama.cpp's Q4_K_M mixes types inside what shmrt fuses: q, k, gate in
# Q4_K, v and down in Q6_K (up in Q5_K here, to mix three)
Q4_K_M = {"v_proj": Q.Q6_K, "down_proj": Q.Q6_K, "up_proj": Q.Q5_K}


def write_gguf(path, arch, weights, qtype, rng, embed_type=None, mix=None):
    """The GGUF file and the dequantized HF-order weights it holds."""
    wr = gguf.GGUFWriter(path, arch)
    wr.add_block_count(CFG["layers"])
    wr.add_context_length(CFG["ctx"])
    wr.add_embedding_length(CFG["hidden"])
    wr.add_feed_forward_length(CFG["ff"])
    wr.add_head_count(CFG["heads"])
    wr.add_head_count_kv(CFG["kv_heads"])
    wr.add_rope_dimension_count(HEAD_DIM)
    wr.add_layer_norm_rms_eps(1e-5)
    wr.add_rope_freq_base(10000.0)
    ref = {}
    for hf, w in weights.items():
        perm = arch == "llama" and (".q_proj." in hf or ".k_proj." in hf)
        n_head = CFG["heads"] if ".q_proj." in hf else CFG["kv_heads"]
        g = permute(w, n_head) if perm else w
        t = embed_type if (embed_type is not None and hf == "model.embed_tokens.weight") else qtype
        for part, pt in (mix or {}).items():
            t = pt if f".{part}." in hf else t
        raw, deq = encode(rng, g, t if g.ndim == 2 else Q.F32)
        ref[hf] = unpermute(deq, n_head) if perm else deq
        if raw.dtype == np.uint8:
            wr.add_tensor(gguf_name(hf), raw, raw_dtype=t)
        else:
            wr.add_tensor(gguf_name(hf), raw)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    return ref


def write_checkpoint(d, arch, weights, tied, qkv_bias):
    os.makedirs(d, exist_ok=True)
    cfg = {"architectures": ["LlamaForCausalLM" if arch == "llama" else "Qwen2ForCausalLM"], "model_type": arch,
           "hidden_size": CFG["hidden"], "intermediate_size": CFG["ff"], "num_hidden_layers": CFG["layers"],
           "num_attention_heads": CFG["heads"], "num_key_value_heads": CFG["kv_heads"],
           "vocab_size": CFG["vocab"], "max_position_embeddings": CFG["ctx"], "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "tie_word_embeddings": tied, "torch_dtype": "float32", "hidden_act": "silu"}
    if arch == "llama":
        cfg["attention_bias"] = qkv_bias
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    header, off, blobs = {}, 0, []
    for k, v in weights.items():
        b = np.ascontiguousarray(v, np.float32).tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def logits(model, backend, tmp):
    out = os.path.join(tmp, "logits.bin")
    r = subprocess.run([SHMRT, "logits", "--model", model, "--tokens", ",".join(map(str, TOKENS)), "--out", out,
                        "--backend", backend], capture_output=True, text=True)
    if r.returncode:
        return None, r.stderr.strip()
    return np.fromfile(out, np.float32).reshape(len(TOKENS), -1), ""


def compare(tmp, name, arch="llama", qtype=Q.Q8_0, tied=False, qkv_bias=False, embed_type=None, mix=None):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    w = hf_weights(rng, qkv_bias=qkv_bias, tied=tied)
    path = os.path.join(tmp, name + ".gguf")
    ref_w = write_gguf(path, arch, w, qtype, rng, embed_type, mix)
    ck = os.path.join(tmp, name + "-ref")
    write_checkpoint(ck, arch, ref_w, tied, qkv_bias)
    want, err = logits(ck, "cpu-ref", tmp)
    if want is None:
        check(False, f"{name}: reference checkpoint runs ({err})")
        return
    spread = float(want.max() - want.min())
    for backend, tol in (("cpu-ref", 1e-4), ("cpu", 3e-2)):
        got, err = logits(path, backend, tmp)
        if got is None:
            check(False, f"{name}: shmrt logits --backend {backend} on the GGUF file ({err})")
            continue
        rel = float(np.abs(got - want).max()) / spread
        # top-1 must agree wherever the reference's best two are not a
        # near-tie (apart by more than 2% of the spread)
        top2 = np.sort(want, 1)[:, -2:]
        decisive = (top2[:, 1] - top2[:, 0]) > 0.02 * spread
        agree = got.argmax(1) == want.argmax(1)
        top1 = float(agree[decisive].mean()) if decisive.any() else 1.0
        check(rel < tol and (backend == "cpu-ref" or top1 == 1.0),
              f"{name} [{backend}]: max |error| / spread = {rel:.2e} (< {tol:g}), top-1 agreement "
              f"{top1:.2f} at the {int(decisive.sum())} positions without a near-tie, {agree.mean():.2f} at all")


# ---- malformed files: a tiny valid file written by hand, then broken ----

def gguf_bytes(tensors, kvs=None, version=3, n_tensors=None, n_kvs=None, align=32, data=None):
    """tensors: (name, ne list, ggml type, relative offset, data bytes)."""
    def s(x):
        x = x.encode()
        return struct.pack("<Q", len(x)) + x
    kvs = kvs if kvs is not None else [("general.architecture", 8, s("llama"))]
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                len(kvs) if n_kvs is None else n_kvs)
    for k, t, v in kvs:
        out += s(k) + struct.pack("<I", t) + v
    for name, ne, ty, off, _ in tensors:
        out += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", ty, off)
    out += b"\0" * (-len(out) % align)
    if data is None:
        data = b""
        for *_, off, blob in sorted(tensors, key=lambda t: t[3]):
            data += b"\0" * (off - len(data)) + blob
    return out + data


def malformed(tmp):
    ok_t = [("token_embd.weight", [32, 4], 0, 0, b"\0" * 512), ("output_norm.weight", [32], 0, 512, b"\0" * 128)]
    good = gguf_bytes(ok_t)
    cases = {
        "truncated in the header": (good[:90], "truncated GGUF header"),
        "truncated in the data": (good[:-100], "runs past the end"),
        "tensor count past the end": (gguf_bytes(ok_t, n_tensors=1 << 40), "cannot fit"),
        "metadata count past the end": (gguf_bytes(ok_t, n_kvs=1 << 30), "cannot fit"),
        "string length past the end": (gguf_bytes(ok_t, kvs=[("general.architecture", 8,
                                                               struct.pack("<Q", 1 << 50) + b"llama")]),
                                       "truncated GGUF header"),
        "offset past the end": (gguf_bytes([ok_t[0], ("output_norm.weight", [32], 0, 1 << 20, b"")],
                                           data=b"\0" * 640), "runs past the end"),
        "overlapping tensors": (gguf_bytes([ok_t[0], ("output_norm.weight", [32], 0, 256, b"")]) + b"\0" * 0,
                                "overlap"),
        "unaligned offset": (gguf_bytes([ok_t[0], ("output_norm.weight", [32], 0, 516, b"\0" * 128)]),
                             "not aligned"),
        "unknown type": (gguf_bytes([("token_embd.weight", [32, 4], 99, 0, b"\0" * 512)]), "GGML type"),
        "type shmrt does not run (IQ2_XXS)": (gguf_bytes([("token_embd.weight", [256, 4], 16, 0, b"\0" * 264)]),
                                              "IQ2_XXS"),
        "rows not whole blocks": (gguf_bytes([("token_embd.weight", [48, 4], 8, 0, b"\0" * 256)]),
                                  "not whole q8_0 blocks"),
        "version 1": (gguf_bytes(ok_t, version=1), "GGUF version 1"),
        "not GGUF": (b"GGUX" + good[4:], "neither a checkpoint directory nor a GGUF file"),
        "duplicate tensor": (gguf_bytes([ok_t[0], ("token_embd.weight", [32], 0, 512, b"\0" * 128)]),
                             "appears twice"),
    }
    for what, (blob, expect) in cases.items():
        p = os.path.join(tmp, "bad.gguf")
        with open(p, "wb") as f:
            f.write(blob)
        r = subprocess.run([SHMRT, "logits", "--model", p, "--tokens", "1", "--out", os.path.join(tmp, "x")],
                           capture_output=True, text=True)
        msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        check(r.returncode == 1 and expect in msg, f"malformed, {what}: refused: {msg!r}")


def shape_mismatch(tmp):
    """A tensor whose shape disagrees with the metadata's hyperparameters."""
    rng = np.random.default_rng(7)
    w = hf_weights(rng)
    w["model.layers.1.mlp.down_proj.weight"] = w["model.layers.1.mlp.down_proj.weight"][:, :256].copy()
    p = os.path.join(tmp, "shape.gguf")
    write_gguf(p, "llama", w, Q.F32, rng)
    r = subprocess.run([SHMRT, "logits", "--model", p, "--tokens", "1", "--out", os.path.join(tmp, "x")],
                       capture_output=True, text=True)
    check(r.returncode == 1 and "blk.1.ffn_down" not in r.stderr and "down_proj.weight' has shape" in r.stderr,
          f"shape that does not match the config refused: {r.stderr.strip()!r}")


def main():
    with tempfile.TemporaryDirectory(prefix="shmrt-gguf-") as tmp:
        for qt in (Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q4_K, Q.Q5_K, Q.Q6_K):
            compare(tmp, "llama-" + qt.name.lower(), qtype=qt)
        compare(tmp, "llama-q4_1-tied-q8_0-embed", qtype=Q.Q4_1, tied=True, embed_type=Q.Q8_0)
        compare(tmp, "qwen2-q8_0", arch="qwen2", qtype=Q.Q8_0, qkv_bias=True)
        compare(tmp, "llama-q4_k_m-mixed-parts", qtype=Q.Q4_K, mix=Q4_K_M)
        compare(tmp, "qwen2-mixed-parts", arch="qwen2", qtype=Q.Q8_0, qkv_bias=True, mix={"v_proj": Q.Q4_0})
        malformed(tmp)
        shape_mismatch(tmp)
    if FAILED:
        print(f"{len(FAILED)} failed:", *FAILED, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

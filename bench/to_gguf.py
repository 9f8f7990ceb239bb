#!/usr/bin/env python3
"""Converts a Llama-architecture checkpoint in Hugging Face layout (what
`shmrt mkmodel` writes: config.json, model.safetensors, a byte-level BPE
tokenizer.json) to GGUF for llama.cpp, with the `gguf` package (PyPI).

Matrices keep their dtype (bf16 stays bf16: the same weights, the same
bytes per decode step), or with --quantize q8_0|q4_0 are quantized by
gguf.quants (every 2-D weight whose rows are whole 32-element blocks, the
embedding included, as `shmrt --quantize` does at load; gguf-py cannot
quantize the K formats); 1-D norm weights become f32, as llama.cpp's own
converter leaves them. The GGUF layout follows llama.cpp's conventions for
the llama architecture (gguf's constants name the keys and tensors):

- q_proj and k_proj rows are reordered from the Hugging Face rotary layout
  (first half / second half of each head) to llama.cpp's (pairs of
  neighbours), per head;
- Llama 3 rope scaling becomes the per-frequency divisor tensor
  rope_freqs.weight (factor for low frequencies, 1 for high, a smooth step
  between), which llama.cpp applies to the rotary frequencies;
- tied embeddings: no output.weight (llama.cpp reuses token_embd).

Usage: to_gguf.py MODEL_DIR OUT.gguf [--quantize q8_0|q4_0]
"""
import json
import math
import struct
import sys

import numpy as np
import gguf

DTYPES = {  # safetensors dtype -> (numpy storage type, GGML type)
    "BF16": (np.uint16, gguf.GGMLQuantizationType.BF16),
    "F16": (np.float16, gguf.GGMLQuantizationType.F16),
    "F32": (np.float32, gguf.GGMLQuantizationType.F32),
}

QUANTIZE = {  # --quantize: the types gguf.quants.quantize makes -> (GGML type, file type)
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    "q4_0": (gguf.GGMLQuantizationType.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0),
}


def read_safetensors(path):
    """name -> (dtype, numpy array over the file's bytes)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        np_type = DTYPES[t["dtype"]][0]
        begin, end = t["data_offsets"]
        count = (end - begin) // np.dtype(np_type).itemsize
        arr = np.memmap(path, dtype=np_type, mode="r", offset=8 + n + begin, shape=(count,))
        out[name] = (t["dtype"], arr.reshape(t["shape"]))
    return out


def load_tensors(model_dir):
    index = f"{model_dir}/model.safetensors.index.json"
    try:
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    except FileNotFoundError:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        tensors.update(read_safetensors(f"{model_dir}/{name}"))
    return tensors


def to_f32(dtype, arr):
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def rotary_to_pairs(w, n_heads):
    """Rows of each head from [first half, second half] to interleaved pairs."""
    rows = w.shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_divisors(cfg, head_dim):
    rs = cfg["rope_scaling"]
    base = cfg.get("rope_theta", 10000.0)
    factor, low, high = rs["factor"], rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old_ctx = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / base ** (i / head_dim)
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def add_tokenizer(w, model_dir, vocab_size):
    tok = json.load(open(f"{model_dir}/tokenizer.json"))
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [gguf.TokenType.UNUSED] * vocab_size
    for text, i in tok["model"]["vocab"].items():
        if i < vocab_size:
            tokens[i], types[i] = text, gguf.TokenType.NORMAL
    for added in tok.get("added_tokens", []):
        i = added["id"]
        if i < vocab_size:
            tokens[i] = added["content"]
            types[i] = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"].get("merges", [])]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)


def convert(model_dir, out, quantize=None):
    if quantize is not None and quantize not in QUANTIZE:
        raise SystemExit(f"--quantize {quantize}: gguf-py quantizes {', '.join(QUANTIZE)} only")
    cfg = json.load(open(f"{model_dir}/config.json"))
    if cfg.get("model_type") != "llama":
        raise SystemExit(f"{model_dir}: model_type {cfg.get('model_type')!r}: only llama is converted")
    n_heads, n_kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hidden, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    head_dim = cfg.get("head_dim", hidden // n_heads)
    w = gguf.GGUFWriter(out, "llama")
    w.add_name("shmrt-mkmodel")
    w.add_vocab_size(cfg["vocab_size"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_heads)
    w.add_head_count_kv(n_kv)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
    if cfg.get("bos_token_id") is not None:
        w.add_bos_token_id(cfg["bos_token_id"])
    eos = cfg.get("eos_token_id")
    if eos is not None:
        w.add_eos_token_id(eos[0] if isinstance(eos, list) else eos)
    add_tokenizer(w, model_dir, cfg["vocab_size"])

    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                 "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                 "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                 "mlp.down_proj": "ffn_down"}
    for l in range(layers):
        for hf, gg in per_layer.items():
            names[f"model.layers.{l}.{hf}.weight"] = f"blk.{l}.{gg}.weight"
    file_type = None
    for name, (dtype, arr) in sorted(load_tensors(model_dir).items()):
        if name not in names:
            raise SystemExit(f"{model_dir}: tensor {name} has no GGUF name here")
        if name.endswith("q_proj.weight"):
            arr = rotary_to_pairs(arr, n_heads)
        elif name.endswith("k_proj.weight"):
            arr = rotary_to_pairs(arr, n_kv)
        if arr.ndim == 1:
            w.add_tensor(names[name], to_f32(dtype, arr))
            continue
        if quantize and arr.shape[-1] % 32 == 0:
            qtype, file_type = QUANTIZE[quantize]
            w.add_tensor(names[name], gguf.quants.quantize(to_f32(dtype, arr), qtype), raw_dtype=qtype)
            continue
        arr = np.ascontiguousarray(arr)
        w.add_tensor(names[name], arr, raw_shape=arr.shape, raw_dtype=DTYPES[dtype][1])
        file_type = file_type or {"BF16": gguf.LlamaFileType.MOSTLY_BF16, "F16": gguf.LlamaFileType.MOSTLY_F16,
                                  "F32": gguf.LlamaFileType.ALL_F32}[dtype]
    if (cfg.get("rope_scaling") or {}).get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_divisors(cfg, head_dim))
    w.add_file_type(file_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[3] == "--quantize":
        convert(sys.argv[1], sys.argv[2], sys.argv[4])
    elif len(sys.argv) == 3:
        convert(sys.argv[1], sys.argv[2])
    else:
        raise SystemExit("usage: to_gguf.py MODEL_DIR OUT.gguf [--quantize q8_0|q4_0]")

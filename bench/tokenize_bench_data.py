#!/usr/bin/env python3
"""A realistic tokenizer and text for `shmrt bench tokenize` (bench/RESULTS.md):
a 32000-token byte-level BPE with Llama 3's split regex, trained by Hugging
Face `tokenizers` on the first half of Python's standard library sources
(code and English prose), saved as OUT/bpe32k.json and, ranks in merge order,
as the tiktoken file OUT/bpe32k.tiktoken; and 8 MB of the other half as
OUT/bench.txt.

    pip install tokenizers tiktoken
    python3 bench/tokenize_bench_data.py OUT
"""
import base64
import glob
import os
import sys
import sysconfig

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizer"))
from make_fixtures import LLAMA3_PAT, bytes_to_unicode  # noqa: E402


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "**", "*.py"), recursive=True))
    parts = []
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                parts.append(fh.read())
        except (UnicodeDecodeError, OSError):
            pass
    text = "\n".join(parts)
    half = len(text) // 2
    with open(os.path.join(out, "train.txt"), "w") as f:
        f.write(text[:half])
    with open(os.path.join(out, "bench.txt"), "w") as f:
        f.write(text[half:half + 8_000_000])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PAT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train([os.path.join(out, "train.txt")],
              trainers.BpeTrainer(vocab_size=32000, special_tokens=["<|end_of_text|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.save(os.path.join(out, "bpe32k.json"))
    byte_of = {ch: b for b, ch in enumerate(bytes_to_unicode())}
    with open(os.path.join(out, "bpe32k.tiktoken"), "w") as f:
        rank = 0
        for t, _ in sorted(tok.get_vocab(with_added_tokens=False).items(), key=lambda kv: kv[1]):
            if t != "<|end_of_text|>":
                f.write(f"{base64.b64encode(bytes(byte_of[c] for c in t)).decode()} {rank}\n")
                rank += 1
    print(f"{len(files)} files, {len(text)} characters; vocabulary {tok.get_vocab_size()}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""shmrt bench tokenize's peer: encodes a text file with the reference
library and prints one JSON line: the library and version, the token count,
an FNV-1a checksum of the ids (as shmrt computes it, so the two can be
compared), and the best of REPEAT encode times in CPU seconds of the
encoding thread (both libraries encode one sequence on the calling thread).

    tokenize_peer.py TOKENIZER TEXT REPEAT [PATTERN]

A tokenizer.json goes through Hugging Face `tokenizers` (Tokenizer.encode
of the whole text as one sequence, no special tokens added); a tiktoken
rank file (PATTERN given) through `tiktoken` with that pattern's regex.
--probe exits 0 when the library for PATTERN (or tokenizers) imports.
"""
import base64
import json
import sys
import time

# The split regexes of tiktoken_ext/openai_public.py and Meta's llama3
# tokenizer.py, as runtime/tokenizer/tiktoken.c has them.
PATTERNS = {
    "gpt2": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
    "cl100k": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k": "|".join([
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""", r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""", r"""\s*[\r\n]+""", r"""\s+(?!\S)""", r"""\s+""",
    ]),
    "llama3": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}


def checksum(ids):
    h = 0xCBF29CE484222325
    for i in ids:
        h = ((h ^ (i & 0xFFFFFFFF)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def load(path, pattern):
    if pattern is None:
        import tokenizers
        tok = tokenizers.Tokenizer.from_file(path)
        return f"tokenizers {tokenizers.__version__}", lambda text: tok.encode(text, add_special_tokens=False).ids
    import tiktoken
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    enc = tiktoken.Encoding("bench", pat_str=PATTERNS[pattern], mergeable_ranks=ranks, special_tokens={})
    return f"tiktoken {tiktoken.__version__}", lambda text: enc.encode(text, disallowed_special=())


def main():
    if sys.argv[1] == "--probe":
        __import__("tiktoken" if len(sys.argv) > 2 else "tokenizers")
        return
    path, text_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pattern = sys.argv[4] if len(sys.argv) > 4 else None
    name, encode = load(path, pattern)
    # Bytes that are not UTF-8 cannot be a Python str: the text is UTF-8.
    text = open(text_path, "rb").read().decode("utf-8")
    best, ids = None, None
    for _ in range(repeat):
        t = time.thread_time()
        ids = encode(text)
        t = time.thread_time() - t
        best = t if best is None else min(best, t)
    print(json.dumps({"impl": name, "tokens": len(ids), "checksum": checksum(ids), "seconds": best}))


if __name__ == "__main__":
    main()

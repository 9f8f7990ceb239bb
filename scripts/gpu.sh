#!/usr/bin/env bash
# The GPU checks in one command, on a machine with an NVIDIA GPU (sm_80 or
# newer; written for an H100/H200) and a copy of this repository:
#   scripts/gpu.sh         build with CUDA in build-gpu/ (release, this GPU's
#                          architecture), run the meson suite 'gpu' (every
#                          kernel of backend "cuda" against "cpu-ref") and
#                          `shmrt bench kernels --json`; logs and results go
#                          to $OUT (default ./gpu-out). Exit status: 0 when
#                          every GPU test passed.
#   scripts/gpu.sh fetch   on a machine with a network (Debian 12): put into
#                          .gpu-deps/ what a bare GPU machine may lack, to
#                          copy along with the repository: meson and ninja
#                          wheels, pkgconf and the -dev packages of jansson,
#                          PCRE2 and utf8proc (git-ignored: name it when
#                          copying). The GPU run uses them only where the
#                          machine lacks its own.
# The GPU machine itself needs nvcc with cuBLASLt (/usr/local/cuda), gcc,
# g++, python3 with pip (for the wheels) and dpkg (for the packages).
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS=$PWD/.gpu-deps
DEBS=(pkgconf pkgconf-bin libpkgconf3 libjansson-dev libjansson4 libpcre2-dev libpcre2-8-0 libutf8proc-dev
	libutf8proc2)

if [ "${1:-}" = fetch ]; then
	rm -rf "$DEPS"
	mkdir -p "$DEPS/debs" "$DEPS/wheels"
	(cd "$DEPS/debs" && apt-get download "${DEBS[@]}")
	python3 -m pip download -q --only-binary=:all: --dest "$DEPS/wheels" meson ninja
	du -sh "$DEPS"
	exit 0
fi

OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
log() { printf '== %s\n' "$*" | tee -a "$OUT/gpu.log" >&2; }

if ! command -v meson >/dev/null || ! command -v ninja >/dev/null; then
	log "meson/ninja from .gpu-deps/wheels"
	python3 -m pip install -q --no-index --find-links "$DEPS/wheels" --target "$DEPS/py" meson ninja
	export PYTHONPATH=$DEPS/py${PYTHONPATH:+:$PYTHONPATH} PATH=$DEPS/py/bin:$PATH
fi
if ! pkg-config --exists jansson libpcre2-8 libutf8proc 2>/dev/null; then
	log "jansson, PCRE2, utf8proc (and pkgconf) from .gpu-deps/debs"
	lib=$DEPS/root/usr/lib/x86_64-linux-gnu
	for d in "$DEPS"/debs/*.deb; do dpkg -x "$d" "$DEPS/root"; done
	sed -i "s|^prefix=.*|prefix=$DEPS/root/usr|" "$lib"/pkgconfig/*.pc
	export PKG_CONFIG_PATH=$lib/pkgconfig LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	command -v pkg-config >/dev/null || export PATH=$DEPS/root/usr/bin:$PATH
fi

# Only this GPU's architecture: a third of the nvcc time of the default three.
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ' || true)
[ "$arch" = 90 ] && arch=90a
log "build in build-gpu/ for sm_${arch:-80 89 90a}"
{ [ -f build-gpu/build.ninja ] || meson setup build-gpu -Dbuildtype=release -Dcuda=enabled ${arch:+-Dgpu_archs=$arch}
  ninja -C build-gpu; } >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log" >&2; log "build failed"; exit 1; }

log "meson test --suite gpu"
rc=0
meson test -C build-gpu --suite gpu --print-errorlogs --num-processes 8 >"$OUT/test.log" 2>&1 || rc=$?
cp build-gpu/meson-logs/testlog.txt "$OUT/" 2>/dev/null || true
if grep -Eq '^Skipped: +[1-9]' "$OUT/test.log"; then
	log "GPU tests skipped on a GPU machine: backend 'cuda' unusable (see testlog.txt)"
	rc=1
fi
grep -E '^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass):' "$OUT/test.log" | tee -a "$OUT/gpu.log" >&2 || true

log "shmrt bench kernels --json"
build-gpu/tools/shmrt bench kernels --json >"$OUT/bench_kernels.json" 2>"$OUT/bench_kernels.log" ||
	log "bench kernels failed (exit $?, see bench_kernels.log)"
log "done: tests exit $rc; logs in $OUT"
exit $rc

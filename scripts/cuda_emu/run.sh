#!/usr/bin/env bash
# Runs the kernel tests of backend "cuda" against "cpu-ref" on a machine
# without a GPU: kernels/cuda's device code compiled for the CPU through the
# emulator here (emu.h: blocks one at a time, threads as coroutines, WMMA of
# its own layout; the runtime and cuBLASLt of emu_rt.cc). It checks the
# kernels' indexing, masks, reductions and numerics, not their speed, races
# between warps or the hardware's WMMA layout: the GPU tests (scripts/gpu.sh)
# remain the test. Slow: minutes for all.
#   scripts/cuda_emu/run.sh BUILD_DIR [KERNEL...]
# BUILD_DIR: a configured CUDA build (its shmrt_config.h and static
# libraries, built); KERNEL: matmul attention norm rope elementwise embedding
# sample (default all; matmul also runs with each implementation forced).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
B=$(cd "${1:?usage: run.sh CUDA_BUILD_DIR [KERNEL...]}" && pwd)
shift
kernels=("${@:-matmul attention norm rope elementwise embedding sample}")
read -r -a kernels <<<"${kernels[*]}"
W=$B/cuda-emu
rm -rf "$W"
mkdir -p "$W/obj"
python3 "$here/prep.py" "$root/kernels/cuda" "$W/src"
inc=(-I"$here" -I"$W/src" -I"$B" -I"$B/runtime/core" -I"$root" -I"$root/include" -I"$root/runtime" -I"$root/runtime/core" -I"$root/ipc" -I"$root/kernels"
	-I"$root/kernels/cpu" -I"$root/tests" -I/usr/local/cuda/include)
for f in "$W"/src/*.cu; do
	g++ -std=c++17 -O1 -x c++ -include emu.h -D__shared__=static -D_GNU_SOURCE "${inc[@]}" -c "$f" \
		-o "$W/obj/$(basename "$f" .cu).o"
done
for f in "$W"/src/*.c; do
	gcc -std=c17 -O1 -D_GNU_SOURCE "${inc[@]}" -c "$f" -o "$W/obj/$(basename "$f" .c).o"
done
g++ -std=c++17 -O1 "${inc[@]}" -c "$here/emu_rt.cc" -o "$W/obj/emu_rt.o"
mapfile -t libs < <(find "$B" -name '*.a' ! -name 'libshmrt_kernels_cuda.a')
read -r -a ext <<<"$(pkg-config --libs jansson libpcre2-8 libutf8proc liburing hwloc 2>/dev/null ||
	echo -ljansson -lpcre2-8 -lutf8proc)"
rc=0
for k in "${kernels[@]}"; do
	gcc -std=c17 -O1 -D_GNU_SOURCE "${inc[@]}" -c "$root/tests/test_kernels_$k.c" -o "$W/test_$k.o"
	g++ -o "$W/test_$k" "$W/test_$k.o" "$W"/obj/*.o -Wl,--start-group "${libs[@]}" -Wl,--end-group "${ext[@]}" \
		-lpthread -lm
	impls=("")
	[ "$k" = matmul ] && impls=("" gemv tc64 tc128)
	for impl in "${impls[@]}"; do
		printf '== %s %s\n' "$k" "$impl"
		SHMRT_CUDA_MATMUL=$impl "$W/test_$k" cuda cpu-ref || { rc=1; echo "FAILED: $k $impl"; }
	done
done
exit $rc

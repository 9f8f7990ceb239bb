#!/usr/bin/env bash
# Runs every libFuzzer target of a build made with -Dfuzzing=true for a while.
#   scripts/fuzz.sh BUILD_DIR SECONDS
# Target tests/fuzz_NAME_WHAT reads its seeds from tests/corpus/NAME/ (committed;
# NAME may hold underscores: the longest prefix with a corpus directory wins);
# what it discovers goes to a temporary directory, never into the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$1 seconds=$2
status=0 found=0
for target in "$build"/tests/fuzz_*; do
	# Programs only: meson keeps each target's objects in a fuzz_NAME.p/ directory.
	[ -f "$target" ] && [ -x "$target" ] || continue
	found=1
	name=$(basename "$target")
	name=${name#fuzz_}
	seeds=tests/corpus/$name
	while [ ! -d "$seeds" ] && [ "${seeds%_*}" != "$seeds" ]; do seeds=${seeds%_*}; done
	work=$(mktemp -d)
	echo "fuzz: $target for ${seconds}s (seeds: $seeds)"
	if ! "$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/" \
		"$work" "$seeds" >"$work/log" 2>&1; then
		tail -40 "$work/log"
		echo "fuzz: $target FAILED; the crashing input is in $work" >&2
		status=1
		continue
	fi
	grep -E '^Done [0-9]+ runs|stat::number_of_executed_units' "$work/log" || true
	rm -rf "$work"
done
[ $found -eq 1 ] || { echo "fuzz: no targets in $build/tests" >&2; exit 1; }
exit $status

#!/usr/bin/env bash
# The commands the Dockerfile runs, kept in one place so that
# scripts/dev.sh test runs them too (check_container) and the image's
# layout cannot drift from what is tested:
#   scripts/container.sh build PREFIX     build stage: libshmrt and the shmrt
#                                         program, installed under PREFIX
#   scripts/container.sh build-packages   the Debian packages the build
#                                         stage installs, one line
#   scripts/container.sh runtime-packages the same for the runtime stage
set -euo pipefail
cd "$(dirname "$0")/.."

# What the build stage needs: the compiler and meson, and the -dev package
# of each library meson looks up (checked against the build's dependencies
# by scripts/dev.sh test).
BUILD_PACKAGES="gcc g++ meson ninja-build pkg-config liburing-dev libhwloc-dev libjansson-dev libpcre2-dev
	libutf8proc-dev libmicrohttpd-dev libcurl4-openssl-dev"

# What the runtime stage needs: the libraries shmrt links (checked against
# the built program's NEEDED entries by scripts/dev.sh test).
RUNTIME_PACKAGES="liburing2 libhwloc15 libjansson4 libpcre2-8-0 libutf8proc2 libmicrohttpd12 libcurl4"

case "${1:-}" in
build)
	prefix=${2:?usage: scripts/container.sh build PREFIX}
	dir=${SHMRT_CONTAINER_BUILD:-build-container}
	# CPU image: no CUDA toolkit in debian:12 (a GPU image starts from a
	# CUDA base and drops -Dcuda=disabled). ZeroMQ is a benchmark peer only.
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" --prefix="$prefix" >/dev/null
	else
		meson setup "$dir" --prefix="$prefix" -Dbuildtype=release -Dcuda=disabled -Dzmq=disabled \
			-Dliburing=enabled -Dhwloc=enabled >/dev/null
	fi
	meson compile -C "$dir" shmrt:executable shmrt:shared_library >/dev/null
	meson install -C "$dir" --no-rebuild --quiet
	;;
build-packages) echo $BUILD_PACKAGES ;;
runtime-packages) echo "$RUNTIME_PACKAGES" ;;
*)
	echo "usage: scripts/container.sh (build PREFIX | build-packages | runtime-packages)" >&2
	exit 2
	;;
esac

#!/usr/bin/env bash
# Configures (RelWithDebInfo) into build/ and builds everything with two jobs.
# Extra arguments go to `cmake --build` (e.g. `scripts/build.sh --target reelq`).
# BUILD_DIR overrides the directory (default: <repo>/build).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$repo_root/build}"

# ccache is optional: where it is installed, rebuilds of unchanged files (other checkouts, a
# second build directory) come from its cache.
# Paths under the checkout are hashed relative to it, so a fresh clone anywhere (CI's, /tmp)
# hits the cache that another checkout filled.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$repo_root"
  # With -g, ccache also hashes the build's directory unless told not to, and then no other
  # checkout ever hits: the debug info of a hit names the first checkout's directory instead.
  export CCACHE_NOHASHDIR=1
fi
cmake -S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build "$build_dir" -j2 "$@"

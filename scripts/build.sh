#!/usr/bin/env bash
# Configures (RelWithDebInfo) into build/ and builds everything with two jobs.
# Extra arguments go to `cmake --build` (e.g. `scripts/build.sh --target reelq`).
# BUILD_DIR overrides the directory (default: <repo>/build).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$repo_root/build}"

cmake -S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j2 "$@"

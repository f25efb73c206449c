#!/usr/bin/env bash
# The whole check: install missing packages, build, run every CTest test, print a summary.
# Arguments are passed to ctest, so a developer can run one tier:
#   scripts/test.sh -L unit          # only unit tests
#   scripts/test.sh -R cli           # tests whose name matches "cli"
# Exit status: non-zero when the build or any test fails.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

"$repo_root/scripts/install-deps.sh"

# BUILD_DIR: where to build (default build/; scripts/build.sh honours it too).
export BUILD_DIR="${BUILD_DIR:-$repo_root/build}"
echo "== build ($BUILD_DIR)"
"$repo_root/scripts/build.sh"

status=0
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/reelq-test.XXXXXX")"

echo "== ctest $*"
if ! ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 --timeout 600 "$@" | tee "$log_dir/ctest.log"; then
  status=1
fi

# --- fuzz stage --------------------------------------------------------------------------------
# The bounded libFuzzer runs of the provider parsers, with the command tests/fuzz/README.md
# documents: clang, a separate build-fuzz/, REELQ_FUZZ=ON, only the reelq_fuzz_all target (clang
# 14 cannot build the Asio parts of the tree), ctest -L fuzz. Only for a full run (no ctest
# arguments); REELQ_SKIP_FUZZ=1 skips it; FUZZ_BUILD_DIR overrides the directory.
run_fuzz() {
  local fuzz_dir="${FUZZ_BUILD_DIR:-$repo_root/build-fuzz}"
  echo "== fuzz build ($fuzz_dir)"
  # Chained with &&: inside `if run_fuzz`, set -e does not stop at a failing step.
  CC=clang CXX=clang++ cmake -S "$repo_root" -B "$fuzz_dir" -DREELQ_FUZZ=ON >/dev/null &&
    cmake --build "$fuzz_dir" -j2 --target reelq_fuzz_all &&
    echo "== ctest -L fuzz ($fuzz_dir)" &&
    ctest --test-dir "$fuzz_dir" -L fuzz --output-on-failure --timeout 600 |
    tee "$log_dir/fuzz.log"
}
fuzz_result="not run"
if [[ $# -eq 0 && -f tests/fuzz/CMakeLists.txt && "${REELQ_SKIP_FUZZ:-0}" != 1 ]]; then
  if run_fuzz; then fuzz_result="passed"; else fuzz_result="FAILED"; status=1; fi
fi
# -----------------------------------------------------------------------------------------------

echo
echo "== summary"
grep -E "tests passed|tests failed" "$log_dir/ctest.log" || echo "ctest printed no summary"
if grep -q "The following tests FAILED" "$log_dir/ctest.log"; then
  sed -n '/The following tests FAILED/,$p' "$log_dir/ctest.log"
fi
echo "fuzz: $fuzz_result"
if [[ $status -eq 0 ]]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
rm -rf "$log_dir"
exit "$status"

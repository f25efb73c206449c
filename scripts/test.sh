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
# TODO(lead): enable once tests/fuzz/README.md documents the fuzz build. The adapters helper owns
# the exact configuration; what is below is the command from the task brief
# (clang, REELQ_FUZZ=ON, REELQ_SANITIZE=ON, label `fuzz`). Flip ENABLE_FUZZ_STAGE to 1 after
# checking it against tests/fuzz/README.md. It only runs for a full run (no ctest arguments).
ENABLE_FUZZ_STAGE=0
run_fuzz() {
  echo "== fuzz build (build-fuzz/)"
  # Chained with &&: inside `if run_fuzz`, set -e does not stop at a failing step.
  CC=clang CXX=clang++ cmake -S "$repo_root" -B "$repo_root/build-fuzz" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREELQ_FUZZ=ON -DREELQ_SANITIZE=ON >/dev/null &&
    cmake --build "$repo_root/build-fuzz" -j2 &&
    echo "== ctest -L fuzz (build-fuzz/)" &&
    ctest --test-dir "$repo_root/build-fuzz" --output-on-failure -j2 --timeout 600 -L fuzz \
    | tee "$log_dir/fuzz.log"
}
fuzz_result="not run"
if [[ $# -eq 0 && -f tests/fuzz/CMakeLists.txt ]]; then
  if [[ "$ENABLE_FUZZ_STAGE" == 1 ]]; then
    if run_fuzz; then fuzz_result="passed"; else fuzz_result="FAILED"; status=1; fi
  else
    fuzz_result="not run (TODO in scripts/test.sh: enable the fuzz stage)"
  fi
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

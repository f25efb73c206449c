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

# --- leftover processes ------------------------------------------------------------------------
# Every process a test starts must die with it (tests/support/process.h). To check, the test
# stages run in a session of their own (setsid) with REELQ_TEST_RUN_TAG in their environment;
# at the end, any live process still in one of those sessions, or carrying the tag, was left
# behind by the run: it is listed, killed, and the run fails. Both marks are needed: a process
# may start its own session, and redis-server writes its title over its environment.
run_tag="$(basename "$log_dir")-$$"
# run_in_session NAME LOG COMMAND...: runs COMMAND in a new session (its id in NAME.sid), its
# output shown and copied to LOG; returns COMMAND's status.
run_in_session() {
  local name="$1" log="$2"
  shift 2
  REELQ_TEST_RUN_TAG="$run_tag" setsid --wait bash -c \
    'echo $$ >"$0"; log="$1"; shift 2; "$@" 2>&1 | tee "$log"; exit "${PIPESTATUS[0]}"' \
    "$log_dir/$name.sid" "$log" -- "$@" &
  local child=$! rc=0
  # Ctrl-C on the terminal does not reach another session (and a background job ignores SIGINT):
  # stop the session's process group with SIGTERM; the tests' children die with the tests.
  trap 'kill -TERM -- "-$(cat "$log_dir/$name.sid" 2>/dev/null)" 2>/dev/null' INT TERM
  wait "$child" || rc=$?
  while kill -0 "$child" 2>/dev/null; do wait "$child" && rc=0 || rc=$?; done
  trap - INT TERM
  return "$rc"
}
leftover_processes() {
  local file stat rest pid sids
  sids=" $(cat "$log_dir"/*.sid 2>/dev/null | tr '\n' ' ') "
  for file in /proc/[0-9]*/stat; do
    read -r stat 2>/dev/null <"$file" || continue
    pid="${stat%% *}"
    rest="${stat##*) }" # after "pid (comm) ": state ppid pgrp session ...
    read -r -a rest <<<"$rest"
    [[ "${rest[0]}" == Z || "${rest[0]}" == X || "$pid" == "$$" ]] && continue
    [[ "$sids" == *" ${rest[3]} "* ]] && echo "$pid"
  done
  grep -lzx -- "REELQ_TEST_RUN_TAG=$run_tag" /proc/[0-9]*/environ 2>/dev/null |
    cut -d/ -f3 || true
}
# -----------------------------------------------------------------------------------------------

echo "== ctest $*"
if ! run_in_session ctest "$log_dir/ctest.log" \
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 --timeout 600 "$@"; then
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
  local launcher=()
  if command -v ccache >/dev/null 2>&1; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
    export CCACHE_BASEDIR="$repo_root"
  fi
  CC=clang CXX=clang++ cmake -S "$repo_root" -B "$fuzz_dir" -DREELQ_FUZZ=ON "${launcher[@]}" >/dev/null &&
    cmake --build "$fuzz_dir" -j2 --target reelq_fuzz_all &&
    echo "== ctest -L fuzz ($fuzz_dir)" &&
    run_in_session fuzz "$log_dir/fuzz.log" \
      ctest --test-dir "$fuzz_dir" -L fuzz --output-on-failure --timeout 600
}
fuzz_result="not run"
if [[ $# -eq 0 && -f tests/fuzz/CMakeLists.txt && "${REELQ_SKIP_FUZZ:-0}" != 1 ]]; then
  if run_fuzz; then fuzz_result="passed"; else fuzz_result="FAILED"; status=1; fi
fi
# -----------------------------------------------------------------------------------------------

leftovers="$(leftover_processes | sort -un)"
leftover_result="none"
if [[ -n "$leftovers" ]]; then
  leftover_result="FAILED: processes started by the tests outlived them (now killed):"
  for pid in $leftovers; do
    leftover_result+=$'\n'"  pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    kill -KILL "$pid" 2>/dev/null || true
  done
  status=1
fi

echo
echo "== summary"
grep -E "tests passed|tests failed" "$log_dir/ctest.log" || echo "ctest printed no summary"
if grep -q "The following tests FAILED" "$log_dir/ctest.log"; then
  sed -n '/The following tests FAILED/,$p' "$log_dir/ctest.log"
fi
echo "fuzz: $fuzz_result"
echo "leftover processes: $leftover_result"
if [[ $status -eq 0 ]]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
rm -rf "$log_dir"
exit "$status"

#!/usr/bin/env bash
# Installs what reelq needs to build, test and run the demo, from Debian 12 packages only.
# Idempotent and quiet: it checks with dpkg-query first and runs apt-get (update + install) only
# when something is missing. As root it runs apt-get directly, otherwise through sudo.
#
# Other parts of the tree append the packages they need to PACKAGES (one name per word).
set -euo pipefail

PACKAGES="
  build-essential cmake pkg-config
  libboost-dev libboost-system-dev libssl-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libhiredis-dev libspdlog-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libjemalloc-dev
  libgtest-dev libgmock-dev
  redis-server redis-sentinel ffmpeg fonts-dejavu-core
  prometheus python3-grpcio python3-protobuf
  clang libclang-rt-14-dev clang-format lld
  python3 python3-botocore python3-yaml awscli
  nodejs npm
  curl iproute2
  openssl
  fonts-dejavu-core
"

# Wanted but not required: where one cannot be installed the tests that need it skip, saying why
# (chromium: the dashboard's browser test, ctest label `browser`); without ccache every build
# compiles from scratch (scripts/build.sh uses it where it is installed: a second checkout's
# build, a fresh clone's, comes from its cache).
OPTIONAL_PACKAGES="
  chromium
  ccache
"

# Packages that are only wanted for a command: a command already on PATH counts as installed
# (e.g. NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
declare -A COMMAND_OF=(
  [npm]=npm [nodejs]=node [awscli]=aws [cmake]=cmake [curl]=curl [ffmpeg]=ffmpeg
  [clang]=clang [clang-format]=clang-format [python3]=python3 [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel [prometheus]=promtool
  [openssl]=openssl
  [chromium]=chromium [ccache]=ccache
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# One dpkg-query for all of them; "install ok installed" is the only status that means the
# package is really there.
# shellcheck disable=SC2086  # PACKAGES is a word list on purpose
installed="$(dpkg-query -W -f='${Package} ${Status}\n' $PACKAGES 2>/dev/null |
  awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)"
missing=()
for pkg in $PACKAGES; do
  if [[ -n "${COMMAND_OF[$pkg]:-}" ]] && command -v "${COMMAND_OF[$pkg]}" >/dev/null 2>&1; then
    continue
  fi
  grep -qxF "$pkg" <<<"$installed" || missing+=("$pkg")
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -eq 0 ]]; then
    sudo_cmd=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "install-deps: missing packages (${missing[*]}) and not root, no sudo" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# shellcheck disable=SC2086  # a word list on purpose
for pkg in $OPTIONAL_PACKAGES; do
  if command -v "${COMMAND_OF[$pkg]:-$pkg}" >/dev/null 2>&1; then continue; fi
  if [[ $(id -u) -eq 0 ]]; then sudo_cmd=(); elif command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "install-deps: $pkg is not installed and this is not root: tests that need it skip" >&2
    continue
  fi
  echo "install-deps: installing $pkg (optional)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! { "${sudo_cmd[@]}" apt-get update -qq &&
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null; }; then
    echo "install-deps: $pkg could not be installed: tests that need it skip" >&2
  fi
done

# Node tools (tests that use an npm package) live under tools/; install them only when the lock
# file is newer than what is installed.
if [[ -f "$repo_root/tools/package.json" ]]; then
  lock="$repo_root/tools/package-lock.json"
  modules="$repo_root/tools/node_modules"
  if [[ ! -d "$modules" ]] || [[ -f "$lock" && "$lock" -nt "$modules" ]]; then
    echo "install-deps: installing node tools under tools/" >&2
    if [[ -f "$lock" ]]; then
      npm --prefix "$repo_root/tools" ci --no-audit --no-fund --loglevel=error >/dev/null
    else
      npm --prefix "$repo_root/tools" install --no-audit --no-fund --loglevel=error >/dev/null
    fi
    touch "$modules"
  fi
fi

#!/usr/bin/env bash
# The local demo: Redis (with the same persistence as production), the provider simulator, one
# scheduler and two workers, with authentication on: a random admin token, then `reelq admin`
# makes the tenant demo-studio and its API token and tops its wallet up with $500, then `reelq
# batch examples/batch.jsonl` with that token and a progress bar (ending with the batch's cost per
# model) and `reelq wallet`, then a check of every clip under demo-output/ with ffprobe.
# Everything it starts is stopped on exit, failure or Ctrl-C. Logs go to a temp dir (printed at the start and kept).
#
# With real provider keys in the environment (KLING_ACCESS_KEY+KLING_SECRET_KEY, OPENAI_API_KEY,
# GEMINI_API_KEY or ARK_API_KEY) it runs against the real services instead of the simulator,
# with deploy/reelq.yaml and a small batch (see REAL MODE below).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

REDIS_PORT=16379
SIM_PORT=18080
SCHEDULER_PORT=15051
SCHEDULER_METRICS_PORT=19464
BATCH_FILE="${REELQ_DEMO_BATCH:-examples/batch.jsonl}"
OUTPUT_DIR="$repo_root/demo-output"
# BUILD_DIR: where the binaries are built (default build/; scripts/build.sh honours it too).
export BUILD_DIR="${BUILD_DIR:-$repo_root/build}"

# --- what to run against ------------------------------------------------------------------------
real_mode=0
if [[ -n "${KLING_ACCESS_KEY:-}" && -n "${KLING_SECRET_KEY:-}" ]] || [[ -n "${OPENAI_API_KEY:-}" ]] ||
  [[ -n "${GEMINI_API_KEY:-}" ]] || [[ -n "${ARK_API_KEY:-}" ]]; then
  real_mode=1
fi

# --- build ----------------------------------------------------------------------------------------
scripts/install-deps.sh
# Only the four programs (not the tests): quicker, and the demo needs nothing else.
# REELQ_DEMO_NO_BUILD=1 uses what is already in $BUILD_DIR.
if [[ "${REELQ_DEMO_NO_BUILD:-0}" != 1 ]]; then
  echo "demo: building ($BUILD_DIR)"
  scripts/build.sh --target reelq-scheduler reelq-worker reelq-provider-sim reelq >/dev/null
fi

SIM_BIN=$BUILD_DIR/providers/sim/reelq-provider-sim
SCHEDULER_BIN=$BUILD_DIR/scheduler/reelq-scheduler
WORKER_BIN=$BUILD_DIR/worker/reelq-worker
CLI_BIN=$BUILD_DIR/cli/reelq
for bin in "$SCHEDULER_BIN" "$WORKER_BIN" "$CLI_BIN"; do
  [[ -x "$bin" ]] || { echo "demo: $bin was not built" >&2; exit 1; }
done
if [[ $real_mode == 0 && ! -x "$SIM_BIN" ]]; then
  echo "demo: $SIM_BIN was not built" >&2
  exit 1
fi

# --- ports ----------------------------------------------------------------------------------------
port_in_use() {
  ss -Htln "sport = :$1" 2>/dev/null | grep -q . && return 0
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  return 1
}
ports=("$REDIS_PORT" "$SCHEDULER_PORT" "$SCHEDULER_METRICS_PORT")
[[ $real_mode == 0 ]] && ports+=("$SIM_PORT")
for port in "${ports[@]}"; do
  if port_in_use "$port"; then
    echo "demo: port $port on 127.0.0.1 is already in use (another demo still running?)." >&2
    echo "      The demo needs ports ${ports[*]}; free them and run again." >&2
    exit 1
  fi
done

# --- processes ------------------------------------------------------------------------------------
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/reelq-demo.XXXXXX")"
echo "demo: logs in $log_dir"
pids=()
names=()

# shellcheck disable=SC2317  # reached through the trap
stop_all() {
  local code=$?
  trap - EXIT INT TERM
  if ((${#pids[@]} > 0)); then
    echo "demo: stopping ${names[*]}"
    # Workers and scheduler first (newest first), Redis last; each runs in its own process group.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      kill -TERM -- "-${pids[i]}" 2>/dev/null || true
    done
    for ((t = 0; t < 100; t++)); do
      local alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      ((alive == 0)) && break
      sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
  fi
  echo "demo: logs kept in $log_dir"
  exit "$code"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD... : runs CMD in its own session (so the trap can kill its whole group).
start() {
  local name=$1
  shift
  setsid "$@" >"$log_dir/$name.log" 2>&1 </dev/null &
  pids+=("$!")
  names+=("$name")
}

wait_port() {
  local name=$1 port=$2 timeout_s=$3 pid=$4
  for ((t = 0; t < timeout_s * 10; t++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: $name exited before it was ready; last lines of $log_dir/$name.log:" >&2
      tail -n 20 "$log_dir/$name.log" >&2 || true
      return 1
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: $name is not listening on port $port after ${timeout_s}s; see $log_dir/$name.log" >&2
  return 1
}

rm -rf "$OUTPUT_DIR"
mkdir -p "$OUTPUT_DIR" "$log_dir/redis"

# The scheduler's admin token (auth.admin_tokens in the config reads it from here): random for
# each run, never written to a file or a log.
REELQ_ADMIN_TOKEN="$(openssl rand -hex 32)"
export REELQ_ADMIN_TOKEN

start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$log_dir/redis" \
  --appendonly yes --appendfsync always --save "" --hash-max-listpack-value 1024
wait_port redis "$REDIS_PORT" 10 "${pids[-1]}"

if [[ $real_mode == 0 ]]; then
  # The fake keys deploy/demo.yaml reads; the simulator accepts exactly these.
  export SIM_KLING_ACCESS_KEY_A=sim-kling-ak-a SIM_KLING_SECRET_KEY_A=sim-kling-sk-a
  export SIM_KLING_ACCESS_KEY_B=sim-kling-ak-b SIM_KLING_SECRET_KEY_B=sim-kling-sk-b
  export SIM_SORA_KEY_A=sim-sora-key-a SIM_SORA_KEY_B=sim-sora-key-b
  export SIM_VEO_KEY_A=sim-veo-key-a SIM_VEO_KEY_B=sim-veo-key-b
  export SIM_SEEDANCE_KEY_A=sim-seedance-key-a SIM_SEEDANCE_KEY_B=sim-seedance-key-b
  config=deploy/demo.yaml
  max_wait=150s
  start sim "$SIM_BIN" --listen "127.0.0.1:$SIM_PORT" --latency-scale 0.002
  wait_port sim "$SIM_PORT" 10 "${pids[-1]}"
else
  # REAL MODE (written to the documented flags and config keys, NOT run in the environment
  # where this script was written: no provider keys were available there).
  # The production sample config with local ports, Redis and output directory overridden through
  # REELQ__SECTION__KEY variables. Accounts whose key variable is unset fail with an auth error;
  # routing sends `auto` jobs to the models whose accounts work. It costs real money, so the
  # batch is small: REELQ_DEMO_REAL_JOBS (default 4) short `auto` jobs.
  echo "demo: provider keys found in the environment: running against the REAL services"
  config=deploy/reelq.yaml
  max_wait=30m
  export REELQ__REDIS__PORT=$REDIS_PORT REELQ__REDIS__PREFIX=reelq-demo
  export REELQ__SCHEDULER__LISTEN=127.0.0.1:$SCHEDULER_PORT
  export REELQ__SCHEDULER__METRICS_LISTEN=127.0.0.1:$SCHEDULER_METRICS_PORT
  export REELQ__WORKER__METRICS_LISTEN=127.0.0.1:0
  export REELQ__STORAGE__BACKEND=fs REELQ__STORAGE__FS__ROOT=$OUTPUT_DIR
  BATCH_FILE="$log_dir/real-batch.jsonl"
  prompts=("A paper boat drifting down a rain gutter, macro lens, soft morning light"
    "A barista pouring latte art in slow motion, warm cafe ambience"
    "Drone shot over a misty pine forest at sunrise, birdsong"
    "A red kite dancing above a windy beach, waves crashing")
  for ((i = 0; i < ${REELQ_DEMO_REAL_JOBS:-4}; i++)); do
    printf '{"tenant":"demo-studio","prompt":"%s","models":["auto"],"useCase":"USE_CASE_FAST_SOCIAL","durationSeconds":4}\n' \
      "${prompts[i % ${#prompts[@]}]}" >>"$BATCH_FILE"
  done
fi

start scheduler "$SCHEDULER_BIN" --config "$config"
wait_port scheduler "$SCHEDULER_PORT" 20 "${pids[-1]}"
start worker-1 "$WORKER_BIN" --config "$config" --id demo-worker-1
start worker-2 "$WORKER_BIN" --config "$config" --id demo-worker-2
sleep 1
for i in 1 2; do
  pid="${pids[-$((3 - i))]}"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "demo: worker-$i exited at start; last lines of $log_dir/worker-$i.log:" >&2
    tail -n 20 "$log_dir/worker-$i.log" >&2 || true
    exit 1
  fi
done
echo "demo: redis :$REDIS_PORT, scheduler :$SCHEDULER_PORT, 2 workers$([[ $real_mode == 0 ]] && echo ", simulator :$SIM_PORT") are up"

# --- a studio's first day: a tenant and its token ------------------------------------------------
server="127.0.0.1:$SCHEDULER_PORT"
echo "demo: reelq admin create-tenant demo-studio; reelq admin create-token demo-studio"
REELQ_TOKEN="$REELQ_ADMIN_TOKEN" "$CLI_BIN" --server "$server" admin create-tenant demo-studio
# The token is printed once, on stdout; keep it in the environment, never on a command line.
REELQ_TOKEN="$(REELQ_TOKEN="$REELQ_ADMIN_TOKEN" "$CLI_BIN" --server "$server" admin create-token demo-studio)"
export REELQ_TOKEN
# The wallet: its first top-up turns billing on; every job reserves its most possible cost.
echo "demo: reelq admin top-up demo-studio 500"
REELQ_TOKEN="$REELQ_ADMIN_TOKEN" "$CLI_BIN" --server "$server" admin top-up demo-studio 500
admin_token="$REELQ_ADMIN_TOKEN"
unset REELQ_ADMIN_TOKEN

# --- the batch --------------------------------------------------------------------------------------
jobs_expected=$(grep -cv '^[[:space:]]*$' "$BATCH_FILE")
echo "demo: reelq batch $BATCH_FILE ($jobs_expected jobs) as tenant demo-studio"
batch_status=0
"$CLI_BIN" --server "$server" batch "$BATCH_FILE" --max-wait "$max_wait" \
  --output-json "$log_dir/batch-result.json" || batch_status=$?
echo "demo: reelq batch exited with $batch_status (final statuses: $log_dir/batch-result.json)"

# --- the bill -----------------------------------------------------------------------------------------
echo "demo: reelq wallet (the batch's cost per model is in the summary above)"
"$CLI_BIN" --server "$server" wallet --ledger 5 || true

# --- the clips ----------------------------------------------------------------------------------------
mp4_count=0
valid=0
invalid=()
while IFS= read -r -d '' clip; do
  mp4_count=$((mp4_count + 1))
  duration="$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$clip" 2>/dev/null || true)"
  streams="$(ffprobe -v error -select_streams v -show_entries stream=codec_type -of csv=p=0 "$clip" 2>/dev/null || true)"
  if [[ -n "$duration" && "$duration" != "N/A" && "$streams" == *video* ]]; then
    valid=$((valid + 1))
  else
    invalid+=("$clip")
  fi
done < <(find "$OUTPUT_DIR" -type f -name '*.mp4' -print0)

echo "demo: $mp4_count MP4 file(s) under demo-output/, $valid valid (ffprobe: a video stream and a duration), ${#invalid[@]} invalid; $jobs_expected jobs submitted"
for clip in "${invalid[@]}"; do echo "  invalid: $clip"; done

# --- a storyboard and a compare (issue 13) --------------------------------------------------------
# Simulator only: against the real services they would pay for eight more generations. Their
# clips land in demo-output/ too (counted apart from the batch's, which were checked above).
group_status=0
if [[ $real_mode == 0 ]]; then
  echo "demo: reelq storyboard examples/storyboard.yaml"
  "$CLI_BIN" --server "$server" storyboard examples/storyboard.yaml --max-wait "$max_wait" \
    || group_status=$?
  echo "demo: reelq compare --prompt ... --model kling-3.0 --model sora-2 --model veo-3.1 --model seedance-2.0"
  "$CLI_BIN" --server "$server" compare --prompt "A red fox trotting through fresh snow, morning light" \
    --model kling-3.0 --model sora-2 --model veo-3.1 --model seedance-2.0 --duration 8 \
    --max-wait "$max_wait" || group_status=$?
  echo "demo: storyboard and compare exited with $group_status"
fi

# Neither token may appear in any log line of the run.
leaked=0
for secret in "$admin_token" "$REELQ_TOKEN"; do
  if grep -rqF -- "$secret" "$log_dir"; then leaked=1; fi
done
if [[ $leaked == 1 ]]; then
  echo "demo: FAILED: a token appears in the logs under $log_dir" >&2
  exit 1
fi
echo "demo: no token in any log line under $log_dir"

if [[ $batch_status -eq 0 && $group_status -eq 0 && $valid -eq $jobs_expected && ${#invalid[@]} -eq 0 ]]; then
  echo "demo: OK: every job succeeded and every clip is a valid MP4"
  exit 0
fi
echo "demo: FAILED (batch exit $batch_status, groups exit $group_status, $valid/$jobs_expected valid clips)" >&2
exit 1

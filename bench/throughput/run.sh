#!/usr/bin/env bash
# bench/throughput: N no-op jobs (default 20000) through reelq (gRPC SubmitBatch via
# `reelq batch`, Redis, ONE worker, provider simulator at zero latency), then the same N no-op
# jobs through a BullMQ worker against the same redis-server. Prints jobs/s end to end and Redis
# commands per job (INFO commandstats, which counts commands run inside Lua scripts) for both,
# the ratios, and as its last line the same figures as key=value pairs.
# Usage: bench/throughput/run.sh [jobs]   (BUILD_DIR defaults to build/)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"
JOBS=${1:-20000}
BUILD_DIR="${BUILD_DIR:-$repo_root/build}"
scripts/install-deps.sh
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/reelq-bench.XXXXXX")"
pids=()
stop_all() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM -- "-${pids[i]}" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  echo "bench: logs in $log_dir" >&2
}
trap stop_all EXIT
start() { local name=$1; shift; setsid "$@" >"$log_dir/$name.log" 2>&1 </dev/null & pids+=("$!"); }
wait_port() {
  for ((t = 0; t < 200; t++)); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "bench: nothing listening on $1" >&2; return 1
}
calls() { redis-cli -p 16379 info commandstats | grep -o 'calls=[0-9]*' | cut -d= -f2 | paste -sd+ | bc; }

# No persistence: both queues measured against the same in-memory redis-server.
start redis redis-server --port 16379 --bind 127.0.0.1 --save "" --appendonly no
wait_port 16379
export SIM_KLING_ACCESS_KEY_A=sim-kling-ak-a SIM_KLING_SECRET_KEY_A=sim-kling-sk-a
export SIM_KLING_ACCESS_KEY_B=sim-kling-ak-b SIM_KLING_SECRET_KEY_B=sim-kling-sk-b
export SIM_SORA_KEY_A=sim-sora-key-a SIM_SORA_KEY_B=sim-sora-key-b
export SIM_VEO_KEY_A=sim-veo-key-a SIM_VEO_KEY_B=sim-veo-key-b
export SIM_SEEDANCE_KEY_A=sim-seedance-key-a SIM_SEEDANCE_KEY_B=sim-seedance-key-b
start sim "$BUILD_DIR/providers/sim/reelq-provider-sim" --listen 127.0.0.1:18080 --latency-scale 0
wait_port 18080
config=bench/throughput/bench.yaml
start scheduler "$BUILD_DIR/scheduler/reelq-scheduler" --config "$config"
wait_port 15051
start worker "$BUILD_DIR/worker/reelq-worker" --config "$config" --id bench-worker-1
sleep 1

batch="$log_dir/batch.jsonl"
for ((i = 0; i < JOBS; i++)); do
  printf '{"tenant":"bench","prompt":"noop %d","models":["kling-3.0"],"durationSeconds":4}\n' "$i"
done >"$batch"
before=$(calls)
t0=$(date +%s.%N)
"$BUILD_DIR/cli/reelq" --server 127.0.0.1:15051 batch "$batch" --max-wait 30m >"$log_dir/batch.out" 2>&1 ||
  { echo "bench: reelq batch failed; see $log_dir/batch.out" >&2; tail -5 "$log_dir/batch.out" >&2; exit 1; }
t1=$(date +%s.%N)
after=$(calls)
redis-cli -p 16379 info commandstats >"$log_dir/reelq-commandstats.txt"
# Includes the scheduler's and worker's own background commands during the run.
reelq_s=$(echo "$t1 - $t0" | bc -l)
reelq_jps=$(echo "$JOBS / $reelq_s" | bc -l)
reelq_cpj=$(echo "($after - $before - 1) / $JOBS" | bc -l)
printf 'reelq:  %d jobs in %.2f s = %.0f jobs/s, %.1f redis commands/job\n' "$JOBS" "$reelq_s" "$reelq_jps" "$reelq_cpj"

out=$(node bench/throughput/bullmq_noop.js 16379 "$JOBS")
bull_jps=$(echo "$out" | sed 's/.*"jobs_per_s":\([0-9.]*\).*/\1/')
bull_cpj=$(echo "$out" | sed 's/.*"cmds_per_job":\([0-9.]*\).*/\1/')
printf 'bullmq: %d jobs = %.0f jobs/s, %.1f redis commands/job\n' "$JOBS" "$bull_jps" "$bull_cpj"
ratio_jps=$(echo "$reelq_jps / $bull_jps" | bc -l)
ratio_cpj=$(echo "$reelq_cpj / $bull_cpj" | bc -l)
printf 'ratios: reelq/bullmq jobs/s %.2f (goal >= 2), commands/job %.2f (goal <= 0.33)\n' "$ratio_jps" "$ratio_cpj"
printf 'jobs=%d reelq_jobs_per_s=%.0f reelq_cmds_per_job=%.2f bullmq_jobs_per_s=%.0f bullmq_cmds_per_job=%.2f jobs_per_s_ratio=%.3f cmds_per_job_ratio=%.3f\n' \
  "$JOBS" "$reelq_jps" "$reelq_cpj" "$bull_jps" "$bull_cpj" "$ratio_jps" "$ratio_cpj"

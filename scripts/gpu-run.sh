#!/usr/bin/env bash
# The GPU run of the inference service (issue 13 §3). Two halves:
#
#   scripts/gpu-run.sh build   # here, no GPU needed: .gpu/inference with --features cuda
#                              # (../shared/gpu/build-cuda.sh; about 6 min cold on 2 cores)
#   scripts/gpu-run.sh run     # on the GPU machine, from the project root, with .gpu carried;
#                              # writes every table under $OUT (default /tmp/gpu-run)
#
# `run` takes about 3 minutes, inside one 15-minute device slot:
#   1. the GPU and its driver (nvidia-smi);
#   2. `inference bench --device cuda`: f32 and bf16 at batch 1, 64, 1024 and 16384, each
#      beside candle's matmul ceiling of the same shape in the same run, and the gRPC
#      single-request latency table; GPU memory sampled every 200 ms meanwhile;
#   3. the same bench on the machine's CPU, for the same-run comparison;
#   4. the service under a small gpu_memory_budget_mb: its /metrics recorded for reading
#      (the budget caps the batcher's batch size; not asserted by this script);
#   5. CUDA initialisation failing (CUDA_VISIBLE_DEVICES pointing at no device) with
#      device=auto: the device line must report the CPU fallback, and the bench must still run.
# Exit status: non-zero when a step fails; each step's output is kept either way.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

case "${1:-}" in
build)
    exec ../shared/gpu/build-cuda.sh --bin inference --package inference --features cuda --out .gpu
    ;;
run) ;;
*)
    echo "usage: scripts/gpu-run.sh build|run" >&2
    exit 64
    ;;
esac

out=${OUT:-/tmp/gpu-run}
mkdir -p "$out"
[ -x .gpu/run.sh ] || { echo "FAIL: .gpu/run.sh missing: run 'scripts/gpu-run.sh build' here and carry .gpu" >&2; exit 69; }
status=0
step() { echo "== $*" | tee -a "$out/steps.log"; }

step "1. GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.csv" || status=1

step "2. bench on CUDA (f32, bf16; batch 1..16384; matmul ceiling; gRPC p99)"
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv -lms 200 > "$out/gpu-memory.csv" &
smi=$!
if ! timeout 240 .gpu/run.sh inference bench --device cuda --seconds 1.0 \
        > "$out/bench-cuda.md" 2> "$out/bench-cuda.err"; then
    echo "FAIL: CUDA bench" | tee -a "$out/steps.log"; status=1
fi
kill "$smi" 2>/dev/null || true
cat "$out/bench-cuda.err" "$out/bench-cuda.md"

step "3. bench on the CPU of the same machine"
if ! timeout 240 .gpu/run.sh inference bench --device cpu --seconds 0.5 \
        > "$out/bench-cpu.md" 2> "$out/bench-cpu.err"; then
    echo "FAIL: CPU bench" | tee -a "$out/steps.log"; status=1
fi
cat "$out/bench-cpu.err" "$out/bench-cpu.md"

step "4. the service under a 64 MB GPU memory budget (recorded for reading: ModelInfo and /metrics)"
RESOURCE_ALLOCATION_SETTINGS="device=cuda,gpu_memory_budget_mb=64" \
MONITORING_CONFIGURATIONS="http_addr=127.0.0.1:19464,grpc_addr=127.0.0.1:15051" \
    timeout 60 .gpu/run.sh inference > "$out/serve-budget.log" 2>&1 &
svc=$!
for _ in $(seq 1 60); do
    curl -fsS -o /dev/null http://127.0.0.1:19464/readyz 2>/dev/null && break
    sleep 0.5
done
curl -fsS http://127.0.0.1:19464/metrics 2>/dev/null | grep -E "^gekko_inference_(fallback|batch|device)" \
    > "$out/serve-budget.metrics" || { echo "FAIL: the service under a budget never served /metrics" | tee -a "$out/steps.log"; status=1; }
kill "$svc" 2>/dev/null || true
wait "$svc" 2>/dev/null || true
cat "$out/serve-budget.metrics"

step "5. CUDA initialisation fails: device=auto falls back to the CPU"
if CUDA_VISIBLE_DEVICES=no-such-device timeout 120 .gpu/run.sh inference bench --device auto \
        --seconds 0.2 > "$out/bench-fallback.md" 2> "$out/bench-fallback.err"; then
    if grep -qi "cpu" "$out/bench-fallback.err"; then
        echo "ok: fallback reported: $(head -1 "$out/bench-fallback.err")" | tee -a "$out/steps.log"
    else
        echo "FAIL: no CPU fallback in the device line" | tee -a "$out/steps.log"; status=1
    fi
else
    echo "FAIL: the bench did not run after CUDA failed to start" | tee -a "$out/steps.log"; status=1
fi
cat "$out/bench-fallback.err"
exit $status

#!/usr/bin/env bash
# On a GPU machine: the throughput benchmark, then a few hundred trainer steps of every workload with throughput
# and model FLOP utilisation (FLOPs from XLA's cost analysis). Run from anywhere:
#   bash scripts/gpu_check.sh            # extra arguments go to `python -m benchmarks.run`
# Needs a CUDA build of jax in the venv (pip install -U "jax[cuda12]"). Without a GPU it runs the CPU
# fallback: tiny shapes (GENJAX_BENCH_SMALL=1) and 20 steps, which checks that the scripts work.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else
            f"jax sees {jax.devices()}, not the GPU: pip install -U \"jax[cuda12]\"")'
  steps=${STEPS:-300}
  # The torch contenders are CPU-only; on a GPU compare genjax with the minimal JAX loop.
  bench_args=(--contenders genjax,genjax_feed,minimal)
else
  echo "no GPU: CPU fallback with tiny shapes (GENJAX_BENCH_SMALL=1)"
  export GENJAX_BENCH_SMALL=1
  steps=${STEPS:-20}
  bench_args=()
fi

"$PY" -m benchmarks.run ${bench_args[@]+"${bench_args[@]}"} "$@"
"$PY" -m benchmarks.mfu --steps "$steps" --workload all

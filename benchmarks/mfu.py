"""A workload's genjax trainer step (default DCGAN-28, batch 64): steps/s, FLOPs per step, model FLOP use.

  python -m benchmarks.mfu [--steps 300] [--workload dcgan|NAME,...|all]   # GENJAX_PEAK_TFLOPS=... sets the peak

FLOPs per step come from XLA's own cost analysis of the compiled step
(`jax.jit(...).lower(...).compile().cost_analysis()`), so they count what actually runs: the critic
and generator passes, backward passes, batch norm and the optimizer. MFU = achieved FLOP/s divided
by the peak of every device in the mesh, at the precision JAX uses for float32 matmuls by default.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import jax

from benchmarks.run import NUM_BATCHES, genjax_contender, machine
from benchmarks.workloads import synthetic_batches, workloads

# device_kind substring -> dense peak TFLOP/s per chip for float32 inputs at JAX's default matmul
# precision (TF32 tensor cores on NVIDIA Ampere and later; bf16 passes on TPU). Vendors' data sheets.
PEAK_TFLOPS = {
    "H200": 494.7, "H100 PCIe": 378.0, "H100": 494.7, "A100": 156.0, "L40S": 183.0, "L4": 60.0,
    "A10": 62.5, "V100": 15.7, "T4": 8.1, "TPU v4": 275.0, "TPU v5 lite": 197.0, "TPU v5e": 197.0,
    "TPU v5p": 459.0, "TPU v6": 918.0,
}


def peak_tflops(device_kind: str) -> float | None:
  if os.environ.get("GENJAX_PEAK_TFLOPS"):
    return float(os.environ["GENJAX_PEAK_TFLOPS"])
  return next((v for k, v in PEAK_TFLOPS.items() if k.lower() in device_kind.lower()), None)


def measure(workload, steps: int) -> dict:
  """steps/s, FLOPs per step and MFU of `workload`'s genjax trainer step (prints a summary line)."""
  batches = synthetic_batches(workload.config, NUM_BATCHES, image=workload.image)
  timed = genjax_contender(workload, batches, feed=False)  # make bench's genjax step, pre-sharded batches
  flops = timed.flops()
  timed(3)  # compile and warm up
  seconds = timed(steps)

  rate = steps / seconds
  kind = jax.devices()[0].device_kind
  peak = peak_tflops(kind)
  achieved = flops * rate / 1e12 if flops else None
  result = {"workload": workload.name, "description": workload.description, "steps": steps,
            "steps_per_s": round(rate, 2),
            "examples_per_s": round(rate * workload.config.batch_size, 1),
            "gflops_per_step": round(flops / 1e9, 3) if flops else None,
            "achieved_tflops": round(achieved, 4) if achieved else None,
            "peak_tflops_per_device": peak, "devices": jax.device_count(),
            "mfu": round(achieved / (peak * jax.device_count()), 4) if achieved and peak else None,
            "machine": machine()}
  print(json.dumps(result))
  mfu = f"{100 * result['mfu']:.1f}%" if result["mfu"] is not None else "n/a (unknown peak: set GENJAX_PEAK_TFLOPS)"
  print(f"{workload.name} on {jax.device_count()} x {kind}: {rate:.1f} steps/s, "
        f"{result['examples_per_s']:.0f} examples/s, {result['gflops_per_step']} GFLOP/step, "
        f"{result['achieved_tflops']} TFLOP/s, MFU {mfu}", flush=True)
  return result


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--workload", default="dcgan", help="a workload name, a comma-separated list, or 'all'")
  args = parser.parse_args(argv)
  rows = {w.name: w for w in workloads()}
  names = list(rows) if args.workload == "all" else args.workload.split(",")
  unknown = [n for n in names if n not in rows]
  if unknown:
    print(f"error: --workload {','.join(unknown)}: not a workload; choose from {', '.join(rows)} or all",
          file=sys.stderr)
    return 2
  for name in names:
    measure(rows[name], args.steps)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())

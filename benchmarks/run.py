"""Training-step throughput: genjax's trainer step vs a minimal JAX loop vs PyTorch (eager, compiled).

  python -m benchmarks.run [--repeats 7] [--seconds 1.0] [--only vae_mlp,dcgan] [--contenders ...]
  GENJAX_BENCH_SMALL=1 python -m benchmarks.run   # tiny shapes: a smoke run of this script

genjax's step is built exactly as the trainer builds it (`Run`, `Run.init_state`, `make_train_step`
on the mesh, donated replicated state, genjax's XLA compiler options) and fed batches already sharded
by `shard_batch`, like the minimal loop is fed device-resident arrays; 'genjax_feed' also pays
`shard_batch` from host numpy every step, as `trainer.train` does; 'genjax_xla' is the same step
compiled with XLA's default options (a plain `jax.jit`, as the minimal loop is). Contenders are
interleaved (a different order each repeat) so load from other processes hits them alike; each
number is the median steps/s over the repeats.
Prints a table, then one JSON line per workload with the ratios.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from typing import Callable

import jax
import numpy as np

from benchmarks.workloads import Workload, synthetic_batches, workloads
from genjax import trainer, xla_options

CONTENDERS = ("genjax", "genjax_feed", "genjax_xla", "minimal", "torch_eager", "torch_compile")
NUM_BATCHES = 4  # distinct batches cycled through, so no step sees a constant input
TORCH_THREADS = os.cpu_count() or 1
TORCH_THREADS_USED: dict[str, int] = {}
# A 1-minute load above this per core means other processes took CPU from the run (issue 23):
# PyTorch's OpenMP threads suffer most, so a ratio measured under load flatters genjax.
IDLE_LOAD_PER_CORE = 0.25


def load_average() -> float | None:
  return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def loaded(*loads: float | None) -> bool:
  """True when any of the load readings exceeds IDLE_LOAD_PER_CORE per core."""
  return any(l is not None and l > IDLE_LOAD_PER_CORE * (os.cpu_count() or 1) for l in loads)


def busy_cpu_seconds() -> float | None:
  """CPU seconds all processes have spent (user, nice, system, irq, softirq of /proc/stat)."""
  try:
    with open("/proc/stat") as f:
      user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
  except (OSError, ValueError):
    return None
  return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
  usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
  return sum(u.ru_utime + u.ru_stime for u in usage)


class ForeignLoad:
  """Cores' worth of CPU that OTHER processes used while the block ran. The load average cannot
  say this: during a run it counts the benchmark's own threads (about one per core)."""

  def __enter__(self):
    self.start = (time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds())
    return self

  def __exit__(self, *exc):
    wall, busy, own = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    if busy is None or self.start[1] is None:
      self.cores = None
    else:
      self.cores = round(max(0.0, (busy - self.start[1]) - (own - self.start[2])) / (wall - self.start[0]), 2)
    return False


def _set_image_shape(objective, image: tuple) -> None:
  """Families that read H, W, C from the dataset get the synthetic shape instead."""
  if isinstance(getattr(type(objective), "data_shape", None), functools.cached_property):
    objective.__dict__["data_shape"] = tuple(image)


def num_params(params) -> int:
  return sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(params))


def genjax_contender(workload: Workload, batches: list[dict], feed: bool,
                     compiler_options: dict | None = None) -> Callable[[int], float]:
  """n -> seconds for n trainer steps; `feed` shards each host batch inside the loop;
  `compiler_options` {} compiles with XLA's defaults instead of genjax's (genjax/xla_options.py)."""
  run = trainer.Run(workload.config, os.path.join(tempfile.gettempdir(), "genjax-bench"))  # writes nothing
  _set_image_shape(run.objective, workload.image)
  sharded = [trainer.shard_batch(b, run.mesh) for b in batches]
  state = run.init_state(sharded[0])
  train_step = trainer.make_train_step(run.objective, run.mesh, trainer.replicated(run.mesh),
                                       compiler_options=compiler_options)
  inputs = batches if feed else sharded
  put = (lambda b: trainer.shard_batch(b, run.mesh)) if feed else (lambda b: b)

  def steps(n: int) -> float:
    nonlocal state
    history = []
    start = time.perf_counter()
    for i in range(n):
      state, metrics = train_step(state, put(inputs[i % len(inputs)]))
      history.append(metrics)
    jax.block_until_ready((state, history))
    return time.perf_counter() - start
  steps.num_params = num_params(state.params)
  # XLA's FLOP count of the compiled step (benchmarks/mfu.py); None where the backend counts none
  steps.flops = lambda: xla_options.program_flops(train_step.lower(state, sharded[0]).compile())
  return steps


def minimal_contender(workload: Workload, batches: list[dict]) -> Callable[[int], float]:
  xs = [jax.device_put(b["x"]) for b in batches]
  step, state = workload.minimal(workload.config, xs[0])

  def steps(n: int) -> float:
    nonlocal state
    losses = []
    start = time.perf_counter()
    for i in range(n):
      state, loss = step(state, xs[i % len(xs)])
      losses.append(loss)
    jax.block_until_ready((state, losses))
    return time.perf_counter() - start
  steps.num_params = num_params(state[0])
  return steps


def fastest_torch_threads(timed: Callable[[int, int], float]) -> int:
  """The faster of 1 and all threads for `timed(steps, threads) -> seconds`, after a warm-up at each."""
  candidates = sorted({1, TORCH_THREADS})
  for threads in candidates:
    timed(2, threads)  # warm up (and compile) at each setting
  return min(candidates, key=lambda t: min(timed(3, t) for _ in range(2)))


def torch_contender(workload: Workload, batches: list[dict], compile_: bool) -> Callable[[int], float]:
  """PyTorch at its faster thread count: OpenMP's spinning barriers collapse when other processes
  load the cores (measured 6x slower at 2 threads than at 1 on a loaded 2-core machine)."""
  import torch
  torch.manual_seed(0)
  xs = [torch.from_numpy(np.ascontiguousarray(np.moveaxis(b["x"], -1, 1))) for b in batches]  # NCHW
  step = workload.torch(workload.config, compile_)

  def timed(n: int, threads: int) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    for i in range(n):
      step(xs[i % len(xs)])
    return time.perf_counter() - start

  best = fastest_torch_threads(timed)
  TORCH_THREADS_USED[workload.name + ("/compile" if compile_ else "")] = best
  steps = lambda n: timed(n, best)
  steps.num_params = getattr(step, "num_params", None)
  return steps


def build(name: str, workload: Workload, batches: list[dict]) -> Callable[[int], float]:
  builders = {
      "genjax": lambda: genjax_contender(workload, batches, feed=False),
      "genjax_feed": lambda: genjax_contender(workload, batches, feed=True),
      "genjax_xla": lambda: genjax_contender(workload, batches, feed=False, compiler_options={}),
      "minimal": lambda: minimal_contender(workload, batches),
      "torch_eager": lambda: torch_contender(workload, batches, compile_=False),
      "torch_compile": lambda: torch_contender(workload, batches, compile_=True),
  }
  return builders[name]()


def written(workload: Workload, contender: str) -> bool:
  """Whether the workload has this contender's implementation (a row may leave out minimal or torch)."""
  if contender == "minimal":
    return workload.minimal is not None
  return workload.torch is not None if contender.startswith("torch") else True


def torch_available() -> bool:
  try:
    import torch  # noqa: F401
    return True
  except ImportError:
    return False


def measure(workload: Workload, contenders: list[str], repeats: int, seconds: float) -> dict:
  """Median steps/s per contender; a contender that fails to build or run is reported, not fatal."""
  batches = synthetic_batches(workload.config, NUM_BATCHES, image=workload.image)
  runners, steps_per_call, errors, params = {}, {}, {}, {}
  for name in (c for c in contenders if written(workload, c)):
    try:
      runner = build(name, workload, batches)
      runner(2)  # compile / trace / warm the caches
      calibration = runner(3) / 3
      steps_per_call[name] = max(3, int(seconds / max(calibration, 1e-6)))
      runners[name] = runner
      params[name] = getattr(runner, "num_params", None)
    except Exception as e:  # torch.compile without a compiler, an op a backend lacks, ...
      errors[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
  rates = interleaved_rates(runners, steps_per_call, repeats)
  return {"steps_per_s": {k: statistics.median(v) for k, v in rates.items()},
          "spread": {k: (min(v), max(v)) for k, v in rates.items()}, "errors": errors, "params": params,
          "not_written": [c for c in contenders if not written(workload, c)]}


def interleaved_rates(runners: dict[str, Callable[[int], float]], steps_per_call: dict[str, int],
                      repeats: int) -> dict[str, list[float]]:
  """steps/s of each timed call, contenders in a rotating order so other processes' load hits them alike."""
  rates = {name: [] for name in runners}
  order = list(runners)
  for r in range(repeats):
    for name in order[r % len(order):] + order[:r % len(order)]:
      n = steps_per_call[name]
      rates[name].append(n / runners[name](n))
  return rates


def machine() -> dict:
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), model)
  except OSError:
    pass
  info = {"cpu": model, "cores": os.cpu_count(), "backend": jax.default_backend(),
          "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}", "jax": jax.__version__,
          "small": os.environ.get("GENJAX_BENCH_SMALL") == "1"}
  info["load_avg_1m_start"] = load_average()
  if torch_available():
    import torch
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
  return info


def ratio(rates: dict, a: str, b: str) -> float | None:
  return round(rates[a] / rates[b], 3) if a in rates and b in rates else None


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  small = os.environ.get("GENJAX_BENCH_SMALL") == "1"  # a smoke run: short, torch.compile left out
  parser.add_argument("--repeats", type=int, default=3 if small else 7, help="timed calls per contender (median)")
  parser.add_argument("--seconds", type=float, default=0.2 if small else 1.0,
                      help="about how long one timed call is")
  parser.add_argument("--only", default="", help="comma-separated workload names")
  parser.add_argument("--contenders", default=",".join(c for c in CONTENDERS if not (small and c == "torch_compile")),
                      help=f"of {','.join(CONTENDERS)}")
  parser.add_argument("--json", default="", help="also append the JSON lines to this file")
  args = parser.parse_args(argv)

  contenders = [c for c in args.contenders.split(",") if c]
  unknown = sorted(set(contenders) - set(CONTENDERS))
  if unknown:
    parser.error(f"unknown contenders {unknown}; known: {', '.join(CONTENDERS)}")
  if not torch_available():
    skipped = [c for c in contenders if c.startswith("torch")]
    contenders = [c for c in contenders if not c.startswith("torch")]
    if skipped:
      print(f"# torch is not installed: skipping {', '.join(skipped)} (pip install -e '.[bench]')")
  chosen = [w for w in workloads() if not args.only or w.name in args.only.split(",")]
  info = machine()
  print("# " + json.dumps(info))
  lines = []
  for workload in chosen:
    load_before = load_average()
    with ForeignLoad() as foreign:
      result = measure(workload, contenders, args.repeats, args.seconds)
    load_after = load_average()
    rates = result["steps_per_s"]
    line = {"workload": workload.name, "description": workload.description,
            "load_avg_1m": [load_before, load_after], "other_processes_cores": foreign.cores,
            # load averages count the benchmark's own threads (and a run just before it), so they
            # are recorded, but only the CPU other processes took during the workload flags a row
            "loaded": loaded(foreign.cores),
            "steps_per_s": {k: round(v, 2) for k, v in rates.items()},
            "genjax/minimal": ratio(rates, "genjax", "minimal"),
            "genjax_feed/minimal": ratio(rates, "genjax_feed", "minimal"),
            "genjax/genjax_xla": ratio(rates, "genjax", "genjax_xla"),
            "genjax/torch_eager": ratio(rates, "genjax", "torch_eager"),
            "genjax/torch_compile": ratio(rates, "genjax", "torch_compile"),
            "torch_threads": {k: v for k, v in TORCH_THREADS_USED.items() if k.split("/")[0] == workload.name},
            "params": result["params"], "not_written": result["not_written"], "errors": result["errors"]}
    lines.append(line)
    print(json.dumps(line), flush=True)
  info["load_avg_1m_end"] = load_average()
  info["loaded"] = any(line["loaded"] for line in lines)
  print()
  print(table(lines, contenders))
  print()
  print("\n".join(parameter_report(line) for line in lines))
  print(f"\n# load average (1 min) at start {info.get('load_avg_1m_start')}, at end {info.get('load_avg_1m_end')} "
        f"(the end counts this benchmark's own threads)")
  if info["loaded"]:
    print(f"# WARNING: other processes used more than {IDLE_LOAD_PER_CORE:.2f} of each core during a "
          f"workload: these ratios are not "
          f"comparable with an idle machine's; rerun when `uptime` shows the machine idle")
  if args.json:
    with open(args.json, "a") as f:
      for line in [{"machine": info}, *lines]:
        f.write(json.dumps(line) + "\n")
  return 0


def parameter_report(line: dict) -> str:
  """'# workload parameters: genjax N, torch_eager N (same)': every contender must train the same model."""
  counts = {k: v for k, v in line.get("params", {}).items() if v is not None}
  verdict = "same" if len(set(counts.values())) <= 1 else "DIFFERENT"
  return f"# {line['workload']} parameters: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" ({verdict})"


def table(lines: list[dict], contenders: list[str]) -> str:
  """Markdown: steps/s per contender ('-': not written for that workload, n/a: failed), then the
  ratios the targets are about."""
  ratios = (["genjax/genjax_xla"] if "genjax_xla" in contenders else []) + [
      "genjax/minimal", "genjax/torch_eager"]
  head = ["workload", *contenders, *ratios, "other processes (cores)"]
  rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for line in lines:
    cells = [line["workload"]]
    for c in contenders:
      cells.append(f"{line['steps_per_s'][c]:.1f}" if c in line["steps_per_s"] else
                   "-" if c in line.get("not_written", ()) else "n/a")
    for key in ratios:
      cells.append(f"{line[key]:.2f}x" if line[key] is not None else "n/a")
    other = line.get("other_processes_cores")
    cells.append(("n/a" if other is None else f"{other:.2f}") + (" LOADED" if line.get("loaded") else ""))
    rows.append("| " + " | ".join(cells) + " |")
  return "\n".join(rows)


if __name__ == "__main__":
  sys.exit(main())

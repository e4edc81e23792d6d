"""Texture synthesis speed: N L-BFGS iterations, genjax's trainer step vs torch.optim.LBFGS (eager).

  python -m benchmarks.texture_bench [--iterations 50] [--repeats 3] [--json FILE]
  GENJAX_BENCH_SMALL=1 python -m benchmarks.texture_bench   # tiny shapes: a smoke run

One 128x128 grey synthesis of experiments/texture.py (brick exemplar at 256 px; the Gram loss of the
random multi-scale net: filter sizes 3..23, 64 filters each, circular padding on the synthesis; plus
the pixel-mean term).
genjax: the trainer's step (`Run`, `init_state`, `make_train_step`), one optax.lbfgs iteration each
(memory 10, zoom line search of at most 20 steps widening by the config's increase_factor: strong
Wolfe conditions). PyTorch: the same net
with genjax's filter weights, the same start pixels and targets computed alike,
torch.optim.LBFGS(history_size=10, line_search_fn='strong_wolfe'), N iterations in one `step` call,
at its faster of 1 and all threads. Each timed call starts afresh from the same pixels; calls are
interleaved, a different order each repeat; numbers are medians. The initial losses must agree
(relative 1e-4: the nets are the same); the losses after N iterations and the number of loss
evaluations are reported for both (the line searches differ in their details, so do the paths).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Callable

import jax
import numpy as np
import optax

from benchmarks.run import ForeignLoad, fastest_torch_threads, interleaved_rates, loaded
from benchmarks.workloads import experiment_config
from genjax import trainer

SMALL = os.environ.get("GENJAX_BENCH_SMALL") == "1"
LOSS_RTOL = 1e-4  # the initial losses of the two implementations must agree this well


def texture_config():
  """experiments/texture.py with one synthesis (tiny net and images under GENJAX_BENCH_SMALL)."""
  config = experiment_config("texture")
  config.model.num_syntheses = 1
  if SMALL:
    config.model.update(output_size=16, filter_sizes=(3, 5), filters_per_size=4)
    config.dataset.image_size = 32
  return config


def description(config) -> str:
  m = config.model
  return (f"texture L-BFGS {m.output_size}x{m.output_size} grey ({config.dataset.exemplar}), random net "
          f"{tuple(m.filter_sizes)} x {m.filters_per_size}, memory {config.optimizer.memory_size}")


class GenjaxSynthesis:
  """The trainer's texture step; `timed(n)` runs n L-BFGS iterations from the start pixels."""

  def __init__(self, config):
    self.run = trainer.Run(config, os.path.join(tempfile.gettempdir(), "genjax-texture-bench"))  # writes nothing
    self.batch = trainer.shard_batch(self.run.train_arrays, self.run.mesh)
    objective = self.run.objective
    self.step = trainer.make_train_step(objective, self.run.mesh, trainer.replicated(self.run.mesh))
    self.loss = jax.jit(lambda state: objective.level_loss(0, state.params["level0"], state.extras["targets"]))
    self.net = objective.net

  def start(self):
    return self.run.init_state(self.batch)

  def timed(self, n: int) -> float:
    state = self.start()
    jax.block_until_ready(state)
    begin = time.perf_counter()
    for _ in range(n):
      state, _ = self.step(state, self.batch)
    jax.block_until_ready(state)
    return time.perf_counter() - begin

  def trajectory(self, n: int) -> dict:
    """Loss at the start and after n iterations, and value-and-grad evaluations (1 + line-search steps)."""
    state = self.start()
    first, evaluations = float(self.loss(state)), 1
    for _ in range(n):
      state, _ = self.step(state, self.batch)
      evaluations += int(optax.tree.get(state.opt_state, "num_linesearch_steps"))
    return {"initial_loss": first, "final_loss": float(self.loss(state)), "iterations": n,
            "evaluations": evaluations}


class TorchSynthesis:
  """The same Gram loss in PyTorch (genjax's filters) minimised by torch.optim.LBFGS."""

  def __init__(self, weights, exemplar, start, periodic: bool, memory: int, learning_rate: float,
               mean_weight: float = 0.0):
    """`weights`: genjax's (kernel HWIO, bias) per layer; exemplar [1, S, S, C]; start logits [N, s, s, C];
    `mean_weight`: genjax's mean term (model.mean_weight)."""
    import torch
    self.torch = torch
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(a), -1, 1)))
    self.layers = [(torch.from_numpy(np.asarray(k).transpose(3, 2, 0, 1).copy()), torch.from_numpy(np.array(b)))
                   for k, b in weights]
    self.periodic, self.memory, self.learning_rate, self.mean_weight = periodic, memory, learning_rate, mean_weight
    exemplar = nchw(exemplar)
    self.targets = [g.detach() for g in self.grams(exemplar, periodic=False)]
    self.exemplar_mean = exemplar.mean((0, 2, 3))
    self.exemplar_var = exemplar.var((0, 2, 3), unbiased=False).clamp_min(1e-6)
    self.u0 = nchw(start)
    self.threads = torch.get_num_threads()

  @classmethod
  def peer_of(cls, genjax: GenjaxSynthesis, config) -> "TorchSynthesis":
    """The same net, exemplar, start pixels and L-BFGS memory as genjax's synthesis."""
    return cls(genjax.net.weights, genjax.run.train_arrays["x"], genjax.start().params["level0"],
               bool(config.model.periodic), int(config.optimizer.memory_size), float(config.optimizer.learning_rate),
               float(config.model.get("mean_weight", 0.0)))

  def grams(self, images, periodic: bool):
    """G = F F^T / N per layer of relu(conv(images - 0.5) + b); circular padding as genjax's `conv`."""
    F = self.torch.nn.functional
    grams = []
    for kernel, bias in self.layers:
      k, x = kernel.shape[-1], images - 0.5
      if periodic:
        x = F.pad(x, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2), mode="circular")
      f = F.relu(F.conv2d(x, kernel, bias)).flatten(2)
      grams.append(f @ f.transpose(1, 2) / f.shape[-1])
    return grams

  def loss(self, u):
    """genjax's texture loss summed over the syntheses: sum_l ||G_l - T_l||^2 / ||T_l||^2 + the mean term."""
    images = self.torch.sigmoid(u)
    grams = self.grams(images, self.periodic)
    loss = sum(((g - t) ** 2).sum((1, 2)) / (t ** 2).sum((1, 2)).clamp_min(1e-12) for g, t in zip(grams, self.targets))
    if self.mean_weight:
      loss = loss + self.mean_weight * ((images.mean((2, 3)) - self.exemplar_mean) ** 2 / self.exemplar_var).sum(1)
    return loss.sum()

  def minimise(self, n: int):
    """n L-BFGS iterations from the start pixels in one `step` call: (u, optimizer state)."""
    torch = self.torch
    u = self.u0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([u], lr=self.learning_rate, max_iter=n, max_eval=25 * n, tolerance_grad=0.0,
                            tolerance_change=0.0, history_size=self.memory, line_search_fn="strong_wolfe")

    def closure():
      opt.zero_grad(set_to_none=True)
      value = self.loss(u)
      value.backward()
      return value
    opt.step(closure)
    return u, opt.state[u]

  def timed(self, n: int, threads: int | None = None) -> float:
    self.torch.set_num_threads(threads or self.threads)
    begin = time.perf_counter()
    self.minimise(n)
    return time.perf_counter() - begin

  def trajectory(self, n: int) -> dict:
    with self.torch.no_grad():
      first = float(self.loss(self.u0))
    u, state = self.minimise(n)
    with self.torch.no_grad():
      last = float(self.loss(u))
    return {"initial_loss": first, "final_loss": last, "iterations": int(state["n_iter"]),
            "evaluations": int(state["func_evals"])}


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--iterations", type=int, default=4 if SMALL else 50, help="L-BFGS iterations per timed call")
  parser.add_argument("--repeats", type=int, default=1 if SMALL else 3, help="timed calls per contender (median)")
  parser.add_argument("--json", default="", help="also append the JSON line to this file")
  args = parser.parse_args(argv)
  config = texture_config()
  genjax = GenjaxSynthesis(config)
  runners: dict[str, Callable[[int], float]] = {"genjax": genjax.timed}
  with ForeignLoad() as foreign:
    paths = {"genjax": genjax.trajectory(args.iterations)}  # also compiles
    try:
      contender = TorchSynthesis.peer_of(genjax, config)
      contender.threads = fastest_torch_threads(contender.timed)
      paths["torch_eager"] = contender.trajectory(args.iterations)
      runners["torch_eager"] = contender.timed
    except ImportError:
      print("# torch is not installed: skipping torch_eager (pip install -e '.[bench]')")
    rates = interleaved_rates(runners, {k: args.iterations for k in runners}, args.repeats)
  line = report(config, args.iterations, paths, {k: statistics.median(v) for k, v in rates.items()}, foreign.cores)
  if "torch_eager" in runners:
    line["torch_threads"] = contender.threads
  print(json.dumps(line))
  print()
  print(table(line))
  if args.json:
    with open(args.json, "a") as f:
      f.write(json.dumps(line) + "\n")
  return 0 if line["initial_losses_match"] in (True, None) else 1


def report(config, iterations: int, paths: dict, rates: dict, other_cores) -> dict:
  """The JSON line: iterations/s, losses and evaluations per contender, the ratio, the loss check."""
  initial = [p["initial_loss"] for p in paths.values()]
  difference = abs(initial[0] - initial[-1]) / max(abs(initial[0]), 1e-30)
  return {"workload": "texture_lbfgs", "description": description(config), "iterations": iterations,
          "iterations_per_s": {k: round(v, 3) for k, v in rates.items()},
          "genjax/torch_eager": round(rates["genjax"] / rates["torch_eager"], 3) if "torch_eager" in rates else None,
          **{key: {k: p[key] for k, p in paths.items()} for key in ("initial_loss", "final_loss", "evaluations")},
          "iterations_done": {k: p["iterations"] for k, p in paths.items()},
          "initial_loss_relative_difference": difference if len(paths) > 1 else None,
          "initial_losses_match": difference <= LOSS_RTOL if len(paths) > 1 else None,
          "other_processes_cores": other_cores, "loaded": loaded(other_cores)}


def table(line: dict) -> str:
  """Markdown in run.py's style: iterations/s per contender, the ratio, the losses reached."""
  contenders = list(line["iterations_per_s"])
  head = ["workload", *(f"{c} (it/s)" for c in contenders), "genjax/torch_eager",
          *(f"{c} loss {line['iterations']} it" for c in contenders), "other processes (cores)"]
  ratio = line["genjax/torch_eager"]
  other = line["other_processes_cores"]
  cells = [line["workload"], *(f"{line['iterations_per_s'][c]:.2f}" for c in contenders),
           "n/a" if ratio is None else f"{ratio:.2f}x", *(f"{line['final_loss'][c]:.4g}" for c in contenders),
           ("n/a" if other is None else f"{other:.2f}") + (" LOADED" if line["loaded"] else "")]
  initial = ", ".join(f"{c} {v:.6g}" for c, v in line["initial_loss"].items())
  check = line["initial_loss_relative_difference"]
  return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(cells) + " |", "",
                    f"# initial loss: {initial}" + ("" if check is None else f" (relative difference {check:.2e})"),
                    "# evaluations: " + ", ".join(f"{c} {v}" for c, v in line["evaluations"].items())])


if __name__ == "__main__":
  raise SystemExit(main())

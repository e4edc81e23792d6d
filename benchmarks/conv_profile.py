"""Per-layer profile of DCGAN-28's (and the flow's) convolutions: genjax (XLA:CPU) vs PyTorch eager, GFLOP/s.

Run: python -m benchmarks.conv_profile [--batch 64] [--repeats 7] [--json FILE]

Each DCGAN-28 layer (benchmarks/workloads.py's `dcgan`: generator upsamplings 128->64 and 64->1,
critic convs 1->64 and 64->128, k4 s2, batch 64) is timed three ways, as each framework computes it
inside a training step: forward, input gradient, kernel (+ bias) gradient. genjax: the modules its
networks build (PhaseConvTranspose; nn.Conv with conv_phase_input_grad), each piece one jit with
genjax's XLA options; PyTorch: nn.ConvTranspose2d / nn.Conv2d forward under no_grad, and
`aten.convolution_backward` with one output mask (what autograd calls), at its faster of 1 and all
threads. GFLOP/s use the layer's nominal multiply-adds (2 B H W Cin Cout k^2 over the
low-resolution side), the same count for both; a dense float32 matmul gives each side's peak. The
Real NVP row's 3x3 conditioner convs (nn.Conv 'SAME' / Conv2d padding 1) are timed the same way.
Pieces alternate between contenders so background load hits both alike; the median is reported.
"""

import argparse
import json
import os
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax import xla_options
from genjax.layers.conv_transpose import PhaseConvTranspose, conv_phase_input_grad

# (name, kind, in_channels, out_channels, low-resolution side): DCGAN-28 as benchmarks/workloads.py.
LAYERS = (("up 128->64", "up", 128, 64, 7),  # generator, 7x7 -> 14x14
          ("up 64->1", "up", 64, 1, 14),  # generator, 14x14 -> 28x28
          ("conv 1->64", "down", 1, 64, 14),  # critic, 28x28 -> 14x14
          ("conv 64->128", "down", 64, 128, 7))  # critic, 14x14 -> 7x7
# The flow row's conditioner convs (experiments/realnvp.py: widths 32 / 48 / 64 at 28 / 14 / 7 px).
FLOW_LAYERS = (("flow 3x3 32->32 at 28", "same", 32, 32, 28),
               ("flow 3x3 48->48 at 14", "same", 48, 48, 14),
               ("flow 3x3 64->64 at 7", "same", 64, 64, 7))
# kind -> (kernel side, stride, input side, output side) of a layer whose low-resolution side is n.
GEOMETRY = {"up": lambda n: (4, 2, n, 2 * n), "down": lambda n: (4, 2, 2 * n, n),
            "same": lambda n: (3, 1, n, n)}
PIECES = ("forward", "input_grad", "kernel_grad")
# How often one DCGAN step (a critic update on real and fake, then a generator update through the
# critic) runs each piece, per layer, in both frameworks: (forward, input_grad, kernel_grad).
STEP_COUNTS = {"up 128->64": (2, 1, 1), "up 64->1": (2, 1, 1), "conv 1->64": (3, 1, 2),
               "conv 64->128": (3, 3, 2)}
MATMUL = 2048


def nominal_flops(batch: int, cin: int, cout: int, low_side: int, k: int = 4) -> float:
  """2 x multiply-adds of a k x k (transposed) conv whose low-resolution side is low_side."""
  return 2.0 * batch * low_side * low_side * cin * cout * k * k


def _time(fn, seconds: float = 0.4) -> float:
  """Seconds per call: enough calls to fill about `seconds`, after a warm-up call."""
  fn()
  t0, n = time.perf_counter(), 0
  while True:
    fn()
    n += 1
    elapsed = time.perf_counter() - t0
    if elapsed >= seconds:
      return elapsed / n


def _arrays(kind, cin, cout, side, batch, channels_last=True):
  """Input x and output cotangent g of the layer, standard normal."""
  rng = np.random.default_rng(0)
  _, _, in_side, out_side = GEOMETRY[kind](side)
  shape = lambda c, n: (batch, n, n, c) if channels_last else (batch, c, n, n)
  return (rng.standard_normal(shape(cin, in_side)).astype(np.float32),
          rng.standard_normal(shape(cout, out_side)).astype(np.float32))


def jax_pieces(kind, cin, cout, side, batch):
  """{piece: zero-argument callable} for genjax's layer."""
  x, g = map(jnp.asarray, _arrays(kind, cin, cout, side, batch))
  module = {"up": lambda: PhaseConvTranspose(cout, (4, 4), (2, 2), padding="SAME"),
            "down": lambda: nn.Conv(cout, (4, 4), (2, 2), padding="SAME",
                                    conv_general_dilated=conv_phase_input_grad),
            "same": lambda: nn.Conv(cout, (3, 3), padding="SAME")}[kind]()
  params = module.init(jax.random.key(0), x)
  apply = module.apply
  fns = {
      "forward": xla_options.jit(lambda p, x, g: apply(p, x)),
      "input_grad": xla_options.jit(lambda p, x, g: jax.vjp(lambda x: apply(p, x), x)[1](g)),
      "kernel_grad": xla_options.jit(lambda p, x, g: jax.vjp(lambda p: apply(p, x), p)[1](g)),
  }
  return {k: (lambda f=f: jax.block_until_ready(f(params, x, g))) for k, f in fns.items()}


def torch_pieces(torch, kind, cin, cout, side, batch):
  """{piece: zero-argument callable} for the PyTorch layer (benchmarks/workloads.py's torch_gan,
  benchmarks/flow_workload.py's conditioners)."""
  x, g = map(torch.from_numpy, _arrays(kind, cin, cout, side, batch, channels_last=False))
  k, stride, _, _ = GEOMETRY[kind](side)
  pad, transposed = (k - stride) // 2 if kind != "same" else k // 2, kind == "up"
  module = (torch.nn.ConvTranspose2d if transposed else torch.nn.Conv2d)(cin, cout, k, stride, pad)
  w = module.weight.detach()

  def backward(mask):
    return torch.ops.aten.convolution_backward(
        g, x, w, [cout], [stride] * 2, [pad] * 2, [1, 1], transposed, [0, 0], 1, mask)

  def forward():
    with torch.no_grad():
      module(x)

  return {"forward": forward, "input_grad": lambda: backward([True, False, False]),
          "kernel_grad": lambda: backward([False, True, True])}


def matmul_pieces(torch):
  a = np.random.default_rng(0).standard_normal((MATMUL, MATMUL)).astype(np.float32)
  ja = jnp.asarray(a)
  dot_genjax = xla_options.jit(lambda a: a @ a)
  dot_default = jax.jit(lambda a: a @ a)
  pieces = {"genjax": lambda: jax.block_until_ready(dot_genjax(ja)),
            "jax_default_options": lambda: jax.block_until_ready(dot_default(ja))}
  if torch is not None:
    ta = torch.from_numpy(a)
    pieces["torch"] = lambda: torch.mm(ta, ta)
  return pieces


def _median_gflops(fns, flops, repeats, torch=None, threads=(None,)):
  """{name: GFLOP/s median over repeats}, contenders interleaved; torch ones at each thread count."""
  runs = {}
  for _ in range(repeats):
    for name, fn in fns.items():
      for t in threads if name.startswith("torch") else (None,):
        if t is not None:
          torch.set_num_threads(t)
        key = name if t is None else f"{name}@{t}"
        runs.setdefault(key, []).append(_time(fn))
  return {k: flops / statistics.median(v) / 1e9 for k, v in runs.items()}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--repeats", type=int, default=7)
  p.add_argument("--json", default=None)
  args = p.parse_args(argv)
  try:
    import torch
  except ImportError:
    torch = None
  threads = (1, os.cpu_count()) if torch is not None else ()
  load_before = os.getloadavg()[0]
  rows = []
  flops = 2.0 * MATMUL ** 3
  peak = _median_gflops(matmul_pieces(torch), flops, args.repeats, torch, threads)
  rows.append({"layer": f"matmul {MATMUL}^3", "piece": "dot", **peak})
  for name, kind, cin, cout, side in LAYERS + FLOW_LAYERS:
    jp = jax_pieces(kind, cin, cout, side, args.batch)
    tp = torch_pieces(torch, kind, cin, cout, side, args.batch) if torch is not None else {}
    flops = nominal_flops(args.batch, cin, cout, side, GEOMETRY[kind](side)[0])
    for piece in PIECES:
      fns = {"genjax": jp[piece], **({"torch": tp[piece]} if tp else {})}
      count = STEP_COUNTS[name][PIECES.index(piece)] if name in STEP_COUNTS else 0
      rows.append({"layer": name, "piece": piece, "gflop": flops / 1e9, "count_per_step": count,
                   **_median_gflops(fns, flops, args.repeats, torch, threads)})
  load_after = os.getloadavg()[0]
  print(f"1-minute load {load_before:.2f} before, {load_after:.2f} after; batch {args.batch}; GFLOP/s")
  print("| layer | piece | genjax | torch (1 thread) | torch (all) | genjax / best torch |")
  print("|---|---|---:|---:|---:|---:|")
  for r in rows:
    t1, ta = r.get("torch@1"), r.get(f"torch@{os.cpu_count()}")
    best = max(t1 or 0, ta or 0)
    ratio = f"{r['genjax'] / best:.2f}x" if best else "-"
    extra = f" (XLA default options {r['jax_default_options']:.1f})" if "jax_default_options" in r else ""
    print(f"| {r['layer']} | {r['piece']} | {r['genjax']:.1f}{extra} | "
          f"{t1 or float('nan'):.1f} | {ta or float('nan'):.1f} | {ratio} |")
  step_ms = {}
  for r in rows[1:]:  # DCGAN's layers (flow rows count 0)
    best_torch = max(r.get("torch@1") or 0, r.get(f"torch@{os.cpu_count()}") or 0)
    for who, rate in (("genjax", r["genjax"]), ("torch", best_torch)):
      if rate:
        step_ms[who] = step_ms.get(who, 0.0) + r["count_per_step"] * r["gflop"] / rate * 1e3
  print("convolution time of one DCGAN step (pieces x their counts): "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in step_ms.items()))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"load_before": load_before, "load_after": load_after, "batch": args.batch,
                 "rows": rows, "step_convolution_ms": step_ms}, f, indent=1)


if __name__ == "__main__":
  main()

"""Per-jit XLA compiler options genjax compiles its steps with, by platform.

XLA:CPU in jax 0.10 hands dots, convolutions and reductions to YNNPACK. Measured on a 2-core
AVX-512 machine (docs/benchmarks.md, every option set timed in one process), YNNPACK's convolution
weight gradients run at 20-40 GFLOP/s where XLA's Eigen convolutions run at 75-100, and its
reductions make the contractive penalty's Jacobian 2.8x slower; with YNNPACK off, DCGAN steps are
1.4x, contractive AE steps 1.4-2.8x faster and the MLP VAE / WGAN steps unchanged (+-8%, the noise).
So on CPU genjax compiles its steps with YNNPACK off. The options go to `jax.jit(...,
compiler_options=...)` of genjax's own functions only: nothing process-wide, no XLA_FLAGS.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from absl import logging

CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}  # the empty list: no YNNPACK
PLATFORM_OPTIONS = {"cpu": CPU_COMPILER_OPTIONS}
# Programs that run once per run (parameter init, pictures): LLVM's optimisations cost more than
# they save there. A tiny pix2pix's init compiled in 27 s at the default level, 1.6 s with these.
RUN_ONCE_OPTIONS = {"cpu": {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}}
# A run this short compiles its train step with RUN_ONCE_OPTIONS too (config.fast_compile='auto'):
# tiny runs are compile-bound (a tiny style GAN's step: 35 s to compile at the default level).
FAST_COMPILE_MAX_STEPS = 200
# ... unless its steps add up to more FLOPs than this: then it is run-bound, and level-0 code runs
# 8-12x slower (30 steps of 128x128 texture synthesis, 2e10 FLOPs each: 0.4 vs 4.8 steps/s).
FAST_COMPILE_MAX_FLOPS = 1e11
FAST_COMPILE_CHOICES = ("auto", "yes", "no")


@functools.lru_cache(maxsize=None)
def _supported(platform: str, run_once: bool = False) -> bool:
  """Whether this jaxlib accepts the options (names of experimental flags change between releases)."""
  options = (RUN_ONCE_OPTIONS if run_once else PLATFORM_OPTIONS).get(platform)
  if not options:
    return False
  try:
    jax.jit(lambda x: x + 1, compiler_options=options).lower(jnp.zeros(2)).compile()
    return True
  except Exception as e:  # an unknown flag or enum value
    logging.info("XLA compiler options %s not accepted by this jaxlib (%s); using XLA's defaults.",
                 options, str(e).splitlines()[0][:120] if str(e) else type(e).__name__)
    return False


def compiler_options(platform: str | None = None) -> dict[str, str]:
  """The options genjax compiles with on `platform` (default: jax's default backend); {} if none."""
  platform = platform or jax.default_backend()
  return dict(PLATFORM_OPTIONS[platform]) if _supported(platform) else {}


def run_once_options(platform: str | None = None) -> dict:
  """Extra options for programs run once (init, pictures) on `platform`; {} if none apply."""
  platform = platform or jax.default_backend()
  return dict(RUN_ONCE_OPTIONS[platform]) if _supported(platform, True) else {}


def needs_step_flops(config) -> bool:
  """Whether `fast_compile(config, step_flops)` depends on the step's FLOP count."""
  return config.get("fast_compile", "auto") == "auto" and config.num_steps <= FAST_COMPILE_MAX_STEPS


def fast_compile(config, step_flops: float | None = None) -> bool:
  """Whether the run's train step is compiled for compile time (config.fast_compile: auto|yes|no;
  auto: num_steps <= FAST_COMPILE_MAX_STEPS and, where XLA counted them, the steps' FLOPs in all
  <= FAST_COMPILE_MAX_FLOPS). A function of the config and the shapes, so a resume compiles alike."""
  choice = config.get("fast_compile", "auto")
  if choice != "auto":
    return choice == "yes"
  return needs_step_flops(config) and (step_flops is None
                                       or config.num_steps * step_flops <= FAST_COMPILE_MAX_FLOPS)


def program_flops(stage) -> float | None:
  """XLA's FLOP count of a lowered or compiled program (`jax.jit(f).lower(...)[.compile()]`); None
  where the backend counts none."""
  cost = stage.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost  # older jax: one per program
  value = cost.get("flops") if isinstance(cost, dict) else None
  return float(value) if value and value > 0 else None


def jit(fun, run_once: bool = False, **kwargs):
  """`jax.jit` with genjax's compiler options for the default backend (call it inside functions:
  it asks for the backend, which must not happen at import time); `run_once` for a program that
  runs once per run, where compile time is all that counts."""
  options = {**compiler_options(), **(run_once_options() if run_once else {})}
  return jax.jit(fun, compiler_options=options or None, **kwargs)

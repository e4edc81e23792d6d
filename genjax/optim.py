"""Optimizers named in configs (`optimizer.name`), built from data, not from if/else chains."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax
from ml_collections import ConfigDict

from genjax.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULES: Registry = Registry("learning-rate schedule")


@SCHEDULES.register("constant")
def _constant(cfg: ConfigDict):
  return cfg.learning_rate


@SCHEDULES.register("cosine")
def _cosine(cfg: ConfigDict):
  """Cosine decay from learning_rate to 0 over `optimizer.decay_steps`."""
  return optax.cosine_decay_schedule(cfg.learning_rate, int(cfg.decay_steps))


@SCHEDULES.register("iwae_stages")
def _iwae_stages(cfg: ConfigDict):
  """Burda et al. (2016) sec. 5: stage i (i = 0..7) lasts 3^i epochs at learning_rate * 10^(-i/7)."""
  epochs = [3 ** i for i in range(8)]
  boundaries = [int(cfg.steps_per_epoch) * sum(epochs[:i + 1]) for i in range(7)]
  scales = {b: 10 ** (-1 / 7) for b in boundaries}
  return optax.piecewise_constant_schedule(cfg.learning_rate, scales)


def learning_rate(cfg: ConfigDict):
  """A number or an optax schedule, from `optimizer.schedule` (default 'constant')."""
  return SCHEDULES.lookup(cfg.get("schedule", "constant") or "constant")(cfg)


@OPTIMIZERS.register("adam")
def _adam(cfg: ConfigDict) -> optax.GradientTransformation:
  return optax.adam(learning_rate(cfg), b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                    eps=cfg.get("eps", 1e-8))


@OPTIMIZERS.register("adamw")
def _adamw(cfg: ConfigDict) -> optax.GradientTransformation:
  return optax.adamw(learning_rate(cfg), b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                     weight_decay=cfg.get("weight_decay", 1e-4))


@OPTIMIZERS.register("rmsprop")
def _rmsprop(cfg: ConfigDict) -> optax.GradientTransformation:
  # WGAN's RMSProp: PyTorch's defaults (decay 0.99, eps 1e-8) are what the paper's code used.
  return optax.rmsprop(learning_rate(cfg), decay=cfg.get("decay", 0.99), eps=cfg.get("eps", 1e-8))


@OPTIMIZERS.register("sgd")
def _sgd(cfg: ConfigDict) -> optax.GradientTransformation:
  return optax.sgd(learning_rate(cfg), momentum=cfg.get("momentum", None) or None)


def make_optimizer(cfg: ConfigDict) -> optax.GradientTransformation:
  """An optax transformation from an `optimizer` ConfigDict (`name`, `learning_rate`, ...)."""
  tx = OPTIMIZERS.lookup(cfg.name)(cfg)
  if cfg.get("grad_clip_norm", 0.0):
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), tx)
  return tx


def ema_decay_at(step: jax.Array, decay: float, rampup: float) -> jax.Array:
  """The EMA's decay at `step`: `decay`, or with `rampup` > 0 StyleGAN2's warm-up (Karras et al. 2020,
  training_loop.py: half-life = min(decay's, rampup x images seen so far), here in steps): so the average
  never weighs the random init for long (0.999 from step 0 still puts 37% on it at step 1000)."""
  if not rampup:
    return jnp.asarray(decay, jnp.float32)
  half_life_cap = math.log(0.5) / math.log(decay)
  half_life = jnp.minimum(half_life_cap, rampup * step.astype(jnp.float32))
  return jnp.where(half_life > 0, 0.5 ** (1.0 / jnp.maximum(half_life, 1e-8)), 0.0)


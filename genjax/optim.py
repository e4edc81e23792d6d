"""Optimizers named in configs (`optimizer.name`), built from data, not from if/else chains."""
from __future__ import annotations

import optax
from ml_collections import ConfigDict

from genjax.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")


@OPTIMIZERS.register("adam")
def _adam(cfg: ConfigDict) -> optax.GradientTransformation:
  return optax.adam(cfg.learning_rate, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                    eps=cfg.get("eps", 1e-8))


@OPTIMIZERS.register("adamw")
def _adamw(cfg: ConfigDict) -> optax.GradientTransformation:
  return optax.adamw(cfg.learning_rate, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                     weight_decay=cfg.get("weight_decay", 1e-4))


@OPTIMIZERS.register("rmsprop")
def _rmsprop(cfg: ConfigDict) -> optax.GradientTransformation:
  # WGAN's RMSProp: PyTorch's defaults (decay 0.99, eps 1e-8) are what the paper's code used.
  return optax.rmsprop(cfg.learning_rate, decay=cfg.get("decay", 0.99), eps=cfg.get("eps", 1e-8))


@OPTIMIZERS.register("sgd")
def _sgd(cfg: ConfigDict) -> optax.GradientTransformation:
  return optax.sgd(cfg.learning_rate, momentum=cfg.get("momentum", None) or None)


def make_optimizer(cfg: ConfigDict) -> optax.GradientTransformation:
  """An optax transformation from an `optimizer` ConfigDict (`name`, `learning_rate`, ...)."""
  tx = OPTIMIZERS.lookup(cfg.name)(cfg)
  if cfg.get("grad_clip_norm", 0.0):
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), tx)
  return tx

"""Progressive growing (Karras et al. 2018, ProGAN sec. 3): the schedule and the resampling it needs.

Phases alternate fade and stable: phase 0 trains the start level; phase 2k-1 fades level k in with
alpha rising linearly 0 -> 1 over `phase_steps`; phase 2k trains it at alpha = 1. The phase is a pure
function of the step, so a resumed run is at the same level and alpha as the uninterrupted one.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax


# 'box': nearest up / 2x2 mean down (exact inverses: what growth needs); 'bilinear': StyleGAN2's
# [1, 3, 3, 1] FIR (Karras et al. 2020 app. B), which is what 2x bilinear resizing computes.
RESAMPLE_FILTERS = ("box", "bilinear")


def upsample2x(x: jax.Array, kind: str = "box") -> jax.Array:
  """2x upsampling of [B, H, W, C]: nearest ('box') or [1, 3, 3, 1] / 4 per axis ('bilinear', edges clamped)."""
  b, h, w, c = x.shape
  if kind == "bilinear":
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear")
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def downsample2x(x: jax.Array, kind: str = "box") -> jax.Array:
  """2x downsampling of [B, H, W, C]: 2x2 mean ('box', the exact inverse of nearest upsampling) or the
  [1, 3, 3, 1] / 8 filter per axis at stride 2 ('bilinear': antialiased resizing, edges renormalised)."""
  b, h, w, c = x.shape
  if kind == "bilinear":
    return jax.image.resize(x, (b, h // 2, w // 2, c), "bilinear", antialias=True)
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def resample(x: jax.Array, size: int) -> jax.Array:
  """[B, h, h, C] -> [B, size, size, C] by integer-factor nearest upsampling or average pooling."""
  while x.shape[1] < size:
    x = upsample2x(x)
  while x.shape[1] > size:
    x = downsample2x(x)
  return x


def fade(old: jax.Array, new: jax.Array, alpha) -> jax.Array:
  """ProGAN Fig. 2: (1 - alpha) old + alpha new; exactly old at alpha 0, exactly new at alpha 1."""
  if alpha is None:
    return new
  return alpha * new + (1.0 - alpha) * old


def num_phases(num_levels: int) -> int:
  """Start level, then a fade and a stable phase for each level grown."""
  return 1 + 2 * (num_levels - 1)


def schedule_length(num_levels: int, phase_steps: int) -> int:
  """Steps until the last level is fully faded in (its stable phase then lasts to the end)."""
  return (num_phases(num_levels) - 1) * phase_steps


def phase_at(step: jax.Array, num_levels: int, phase_steps: int) -> tuple[jax.Array, jax.Array]:
  """(level index from the start level, alpha) at `step`; the last stable phase lasts forever."""
  phase = jnp.minimum(step // phase_steps, num_phases(num_levels) - 1)
  fading = phase % 2 == 1
  alpha = jnp.where(fading, (step % phase_steps).astype(jnp.float32) / phase_steps, 1.0)
  return (phase + 1) // 2, alpha


def level_at(step: int, num_levels: int, phase_steps: int) -> int:
  """phase_at's level for a host-side step (a Python int): which program trains it."""
  return (min(step // phase_steps, num_phases(num_levels) - 1) + 1) // 2


def switch_levels(level: jax.Array, branches: Sequence[Callable], *operands):
  """lax.switch over per-level branches: each level is traced (and compiled) once in one program."""
  if len(branches) == 1:
    return branches[0](*operands)
  return lax.switch(level, list(branches), *operands)


def fade_reals(x: jax.Array, size: int, alpha) -> jax.Array:
  """ProGAN's real images during a fade: lerp(up(pool(x at size)), x at size, alpha), at x's size."""
  at_size = resample(x, size)
  blended = fade(upsample2x(downsample2x(at_size)), at_size, alpha) if size > 4 else at_size
  return resample(blended, x.shape[1])

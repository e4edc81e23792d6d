"""Invertible layers of normalizing flows on NHWC arrays (Dinh, Sohl-Dickstein & Bengio 2016; Glow).

Every layer maps (x, log_det) -> (y, log_det + log|det dy/dx|) and, with reverse=True, inverts
exactly: (y, log_det) -> (x, log_det - log|det dy/dx|). `Flow` chains them from a list of op names
(configs as data): 'checkerboard' / 'channel' affine couplings, 'squeeze' (space to depth) and
'split' (factor out half of the channels into the latent, the multi-scale architecture of sec. 3.6).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Shape = tuple[int, int, int]


# ----------------------------------------------------------------------------- masks

def checkerboard_mask(shape: Shape, parity: int) -> np.ndarray:
  """Dinh et al. fig. 3 (left): b[i, j, :] = 1 where (i + j + parity) is even; [H, W, C]."""
  height, width, channels = shape
  grid = (np.arange(height)[:, None] + np.arange(width)[None, :] + parity) % 2 == 0
  return np.broadcast_to(grid[:, :, None], shape).astype(np.float32)


def channel_mask(shape: Shape, parity: int) -> np.ndarray:
  """Dinh et al. fig. 3 (right): the first half of the channels (the second with parity 1); [H, W, C]."""
  channels = shape[-1]
  first = np.arange(channels) < channels // 2
  return np.broadcast_to((first if parity == 0 else ~first), shape).astype(np.float32)


MASKS: dict[str, Callable[[Shape, int], np.ndarray]] = {
    "checkerboard": checkerboard_mask, "channel": channel_mask}


# ----------------------------------------------------------------------------- conditioner

class ResNetConditioner(nn.Module):
  """s and t of a coupling: conv 3x3 -> `blocks` residual blocks -> zero-initialised conv 3x3.

  The zero-initialised output makes every coupling the identity at initialisation (Glow sec. 3.3).
  """
  width: int
  blocks: int
  out_channels: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    h = nn.Conv(self.width, (3, 3), name="conv_in")(x)
    for i in range(self.blocks):
      r = nn.Conv(self.width, (3, 3), name=f"block{i}_a")(nn.elu(h))
      h = h + nn.Conv(self.width, (1, 1), name=f"block{i}_b")(nn.elu(r))
    return nn.Conv(self.out_channels, (3, 3), kernel_init=nn.initializers.zeros, name="conv_out")(nn.elu(h))


# ----------------------------------------------------------------------------- layers

class AffineCoupling(nn.Module):
  """Dinh et al. eq. 9: y = b*x + (1-b)*(x*exp(s(b*x)) + t(b*x)), log-det = sum (1-b)*s.

  s is bounded per channel as c * tanh(s_raw / c) with a learned c = exp(log_c) (init 1), so one
  layer can never scale by more than exp(c). `context` (e.g. the image, for a dequantizer q(u|x))
  is concatenated to the conditioner's input.
  """
  mask: str
  parity: int
  width: int
  blocks: int

  @nn.compact
  def __call__(self, x: Array, log_det: Array, reverse: bool = False, context: Array | None = None):
    channels = x.shape[-1]
    b = jnp.asarray(MASKS[self.mask](x.shape[1:], self.parity), x.dtype)
    inputs = x * b if context is None else jnp.concatenate([x * b, context], axis=-1)
    s_raw, t = jnp.split(ResNetConditioner(self.width, self.blocks, 2 * channels)(inputs), 2, axis=-1)
    bound = jnp.exp(self.param("log_s_bound", nn.initializers.zeros, (channels,)))
    s = bound * jnp.tanh(s_raw / bound) * (1.0 - b)
    t = t * (1.0 - b)
    total = jnp.sum(s, axis=(1, 2, 3))
    if reverse:
      return (x - t) * jnp.exp(-s), log_det - total
    return x * jnp.exp(s) + t, log_det + total


class ActNorm(nn.Module):
  """Glow sec. 3.1: y = (x + loc) * exp(log_scale) per channel, log-det = H*W*sum log_scale.

  Data-dependent initialisation: the first batch seen by `init` comes out with zero mean and unit
  variance per channel.
  """

  @nn.compact
  def __call__(self, x: Array, log_det: Array, reverse: bool = False, context: Array | None = None):
    axes = tuple(range(x.ndim - 1))
    loc = self.param("loc", lambda _: -jnp.mean(x, axis=axes))
    log_scale = self.param("log_scale", lambda _: -jnp.log(jnp.std(x, axis=axes) + 1e-6))
    total = math.prod(x.shape[1:-1]) * jnp.sum(log_scale)
    if reverse:
      return x * jnp.exp(-log_scale) - loc, log_det - total
    return (x + loc) * jnp.exp(log_scale), log_det + total


def squeeze(x: Array) -> Array:
  """Dinh et al. sec. 3.6 (space to depth): [B, H, W, C] -> [B, H/2, W/2, 4C]; volume-preserving."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x: Array) -> Array:
  """The inverse of `squeeze`: [B, H, W, 4C] -> [B, 2H, 2W, C]."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, 2, 2, c // 4).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, 2 * h, 2 * w, c // 4)


# ----------------------------------------------------------------------------- the plan

COUPLINGS = tuple(MASKS)
OPS = COUPLINGS + ("squeeze", "split")


class FlowPlanError(ValueError):
  """An op list that does not fit the data shape; `.index` is the offending op's position."""

  def __init__(self, index: int, message: str):
    super().__init__(message)
    self.index = index


def plan(ops: Sequence[str], shape: Shape) -> list[Shape]:
  """The shape entering each op, and after the last one ([len(ops) + 1]); FlowPlanError if an op
  does not fit (odd squeeze, a split or channel mask of one channel, an unknown op)."""
  shapes = [tuple(shape)]
  for i, op in enumerate(ops):
    h, w, c = shapes[-1]
    if op not in OPS:
      raise FlowPlanError(i, f"is not an op; expected one of {OPS}")
    if op == "squeeze" and (h % 2 or w % 2):
      raise FlowPlanError(i, f"needs an even height and width, the data is {h}x{w}x{c} here "
                             f"(fewer squeezes, or sizes divisible by 2^squeezes)")
    if op in ("split", "channel") and c < 2:
      raise FlowPlanError(i, f"needs >= 2 channels, the data is {h}x{w}x{c} here (squeeze first)")
    if op == "split" and c % 2:
      raise FlowPlanError(i, f"needs an even channel count, the data is {h}x{w}x{c} here")
    shapes.append({"squeeze": (h // 2, w // 2, 4 * c), "split": (h, w, c // 2)}.get(op, (h, w, c)))
  return shapes


def factored_shapes(ops: Sequence[str], shape: Shape) -> list[Shape]:
  """Shapes of the latent pieces in the order `Flow` concatenates them: each split's half, then the rest."""
  shapes = plan(ops, shape)
  return [shapes[i + 1] for i, op in enumerate(ops) if op == "split"] + [shapes[-1]]


class Flow(nn.Module):
  """An invertible x [B, H, W, C] <-> z [B, H*W*C] built from op names (see `plan`).

  Couplings alternate their mask's parity per mask kind; each coupling's conditioner has
  widths[number of squeezes before it] channels (the last width repeats). With `actnorm`, an
  ActNorm precedes every coupling. Factored-out halves go straight to the latent (Dinh et al. sec 3.6).
  """
  ops: tuple[str, ...]
  shape: Shape
  widths: tuple[int, ...]
  blocks: int
  actnorm: bool = False

  def setup(self):
    layers, parities, level = [], {m: 0 for m in MASKS}, 0
    for op in self.ops:
      if op == "squeeze":
        level += 1
      if op in MASKS:
        if self.actnorm:
          layers.append(ActNorm())
        width = self.widths[min(level, len(self.widths) - 1)]
        layers.append(AffineCoupling(op, parities[op] % 2, width, self.blocks))
        parities[op] += 1
    self.layers = layers

  def _schedule(self) -> list[tuple[str, list[int]]]:
    """(op, indices into self.layers) per op."""
    schedule, index = [], 0
    for op in self.ops:
      count = (1 + int(self.actnorm)) if op in MASKS else 0
      schedule.append((op, list(range(index, index + count))))
      index += count
    return schedule

  def __call__(self, x: Array, context: Array | None = None) -> tuple[Array, Array]:
    """x -> (z flat [B, D], log|det dz/dx| [B])."""
    log_det = jnp.zeros(x.shape[0], x.dtype)
    pieces = []
    for op, indices in self._schedule():
      if op == "squeeze":
        x = squeeze(x)
        context = None if context is None else squeeze(context)
      elif op == "split":
        half, x = jnp.split(x, 2, axis=-1)
        pieces.append(half.reshape(x.shape[0], -1))
      for i in indices:
        x, log_det = self.layers[i](x, log_det, context=context)
    return jnp.concatenate(pieces + [x.reshape(x.shape[0], -1)], axis=-1), log_det

  def inverse(self, z: Array, context: Array | None = None) -> tuple[Array, Array]:
    """z flat [B, D] -> (x [B, H, W, C], log|det dx/dz| [B]), the exact inverse of __call__."""
    shapes = plan(self.ops, self.shape)
    sizes = [math.prod(s) for s in factored_shapes(self.ops, self.shape)]
    pieces = jnp.split(z, np.cumsum(sizes)[:-1], axis=-1)
    contexts = [context]
    for op in self.ops:  # the context as each op sees it
      contexts.append(squeeze(contexts[-1]) if op == "squeeze" and context is not None else contexts[-1])
    x = pieces.pop().reshape((z.shape[0],) + shapes[-1])
    log_det = jnp.zeros(z.shape[0], z.dtype)
    for position in reversed(range(len(self.ops))):
      op, indices = self._schedule()[position]
      for i in reversed(indices):
        x, log_det = self.layers[i](x, log_det, reverse=True, context=contexts[position])
      if op == "squeeze":
        x = unsqueeze(x)
      elif op == "split":
        half = pieces.pop().reshape((z.shape[0],) + shapes[position + 1])
        x = jnp.concatenate([half, x], axis=-1)
    return x, log_det

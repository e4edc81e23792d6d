"""Maxout units (Goodfellow et al. 2013): h_i(x) = max_j (x W_ij + b_ij), the max over `pieces` affine
maps per unit; PacGAN's toy discriminators are 3 maxout layers of 200 units with 5 pieces."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def maxout(pre_activations: jax.Array, pieces: int) -> jax.Array:
  """[..., units * pieces] -> [..., units]: the max over consecutive groups of `pieces`."""
  *batch, width = pre_activations.shape
  if width % pieces:
    raise ValueError(f"maxout: width {width} is not a multiple of pieces={pieces}")
  return jnp.max(pre_activations.reshape(*batch, width // pieces, pieces), axis=-1)


class Maxout(nn.Module):
  """Dense(units * pieces) then the max over each unit's pieces (Goodfellow et al. 2013, eq. 1)."""
  units: int
  pieces: int = 5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return maxout(nn.Dense(self.units * self.pieces)(x), self.pieces)


class MaxoutMLP(nn.Module):
  """Flatten -> [Maxout(units, pieces)] * len(hidden) -> Dense(out_features): the MLP's interface."""
  hidden: Sequence[int]
  out_features: int
  pieces: int = 5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    for units in self.hidden:
      x = Maxout(units, self.pieces)(x)
    return nn.Dense(self.out_features)(x)

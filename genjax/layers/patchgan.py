"""The PatchGAN critic of pix2pix (Isola et al. 2017, sec. 3.2.2): one logit per image patch.

C(base) [no norm] -> C(2 base) -> ... (`downsamplings` 4x4 stride-2 convs, leaky ReLU 0.2) -> one
4x4 stride-1 conv -> a 4x4 stride-1 conv to 1 channel. Each output cell sees a square patch of
`receptive_field(downsamplings)` pixels: 7, 16, 34, 70 for 0..3 (3 is the paper's 70x70 critic,
larger than our 25-32 px images; 1, a 16x16 patch, is our default for 25-28 px).
"""
from __future__ import annotations

import flax.linen as nn
import jax

from genjax.layers.unet import NORM_LAYERS, strided_conv

KERNEL = 4


def receptive_field(downsamplings: int) -> int:
  """Pixels per side seen by one output cell: r <- (r - 1) * stride + kernel, from the last layer back."""
  field = 1
  for stride in [1, 1] + [2] * downsamplings:
    field = (field - 1) * stride + KERNEL
  return field


class PatchGAN(nn.Module):
  """x [B, H, W, C] (input and output channels together) -> patch logits [B, H', W']."""
  downsamplings: int = 1
  base_features: int = 64
  max_features: int = 512
  norm: str = "batch"
  input_grad: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    width = lambda i: min(self.base_features * 2 ** i, self.max_features)
    for i in range(self.downsamplings):
      x = strided_conv(width(i), self.input_grad)(x)
      x = nn.leaky_relu(x if i == 0 else NORM_LAYERS[self.norm](train)(x), 0.2)
    x = nn.Conv(width(self.downsamplings), (KERNEL, KERNEL), padding="SAME")(x)
    x = nn.leaky_relu(NORM_LAYERS[self.norm](train)(x) if self.downsamplings else x, 0.2)
    return nn.Conv(1, (KERNEL, KERNEL), padding="SAME")(x)[..., 0]

"""The pix2pix U-Net generator (Isola et al. 2017, sec. 3.2.1 and appendix 6.1.1), sized for small images.

Encoder: `depth` stride-2 4x4 convolutions (leaky ReLU 0.2; no norm on the first and the innermost
layer), widths base * 2^i capped at `max_features`. Decoder: ReLU -> 4x4 stride-2 upsampling (the
exact fast phase-decomposed transposed convolution on CPU) -> norm -> dropout (the `dropout_levels`
innermost ones, the paper's noise source z), concatenated with the encoder features of the same
resolution (the skip connections). Images whose side is not a multiple of 2^depth are zero-padded
around (28 or 25 px -> 32 for depth 5) and the output is cropped back, so output size = input size.
Returns logits; the family applies the output nonlinearity.
"""
from __future__ import annotations

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.layers.batch_norm import BatchNorm
from genjax.layers.conv_transpose import conv_phase_input_grad, resolve_conv_input_grad, upsample_conv


def instance_norm() -> nn.Module:
  """Instance norm (Ulyanov et al. 2016): per example and channel over space; GroupNorm, one channel a group."""
  return nn.GroupNorm(num_groups=None, group_size=1, epsilon=1e-5)


# norm kind -> (train -> a layer); batch norm keeps running averages for evaluation.
NORM_LAYERS: dict[str, Callable[[bool], Callable]] = {
    "batch": lambda train: BatchNorm(use_running_average=not train, momentum=0.9),
    "instance": lambda train: instance_norm(),
    "none": lambda train: (lambda x: x),
}


def auto_depth(height: int, width: int) -> int:
  """Downsamplings that take the padded image to 1x1: ceil(log2(max side)) (28 px -> 5)."""
  return max(1, math.ceil(math.log2(max(height, width))))


def strided_conv(features: int, input_grad: str) -> nn.Conv:
  """4x4 stride-2 conv whose input gradient uses the phase decomposition on CPU ('auto')."""
  conv_fn = conv_phase_input_grad if resolve_conv_input_grad(input_grad) == "phase" else None
  return nn.Conv(features, (4, 4), strides=(2, 2), padding="SAME", conv_general_dilated=conv_fn)


def centre_pads(size: int, multiple: int) -> tuple[int, int]:
  """Padding (before, after) that makes `size` a multiple of `multiple`, centred."""
  extra = -size % multiple
  return extra // 2, extra - extra // 2


class UNet(nn.Module):
  """x [B, H, W, C_in] -> logits [B, H, W, out_channels]; skips perturbable as 'skip_{level}'."""
  out_channels: int
  depth: int
  base_features: int = 64
  max_features: int = 512
  norm: str = "batch"
  dropout_rate: float = 0.5
  dropout_levels: int = 3
  test_dropout: bool = False  # keep dropout on at test time (the paper's choice)
  upsample: str = "auto"
  input_grad: str = "auto"

  def widths(self) -> list[int]:
    return [min(self.base_features * 2 ** i, self.max_features) for i in range(self.depth)]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    height, width = x.shape[1:3]
    pads = [centre_pads(height, 2 ** self.depth), centre_pads(width, 2 ** self.depth)]
    x = jnp.pad(x, [(0, 0), *pads, (0, 0)])
    widths = self.widths()
    skips = []
    for level, features in enumerate(widths):
      x = strided_conv(features, self.input_grad)(x)
      if 0 < level < self.depth - 1:  # the paper leaves the first and the innermost layer unnormalised
        x = NORM_LAYERS[self.norm](train)(x)
      x = nn.leaky_relu(x, 0.2)
      skips.append(x)
    deterministic = not (train or self.test_dropout)
    for level in reversed(range(self.depth)):
      if level < self.depth - 1:  # every level but the innermost joins its encoder features
        x = jnp.concatenate([x, self.perturb(f"skip_{level}", skips[level])], axis=-1)
      features = widths[level - 1] if level else self.out_channels
      x = upsample_conv(self.upsample, features, (4, 4), (2, 2), padding="SAME", name=f"up_{level}")(nn.relu(x))
      if level:
        x = NORM_LAYERS[self.norm](train)(x)
        if self.depth - 1 - level < self.dropout_levels:
          x = nn.Dropout(self.dropout_rate, deterministic=deterministic)(x)
    return x[:, pads[0][0]:pads[0][0] + height, pads[1][0]:pads[1][0] + width]

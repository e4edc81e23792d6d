"""Style-based generator pieces (Karras et al. 2018 ProGAN, 2019 StyleGAN, 2020 StyleGAN2).

- Equalised learning rate (ProGAN sec. 4.1): weights are stored ~ N(0, 1 / lr_mul^2) and scaled at
  run time by gain / sqrt(fan_in) * lr_mul, so Adam's step is the same size for every layer.
- MappingNetwork: z -> pixel norm -> num_layers x (dense, leaky ReLU) = w (StyleGAN sec. 2, lr_mul 0.01).
- ModulatedConv: StyleGAN2 eq. 1-3: w'_ijk = s_i w_ijk, demodulated by 1 / sqrt(sum_ik w'^2 + eps);
  computed as conv(x * s) * d (StyleGAN2's non-fused form: same result, one shared kernel).
- StyleLayer: upsample?, conv (modulated+demodulated, or AdaIN as StyleGAN1, or ProGAN's pixel norm),
  per-pixel noise with learned per-channel scales, bias, leaky ReLU.
- StyleGenerator: learned constant 4x4 (or ProGAN's dense from the latent), per-resolution layers,
  ToRGB per resolution summed with the upsampled previous one ('skip', StyleGAN2 Fig. 7b) or
  ProGAN's last-ToRGB; `level`/`alpha` grow it (genjax/layers/progressive.py).
- StyleCritic: FromRGB, per-resolution (conv, conv, avg-pool) blocks, minibatch stddev, conv, dense.
- mix_styles / truncate: style mixing (StyleGAN sec. 3.1) and the truncation trick (sec. 3.3 eq. 5).
"""
from __future__ import annotations

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from genjax.layers.progressive import downsample2x, fade, upsample2x

HE_GAIN = math.sqrt(2.0)  # leaky-ReLU layers; affine / ToRGB / output layers use gain 1
LEAKY_SLOPE = 0.2
MODULATIONS = ("demod", "adain", "none")


def leaky_relu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, LEAKY_SLOPE)


def runtime_scale(fan_in: int, gain: float = HE_GAIN, lr_mul: float = 1.0) -> float:
  """ProGAN sec. 4.1: w_hat = w * gain / sqrt(fan_in) (He's constant), times the lr multiplier."""
  return gain / math.sqrt(fan_in) * lr_mul


def pixel_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """ProGAN sec. 4.2: each feature vector divided by its root mean square over channels."""
  return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def minibatch_stddev(x: jax.Array, group_size: int = 4) -> jax.Array:
  """ProGAN sec. 3: appends the mean over features of the per-group stddev as one more channel/feature.

  Groups are gcd(group_size, batch) consecutive rows, so any batch works (gcd 1 gives zeros).
  """
  group = math.gcd(group_size, x.shape[0])
  grouped = x.reshape((group, -1) + x.shape[1:])  # row r is in group position r // (B / group)
  std = jnp.sqrt(jnp.var(grouped, axis=0) + 1e-8)  # [B / group, ...]
  stat = jnp.mean(std, axis=tuple(range(1, std.ndim)), keepdims=True)  # [B / group, 1, ...]
  stat = jnp.tile(stat, (group,) + (1,) * (std.ndim - 1))
  return jnp.concatenate([x, jnp.broadcast_to(stat, x.shape[:-1] + (1,))], axis=-1)


def mix_styles(w1: jax.Array, w2: jax.Array, crossover: jax.Array, num_ws: int) -> jax.Array:
  """[B, num_ws, D]: layers before crossover[b] get w1[b], layers from crossover[b] on get w2[b]."""
  before = jnp.arange(num_ws)[None, :, None] < crossover[:, None, None]
  return jnp.where(before, w1[:, None, :], w2[:, None, :])


def truncate(w: jax.Array, w_avg: jax.Array, psi: float | jax.Array) -> jax.Array:
  """StyleGAN eq. 5: w' = w_avg + psi (w - w_avg), written psi w + (1 - psi) w_avg: exact at psi 0 and 1."""
  return psi * w + (1.0 - psi) * w_avg


class EqualizedDense(nn.Module):
  """Dense with the equalised learning rate: y = x (W * gain/sqrt(fan_in) * lr_mul) + b * lr_mul."""
  features: int
  gain: float = HE_GAIN
  lr_mul: float = 1.0
  bias_init: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.normal(1.0 / self.lr_mul), (fan_in, self.features))
    bias = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_mul), (self.features,))
    return x @ (kernel * runtime_scale(fan_in, self.gain, self.lr_mul)) + bias * self.lr_mul


def conv2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """'SAME' stride-1 NHWC convolution with an HWIO kernel."""
  return lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def equalized_kernel(conv: nn.Module, cin: int) -> jax.Array:
  """A conv module's 'kernel' [k, k, cin, features], stored ~ N(0, 1) and scaled at run time by
  gain / sqrt(k * k * cin) (ProGAN sec. 4.1); `conv` has kernel_size, features and gain fields."""
  k = conv.kernel_size
  kernel = conv.param("kernel", nn.initializers.normal(1.0), (k, k, cin, conv.features))
  return kernel * runtime_scale(k * k * cin, conv.gain)


class EqualizedConv(nn.Module):
  """k x k 'SAME' convolution with the equalised learning rate (fan_in = k * k * C_in)."""
  features: int
  kernel_size: int = 3
  gain: float = HE_GAIN
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = conv2d(x, equalized_kernel(self, x.shape[-1]))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return y


def modulated_conv(x: jax.Array, kernel: jax.Array, style: jax.Array, demodulate: bool = True,
                   eps: float = 1e-8) -> jax.Array:
  """StyleGAN2 eq. 1 and 3: conv with w'_ijk = s_i w_ijk, each output map j scaled by
  1 / sqrt(sum_{i,k} w'_ijk^2 + eps); x [B,H,W,I], kernel [k,k,I,O], style [B,I]."""
  y = conv2d(x * style[:, None, None, :], kernel)
  if demodulate:
    y = y * lax.rsqrt(jnp.einsum("hwio,bi->bo", jnp.square(kernel), jnp.square(style)) + eps)[:, None, None, :]
  return y


class ModulatedConv(nn.Module):
  """Affine style s = A(w) (bias initialised to 1, StyleGAN2 sec. 2.2), then `modulated_conv`."""
  features: int
  kernel_size: int = 3
  demodulate: bool = True
  gain: float = HE_GAIN

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    style = EqualizedDense(x.shape[-1], gain=1.0, bias_init=1.0, name="affine")(w)
    return modulated_conv(x, equalized_kernel(self, x.shape[-1]), style, self.demodulate)


class NoiseInput(nn.Module):
  """StyleGAN sec. 2: x + scale_c * n with one N(0, 1) image per example (broadcast over channels)
  and a learned per-channel scale (initialised to 0); noise from the 'noise' rng stream."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.param("scale", nn.initializers.zeros, (x.shape[-1],))
    noise = jax.random.normal(self.make_rng("noise"), x.shape[:3] + (1,), x.dtype)
    return x + scale * noise


def instance_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  return (x - mean) * lax.rsqrt(jnp.var(x, axis=(1, 2), keepdims=True) + eps)


class StyleLayer(nn.Module):
  """[2x nearest upsample] -> 3x3 conv -> [noise] -> bias -> leaky ReLU, styled by `modulation`:
  'demod' (StyleGAN2 modulated conv), 'adain' (StyleGAN1: instance norm, then y_s x + y_b), 'none'
  (ProGAN: pixel norm, w unused)."""
  features: int
  modulation: str = "demod"
  noise: bool = True
  upsample: bool = False
  resample_filter: str = "box"

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    if self.upsample:
      x = upsample2x(x, self.resample_filter)
    if self.modulation == "demod":
      x = ModulatedConv(self.features, 3, demodulate=True, name="conv")(x, w)
    else:
      x = EqualizedConv(self.features, 3, use_bias=False, name="conv")(x)
    if self.noise:
      x = NoiseInput(name="noise")(x)
    x = leaky_relu(x + self.param("bias", nn.initializers.zeros, (self.features,)))
    if self.modulation == "adain":
      styles = EqualizedDense(2 * self.features, gain=1.0, name="affine")(w)
      scale, shift = jnp.split(styles, 2, axis=-1)  # y_s = 1 + A(w) so that a fresh layer is identity
      return instance_norm(x) * (1.0 + scale[:, None, None, :]) + shift[:, None, None, :]
    if self.modulation == "none":
      return pixel_norm(x)
    return x


class ToRGB(nn.Module):
  """1x1 conv to image channels: modulated without demodulation (StyleGAN2) or plain (ProGAN, StyleGAN1)."""
  channels: int
  modulated: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    if self.modulated:
      y = ModulatedConv(self.channels, 1, demodulate=False, gain=1.0, name="conv")(x, w)
    else:
      y = EqualizedConv(self.channels, 1, gain=1.0, use_bias=False, name="conv")(x)
    return y + self.param("bias", nn.initializers.zeros, (self.channels,))


class MappingNetwork(nn.Module):
  """z (and a one-hot label) -> pixel norm -> num_layers x (equalised dense, leaky ReLU) -> w."""
  num_layers: int
  width: int
  lr_mul: float = 0.01

  @nn.compact
  def __call__(self, z: jax.Array, onehot: jax.Array | None = None) -> jax.Array:
    x = pixel_norm(z)
    if onehot is not None and onehot.shape[-1]:
      x = jnp.concatenate([x, onehot.astype(x.dtype)], axis=-1)
    for i in range(self.num_layers):
      x = leaky_relu(EqualizedDense(self.width, lr_mul=self.lr_mul, name=f"dense_{i}")(x))
    return x


def num_levels(resolution: int) -> int:
  """Resolutions 4, 8, ..., resolution: log2(resolution) - 1 levels."""
  return int(round(math.log2(resolution))) - 1


def reachable(resolution) -> bool:
  """4 * 2^k for some k >= 0: what doubling from the 4x4 input reaches."""
  return isinstance(resolution, int) and resolution >= 4 and 2 ** round(math.log2(resolution)) == resolution


class StyleGenerator(nn.Module):
  """ws [B, num_ws, D] -> image logits at 4 * 2^level; num_ws = 2 * num_levels (StyleGAN2's indexing:
  level 0: conv ws[0], ToRGB ws[1]; level b >= 1: convs ws[2b-1], ws[2b], ToRGB ws[2b+1]).

  `alpha` (None: no fade) blends the top level in: out = alpha * new + (1 - alpha) * up(previous out),
  where new is the summed skip output (skip=True) or the top ToRGB alone (ProGAN).
  """
  resolution: int
  channels: int
  w_dim: int
  out_channels: int = 1
  mapping_layers: int = 8
  mapping_lr_mul: float = 0.01
  modulation: str = "demod"
  const_input: bool = True
  noise: bool = True
  skip: bool = True
  resample_filter: str = "box"  # inside the nets only: growth's level plumbing stays 'box'

  @property
  def num_levels(self) -> int:
    return num_levels(self.resolution)

  @property
  def num_ws(self) -> int:
    return 2 * self.num_levels

  def setup(self):
    self.mapping = MappingNetwork(self.mapping_layers, self.w_dim, self.mapping_lr_mul)
    if self.const_input:
      self.const = self.param("const", nn.initializers.normal(1.0), (4, 4, self.channels))
    else:  # ProGAN: the (pixel-normed) latent through a dense layer to 4x4
      self.input_dense = EqualizedDense(16 * self.channels, gain=HE_GAIN / 4)
    layer = lambda up: StyleLayer(self.channels, self.modulation, self.noise, up, self.resample_filter)
    self.layers = [layer(False)] + [layer(i % 2 == 0) for i in range(2 * (self.num_levels - 1))]
    self.to_rgb = [ToRGB(self.out_channels, self.modulation == "demod") for _ in range(self.num_levels)]

  def map(self, z: jax.Array, onehot: jax.Array | None = None) -> jax.Array:
    return self.mapping(z, onehot)

  def synthesize(self, ws: jax.Array, level: int | None = None, alpha=None) -> jax.Array:
    level = self.num_levels - 1 if level is None else level
    if self.const_input:
      x = jnp.broadcast_to(self.const, (ws.shape[0],) + self.const.shape)
    else:
      x = self.input_dense(ws[:, 0]).reshape(ws.shape[0], 4, 4, self.channels)
      x = pixel_norm(leaky_relu(x)) if self.modulation == "none" else leaky_relu(x)
    x = self.layers[0](x, ws[:, 0])
    rgb = self.to_rgb[0](x, ws[:, 1])
    for b in range(1, level + 1):
      x = self.layers[2 * b - 1](x, ws[:, 2 * b - 1])
      x = self.layers[2 * b](x, ws[:, 2 * b])
      previous = upsample2x(rgb, self.resample_filter)
      new = self.to_rgb[b](x, ws[:, 2 * b + 1]) + (previous if self.skip else 0.0)
      rgb = fade(previous, new, alpha) if b == level else new
    return rgb

  def __call__(self, z: jax.Array, onehot: jax.Array | None = None, level: int | None = None, alpha=None):
    w = self.map(z, onehot)
    return self.synthesize(jnp.repeat(w[:, None], self.num_ws, axis=1), level, alpha)

  def init_levels(self, z: jax.Array, onehot: jax.Array | None = None, start: int | None = None):
    """Touches the layers of every level from `start` (None: the top only), fading ones included."""
    if start is None or start == self.num_levels - 1:
      return self(z, onehot)
    return [self(z, onehot, level, 0.5) for level in range(start, self.num_levels)]


class StyleCritic(nn.Module):
  """Image at `resolution` -> score [B, 1]: average-pooled to 4 * 2^level, FromRGB, blocks of (conv,
  conv, 2x average pool) down to 4x4, minibatch stddev, conv, dense, dense. `alpha` fades the top
  block in: alpha * block(FromRGB(x)) + (1 - alpha) * FromRGB'(pool(x)) (ProGAN Fig. 2)."""
  resolution: int
  channels: int
  minibatch_std: int = 4  # group size, 0: off
  resample_filter: str = "box"  # the blocks' downsampling; the input's pooling to a level stays 'box'

  @property
  def num_levels(self) -> int:
    return num_levels(self.resolution)

  def setup(self):
    conv = lambda: EqualizedConv(self.channels, 3)
    self.from_rgb = [EqualizedConv(self.channels, 1) for _ in range(self.num_levels)]
    self.blocks = [(conv(), conv()) for _ in range(self.num_levels - 1)]
    self.final_conv = conv()
    self.final_dense = EqualizedDense(self.channels)
    self.output = EqualizedDense(1, gain=1.0)

  def __call__(self, x: jax.Array, level: int | None = None, alpha=None, train: bool = True) -> jax.Array:
    level = self.num_levels - 1 if level is None else level
    for _ in range(self.num_levels - 1 - level):
      x = downsample2x(x)
    h = leaky_relu(self.from_rgb[level](x))
    for b in range(level, 0, -1):
      first, second = self.blocks[b - 1]
      h = downsample2x(leaky_relu(second(leaky_relu(first(h)))), self.resample_filter)
      if b == level and alpha is not None:
        h = fade(leaky_relu(self.from_rgb[b - 1](downsample2x(x))), h, alpha)
    if self.minibatch_std:
      h = minibatch_stddev(h, self.minibatch_std)
    h = leaky_relu(self.final_conv(h))
    return self.output(leaky_relu(self.final_dense(h.reshape(h.shape[0], -1))))

  def init_levels(self, x: jax.Array, start: int | None = None):
    if start is None or start == self.num_levels - 1:
      return self(x)
    return [self(x, level, 0.5) for level in range(start, self.num_levels)]

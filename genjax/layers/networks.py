"""Encoders, decoders, generators and critics shared by every family, parameterised, not copied.

An encoder maps x -> R^out (a code, Gaussian parameters, or a critic score); a decoder maps
R^d -> logits shaped like x (a reconstruction, a Bernoulli/Gaussian mean, or a generator output).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from genjax.layers.batch_norm import BatchNorm
from genjax.layers.maxout import MaxoutMLP
from genjax.layers.style import minibatch_stddev
from genjax.layers.conv_transpose import (CONV_INPUT_GRADS, conv_phase_input_grad,
                                          resolve_conv_input_grad, upsample_conv)

ACTIVATIONS: dict[str, Callable] = {
    "relu": nn.relu, "leaky_relu": lambda x: nn.leaky_relu(x, 0.2), "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid, "elu": nn.elu, "softplus": nn.softplus, "gelu": nn.gelu,
}
DOWNSAMPLE = ("stride", "pool")
UPSAMPLE = ("transpose", "phase", "auto", "interpolate")
NORMS = ("none", "batch", "layer")


def _norm(kind: str, train: bool) -> Callable:
  if kind == "batch":
    return BatchNorm(use_running_average=not train, momentum=0.9)
  if kind == "layer":
    return nn.LayerNorm()
  return lambda x: x


class MLP(nn.Module):
  """Flatten -> [Dense -> act] * len(hidden) -> Dense(out_features)."""
  hidden: Sequence[int]
  out_features: int
  activation: str = "relu"
  norm: str = "none"
  minibatch_std: int = 0  # > 0: ProGAN's minibatch stddev feature (this group size) before the output layer

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      x = ACTIVATIONS[self.activation](_norm(self.norm, train)(nn.Dense(width)(x)))
    if self.minibatch_std:
      x = minibatch_stddev(x, self.minibatch_std)
    return nn.Dense(self.out_features)(x)


class MLPDecoder(nn.Module):
  """An MLP whose output is reshaped to `output_shape` (logits of x)."""
  hidden: Sequence[int]
  output_shape: Sequence[int]
  activation: str = "relu"
  norm: str = "none"

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    out = MLP(self.hidden, math.prod(self.output_shape), self.activation, self.norm)(z, train)
    return out.reshape((z.shape[0],) + tuple(self.output_shape))


class ConvEncoder(nn.Module):
  """Halves the resolution len(features) times (stride-2 conv or conv + max-pool), then Dense(out)."""
  features: Sequence[int]
  out_features: int
  downsample: str = "stride"
  activation: str = "relu"
  norm: str = "none"
  input_grad: str = "xla"  # 'phase': strided convs' input gradients by phase decomposition
  minibatch_std: int = 0  # > 0: ProGAN's minibatch stddev channel (this group size) before the dense

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    act = ACTIVATIONS[self.activation]
    conv_fn = conv_phase_input_grad if resolve_conv_input_grad(self.input_grad) == "phase" else None
    for i, width in enumerate(self.features):
      if self.downsample == "stride":
        x = nn.Conv(width, (4, 4), strides=(2, 2), padding="SAME", conv_general_dilated=conv_fn)(x)
      else:
        x = nn.max_pool(nn.Conv(width, (3, 3), padding="SAME")(x), (2, 2), (2, 2), padding="SAME")
      # DCGAN leaves the first critic layer unnormalised.
      x = act(x if i == 0 else _norm(self.norm, train)(x))
    if self.minibatch_std:
      x = minibatch_stddev(x, self.minibatch_std)
    return nn.Dense(self.out_features)(x.reshape(x.shape[0], -1))


class Upsample2x(nn.Module):
  """Doubles the resolution: a transposed convolution (exact fast 'phase' form or flax's), or
  interpolation followed by a 3x3 convolution."""
  features: int
  method: str = "auto"
  interpolation: str = "nearest"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.method == "interpolate":
      b, h, w, c = x.shape
      x = jax.image.resize(x, (b, 2 * h, 2 * w, c), method=self.interpolation)
      return nn.Conv(self.features, (3, 3), padding="SAME", name="conv")(x)
    # A fixed name keeps 'transpose' and 'phase' checkpoints interchangeable (same params, same path).
    return upsample_conv(self.method, self.features, (4, 4), (2, 2), padding="SAME", name="conv")(x)


class ConvDecoder(nn.Module):
  """Dense -> (ceil(H/2^n), ceil(W/2^n), features[0]) -> n x Upsample2x -> crop to output_shape.

  Channels after each upsampling are features[1:] then the output channels, so features=(128, 64)
  on 28x28 is the DCGAN generator: dense 7*7*128, 128->64 at 14x14, 64->1 at 28x28.
  """
  features: Sequence[int]
  output_shape: Sequence[int]
  upsample: str = "auto"
  interpolation: str = "nearest"
  activation: str = "relu"
  norm: str = "none"

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    act = ACTIVATIONS[self.activation]
    height, width, channels = self.output_shape
    n = len(self.features)
    h0, w0 = math.ceil(height / 2 ** n), math.ceil(width / 2 ** n)
    x = nn.Dense(h0 * w0 * self.features[0])(z.reshape(z.shape[0], -1))
    x = act(_norm(self.norm, train)(x)).reshape(z.shape[0], h0, w0, self.features[0])
    widths = list(self.features[1:]) + [channels]
    for i, width_out in enumerate(widths):
      x = Upsample2x(width_out, self.upsample, self.interpolation)(x)
      if i < len(widths) - 1:
        x = act(_norm(self.norm, train)(x))
    return x[:, :height, :width, :]


def join_label(inputs: jax.Array, onehot: jax.Array) -> jax.Array:
  """Concatenates a one-hot label to flat inputs, or as constant channels to images [B, H, W, C].

  An unconditional model passes a zero-width one-hot, which leaves the inputs unchanged.
  """
  if inputs.ndim == 4:
    onehot = jnp.broadcast_to(onehot[:, None, None, :], inputs.shape[:3] + onehot.shape[-1:])
  return jnp.concatenate([inputs, onehot.astype(inputs.dtype)], axis=-1)


def run_net(net, params, stats, inputs: jax.Array, train: bool, rngs: dict | None = None):
  """net(inputs) -> (outputs, batch_stats); batch statistics are updated only in training mode.

  `rngs` (e.g. {'dropout': key}) goes to `net.apply` for stochastic layers.
  """
  if not stats:
    return net.apply({"params": params}, inputs, train=train, rngs=rngs), stats
  variables = {"params": params, "batch_stats": stats}
  if not train:
    return net.apply(variables, inputs, train=False, rngs=rngs), stats
  outputs, mutated = net.apply(variables, inputs, train=True, mutable=["batch_stats"], rngs=rngs)
  return outputs, mutated["batch_stats"]


def make_encoder(model: ConfigDict, out_features: int, **overrides) -> nn.Module:
  """`model.architecture` 'mlp' (model.hidden, or overrides' `hidden`; activation 'maxout': a
  MaxoutMLP of model.maxout_pieces) or 'conv' (model.features, model.downsample)."""
  settings = dict(activation=model.get("activation", "relu"), norm=model.get("norm", "none"))
  settings.update(overrides)
  hidden = tuple(settings.pop("hidden", None) or model.get("hidden", ()))
  if model.get("architecture", "mlp") == "conv":
    settings.setdefault("input_grad", model.get("conv_input_grad", "auto"))
    return ConvEncoder(tuple(model.features), out_features,
                       downsample=model.get("downsample", "stride"), **settings)
  settings.pop("input_grad", None)  # an MLP has no strided convolutions
  if settings["activation"] == "maxout":  # widths change (units * pieces), so not an ACTIVATION
    return MaxoutMLP(hidden, out_features, pieces=int(model.get("maxout_pieces", 5)))
  return MLP(hidden, out_features, **settings)


def make_decoder(model: ConfigDict, output_shape: Sequence[int], **overrides) -> nn.Module:
  """The mirror of make_encoder: hidden widths reversed for an MLP, upsampling for conv."""
  settings = dict(activation=model.get("activation", "relu"), norm=model.get("norm", "none"))
  settings.update(overrides)
  if model.get("architecture", "mlp") == "conv":
    return ConvDecoder(tuple(reversed(model.features)), tuple(output_shape),
                       upsample=model.get("upsample", "auto"),
                       interpolation=model.get("interpolation", "nearest"), **settings)
  return MLPDecoder(tuple(reversed(model.hidden)), tuple(output_shape), **settings)


def validate_architecture(config: ConfigDict) -> None:
  """Checks the keys every family shares (latent size, architecture); one-line ConfigError otherwise."""
  from genjax.config import is_int, require
  model = config.model
  latent = model.get("latent_dim")
  require(is_int(latent) and latent >= 1, "model.latent_dim", latent, "an integer >= 1")
  arch = model.get("architecture", "mlp")
  require(arch in ("mlp", "conv"), "model.architecture", arch, "'mlp' or 'conv'")
  require(model.get("activation", "relu") in ACTIVATIONS, "model.activation",
          model.get("activation"), f"one of {sorted(ACTIVATIONS)}")
  require(model.get("norm", "none") in NORMS, "model.norm", model.get("norm"), f"one of {NORMS}")
  if arch == "conv":
    features = model.get("features", ())
    require(isinstance(features, (tuple, list)) and len(features) >= 1
            and all(isinstance(f, int) and f >= 1 for f in features),
            "model.features", features, "a non-empty tuple of positive integers")
    require(model.get("downsample", "stride") in DOWNSAMPLE, "model.downsample",
            model.get("downsample"), f"one of {DOWNSAMPLE}")
    require(model.get("upsample", "auto") in UPSAMPLE, "model.upsample", model.get("upsample"),
            f"one of {UPSAMPLE}")
    require(model.get("conv_input_grad", "auto") in CONV_INPUT_GRADS, "model.conv_input_grad",
            model.get("conv_input_grad"), f"one of {CONV_INPUT_GRADS}")
  else:
    hidden = model.get("hidden", ())
    require(isinstance(hidden, (tuple, list)) and all(isinstance(h, int) and h >= 1 for h in hidden),
            "model.hidden", hidden, "a tuple of positive integers")

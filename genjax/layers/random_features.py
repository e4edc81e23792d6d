"""Fixed feature networks for texture statistics, and the Gram matrices taken of them.

G_l = F_l F_l^T / N_l, F_l the [C_l, N_l] map of layer l       (Gatys et al. 2015, eq. 1 / sec. 2)

A `FeatureNet` maps images [B, H, W, C] in [0, 1] to a list of feature maps; its weights are fixed
constants (nothing here is trained by the texture family). Nets are registered by name in
FEATURE_NETS (`model.features`):

- 'random_multiscale' (Ustyuzhaninov et al. 2017): one layer per filter size of seeded random
  filters, ReLU; the Gram statistics of such a shallow random multi-scale net synthesise textures
  comparable to VGG's. Random biases spread the ReLU thresholds over the filter responses. The
  filters have zero mean, so no map sees the image's mean grey level (the texture family adds a
  term for it).
- 'classifier': the conv stack of genjax's own domain classifier (genjax/evaluate/classifier.py),
  trained on the brick / grass / gravel crops of the `textures` dataset (grey, so colour channels
  pass through it one at a time).

Anyone with other weights on disk (VGG, ...) can wrap them as a FeatureNet and register it.
`periodic=True` pads circularly (an image being synthesised is a torus: every pixel is constrained
alike and the result tiles); False takes only valid windows (an exemplar's true statistics).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from genjax.registry import Registry

Features = list  # [B, h, w, c] arrays, one per layer

FEATURE_NETS: Registry = Registry("feature network")


@dataclasses.dataclass(frozen=True)
class FeatureNet:
  name: str
  apply: Callable[[jax.Array, bool], Features]  # (images [B,H,W,C], periodic) -> feature maps
  largest_filter: int  # its widest window: the smallest image side it accepts
  num_layers: int
  # (kernel HWIO, bias) per layer where the net has them, for benchmarks that copy them; not compared
  weights: tuple = dataclasses.field(default=(), compare=False, repr=False)


@jax.custom_vjp
def gram(features: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, C, C]: G = F F^T / N with N = H * W positions (Gatys et al. 2015, eq. 1)."""
  b, h, w, c = features.shape
  flat = features.reshape(b, h * w, c)
  return jnp.einsum("bnc,bnd->bcd", flat, flat) / (h * w)


def _gram_forward(features):
  return gram(features), features


def _gram_backward(features, cotangent):
  """dL/dF = F (dG + dG^T) / N: one matmul where autodiff of the einsum makes two (value + gradient
  of a 128x128x64 map's Gram loss: 7.2 -> 3.8 ms on 2 cores, load ~1)."""
  b, h, w, c = features.shape
  flat = features.reshape(b, h * w, c)
  symmetric = cotangent + jnp.swapaxes(cotangent, 1, 2)
  return (jnp.einsum("bnc,bcd->bnd", flat, symmetric).reshape(features.shape) / (h * w),)


gram.defvjp(_gram_forward, _gram_backward)


def grams(net: FeatureNet, images: jax.Array, periodic: bool) -> list[jax.Array]:
  return [gram(f) for f in net.apply(images, periodic)]


def gram_loss(grams_x: Sequence[jax.Array], grams_target: Sequence[jax.Array]) -> jax.Array:
  """[B] sum_l ||G_l(x) - G_l(t)||^2 / ||G_l(t)||^2: Gatys et al. eq. 4-5 with w_l = 1 / ||G_l(t)||^2,
  which makes each layer's term scale-free (0 at a match, 1 for an all-zero map)."""
  terms = [jnp.sum((g - t) ** 2, axis=(1, 2)) / jnp.maximum(jnp.sum(t ** 2, axis=(1, 2)), 1e-12)
           for g, t in zip(grams_x, grams_target)]
  return sum(terms)


# Circular windows at least this wide are computed by FFT (the same sums, to float rounding), one
# transform per layer with the kernels' spectra precomputed. Gram loss + gradient of the default
# net's 128x128 grey synthesis (2-core EPYC, medians, load ~1): the three wide layers (11, 15, 23) 66 ms
# this way, 87 ms as one batched transform of all three (more live memory); spectra computed in
# the step instead: +30 ms.
FFT_MIN_KERNEL = 9


def _fft_kernel(k: int, image_size: Sequence[int]) -> bool:
  return FFT_MIN_KERNEL <= k <= min(image_size)  # a window wider than the torus would alias


def circular_spectrum(kernel: np.ndarray, h: int, w: int) -> np.ndarray:
  """conj(rfft2) of an HWIO kernel zero-padded to the h x w torus and placed wrapped around the
  origin by the padding `conv` puts before each axis (so outputs need no shift): [C, O, h, w // 2 + 1].
  NumPy, so the step gets a constant, not FFTs per call."""
  kernel = np.asarray(kernel, np.float32)
  kh, kw = kernel.shape[:2]
  rows, cols = (np.arange(kh) - (kh - 1) // 2) % h, (np.arange(kw) - (kw - 1) // 2) % w
  torus = np.zeros(kernel.shape[2:] + (h, w), np.float32)  # [C, O, h, w]
  torus[:, :, rows[:, None], cols[None, :]] = np.transpose(kernel, (2, 3, 0, 1))
  return np.conj(np.fft.rfft2(torus)).astype(np.complex64)


def circular_correlation_fft(x: jax.Array, spectrum: np.ndarray) -> jax.Array:
  """Cross-correlation on a torus by the convolution theorem, C = X conj(K) per frequency: NHWC
  images and a `circular_spectrum` [C, O, H, W // 2 + 1] -> NHWO. The transforms run over the two last
  axes (channels first), where XLA:CPU's FFT is fastest; O(HW log HW) per map instead of O(HW k^2)."""
  h, w = x.shape[1:3]
  product = jnp.einsum("bchw,cohw->bohw", jnp.fft.rfft2(jnp.moveaxis(x, -1, 1)), spectrum)
  return jnp.moveaxis(jnp.fft.irfft2(product, s=(h, w)), 1, -1).astype(x.dtype)


def conv(x: jax.Array, kernel: jax.Array, periodic: bool, stride: int = 1) -> jax.Array:
  """NHWC x HWIO, circular padding (output size = input size / stride) or valid windows."""
  k = kernel.shape[0]
  if periodic:
    before, after = (k - 1) // 2, k // 2
    x = jnp.pad(x, ((0, 0), (before, after), (before, after), (0, 0)), mode="wrap")
  return lax.conv_general_dilated(x, kernel, (stride, stride), "VALID",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def random_filters(rng: np.random.Generator, size: int, channels: int, count: int):
  """He-scaled Gaussian filters [size, size, channels, count] with zero mean each (Ustyuzhaninov
  et al. 2017 sec. 3), and biases [count] ~ N(0, 0.5^2) x pixel std so thresholds spread."""
  kernel = rng.standard_normal((size, size, channels, count))
  kernel -= kernel.mean(axis=(0, 1, 2), keepdims=True)
  kernel /= np.sqrt((kernel ** 2).sum(axis=(0, 1, 2), keepdims=True))  # unit norm: outputs ~ pixel std
  bias = 0.5 * 0.25 * rng.standard_normal(count)  # 0.25: the std of pixels spread over [0, 1]
  return jnp.asarray(kernel, jnp.float32), jnp.asarray(bias, jnp.float32)


def random_multiscale_net(channels: int, filter_sizes: Sequence[int], filters_per_size: int,
                          seed: int) -> FeatureNet:
  """One ReLU layer per filter size, all reading the image centred at 0.5 (Ustyuzhaninov et al. 2017).
  Periodic maps of the wide windows come by FFT (`circular_correlation_fft`)."""
  rng = np.random.default_rng(seed)
  layers = [random_filters(rng, int(k), channels, filters_per_size) for k in filter_sizes]

  @functools.lru_cache(maxsize=None)
  def spectra(h: int, w: int) -> dict[int, np.ndarray]:
    """layer index -> its kernel spectra, for the layers whose periodic maps come by FFT at h x w."""
    return {i: circular_spectrum(kernel, h, w) for i, (kernel, _) in enumerate(layers)
            if _fft_kernel(kernel.shape[0], (h, w))}

  def apply(images: jax.Array, periodic: bool) -> Features:
    centred = images - 0.5
    by_fft = spectra(*images.shape[1:3]) if periodic else {}
    return [jax.nn.relu((circular_correlation_fft(centred, by_fft[i]) if i in by_fft else conv(centred, kernel, periodic))
                        + bias) for i, (kernel, bias) in enumerate(layers)]

  return FeatureNet(f"random_multiscale(sizes={tuple(filter_sizes)}, n={filters_per_size}, seed={seed})",
                    apply, max(int(k) for k in filter_sizes), len(layers), tuple(layers))


# The classifier's conv stack (3x3; strides 1, 2, 1, 2): its layers and widest window (receptive field).
CLASSIFIER_STRIDES = (1, 2, 1, 2)
CLASSIFIER_RECEPTIVE_FIELD = 15


def classifier_net(params: dict) -> FeatureNet:
  """The four conv layers of a `DomainClassifier` (3x3; strides 1, 2, 1, 2; ReLU) as four feature
  maps; colour channels are fed one by one (the classifier is grey) and their features stacked."""
  names = sorted((k for k in params if k.startswith("Conv_")), key=lambda k: int(k.split("_")[1]))
  def apply(images: jax.Array, periodic: bool) -> Features:
    b, h, w, c = images.shape
    x = jnp.moveaxis(images, -1, 1).reshape(b * c, h, w, 1)
    maps = []
    for name, stride in zip(names, CLASSIFIER_STRIDES):
      # SAME-like padding as the classifier was trained with: circular when periodic, else valid.
      x = jax.nn.relu(conv(x, params[name]["kernel"], periodic, stride) + params[name]["bias"])
      maps.append(x)
    return [m.reshape(b, c, *m.shape[1:]).transpose(0, 2, 3, 1, 4).reshape(b, *m.shape[1:3], -1)
            for m in maps]

  return FeatureNet("classifier(genjax-cnn-textures)", apply, CLASSIFIER_RECEPTIVE_FIELD, len(names))


@FEATURE_NETS.register("random_multiscale")
def _random_multiscale(model, channels: int) -> FeatureNet:
  return random_multiscale_net(channels, tuple(model.filter_sizes), int(model.filters_per_size),
                               int(model.feature_seed))


CLASSIFIER_DATASET = {"name": "textures", "crop_size": 32, "crops_per_texture": 600}


@FEATURE_NETS.register("classifier")
def _classifier(model, channels: int) -> FeatureNet:
  """Trains (once, then cached) genjax's CNN on the `textures` crops; no downloaded weights."""
  from ml_collections import ConfigDict

  from genjax.data import dataset_options
  from genjax.evaluate.classifier import FeatureExtractor
  dataset = ConfigDict({**dataset_options(), **CLASSIFIER_DATASET})
  extractor = FeatureExtractor(dataset, int(model.feature_seed))
  return classifier_net(jax.tree_util.tree_map(jnp.asarray, extractor.params))


def make_feature_net(model, channels: int) -> FeatureNet:
  """The net named by `model.features`."""
  return FEATURE_NETS.lookup(model.features)(model, channels)

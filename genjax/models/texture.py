"""Texture synthesis and style transfer with Gram matrices, and the feed-forward texture network.

L_tex(x) = sum_l w_l ||G_l(x) - G_l(exemplar)||^2                      (Gatys et al. 2015a, eq. 4-5)
          + mu sum_c (mean_c(x) - mean_c(exemplar))^2 / var_c(exemplar)
L_style(x) = alpha ||F_c(x) - F_c(content)||^2 / ||F_c(content)||^2 + beta L_tex(x)  (Gatys 2015b, eq. 7)

The feature net is fixed (`model.features`, genjax/layers/random_features.py): seeded random
multi-scale filters by default (Ustyuzhaninov et al. 2017), or genjax's own texture classifier; no
downloaded weights. The random filters have zero mean, so their Grams cannot see an image's mean
grey level: the mean term (mu = `model.mean_weight`) pins it. Two modes (`model.mode`):

- 'optimize' (Gatys et al.): the images being synthesised ARE the parameters, so the one trainer runs
  the optimisation (progress, checkpoints, resume, pictures). `model.num_syntheses` images start
  from different noise (different seeds, for the diversity check) and are optimised jointly; each
  image's loss is independent, so their sum separates. Pixels are sigmoid(u) with u unconstrained.
  `optimizer.name='lbfgs'` (Gatys et al.'s choice) is optax's L-BFGS with its zoom line search;
  'adam' works too. Coarse to fine (`model.levels` > 1): level k synthesises at output_size / 2^(L-1-k)
  against an exemplar downscaled alike, for `model.coarse_steps` steps each, and the next level
  starts from its bilinear upsampling; the finest level gets the remaining steps.
  With `dataset.content` set, style transfer: the result has the content's layout
  (`model.content_weight` alpha, layer `model.content_layer`) and the exemplar's style (beta =
  `model.style_weight`); it starts from the content (`model.init='content'`) or noise.
- 'generator' (Ulyanov et al. 2016): a conv net from multi-scale noise trained by Adam on the mean
  Gram loss of its batch, so `sample(n)` draws new textures at once, at any size that is a multiple
  of 2^(generator_scales - 1) (it is fully convolutional).

Evaluation (genjax/evaluate/texture_metrics.py): the Gram loss in a held-out random net (other seed,
other filter sizes), 7x7 patch SWD against noise / shuffle / crop baselines, copy and diversity.
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from ml_collections import ConfigDict

from genjax.config import ConfigError, is_int, is_number, require
from genjax.data import DatasetError, example_shape
from genjax.data import exemplar as exemplar_data
from genjax.evaluate.texture_metrics import texture_report
from genjax.layers.random_features import (CLASSIFIER_RECEPTIVE_FIELD, CLASSIFIER_STRIDES, FEATURE_NETS, FeatureNet, gram, gram_loss, grams,
                                           make_feature_net, random_multiscale_net)
from genjax.optim import OPTIMIZERS, make_optimizer
from genjax.registry import MODELS
from genjax.state import TrainState

# Pixels start inside (0, 1) so their logits are finite.
PIXEL_EPS = 0.02
PANEL_BASELINES = 3  # crop, shuffle, noise next to the syntheses in the 'texture' picture


@OPTIMIZERS.register("lbfgs")
def _lbfgs(cfg: ConfigDict) -> optax.GradientTransformation:
  """optax's L-BFGS with its zoom line search (strong Wolfe); learning_rate scales the searched step
  (1.0: the search alone decides). `increase_factor` is how far the search widens a step that is too
  short (optax's default 2; with 4 the first, unscaled step takes 6 evaluations instead of 9, and 50
  iterations on brick 57 instead of 64). Its update needs value, grad and value_fn: the texture
  family's step passes them; families that do not would fail at trace time."""
  # optax.lbfgs's own line search (20 steps, initial guess 1) but for the increase factor.
  linesearch = optax.scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one",
                                              increase_factor=float(cfg.get("increase_factor", 2.0)))
  return optax.lbfgs(cfg.learning_rate, memory_size=int(cfg.get("memory_size", 10)), linesearch=linesearch)


def value_and_grad(fn, opt_state):
  """jax.value_and_grad, reusing the line search's stored value and gradient where the state has them."""
  if optax.tree.get(opt_state, "value") is None:
    return jax.value_and_grad(fn)
  return functools.partial(optax.value_and_grad_from_state(fn), state=opt_state)


def resize(images: jax.Array, size: int) -> jax.Array:
  """[N, H, W, C] -> [N, size, size, C], antialiased bilinear."""
  return jax.image.resize(images, (images.shape[0], size, size, images.shape[-1]), "linear")


def mean_loss(images: jax.Array, mean: jax.Array, var: jax.Array) -> jax.Array:
  """[B] sum_c (mean_c(x) - mean_c)^2 / var_c: 0 at the exemplar's mean, 1 one std off per channel."""
  return jnp.sum((jnp.mean(images, axis=(1, 2)) - mean) ** 2 / var, axis=-1)


def logit(x: jax.Array) -> jax.Array:
  x = jnp.clip(x, PIXEL_EPS, 1 - PIXEL_EPS)
  return jnp.log(x) - jnp.log1p(-x)


def noise_like(exemplar: jax.Array, rng: jax.Array, shape: Sequence[int]) -> jax.Array:
  """White noise with the exemplar's mean and std per channel, in [0, 1]."""
  flat = exemplar.reshape(-1, exemplar.shape[-1])
  return jnp.clip(flat.mean(0) + flat.std(0) * jax.random.normal(rng, shape), 0.0, 1.0)


def texture_panel(exemplar: jax.Array, syntheses: jax.Array, rng: jax.Array) -> jax.Array:
  """[exemplar downscaled, syntheses..., crop, shuffled crop, noise], all at the syntheses' size."""
  size = syntheses.shape[1]
  crop = exemplar[None, :size, :size]
  flat = crop.reshape(size * size, -1)
  shuffled = flat[jax.random.permutation(rng, size * size)].reshape(crop.shape)
  noise = noise_like(exemplar, rng, crop.shape)
  return jnp.concatenate([resize(exemplar[None], size), syntheses, crop, shuffled, noise])


# ----------------------------------------------------------------------------- validation

MODES = ("optimize", "generator")
INITS = ("noise", "content")


def _sizes(value) -> bool:
  return (isinstance(value, (tuple, list)) and len(value) >= 1
          and all(is_int(k) and k >= 1 for k in value))


def _positive_int(model: ConfigDict, key: str, minimum: int = 1) -> None:
  value = model.get(key)
  require(is_int(value) and value >= minimum,
          f"model.{key}", value, f"an integer >= {minimum}")


def _largest_filter(model: ConfigDict) -> int:
  """The widest window of the optimised net, from the config alone."""
  return max(model.filter_sizes) if model.features == "random_multiscale" else CLASSIFIER_RECEPTIVE_FIELD


def validate(config: ConfigDict) -> None:
  model, dataset = config.model, config.dataset
  require(dataset.name == "exemplar", "dataset.name", dataset.name,
          "'exemplar' (the texture family synthesises from one exemplar image)")
  try:
    exemplar_data.validate_options(dataset)
  except DatasetError as e:
    raise ConfigError(str(e)) from e
  mode = model.get("mode")
  require(mode in MODES, "model.mode", mode, f"one of {MODES}")
  require(model.get("features") in FEATURE_NETS, "model.features", model.get("features"),
          f"one of {FEATURE_NETS.names()}")
  for key in ("filter_sizes", "eval_filter_sizes"):
    require(_sizes(model.get(key)), f"model.{key}", model.get(key), "a non-empty tuple of integers >= 1")
  require(tuple(model.eval_filter_sizes) != tuple(model.filter_sizes)
          or model.eval_feature_seed != model.feature_seed, "model.eval_feature_seed",
          model.eval_feature_seed, "a held-out net: another seed or other filter sizes than the optimised one")
  for key in ("filters_per_size", "output_size", "num_syntheses", "levels", "feature_seed",
              "eval_feature_seed"):
    _positive_int(model, key, 0 if key.endswith("seed") else 1)
  _positive_int(model, "coarse_steps", 0)
  for key in ("content_weight", "style_weight", "mean_weight"):
    value = model.get(key, 0.0)  # mean_weight: absent in configs saved before it (no mean term)
    require(is_number(value) and value >= 0,
            f"model.{key}", value, "a number >= 0")
  require(model.get("init") in INITS, "model.init", model.get("init"), f"one of {INITS}")
  require(isinstance(model.get("periodic"), bool), "model.periodic", model.get("periodic"), "True or False")
  require(config.batch_size == 1, "batch_size", config.batch_size, "1 (the exemplar is the one row)")
  has_content = bool(dataset.content)
  require(has_content or model.init == "noise", "model.init", model.init,
          "'noise' unless dataset.content names a content image")
  if has_content:
    _positive_int(model, "content_layer", 0)
    layers = len(model.filter_sizes) if model.features == "random_multiscale" else len(CLASSIFIER_STRIDES)
    require(model.content_layer < layers, "model.content_layer", model.content_layer,
            f"a layer index below {layers} (the feature net's layer count)")
  largest = _largest_filter(model)
  coarsest = model.output_size // 2 ** (model.levels - 1)
  require(coarsest >= largest, "model.output_size", model.output_size,
          f"a size whose coarsest level (output_size / 2^(levels-1) = {coarsest}) is at least the "
          f"feature net's largest filter ({largest})")
  if dataset.image_size:
    smallest = dataset.image_size // 2 ** (model.levels - 1)
    require(smallest >= largest, "dataset.image_size", dataset.image_size,
            f"an exemplar whose coarsest level ({smallest}) is at least the feature net's largest "
            f"filter ({largest})")
  if config.optimizer.name == "lbfgs":
    factor = config.optimizer.get("increase_factor", 2.0)
    require(is_number(factor) and factor > 1,
            "optimizer.increase_factor", factor, "a number > 1 (how much the line search widens a step)")
  VALIDATORS[mode](config)


def _validate_optimize(config: ConfigDict) -> None:
  model = config.model
  require(config.num_steps > (model.levels - 1) * model.coarse_steps, "num_steps", config.num_steps,
          f"more than (model.levels - 1) * model.coarse_steps = {(model.levels - 1) * model.coarse_steps}, "
          f"so the finest level runs")


def _validate_generator(config: ConfigDict) -> None:
  model = config.model
  require(not config.dataset.content, "dataset.content", config.dataset.content,
          "'' with model.mode='generator' (the texture network learns textures, not style transfer)")
  require(config.optimizer.name != "lbfgs", "optimizer.name", config.optimizer.name,
          "a stochastic optimizer (adam, ...) for model.mode='generator': its batches are random")
  for key in ("generator_width", "generator_scales", "generator_batch", "train_size", "noise_channels"):
    _positive_int(model, key)
  multiple = 2 ** (model.generator_scales - 1)
  for key in ("train_size", "output_size"):
    require(model[key] % multiple == 0, f"model.{key}", model[key],
            f"a multiple of 2^(generator_scales - 1) = {multiple}")
  require(model.train_size >= _largest_filter(model), "model.train_size", model.train_size,
          f"at least the feature net's largest filter ({_largest_filter(model)})")


VALIDATORS = {"optimize": _validate_optimize, "generator": _validate_generator}


# ----------------------------------------------------------------------------- shared pieces

class GramTexture:
  """What both modes share: the exemplar, the optimised and held-out nets, targets, evaluation."""

  def __init__(self, config: ConfigDict):
    self.config = config
    self.model = model = config.model
    self.dataset = config.dataset
    size, _, channels = example_shape(config.dataset)
    self.channels = channels
    self.output_size = int(model.output_size)
    self.net: FeatureNet = make_feature_net(model, channels)
    coarsest = size // 2 ** (self.levels - 1)
    if coarsest < self.net.largest_filter:  # image_size 0 (native) is only known once read
      raise ConfigError(f"the exemplar is {size} pixels a side ({coarsest} at the coarsest level), smaller "
                        f"than the feature net's largest filter ({self.net.largest_filter}); use a larger "
                        f"image or smaller model.filter_sizes")
    self.eval_net = random_multiscale_net(channels, tuple(model.eval_filter_sizes),
                                          int(model.filters_per_size), int(model.eval_feature_seed))
    self.tx = optax.with_extra_args_support(make_optimizer(config.optimizer))
    self.mean_weight = float(model.get("mean_weight", 0.0))

  levels = 1

  def exemplar_grams(self, exemplar: jax.Array, size: int) -> list[jax.Array]:
    """Gram targets [1, c, c] of the exemplar downscaled by output_size / size (valid windows)."""
    factor = self.output_size // size
    scaled = resize(exemplar[None], exemplar.shape[0] // factor)
    return grams(self.net, scaled, periodic=False)

  def moment_targets(self, exemplar: jax.Array) -> dict:
    """The exemplar's per-channel pixel mean and variance [C] (the mean term's target and scale)."""
    flat = exemplar.reshape(-1, exemplar.shape[-1])
    return {"mean": jnp.mean(flat, 0), "var": jnp.maximum(jnp.var(flat, 0), 1e-6)}

  def texture_loss(self, images: jax.Array, features, grams_target, moments: dict) -> jax.Array:
    """[B] Gram loss of the feature maps + mean_weight x mean_loss of the images."""
    loss = gram_loss([gram(f) for f in features], grams_target)
    return loss + self.mean_weight * mean_loss(images, moments["mean"], moments["var"]) if self.mean_weight else loss

  def heldout_gram_loss(self, exemplar: np.ndarray):
    targets = grams(self.eval_net, jnp.asarray(exemplar)[None], periodic=False)
    return jax.jit(lambda images: gram_loss(grams(self.eval_net, images, periodic=False), targets))

  def evaluate(self, state: TrainState, arrays: dict, rng: jax.Array) -> dict:
    exemplar = np.asarray(arrays["x"][0])
    syntheses = np.asarray(self.syntheses(state, rng))
    seed = int(jax.random.randint(rng, (), 0, 2 ** 30))
    report = texture_report(syntheses, exemplar, self.heldout_gram_loss(exemplar), seed)
    return {**report, "feature_net": self.net.name, "heldout_net": self.eval_net.name}


# ----------------------------------------------------------------------------- optimize

class ImageSynthesis(GramTexture):
  """Gatys et al.: the syntheses are the parameters (see the module docstring)."""

  def __init__(self, config: ConfigDict):
    self.levels = int(config.model.levels)
    super().__init__(config)
    model = config.model
    self.num_syntheses = int(model.num_syntheses)
    self.coarse_steps = int(model.coarse_steps)
    self.sizes = [self.output_size // 2 ** (self.levels - 1 - k) for k in range(self.levels)]
    self.starts = [k * self.coarse_steps for k in range(self.levels)]
    self.content_weight = float(model.content_weight) if config.dataset.content else 0.0
    self.style_weight = float(model.style_weight)
    self.content_layer = int(model.get("content_layer", 0))
    # A style transfer keeps the content's borders: valid windows; a texture is synthesised on a torus.
    self.periodic = bool(model.periodic) and not self.content_weight
    if self.content_weight and self.content_layer >= self.net.num_layers:
      raise ConfigError(f"config.model.content_layer={self.content_layer} is not allowed; expected a layer "
                        f"index below {self.net.num_layers} (the feature net's layer count)")

  def level_of(self, step: jax.Array) -> jax.Array:
    return jnp.sum(jnp.asarray(self.starts[1:]) <= step).astype(jnp.int32)

  def targets(self, batch: dict) -> dict:
    exemplar = batch["x"][0]
    targets = {"grams": [self.exemplar_grams(exemplar, size) for size in self.sizes],
               "moments": self.moment_targets(exemplar)}
    if self.content_weight:
      targets["content"] = [self.net.apply(resize(batch["content"][:1], size), False)[self.content_layer]
                            for size in self.sizes]
    return targets

  def level_loss(self, k: int, u: jax.Array, targets: dict) -> jax.Array:
    """Sum over the syntheses of beta * Gram loss (+ alpha * content loss for style transfer)."""
    images = jax.nn.sigmoid(u)
    features = self.net.apply(images, self.periodic)
    loss = self.style_weight * self.texture_loss(images, features, targets["grams"][k], targets["moments"])
    if self.content_weight:
      target = targets["content"][k]
      content = (jnp.sum((features[self.content_layer] - target) ** 2, axis=(1, 2, 3))
                 / jnp.maximum(jnp.sum(target ** 2), 1e-12))
      loss = loss + self.content_weight * content
    return jnp.sum(loss)

  def init(self, rng: jax.Array, batch: dict) -> TrainState:
    exemplar = batch["x"][0]
    shape = (self.num_syntheses, self.sizes[0], self.sizes[0], self.channels)
    start = (jnp.broadcast_to(resize(batch["content"][:1], self.sizes[0]), shape)
             if self.model.init == "content" else noise_like(exemplar, rng, shape))
    params = {f"level{k}": jnp.zeros((self.num_syntheses, s, s, self.channels))
              for k, s in enumerate(self.sizes)}
    params["level0"] = logit(start)
    opt_state = {name: self.tx.init(u) for name, u in params.items()}
    return TrainState.create(rng, params, opt_state, {"targets": self.targets(batch)})

  def level_step(self, k: int, params: dict, opt_state: dict, targets: dict, step: jax.Array):
    name = f"level{k}"
    u = params[name]
    if k:  # this level's first step starts from the coarser level's result, upsampled
      u = jnp.where(step == self.starts[k], resize(params[f"level{k - 1}"], self.sizes[k]), u)
    loss_fn = functools.partial(self.level_loss, k, targets=targets)
    value, grad = value_and_grad(loss_fn, opt_state[name])(u)
    updates, new_state = self.tx.update(grad, opt_state[name], u, value=value, grad=grad, value_fn=loss_fn)
    metrics = {"loss": value / self.num_syntheses, "level": jnp.asarray(k, jnp.int32),
               "grad_norm": optax.tree.norm(grad)}
    return ({**params, name: optax.apply_updates(u, updates)}, {**opt_state, name: new_state}, metrics)

  def step(self, state: TrainState, batch: dict, rng: jax.Array):
    branches = [functools.partial(self.level_step, k) for k in range(self.levels)]
    params, opt_state, metrics = lax.switch(self.level_of(state.step), branches, state.params,
                                            state.opt_state, state.extras["targets"], state.step)
    return state.replace(params=params, opt_state=opt_state), metrics

  def syntheses(self, state: TrainState, rng: jax.Array | None = None) -> jax.Array:
    """[num_syntheses, S, S, C] in [0, 1]: the level of the last step taken, upsampled to S."""
    level = self.level_of(jnp.maximum(state.step - 1, 0))
    branches = [lambda p, k=k: resize(jax.nn.sigmoid(p[f"level{k}"]), self.output_size)
                for k in range(self.levels)]
    return lax.switch(level, branches, state.params)

  def pictures(self, state: TrainState, batch: dict, rng: jax.Array) -> dict:
    """'synthesis' first (--mode sample saves it as samples.npy), then the comparison panel."""
    syntheses = self.syntheses(state)
    exemplar = batch["x"][0]
    if self.content_weight:
      content = resize(batch["content"][:1], self.output_size)
      return {"synthesis": syntheses,
              "style_transfer": jnp.concatenate([content, resize(exemplar[None], self.output_size), syntheses])}
    return {"synthesis": syntheses, "texture": texture_panel(exemplar, syntheses, rng)}

  def evaluate(self, state: TrainState, arrays: dict, rng: jax.Array) -> dict:
    report = super().evaluate(state, arrays, rng)
    if self.content_weight:  # how much of the content survives, in the optimised net
      targets = self.targets({k: jnp.asarray(v) for k, v in arrays.items()})
      u = logit(self.syntheses(state))
      report["final_loss"] = float(self.level_loss(self.levels - 1, u, targets)) / self.num_syntheses
    return report


# ----------------------------------------------------------------------------- generator

def _conv_block(x: jax.Array, width: int) -> jax.Array:
  """Ulyanov et al. 2016 sec. 3.1: 3x3, 3x3, 1x1 convolutions, each normalised, LeakyReLU."""
  for kernel in (3, 3, 1):
    x = nn.Conv(width, (kernel, kernel), padding="CIRCULAR")(x)
    x = nn.GroupNorm(num_groups=None, group_size=1)(x)  # instance norm: per image and channel
    x = nn.leaky_relu(x, 0.01)
  return x


class TextureGenerator(nn.Module):
  """Ulyanov et al. 2016 fig. 2: noise at K scales, coarse to fine; each scale's conv block is
  joined (concatenated) with the 2x-upsampled result so far and convolved again; 1x1 to logits."""
  channels: int
  width: int

  @nn.compact
  def __call__(self, noises: Sequence[jax.Array]) -> jax.Array:
    x = _conv_block(noises[0], self.width)
    for z in noises[1:]:
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)  # nearest-neighbour 2x upsampling
      x = _conv_block(jnp.concatenate([x, _conv_block(z, self.width)], axis=-1), self.width)
    return nn.Conv(self.channels, (1, 1))(x)


class TextureNetwork(GramTexture):
  """Ulyanov et al.: a generator from noise trained by the Gram loss; sample(n) gives new textures."""
  # evaluate() measures the samples against the exemplar itself: a domain classifier trained on one
  # image would mean nothing (read by genjax.modes.evaluation once the lead adds the opt-out).
  measures_own_samples = True

  def __init__(self, config: ConfigDict):
    super().__init__(config)
    model = config.model
    self.scales = int(model.generator_scales)
    self.train_size = int(model.train_size)
    self.generator_batch = int(model.generator_batch)
    self.noise_channels = int(model.noise_channels)
    self.num_syntheses = int(model.num_syntheses)
    self.generator = TextureGenerator(self.channels, int(model.generator_width))

  def noise(self, rng: jax.Array, n: int, size: int) -> list[jax.Array]:
    """Uniform noise at sizes size / 2^(K-1), ..., size (Ulyanov et al. sec. 3.1)."""
    keys = jax.random.split(rng, self.scales)
    return [jax.random.uniform(key, (n, size // 2 ** (self.scales - 1 - j), size // 2 ** (self.scales - 1 - j),
                                     self.noise_channels)) for j, key in enumerate(keys)]

  def generate(self, params, rng: jax.Array, n: int, size: int) -> jax.Array:
    return jax.nn.sigmoid(self.generator.apply({"params": params}, self.noise(rng, n, size)))

  def init(self, rng: jax.Array, batch: dict) -> TrainState:
    params = {"generator": self.generator.init(rng, self.noise(rng, 1, self.train_size))["params"]}
    targets = {"grams": self.exemplar_grams(batch["x"][0], self.output_size),  # exemplar pixels = output pixels
               "moments": self.moment_targets(batch["x"][0])}
    return TrainState.create(rng, params, {"generator": self.tx.init(params["generator"])},
                             {"targets": targets})

  def step(self, state: TrainState, batch: dict, rng: jax.Array):
    targets = state.extras["targets"]

    def loss_fn(params):
      images = self.generate(params, rng, self.generator_batch, self.train_size)
      # Circular convolutions all through: the samples are tori, so their maps are periodic too.
      features = self.net.apply(images, True)
      return jnp.mean(self.texture_loss(images, features, targets["grams"], targets["moments"]))

    loss, grad = jax.value_and_grad(loss_fn)(state.params["generator"])
    updates, opt_state = self.tx.update(grad, state.opt_state["generator"], state.params["generator"])
    params = {"generator": optax.apply_updates(state.params["generator"], updates)}
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grad)}
    return state.replace(params=params, opt_state={"generator": opt_state}), metrics

  def sample(self, state: TrainState, rng: jax.Array, n: int) -> jax.Array:
    """n new textures [n, output_size, output_size, C] in [0, 1]."""
    return self.generate(state.params["generator"], rng, n, self.output_size)

  def syntheses(self, state: TrainState, rng: jax.Array) -> jax.Array:
    return self.sample(state, rng, max(self.num_syntheses, 2))

  def pictures(self, state: TrainState, batch: dict, rng: jax.Array) -> dict:
    samples = self.sample(state, rng, self.num_syntheses)
    return {"samples": samples, "texture": texture_panel(batch["x"][0], samples, rng)}


def texture_family(config: ConfigDict):
  """`model.mode` -> the objective: the image synthesis (Gatys) or the texture network (Ulyanov)."""
  return FAMILY_MODES[config.model.mode](config)


FAMILY_MODES = {"optimize": ImageSynthesis, "generator": TextureNetwork}
texture_family.validate = validate
MODELS.register("texture")(texture_family)

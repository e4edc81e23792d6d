"""GANs of the lecture as ONE adversarial objective: minimax, non-saturating and Wasserstein are settings.

min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]          (Goodfellow et al. 2014, eq. 1)
min_G max_{||f||_L <= 1} E_x[f(x)] - E_z[f(G(z))]                     (Arjovsky et al. 2017, eq. 3)

`model.loss` picks the pair of losses, `model.critic_regularizer` how the critic is kept Lipschitz
('clip': weights projected to [-c, c] after every critic update; 'gradient_penalty': Gulrajani et al.
2017 eq. 3). The generator and the critic have their own parameters and optimizer states
(`params = {'generator', 'critic'}`); `config.optimizer` drives both unless `config.critic_optimizer`
overrides the critic's.

Batches: ONE trainer step = `n_critic` critic updates then one generator update, and every critic
update sees its own real minibatch, so `config.batch_size` is the rows of the whole step and is split
into `n_critic` chunks of `batch_size // n_critic` rows (gan_config sets batch_size = 64 * n_critic:
WGAN's 64 per critic iteration). The generator update draws as many z as one chunk has rows.
With `model.wgan_schedule` (Arjovsky et al.'s code) the first 25 steps and every 500th run 100 critic
updates: updates past the n_critic-th draw `batch_size // n_critic` rows at random (without
replacement) from the step's batch, since the batch has a fixed size.

Conditioning (`model.conditional`, Mirza & Osindero 2014): a one-hot label is concatenated to z and to
the critic input (as constant channels for images); fakes take the labels of the real chunk they are
judged with, so the generator sees the data's label frequencies. Images are generated through a
sigmoid (data in [0, 1]); 2-D points through the identity.

Latent arithmetic (Radford et al. 2016, sec. 6.3.2): `latent_arithmetic(generate_fn, z_a, z_b, z_c)`
decodes mean(z_a) - mean(z_b) + mean(z_c); `GANObjective.latent_arithmetic(state, z, a, b, c)` does it
for index groups into the fixed noise of the 'samples' picture (index i is row i // 8, column i % 8),
and `python -m genjax.latent_arithmetic --config C --workdir W --a 1,5,7 --b 2,3 --c 4`
writes W/images/latent_arithmetic.png (mean A | mean B | mean C | A - B + C).

Style-based generator (`model.architecture='style'`, genjax/layers/style.py; Karras et al. 2019,
2020): mapping network z -> w, learned 4x4 constant, modulated/demodulated (or AdaIN, or ProGAN's
pixel-normed) convolutions, noise inputs, skip ToRGBs, equalised learning rate; style mixing with
probability `model.style_mixing`; w_avg (extras['w_avg']) tracked for truncation (`model.truncation_psi`).
`model.progressive` grows generator and critic from `model.progressive_start` to `model.resolution`
(genjax/layers/progressive.py): the step is one `lax.switch` over levels, alpha a function of the step.
Any critic may take ProGAN's minibatch stddev (`model.minibatch_std`, group size) and the R1 penalty
(`model.critic_regularizer='r1'`, gamma/2 * E||grad D(x_real)||^2 every `model.r1_every` steps).
"""
from __future__ import annotations

import copy
import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from ml_collections import ConfigDict

from genjax import losses
from genjax import xla_options
from genjax.config import is_int, is_number, require
from genjax.data import dataset_spec, eval_batches, example_shape, num_classes
from genjax.data import toy2d_mode_centres, toy2d_std
from genjax.evaluate.mode_coverage import NUM_SAMPLES, mode_coverage
from genjax.models.autoencoder import interpolate_codes
from genjax.layers import progressive
from genjax.layers.style import (MODULATIONS, StyleCritic, StyleGenerator, mix_styles, num_levels,
                                 reachable, truncate)
from genjax.layers.networks import (ACTIVATIONS, NORMS, join_label, make_decoder, make_encoder, run_net,
                                    validate_architecture)
from genjax.optim import OPTIMIZERS, ema_decay_at, make_optimizer
from genjax.registry import MODELS
from genjax.state import TrainState

# loss kind -> (critic loss(real_scores, fake_scores), generator loss(fake_scores), scores are logits)
ADVERSARIAL_LOSSES: dict[str, tuple[Callable, Callable, bool]] = {
    "minimax": (losses.gan_discriminator_loss,
                functools.partial(losses.gan_generator_loss, non_saturating=False), True),
    "non_saturating": (losses.gan_discriminator_loss, losses.gan_generator_loss, True),
    "wasserstein": (losses.wasserstein_critic_loss, losses.wasserstein_generator_loss, False),
    "least_squares": (losses.least_squares_critic_loss, losses.least_squares_generator_loss, False),
}
REGULARIZERS = ("none", "clip", "gradient_penalty", "r1")
W_AVG_DECAY = 0.995  # StyleGAN2's w_avg_beta: the moving average of w used by truncation
# Maxout (genjax/layers/maxout.py) changes layer widths, so it is a critic option, not an ACTIVATION.
CRITIC_ACTIVATIONS = tuple(sorted(ACTIVATIONS)) + ("maxout",)
# Generator output per dataset kind: sigmoid keeps images in the data's [0, 1] range.
OUTPUTS: dict[str, Callable] = {"image": jax.nn.sigmoid, "points": lambda x: x}
# Arjovsky et al.'s schedule: 100 critic updates for the first 25 generator updates and every 500th.
WGAN_BURST_ITERATIONS, WGAN_BURST_STEPS, WGAN_BURST_EVERY = 100, 25, 500
# The discriminator "wins" (generator gradients vanish) when it is this sure on both sides.
D_WINS_THRESHOLD = 0.99
PICTURE_SAMPLES, PICTURE_POINTS, GRID_COLUMNS = 64, 1000, 8


def latent_arithmetic(generate_fn: Callable[[jax.Array], jax.Array], z_a: jax.Array, z_b: jax.Array,
                      z_c: jax.Array) -> jax.Array:
  """Radford et al. (2016) sec. 6.3.2: decodes [mean z_a, mean z_b, mean z_c, mean z_a - mean z_b + mean z_c]."""
  means = jnp.stack([jnp.mean(z_a, 0), jnp.mean(z_b, 0), jnp.mean(z_c, 0)])
  return generate_fn(jnp.concatenate([means, (means[0] - means[1] + means[2])[None]]))


def pack_samples(x: jax.Array, pack: int) -> jax.Array:
  """PacGAN (Lin et al. 2018, sec. 3): groups of `pack` consecutive examples concatenated along the
  last axis, [B, ..., C] -> [B / pack, ..., pack * C] (features of points, channels of images)."""
  grouped = x.reshape((x.shape[0] // pack, pack) + x.shape[1:])
  return jnp.moveaxis(grouped, 1, -2).reshape(grouped.shape[:1] + x.shape[1:-1] + (pack * x.shape[-1],))


def critic_norm(model: ConfigDict) -> str:
  """`model.critic_norm`, or `model.norm` when it is unset or ''."""
  return model.get("critic_norm") or model.get("norm", "none")


def style_resolution(config: ConfigDict) -> int:
  """`model.resolution`, or the data's side when it is 0."""
  return int(config.model.get("resolution", 0) or example_shape(config.dataset)[0])


def validate_style(config: ConfigDict) -> None:
  """The keys of `model.architecture='style'` (and of progressive growing)."""
  model = config.model
  latent = model.get("latent_dim")
  require(is_int(latent) and latent >= 1, "model.latent_dim", latent, "an integer >= 1")
  require(dataset_spec(config.dataset).kind == "image", "model.architecture", "style",
          "'mlp' or 'conv' for a dataset of points")
  height, width, _ = example_shape(config.dataset)
  require(height == width, "model.architecture", "style", f"'mlp' or 'conv' for {height}x{width} images (style needs square ones)")
  resolution = model.get("resolution", 0)
  require(is_int(resolution) and resolution >= 0, "model.resolution", resolution, "an integer >= 0 (0: the data's size)")
  resolution = resolution or height
  require(reachable(resolution), "model.resolution", model.get("resolution", 0),
          f"4 * 2^k (the style generator doubles from 4x4; the data is {height}x{width}: set e.g. 32)")
  for key, default in (("style_channels", None), ("mapping_layers", 8), ("w_dim", 0)):
    value = model.get(key, default)
    low = 1 if key == "style_channels" else 0
    require(is_int(value) and value >= low, f"model.{key}", value, f"an integer >= {low}")
  lr_mul = model.get("mapping_lr_mul", 0.01)
  require(is_number(lr_mul) and lr_mul > 0, "model.mapping_lr_mul", lr_mul, "a number > 0")
  require(model.get("modulation", "demod") in MODULATIONS, "model.modulation", model.get("modulation"),
          f"one of {MODULATIONS}")
  mixing = model.get("style_mixing", 0.9)
  require(is_number(mixing) and 0 <= mixing <= 1,
          "model.style_mixing", mixing, "a probability in [0, 1]")
  resample_filter = model.get("resample_filter", "box")
  require(resample_filter in progressive.RESAMPLE_FILTERS, "model.resample_filter", resample_filter,
          f"one of {progressive.RESAMPLE_FILTERS}")
  require(resample_filter == "box" or not model.get("progressive", False), "model.resample_filter", resample_filter,
          "'box' with model.progressive (growth needs nearest up / mean down, exact inverses)")
  psi = model.get("truncation_psi", 1.0)
  require(is_number(psi), "model.truncation_psi", psi, "a number")
  if model.get("progressive", False):
    start = model.get("progressive_start", 8)
    require(reachable(start) and start <= resolution, "model.progressive_start", start,
            f"4 * 2^k <= model.resolution={resolution}")
    phase_steps = model.get("phase_steps", 1000)
    require(is_int(phase_steps) and phase_steps >= 1, "model.phase_steps", phase_steps, "an integer >= 1")
    length = progressive.schedule_length(num_levels(resolution) - num_levels(start) + 1, phase_steps)
    require(length <= config.num_steps, "model.phase_steps", phase_steps,
            f"a schedule ({length} steps to grow {start} -> {resolution}) no longer than num_steps={config.num_steps}")
  for key in ("ppl_samples", "separability_samples"):
    value = model.get(key, 1000)
    require(is_int(value) and value >= 4, f"model.{key}", value, "an integer >= 4")


@MODELS.register("gan")
class GANObjective:
  """The GAN family; `model.*` keys choose losses, regularizer, architecture and conditioning."""

  def __init__(self, config: ConfigDict):
    model = config.model
    self.dataset = config.dataset
    self.latent_dim = int(model.latent_dim)
    self.critic_loss_fn, self.generator_loss_fn, self.sigmoid_critic = ADVERSARIAL_LOSSES[
        model.get("loss", "non_saturating")]
    self.regularizer = model.get("critic_regularizer", "none")
    self.clip_value = float(model.get("clip_value", 0.01))
    self.gp_weight = float(model.get("gp_weight", 10.0))
    self.n_critic = int(model.get("n_critic", 1))
    self.wgan_schedule = bool(model.get("wgan_schedule", False))
    self.ema_decay = float(model.get("ema_decay", 0.0))
    self.ema_rampup = float(model.get("ema_rampup", 0.0))
    self.pack = int(model.get("pack", 1))
    self.num_classes = num_classes(config.dataset) if model.get("conditional", False) else 0
    self.kind = dataset_spec(config.dataset).kind
    self.tx = {"generator": make_optimizer(config.optimizer),
               "critic": make_optimizer(config.get("critic_optimizer") or config.optimizer)}
    self.minibatch_std = int(model.get("minibatch_std", 0))
    self.r1_gamma, self.r1_every = float(model.get("r1_gamma", 10.0)), int(model.get("r1_every", 16))
    self.eval_num_samples = int(config.get("eval_num_samples", 10000))
    self.style = model.get("architecture", "mlp") == "style"
    self.level, self.alpha = None, None  # this view's growth (see `at`); None: the full generator
    self.program_level = None  # set by `for_program`: the step trains this level only
    self.progressive = False
    if self.style:
      self.resolution = style_resolution(config)
      self.style_mixing = float(model.get("style_mixing", 0.9))
      self.truncation_psi = float(model.get("truncation_psi", 1.0))
      self.progressive = bool(model.get("progressive", False))
      self.top_level = num_levels(self.resolution) - 1
      self.start_level = num_levels(int(model.get("progressive_start", 8))) - 1 if self.progressive else self.top_level
      self.phase_steps = int(model.get("phase_steps", 1000))
      self.critic = StyleCritic(self.resolution, int(model.style_channels), self.minibatch_std,
                                model.get("resample_filter", "box"))
    else:
      mbstd = {"minibatch_std": self.minibatch_std} if self.minibatch_std else {}
      self.critic = make_encoder(model, 1, activation=model.get("critic_activation", "leaky_relu"),
                                 norm=critic_norm(model), hidden=model.get("critic_hidden") or None, **mbstd)
    self.model = model

  @staticmethod
  def validate(config: ConfigDict) -> None:
    model = config.model
    if model.get("architecture", "mlp") == "style":
      validate_style(config)
    else:
      validate_architecture(config)
    mbstd = model.get("minibatch_std", 0)
    require(is_int(mbstd) and mbstd >= 0, "model.minibatch_std", mbstd, "an integer >= 0 (group size; 0: off)")
    require(not (mbstd and model.get("critic_activation") == "maxout"), "model.minibatch_std", mbstd,
            "0 with critic_activation='maxout'")
    gamma = model.get("r1_gamma", 10.0)
    require(is_number(gamma) and gamma >= 0, "model.r1_gamma",
            gamma, "a number >= 0")
    every = model.get("r1_every", 16)
    require(is_int(every) and every >= 1, "model.r1_every", every, "an integer >= 1")
    loss = model.get("loss", "non_saturating")
    require(loss in ADVERSARIAL_LOSSES, "model.loss", loss, f"one of {sorted(ADVERSARIAL_LOSSES)}")
    reg = model.get("critic_regularizer", "none")
    require(reg in REGULARIZERS, "model.critic_regularizer", reg, f"one of {REGULARIZERS}")
    n_critic = model.get("n_critic", 1)
    require(is_int(n_critic) and n_critic >= 1, "model.n_critic", n_critic, "an integer >= 1")
    require(config.batch_size % n_critic == 0, "batch_size", config.batch_size,
            f"a multiple of model.n_critic={n_critic}: each critic update takes batch_size // n_critic rows")
    pack = model.get("pack", 1)
    require(is_int(pack) and pack >= 1, "model.pack", pack, "an integer >= 1")
    require((config.batch_size // n_critic) % pack == 0, "batch_size", config.batch_size,
            f"batch_size // n_critic a multiple of model.pack={pack}: the critic judges packs of {pack}")
    critic_hidden = model.get("critic_hidden", ())
    require(isinstance(critic_hidden, (tuple, list)) and all(isinstance(h, int) and h >= 1 for h in critic_hidden),
            "model.critic_hidden", critic_hidden, "a tuple of positive integers (() = model.hidden)")
    critic_activation = model.get("critic_activation", "leaky_relu")
    require(critic_activation in CRITIC_ACTIVATIONS, "model.critic_activation", critic_activation,
            f"one of {CRITIC_ACTIVATIONS}")
    pieces = model.get("maxout_pieces", 5)
    require(is_int(pieces) and pieces >= 1, "model.maxout_pieces", pieces, "an integer >= 1")
    for key, default, ok, allowed in (
        ("clip_value", 0.01, lambda v: v > 0, "a number > 0"),
        ("gp_weight", 10.0, lambda v: v >= 0, "a number >= 0"),
        ("ema_decay", 0.0, lambda v: 0 <= v < 1, "a number in [0, 1)"),
        ("ema_rampup", 0.0, lambda v: v >= 0, "a number >= 0 (0: no warm-up; StyleGAN2 uses 0.05)")):
      value = model.get(key, default)
      require(is_number(value) and ok(value), f"model.{key}", value, allowed)
    norm = critic_norm(model)
    require(norm in NORMS, "model.critic_norm", norm, f"one of {NORMS} or '' (= model.norm)")
    # Batch norm mixes examples, so a per-example input gradient no longer means anything.
    require(not (reg in ("gradient_penalty", "r1") and norm == "batch"), "model.critic_norm", norm, f"'none' or 'layer' with critic_regularizer={reg!r} (Gulrajani et al. sec. 4)")
    critic_opt = config.get("critic_optimizer")
    if critic_opt:
      require(critic_opt.get("name") in OPTIMIZERS, "critic_optimizer.name", critic_opt.get("name"),
              f"one of {OPTIMIZERS.names()}")
      lr = critic_opt.get("learning_rate")
      require(is_number(lr) and lr > 0, "critic_optimizer.learning_rate", lr, "a number > 0")

  # -- pieces
  @functools.cached_property
  def data_shape(self) -> tuple[int, ...]:
    return example_shape(self.dataset)

  @functools.cached_property
  def generator(self):
    if self.style:
      m = self.model
      mapping_layers = int(m.get("mapping_layers", 8))
      # Without mapping layers w is the pixel-normed z (and label): its width, not model.w_dim.
      w_dim = self.latent_dim + self.num_classes if not mapping_layers else int(m.get("w_dim", 0) or self.latent_dim)
      return StyleGenerator(self.resolution, int(m.style_channels), w_dim,
                            self.data_shape[-1], mapping_layers, float(m.get("mapping_lr_mul", 0.01)),
                            m.get("modulation", "demod"), bool(m.get("const_input", True)),
                            bool(m.get("noise_inputs", True)), bool(m.get("skip_rgb", True)),
                            m.get("resample_filter", "box"))
    return make_decoder(self.model, self.data_shape)

  # -- style generator pieces
  def at(self, level: int, alpha) -> "GANObjective":
    """A view of this objective whose nets run at `level` with fade `alpha` (progressive growing)."""
    view = copy.copy(self)
    view.level, view.alpha = level, alpha
    return view

  def grown(self, step: jax.Array, fn: Callable, *args):
    """fn(view, *args) with the view at step's level and alpha: one branch per level (lax.switch),
    or only `program_level`'s in a program compiled for it."""
    if not self.progressive:
      return fn(self, *args)
    level, alpha = progressive.phase_at(step, self.top_level - self.start_level + 1, self.phase_steps)
    if self.program_level is not None:
      return fn(self.at(self.start_level + self.program_level, alpha), *args)
    branches = [functools.partial(fn, self.at(self.start_level + l, alpha))
                for l in range(self.top_level - self.start_level + 1)]
    return progressive.switch_levels(level, branches, *args)

  def to_model(self, x: jax.Array) -> jax.Array:
    """Images of the data's size -> the style nets' `resolution` (bilinear; identity when equal)."""
    if not self.style or x.shape[1] == self.resolution:
      return x
    return jax.image.resize(x, (x.shape[0], self.resolution, self.resolution, x.shape[-1]), "bilinear")

  def to_data(self, x: jax.Array) -> jax.Array:
    if x.shape[1:] == self.data_shape:
      return x
    return jax.image.resize(x, (x.shape[0],) + self.data_shape, "bilinear")

  def map_z(self, params, z: jax.Array, onehot: jax.Array) -> jax.Array:
    """The mapping network: w = f(z) [B, w_dim]."""
    return self.generator.apply({"params": params}, z, onehot, method="map")

  def broadcast_styles(self, w: jax.Array) -> jax.Array:
    return jnp.repeat(w[:, None], self.generator.num_ws, axis=1)

  def training_styles(self, params, z, onehot, rng):
    """ws [B, num_ws, D]: with probability style_mixing a second z's w from a random crossover on."""
    w = self.map_z(params, z, onehot)
    if not self.style_mixing:
      return self.broadcast_styles(w)
    z2_key, mix_key, cut_key = jax.random.split(rng, 3)
    w2 = self.map_z(params, self.noise(z2_key, z.shape[0]), onehot)
    num_ws = self.generator.num_ws
    crossover = jnp.where(jax.random.uniform(mix_key, (z.shape[0],)) < self.style_mixing,
                          jax.random.randint(cut_key, (z.shape[0],), 1, num_ws), num_ws)
    return mix_styles(w, w2, crossover, num_ws)

  def synthesize(self, params, ws: jax.Array, noise_key: jax.Array) -> jax.Array:
    """Images in [0, 1] at `resolution` (a grown level's output nearest-upsampled to it)."""
    level = self.top_level if self.level is None else self.level
    logits = self.generator.apply({"params": params}, ws, level, self.alpha, method="synthesize",
                                  rngs={"noise": noise_key})
    return progressive.resample(jax.nn.sigmoid(logits), self.resolution)

  def real_images(self, x: jax.Array) -> jax.Array:
    """The critic's real input: at `resolution`, faded between levels while one grows in (ProGAN A.1)."""
    if not self.style:
      return x
    x = self.to_model(x)
    if self.level is None or self.alpha is None:
      return x
    return progressive.fade_reals(x, 4 * 2 ** self.level, self.alpha)

  def noise(self, rng: jax.Array, n: int) -> jax.Array:
    """z ~ N(0, I), [n, latent_dim]."""
    return jax.random.normal(rng, (n, self.latent_dim))

  def onehot(self, labels: jax.Array) -> jax.Array:
    """[B, num_classes] one-hot labels; zero width for an unconditional model."""
    return jax.nn.one_hot(labels, self.num_classes)

  def generate(self, params, stats, z: jax.Array, onehot: jax.Array, train: bool, rng: jax.Array | None = None):
    """G(z); a style generator also takes `rng` (mixing and noise in training, noise otherwise)."""
    if self.style:
      rng = jax.random.key(0) if rng is None else rng  # fixed noise when none is given
      mix_key, noise_key = jax.random.split(rng)
      ws = (self.training_styles(params, z, onehot, mix_key) if train
            else self.broadcast_styles(self.map_z(params, z, onehot)))
      return self.synthesize(params, ws, noise_key), stats
    outputs, stats = run_net(self.generator, params, stats, join_label(z, onehot), train)
    return OUTPUTS[self.kind](outputs), stats

  def scores(self, params, stats, x: jax.Array, onehot: jax.Array, train: bool):
    """Critic scores [B / pack] (logits of D for the sigmoid losses), one per pack of `model.pack`
    consecutive labelled examples, and updated batch statistics."""
    if self.style:
      inputs = pack_samples(join_label(self.to_model(x), onehot), self.pack)
      level = self.top_level if self.level is None else self.level
      return self.critic.apply({"params": params}, inputs, level, self.alpha)[:, 0], stats
    outputs, stats = run_net(self.critic, params, stats, pack_samples(join_label(x, onehot), self.pack), train)
    return outputs[:, 0], stats

  def sampling_params(self, state: TrainState):
    """The EMA generator weights when `model.ema_decay` > 0, else the live ones."""
    return state.extras.get("ema", state.params["generator"])

  def batch_stats(self, state: TrainState) -> dict:
    return state.extras.get("batch_stats", {"generator": {}, "critic": {}})

  def critic_iterations(self, step: jax.Array):
    """n_critic, or WGAN's 100 during the first 25 steps and every 500th step."""
    if not self.wgan_schedule:
      return self.n_critic
    burst = (step < WGAN_BURST_STEPS) | (step % WGAN_BURST_EVERY == 0)
    return jnp.where(burst, jnp.maximum(WGAN_BURST_ITERATIONS, self.n_critic), self.n_critic)

  def real_rows(self, i: jax.Array, rng: jax.Array, total: int) -> jax.Array:
    """Rows of critic update i (indices, or a slice when i is static): chunk i of the step's batch;
    random rows past chunk n_critic."""
    rows = total // self.n_critic
    if isinstance(i, int) and i < self.n_critic:  # unrolled loop: a static slice, not a gather
      return slice(i * rows, (i + 1) * rows)
    chunk = (i % self.n_critic) * rows + jnp.arange(rows)
    if not self.wgan_schedule:
      return chunk
    return jnp.where(i < self.n_critic, chunk, jax.random.choice(rng, total, (rows,), replace=False))

  def project(self, critic_params):
    """Arjovsky et al. Alg. 1 line 7: clipping is a projection applied after every critic update."""
    return losses.clip_weights(critic_params, self.clip_value) if self.regularizer == "clip" else critic_params

  # -- losses
  def critic_objective(self, critic_params, critic_stats, real, fake, onehot, rng, apply_r1=True):
    """Critic loss (plus lambda * gradient penalty, or gamma/2 * R1 on steps where `apply_r1`) and
    the numbers worth logging."""
    real_scores, critic_stats = self.scores(critic_params, critic_stats, real, onehot, True)
    fake_scores, critic_stats = self.scores(critic_params, critic_stats, fake, onehot, True)
    adversarial = self.critic_loss_fn(real_scores, fake_scores)
    penalty, weight = jnp.zeros(()), self.gp_weight
    # One penalty per pack: the critic's input is the pack, so its gradient norm is the pack's.
    packs = lambda x: x.reshape((x.shape[0] // self.pack, self.pack) + x.shape[1:])
    score_fn = lambda p: self.scores(critic_params, critic_stats, p.reshape(real.shape), onehot, True)[0]
    if self.regularizer == "gradient_penalty":
      penalty = losses.gradient_penalty(score_fn, packs(real), packs(fake), rng)
    if self.regularizer == "r1":
      # Lazy regularisation (StyleGAN2 sec. 3.1): every r1_every-th step, weighted r1_every times.
      penalty = lax.cond(apply_r1, lambda: losses.r1_penalty(score_fn, packs(real)), lambda: jnp.zeros(()))
      weight = self.r1_gamma / 2 * self.r1_every
    d_real, d_fake = jnp.mean(jax.nn.sigmoid(real_scores)), jnp.mean(jax.nn.sigmoid(fake_scores))
    aux = {"critic_loss": adversarial, "gradient_penalty": penalty, "r1_penalty": penalty,
           "critic_real": jnp.mean(real_scores), "critic_fake": jnp.mean(fake_scores),
           "d_real": d_real, "d_fake": d_fake,
           "d_wins": ((d_real > D_WINS_THRESHOLD) & (d_fake < 1 - D_WINS_THRESHOLD)).astype(jnp.float32)}
    return adversarial + weight * penalty, (aux, critic_stats)

  def generator_objective(self, gen_params, gen_stats, critic_params, critic_stats, z, onehot, rng=None):
    fake, gen_stats = self.generate(gen_params, gen_stats, z, onehot, True, rng)
    # The critic's batch statistics belong to the critic phase: this pass does not update them.
    fake_scores, _ = self.scores(critic_params, critic_stats, fake, onehot, True)
    return self.generator_loss_fn(fake_scores), gen_stats

  # -- protocol
  def init(self, rng: jax.Array, batch: dict) -> TrainState:
    x = batch["x"][:self.pack]
    onehot = self.onehot(batch["label"][:self.pack])
    gen_key, critic_key = jax.random.split(rng)
    if self.style:  # every level's layers, the fading ones included
      noise_key = jax.random.fold_in(gen_key, 1)
      gen_vars = self.generator.init({"params": gen_key, "noise": noise_key}, self.noise(gen_key, 1),
                                     onehot[:1], self.start_level, method="init_levels")
      critic_vars = self.critic.init(critic_key, pack_samples(join_label(self.to_model(x), onehot), self.pack),
                                     self.start_level, method="init_levels")
    else:
      gen_vars = self.generator.init(gen_key, join_label(self.noise(gen_key, 1), onehot[:1]), train=False)
      critic_vars = self.critic.init(critic_key, pack_samples(join_label(x, onehot), self.pack), train=False)
    params = {"generator": gen_vars["params"], "critic": self.project(critic_vars["params"])}
    opt_state = {name: self.tx[name].init(params[name]) for name in params}
    extras = {}
    stats = {"generator": gen_vars.get("batch_stats", {}), "critic": critic_vars.get("batch_stats", {})}
    if stats["generator"] or stats["critic"]:
      extras["batch_stats"] = stats
    if self.ema_decay:
      extras["ema"] = params["generator"]
    if self.style:
      extras["w_avg"] = jnp.zeros((self.generator.w_dim,))
    return TrainState.create(rng, params, opt_state, extras)

  def critic_phase(self, state: TrainState, x, onehot, rng):
    """`critic_iterations` critic updates (each with its own real rows and fresh z), as one loop."""
    rows = x.shape[0] // self.n_critic
    gen_params = state.params["generator"]

    def update(i, carry):
      params, opt_state, stats, _ = carry
      rows_key, z_key, gp_key, style_key = jax.random.split(jax.random.fold_in(rng, i), 4)
      idx = self.real_rows(i, rows_key, x.shape[0])
      fake, gen_stats = self.generate(gen_params, stats["generator"], self.noise(z_key, rows),
                                      onehot[idx], True, style_key)
      grads, (aux, critic_stats) = jax.grad(self.critic_objective, has_aux=True)(
          params, stats["critic"], x[idx], lax.stop_gradient(fake), onehot[idx], gp_key,
          state.step % self.r1_every == 0)
      updates, opt_state = self.tx["critic"].update(grads, opt_state, params)
      params = self.project(optax.apply_updates(params, updates))
      return params, opt_state, {"generator": gen_stats, "critic": critic_stats}, aux

    aux_shapes = jax.eval_shape(lambda: update(0, (state.params["critic"], state.opt_state["critic"],
                                                   self.batch_stats(state), None))[3])
    aux0 = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), aux_shapes)
    carry = (state.params["critic"], state.opt_state["critic"], self.batch_stats(state), aux0)
    iterations = self.critic_iterations(state.step)
    if isinstance(iterations, int):  # unrolled: XLA:CPU ran DCGAN's critic convs 9x slower in a while loop
      for i in range(iterations):
        carry = update(i, carry)
      return carry
    return lax.fori_loop(0, iterations, update, carry)

  def program_key(self, step: int) -> int | None:
    """The level `step` trains at when growing (None otherwise): the trainer compiles one step per
    level, since XLA:CPU ran the lax.switch of all levels 35-54x slower than each level alone."""
    if not self.progressive:
      return None
    return progressive.level_at(int(step), self.top_level - self.start_level + 1, self.phase_steps)

  def for_program(self, key: int | None) -> "GANObjective":
    """This objective whose step trains level `key` only (see `program_key`)."""
    view = copy.copy(self)
    view.program_level = key
    return view

  def step(self, state: TrainState, batch: dict, rng: jax.Array):
    """One step at the step's level (a lax.switch over levels when growing progressively)."""
    return self.grown(state.step, lambda view, state, batch, rng: view.step_at_level(state, batch, rng),
                      state, batch, rng)

  def step_at_level(self, state: TrainState, batch: dict, rng: jax.Array):
    critic_key, gen_key = jax.random.split(rng)
    x, onehot = self.real_images(batch["x"]), self.onehot(batch["label"])
    critic_params, critic_opt, stats, metrics = self.critic_phase(state, x, onehot, critic_key)

    rows = x.shape[0] // self.n_critic
    z_key, style_key = jax.random.split(gen_key)
    z = self.noise(z_key, rows)
    (gen_loss, gen_stats), grads = jax.value_and_grad(self.generator_objective, has_aux=True)(
        state.params["generator"], stats["generator"], critic_params, stats["critic"],
        z, onehot[:rows], style_key if self.style else None)
    gen_updates, gen_opt = self.tx["generator"].update(grads, state.opt_state["generator"],
                                                       state.params["generator"])
    gen_params = optax.apply_updates(state.params["generator"], gen_updates)

    extras = dict(state.extras)
    if "batch_stats" in extras:
      extras["batch_stats"] = {"generator": gen_stats, "critic": stats["critic"]}
    if self.ema_decay:
      decay = ema_decay_at(state.step, self.ema_decay, self.ema_rampup)
      extras["ema"] = optax.incremental_update(gen_params, extras["ema"], 1.0 - decay)
    if self.style:  # StyleGAN2: w_avg <- lerp(mean w of the batch, w_avg, 0.995)
      w_mean = jnp.mean(self.map_z(state.params["generator"], z, onehot[:rows]), axis=0)
      extras["w_avg"] = W_AVG_DECAY * extras["w_avg"] + (1.0 - W_AVG_DECAY) * w_mean
    metrics = dict(metrics, generator_loss=gen_loss,
                   critic_gap=metrics["critic_real"] - metrics["critic_fake"])
    if not self.sigmoid_critic:  # D(x) = sigmoid(score) is meaningless for a Wasserstein critic
      metrics = {k: v for k, v in metrics.items() if not k.startswith("d_")}
    if self.regularizer != "gradient_penalty":
      metrics.pop("gradient_penalty")
    if self.regularizer != "r1":
      metrics.pop("r1_penalty")
    if self.progressive:
      level = self.top_level if self.level is None else self.level
      metrics.update(alpha=jnp.asarray(1.0 if self.alpha is None else self.alpha, jnp.float32),
                     resolution=jnp.asarray(4 * 2 ** level, jnp.float32))
    if self.wgan_schedule:
      metrics["critic_iterations"] = jnp.asarray(self.critic_iterations(state.step), jnp.float32)
    state = state.replace(params={"generator": gen_params, "critic": critic_params},
                          opt_state={"generator": gen_opt, "critic": critic_opt}, extras=extras)
    return state, metrics

  # -- abilities
  def generate_eval(self, state: TrainState, z: jax.Array, labels: jax.Array | None = None,
                    psi: float | None = None, noise_key: jax.Array | None = None):
    """G(z) with the sampling (EMA) weights and running batch statistics; labels cycle 0..K-1.
    A style generator truncates w towards w_avg by psi (default model.truncation_psi)."""
    labels = jnp.arange(z.shape[0]) % max(self.num_classes, 1) if labels is None else labels
    if self.style:
      params = self.sampling_params(state)
      w = self.map_z(params, z, self.onehot(labels))
      psi = self.truncation_psi if psi is None else psi
      return self.render(state, self.broadcast_styles(truncate(w, state.extras["w_avg"], psi)), noise_key)
    out, _ = self.generate(self.sampling_params(state), self.batch_stats(state)["generator"], z,
                           self.onehot(labels), False)
    return out

  def render(self, state: TrainState, ws: jax.Array, noise_key: jax.Array | None = None,
             level: int | None = None) -> jax.Array:
    """Style generator images of the data's shape from ws [B, num_ws, D] with the sampling weights,
    at the state's level (or `level`); noise from `noise_key` (fixed when None)."""
    noise_key = jax.random.key(0) if noise_key is None else noise_key
    params = self.sampling_params(state)
    if level is not None:
      return self.to_data(self.at(level, None).synthesize(params, ws, noise_key))
    return self.grown(state.step, lambda view, ws: self.to_data(view.synthesize(params, ws, noise_key)), ws)

  def sample(self, state: TrainState, rng: jax.Array, n: int, psi: float | None = None) -> jax.Array:
    """n draws; a style generator honours `psi` (default model.truncation_psi)."""
    z_key, label_key = jax.random.split(rng)
    labels = jax.random.randint(label_key, (n,), 0, max(self.num_classes, 1))
    if self.style:
      return self.generate_eval(state, self.noise(z_key, n), labels, psi, jax.random.fold_in(z_key, 1))
    if psi is not None:
      raise ValueError("psi (truncation) needs model.architecture='style'")
    return self.generate_eval(state, self.noise(z_key, n), labels)

  def fixed_noise(self, rng: jax.Array) -> jax.Array:
    """The z of the 'samples' picture (row-major, 8 per row): latent arithmetic indexes into it."""
    return self.noise(rng, PICTURE_SAMPLES)

  def latent_arithmetic(self, state: TrainState, z: jax.Array, a: Sequence[int], b: Sequence[int],
                        c: Sequence[int]) -> jax.Array:
    """[4, H, W, C]: G(mean z[a]), G(mean z[b]), G(mean z[c]), G(mean z[a] - mean z[b] + mean z[c])."""
    take = lambda idx: z[jnp.asarray(idx)]
    return latent_arithmetic(lambda zs: self.generate_eval(state, zs), take(a), take(b), take(c))

  def pictures(self, state: TrainState, batch: dict, rng: jax.Array) -> dict[str, Any]:
    if self.kind == "points":
      return {"samples": self.generate_eval(state, self.noise(rng, PICTURE_POINTS))}
    z = self.fixed_noise(rng)
    path = interpolate_codes(z[:GRID_COLUMNS], z[GRID_COLUMNS:2 * GRID_COLUMNS], 10)
    interpolation = self.generate_eval(state, path.reshape(-1, self.latent_dim),
                                       jnp.repeat(jnp.arange(GRID_COLUMNS) % max(self.num_classes, 1), 10))
    pictures = {"samples": self.generate_eval(state, z),
                "interpolation": interpolation.reshape(path.shape[:2] + self.data_shape)}
    if self.num_classes:  # one row per class, the same z down each column
      labels = jnp.repeat(jnp.arange(self.num_classes), GRID_COLUMNS)
      grid = self.generate_eval(state, jnp.tile(z[:GRID_COLUMNS], (self.num_classes, 1)), labels)
      pictures["class_grid"] = grid.reshape((self.num_classes, GRID_COLUMNS) + self.data_shape)
    if self.style:
      pictures.update(self.style_pictures(state, z, rng))
    return pictures

  def style_pictures(self, state: TrainState, z: jax.Array, rng: jax.Array) -> dict[str, jax.Array]:
    """Style mixing grid (row sources' coarse styles, column sources' fine ones; StyleGAN Fig. 3),
    noise-only variation of one image (StyleGAN Fig. 4), a truncation strip (Fig. 8), the grown levels.
    All of it is ONE synthesis call over the stacked styles (one trace: pictures compile in seconds)."""
    n, num_ws = GRID_COLUMNS, self.generator.num_ws
    params = self.sampling_params(state)
    labels = jnp.arange(2 * n) % max(self.num_classes, 1)
    w_raw = self.map_z(params, z[:2 * n], self.onehot(labels))
    w = truncate(w_raw, state.extras["w_avg"], self.truncation_psi)
    coarse, fine = w[:n], w[n:]
    crossover = jnp.full((n * n,), num_ws // 2)  # the lower half of the layers from the row source
    mixed = mix_styles(jnp.repeat(coarse, n, axis=0), jnp.tile(fine, (n, 1)), crossover, num_ws)
    psis = jnp.array([1.0, 0.7, 0.5, 0.0, -0.5, -1.0])
    strip = truncate(w_raw[None, :4], state.extras["w_avg"], psis[:, None, None])  # [psi, 4, D]
    parts = [mixed, self.broadcast_styles(jnp.concatenate([coarse, fine])),
             self.broadcast_styles(jnp.repeat(coarse[:1], 4 * n, axis=0)),  # noise differs per row
             self.broadcast_styles(jnp.swapaxes(strip, 0, 1).reshape(-1, w.shape[-1]))]
    images = self.render(state, jnp.concatenate(parts), rng)
    grid, sources, draws, strip = jnp.split(images, np.cumsum([len(p) for p in parts])[:-1])
    rows, columns = sources[:n], sources[n:]
    blank = jnp.zeros((1,) + self.data_shape)
    mixing = jnp.concatenate([jnp.concatenate([blank, columns])[None],
                              jnp.concatenate([rows[:, None], grid.reshape((n, n) + self.data_shape)], axis=1)])
    # second row: |draw - mean of the draws| x 4, where the noise acts
    variation = jnp.concatenate([draws[:n], jnp.clip(4 * jnp.abs(draws[:n] - draws.mean(0)), 0, 1)])
    pictures = {"style_mixing": mixing, "noise_variation": variation.reshape((2, n) + self.data_shape),
                "truncation": strip.reshape((4, len(psis)) + self.data_shape)}
    if self.progressive:  # the same w at every level of the schedule (alpha = 1)
      pictures["progressive_phases"] = jnp.stack(
          [self.render(state, self.broadcast_styles(coarse), level=l)
           for l in range(self.start_level, self.top_level + 1)])
    return pictures

  def warnings(self, means: dict[str, float]) -> list[str]:
    """Host-side checks of the logged interval means (the trainer logs each one)."""
    found = []
    if self.sigmoid_critic and means.get("d_wins", 0.0) > 0.5:
      found.append(f"the discriminator wins outright in {means['d_wins']:.0%} of steps "
                   f"(D(x) {means.get('d_real', float('nan')):.3f}, D(G(z)) {means.get('d_fake', float('nan')):.3f}): "
                   "generator gradients vanish; try the non-saturating loss, a lower critic learning rate or WGAN")
    return found

  def evaluate(self, state: TrainState, arrays: dict, rng: jax.Array) -> dict[str, float]:
    """Critic statistics on the test set vs as many samples; mode coverage for 2-D mixtures."""
    sample_key, critic_key = jax.random.split(rng)

    @xla_options.jit
    def batch_scores(state, x, labels, key):
      fake = self.sample(state, key, x.shape[0])
      stats = self.batch_stats(state)["critic"]
      real_scores, _ = self.scores(state.params["critic"], stats, x, self.onehot(labels), False)
      fake_scores, _ = self.scores(state.params["critic"], stats, fake, self.onehot(labels), False)
      return real_scores, fake_scores

    real, fake = [], []
    for i, batch in enumerate(eval_batches(arrays, 500)):
      rows = len(batch["x"]) - len(batch["x"]) % self.pack  # whole packs only
      if not rows:
        continue
      r, f = batch_scores(state, jnp.asarray(batch["x"][:rows]), jnp.asarray(batch["label"][:rows]),
                          jax.random.fold_in(critic_key, i))
      real.append(np.asarray(r))
      fake.append(np.asarray(f))
    real, fake = np.concatenate(real), np.concatenate(fake)
    results = {"critic_real": float(real.mean()), "critic_fake": float(fake.mean()),
               "critic_gap": float(real.mean() - fake.mean()), "num_examples": int(len(real)) * self.pack}
    if self.sigmoid_critic:
      sigmoid = lambda s: 1.0 / (1.0 + np.exp(-s))
      results.update(d_real=float(sigmoid(real).mean()), d_fake=float(sigmoid(fake).mean()))
    if self.kind == "points":
      samples = np.asarray(xla_options.jit(self.sample, static_argnums=2)(state, sample_key, NUM_SAMPLES))
      results.update(mode_coverage(samples, toy2d_mode_centres(self.dataset), toy2d_std(self.dataset)))
    if self.style:
      from genjax.evaluate import style_metrics  # the classifier and scikit-learn, on use only
      results.update(style_metrics.style_report(self, state, arrays, jax.random.fold_in(rng, 11)))
    return results

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
"""
from __future__ import annotations

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
from genjax.config import require
from genjax.data import dataset_spec, eval_batches, example_shape, num_classes
from genjax.data import toy2d_mode_centres, toy2d_std
from genjax.evaluate.mode_coverage import NUM_SAMPLES, mode_coverage
from genjax.models.autoencoder import interpolate_codes
from genjax.layers.networks import (ACTIVATIONS, NORMS, join_label, make_decoder, make_encoder, run_net,
                                    validate_architecture)
from genjax.optim import OPTIMIZERS, make_optimizer
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
REGULARIZERS = ("none", "clip", "gradient_penalty")
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
    self.pack = int(model.get("pack", 1))
    self.num_classes = num_classes(config.dataset) if model.get("conditional", False) else 0
    self.kind = dataset_spec(config.dataset).kind
    self.tx = {"generator": make_optimizer(config.optimizer),
               "critic": make_optimizer(config.get("critic_optimizer") or config.optimizer)}
    self.critic = make_encoder(model, 1, activation=model.get("critic_activation", "leaky_relu"),
                               norm=critic_norm(model), hidden=model.get("critic_hidden") or None)
    self.model = model

  @staticmethod
  def validate(config: ConfigDict) -> None:
    model = config.model
    validate_architecture(config)
    loss = model.get("loss", "non_saturating")
    require(loss in ADVERSARIAL_LOSSES, "model.loss", loss, f"one of {sorted(ADVERSARIAL_LOSSES)}")
    reg = model.get("critic_regularizer", "none")
    require(reg in REGULARIZERS, "model.critic_regularizer", reg, f"one of {REGULARIZERS}")
    n_critic = model.get("n_critic", 1)
    require(isinstance(n_critic, int) and n_critic >= 1, "model.n_critic", n_critic, "an integer >= 1")
    require(config.batch_size % n_critic == 0, "batch_size", config.batch_size,
            f"a multiple of model.n_critic={n_critic}: each critic update takes batch_size // n_critic rows")
    pack = model.get("pack", 1)
    require(isinstance(pack, int) and pack >= 1, "model.pack", pack, "an integer >= 1")
    require((config.batch_size // n_critic) % pack == 0, "batch_size", config.batch_size,
            f"batch_size // n_critic a multiple of model.pack={pack}: the critic judges packs of {pack}")
    critic_hidden = model.get("critic_hidden", ())
    require(isinstance(critic_hidden, (tuple, list)) and all(isinstance(h, int) and h >= 1 for h in critic_hidden),
            "model.critic_hidden", critic_hidden, "a tuple of positive integers (() = model.hidden)")
    critic_activation = model.get("critic_activation", "leaky_relu")
    require(critic_activation in CRITIC_ACTIVATIONS, "model.critic_activation", critic_activation,
            f"one of {CRITIC_ACTIVATIONS}")
    pieces = model.get("maxout_pieces", 5)
    require(isinstance(pieces, int) and pieces >= 1, "model.maxout_pieces", pieces, "an integer >= 1")
    for key, default, ok, allowed in (
        ("clip_value", 0.01, lambda v: v > 0, "a number > 0"),
        ("gp_weight", 10.0, lambda v: v >= 0, "a number >= 0"),
        ("ema_decay", 0.0, lambda v: 0 <= v < 1, "a number in [0, 1)")):
      value = model.get(key, default)
      require(isinstance(value, (int, float)) and ok(value), f"model.{key}", value, allowed)
    norm = critic_norm(model)
    require(norm in NORMS, "model.critic_norm", norm, f"one of {NORMS} or '' (= model.norm)")
    # Batch norm mixes examples, so a per-example input gradient no longer means anything.
    require(not (reg == "gradient_penalty" and norm == "batch"), "model.critic_norm", norm, "'none' or 'layer' with the gradient penalty (Gulrajani et al. sec. 4)")
    critic_opt = config.get("critic_optimizer")
    if critic_opt:
      require(critic_opt.get("name") in OPTIMIZERS, "critic_optimizer.name", critic_opt.get("name"),
              f"one of {OPTIMIZERS.names()}")
      lr = critic_opt.get("learning_rate")
      require(isinstance(lr, (int, float)) and lr > 0, "critic_optimizer.learning_rate", lr, "a number > 0")

  # -- pieces
  @functools.cached_property
  def data_shape(self) -> tuple[int, ...]:
    return example_shape(self.dataset)

  @functools.cached_property
  def generator(self):
    return make_decoder(self.model, self.data_shape)

  def noise(self, rng: jax.Array, n: int) -> jax.Array:
    """z ~ N(0, I), [n, latent_dim]."""
    return jax.random.normal(rng, (n, self.latent_dim))

  def onehot(self, labels: jax.Array) -> jax.Array:
    """[B, num_classes] one-hot labels; zero width for an unconditional model."""
    return jax.nn.one_hot(labels, self.num_classes)

  def generate(self, params, stats, z: jax.Array, onehot: jax.Array, train: bool):
    outputs, stats = run_net(self.generator, params, stats, join_label(z, onehot), train)
    return OUTPUTS[self.kind](outputs), stats

  def scores(self, params, stats, x: jax.Array, onehot: jax.Array, train: bool):
    """Critic scores [B / pack] (logits of D for the sigmoid losses), one per pack of `model.pack`
    consecutive labelled examples, and updated batch statistics."""
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
  def critic_objective(self, critic_params, critic_stats, real, fake, onehot, rng):
    """Critic loss (plus lambda * gradient penalty) and the numbers worth logging."""
    real_scores, critic_stats = self.scores(critic_params, critic_stats, real, onehot, True)
    fake_scores, critic_stats = self.scores(critic_params, critic_stats, fake, onehot, True)
    adversarial = self.critic_loss_fn(real_scores, fake_scores)
    penalty = jnp.zeros(())
    if self.regularizer == "gradient_penalty":
      # One penalty per pack: the critic's input is the pack, so its gradient norm is the pack's.
      packs = lambda x: x.reshape((x.shape[0] // self.pack, self.pack) + x.shape[1:])
      score_fn = lambda p: self.scores(critic_params, critic_stats, p.reshape(real.shape), onehot, True)[0]
      penalty = losses.gradient_penalty(score_fn, packs(real), packs(fake), rng)
    d_real, d_fake = jnp.mean(jax.nn.sigmoid(real_scores)), jnp.mean(jax.nn.sigmoid(fake_scores))
    aux = {"critic_loss": adversarial, "gradient_penalty": penalty,
           "critic_real": jnp.mean(real_scores), "critic_fake": jnp.mean(fake_scores),
           "d_real": d_real, "d_fake": d_fake,
           "d_wins": ((d_real > D_WINS_THRESHOLD) & (d_fake < 1 - D_WINS_THRESHOLD)).astype(jnp.float32)}
    return adversarial + self.gp_weight * penalty, (aux, critic_stats)

  def generator_objective(self, gen_params, gen_stats, critic_params, critic_stats, z, onehot):
    fake, gen_stats = self.generate(gen_params, gen_stats, z, onehot, True)
    # The critic's batch statistics belong to the critic phase: this pass does not update them.
    fake_scores, _ = self.scores(critic_params, critic_stats, fake, onehot, True)
    return self.generator_loss_fn(fake_scores), gen_stats

  # -- protocol
  def init(self, rng: jax.Array, batch: dict) -> TrainState:
    x = batch["x"][:self.pack]
    onehot = self.onehot(batch["label"][:self.pack])
    gen_key, critic_key = jax.random.split(rng)
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
    return TrainState.create(rng, params, opt_state, extras)

  def critic_phase(self, state: TrainState, x, onehot, rng):
    """`critic_iterations` critic updates (each with its own real rows and fresh z), as one loop."""
    rows = x.shape[0] // self.n_critic
    gen_params = state.params["generator"]

    def update(i, carry):
      params, opt_state, stats, _ = carry
      rows_key, z_key, gp_key = jax.random.split(jax.random.fold_in(rng, i), 3)
      idx = self.real_rows(i, rows_key, x.shape[0])
      fake, gen_stats = self.generate(gen_params, stats["generator"], self.noise(z_key, rows),
                                      onehot[idx], True)
      grads, (aux, critic_stats) = jax.grad(self.critic_objective, has_aux=True)(
          params, stats["critic"], x[idx], lax.stop_gradient(fake), onehot[idx], gp_key)
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

  def step(self, state: TrainState, batch: dict, rng: jax.Array):
    critic_key, gen_key = jax.random.split(rng)
    x, onehot = batch["x"], self.onehot(batch["label"])
    critic_params, critic_opt, stats, metrics = self.critic_phase(state, x, onehot, critic_key)

    rows = x.shape[0] // self.n_critic
    (gen_loss, gen_stats), grads = jax.value_and_grad(self.generator_objective, has_aux=True)(
        state.params["generator"], stats["generator"], critic_params, stats["critic"],
        self.noise(gen_key, rows), onehot[:rows])
    gen_updates, gen_opt = self.tx["generator"].update(grads, state.opt_state["generator"],
                                                       state.params["generator"])
    gen_params = optax.apply_updates(state.params["generator"], gen_updates)

    extras = dict(state.extras)
    if "batch_stats" in extras:
      extras["batch_stats"] = {"generator": gen_stats, "critic": stats["critic"]}
    if self.ema_decay:
      extras["ema"] = optax.incremental_update(gen_params, extras["ema"], 1.0 - self.ema_decay)
    metrics = dict(metrics, generator_loss=gen_loss,
                   critic_gap=metrics["critic_real"] - metrics["critic_fake"])
    if not self.sigmoid_critic:  # D(x) = sigmoid(score) is meaningless for a Wasserstein critic
      metrics = {k: v for k, v in metrics.items() if not k.startswith("d_")}
    if self.regularizer != "gradient_penalty":
      metrics.pop("gradient_penalty")
    if self.wgan_schedule:
      metrics["critic_iterations"] = jnp.asarray(self.critic_iterations(state.step), jnp.float32)
    state = state.replace(params={"generator": gen_params, "critic": critic_params},
                          opt_state={"generator": gen_opt, "critic": critic_opt}, extras=extras)
    return state, metrics

  # -- abilities
  def generate_eval(self, state: TrainState, z: jax.Array, labels: jax.Array | None = None):
    """G(z) with the sampling (EMA) weights and running batch statistics; labels cycle 0..K-1."""
    labels = jnp.arange(z.shape[0]) % max(self.num_classes, 1) if labels is None else labels
    out, _ = self.generate(self.sampling_params(state), self.batch_stats(state)["generator"], z,
                           self.onehot(labels), False)
    return out

  def sample(self, state: TrainState, rng: jax.Array, n: int) -> jax.Array:
    z_key, label_key = jax.random.split(rng)
    labels = jax.random.randint(label_key, (n,), 0, max(self.num_classes, 1))
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
    return results

"""The GAN family: optimal discriminator, Lipschitz constraints, mode coverage and short CPU trainings."""
from __future__ import annotations

import importlib.util
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import genjax  # noqa: F401  registers families and datasets
from genjax import losses
from genjax.config import ConfigError, validate
from genjax.configs import gan_config
from genjax.data import load_dataset, toy2d_mode_centres
from genjax.evaluate import mode_coverage as mc
from genjax.models.gan import GANObjective, latent_arithmetic
from genjax.trainer import train

# A small ring keeps dataset preparation under two seconds.
SMALL_RING = {"name": "toy2d", "mixture": "ring", "num_train": 2560, "num_test": 500}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("tfds"))


def experiment(name: str, *args):
  path = os.path.join(os.path.dirname(__file__), "..", "experiments", f"{name}.py")
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(*args)


def first_batch(config, rows: int | None = None) -> dict:
  arrays = load_dataset(config.dataset, "train")
  rows = rows or config.batch_size
  return {k: jnp.asarray(v[:rows]) for k, v in arrays.items()}


def critic_leaves(state) -> list[np.ndarray]:
  return [np.asarray(w) for w in jax.tree_util.tree_leaves(state.params["critic"])]


# ----------------------------------------------------------------------------- optimal discriminator

def jsd(p: np.ndarray, q: np.ndarray) -> float:
  m = (p + q) / 2
  kl = lambda a, b: float(np.sum(a * np.log(a / b)))
  return 0.5 * kl(p, m) + 0.5 * kl(q, m)


@pytest.mark.parametrize("same", [False, True])
def test_optimal_discriminator_and_its_value(same):
  """Goodfellow et al. Prop. 1 and Thm. 1: D* = p_data / (p_data + p_g), V(D*, G) = -log 4 + 2 JSD."""
  # Rational probabilities: repeating each support point count times makes the losses' batch means
  # exact expectations under the discrete distributions.
  data_counts = np.array([1, 2, 3, 4, 6, 8])
  g_counts = data_counts if same else np.array([7, 5, 4, 3, 3, 2])
  p_data, p_g = data_counts / data_counts.sum(), g_counts / g_counts.sum()
  assert data_counts.sum() == g_counts.sum() == 24

  def loss(logits):  # one logit per support point
    return losses.gan_discriminator_loss(jnp.repeat(logits, data_counts), jnp.repeat(logits, g_counts))

  tx = optax.adam(0.05)

  def descend(_, carry):
    logits, opt_state = carry
    updates, opt_state = tx.update(jax.grad(loss)(logits), opt_state)
    return optax.apply_updates(logits, updates), opt_state

  logits = jnp.zeros(len(p_data))
  logits, _ = jax.jit(lambda l: jax.lax.fori_loop(0, 4000, descend, (l, tx.init(l))))(logits)
  np.testing.assert_allclose(jax.nn.sigmoid(logits), p_data / (p_data + p_g), atol=1e-3)
  value = -float(loss(logits))
  np.testing.assert_allclose(value, -math.log(4) + 2 * jsd(p_data, p_g), atol=1e-5)
  if same:
    np.testing.assert_allclose(value, -math.log(4), atol=1e-5)


# ----------------------------------------------------------------------------- Lipschitz constraints

def test_gradient_penalty_of_a_linear_critic():
  """For f(x) = w.x the input gradient is w everywhere: GP = (||w|| - 1)^2 exactly."""
  keys = jax.random.split(jax.random.key(0), 3)
  real, fake = jax.random.normal(keys[0], (32, 5)), jax.random.normal(keys[1], (32, 5))
  direction = jax.random.normal(keys[2], (5,))
  direction = direction / jnp.linalg.norm(direction)
  penalty = jax.jit(lambda norm: losses.gradient_penalty(lambda x: x @ (norm * direction), real, fake,
                                                           keys[0]))
  penalties = []
  for norm in (1.0, 1.5, 2.0, 4.0):
    gp = float(penalty(norm))
    np.testing.assert_allclose(gp, (norm - 1.0) ** 2, atol=1e-5)
    penalties.append(gp)
  assert penalties[0] < 1e-8 and penalties == sorted(penalties)
  # Images too: the gradient norm is taken over every non-batch axis.
  w = jnp.full((4, 4, 1), 0.5)  # ||w|| = 2
  img = lambda k: jax.random.uniform(k, (8, 4, 4, 1))
  gp = losses.gradient_penalty(lambda x: jnp.sum(x * w, axis=(1, 2, 3)), img(keys[0]), img(keys[1]), keys[2])
  np.testing.assert_allclose(float(gp), 1.0, atol=1e-5)


def _clipped_wgan(data_dir, **model):
  config = gan_config("wgan", dict(SMALL_RING, data_dir=data_dir), critic_batch_size=16,
                      optimizer={"learning_rate": 0.05}, latent_dim=4, hidden=(16, 16), **model)
  validate(config)
  objective = GANObjective(config)
  batch = first_batch(config)
  return config, objective, batch


def _record_projections(objective, records: list):
  """Wraps the projection so every critic update inside the jitted step reports max |w|."""
  project = objective.project

  def spy(params):
    params = project(params)
    biggest = jnp.max(jnp.stack([jnp.max(jnp.abs(w)) for w in jax.tree_util.tree_leaves(params)]))
    jax.debug.callback(lambda m: records.append(float(m)), biggest)
    return params
  objective.project = spy


def test_weight_clipping_after_every_critic_update(data_dir):
  config, objective, batch = _clipped_wgan(data_dir)
  c, n_critic = config.model.clip_value, config.model.n_critic
  state = objective.init(jax.random.key(0), batch)
  assert all(np.all(np.abs(w) <= c) for w in critic_leaves(state))  # init is projected too
  records = []
  _record_projections(objective, records)
  step = jax.jit(objective.step)
  new_state, metrics = step(state, batch, jax.random.key(1))
  jax.effects_barrier()
  assert len(records) == n_critic and max(records) <= c
  # The large learning rate pushes weights out every update: the projection is what holds them.
  assert np.isclose(max(records), c)
  leaves = critic_leaves(new_state)
  assert all(np.all(np.abs(w) <= c + 1e-7) for w in leaves)
  assert not all(np.array_equal(a, b) for a, b in zip(leaves, critic_leaves(state)))
  assert np.isfinite(float(metrics["critic_gap"]))

  # Critic weights that were never clipped are inside [-c, c] after one step.
  unclipped = state.replace(params=dict(state.params, critic=jax.tree_util.tree_map(
      lambda w: 10.0 * w + 0.5, state.params["critic"])))
  assert max(np.max(np.abs(w)) for w in critic_leaves(unclipped)) > 10 * c
  clipped, _ = step(unclipped, batch, jax.random.key(2))
  assert all(np.all(np.abs(w) <= c + 1e-7) for w in critic_leaves(clipped))


def test_wgan_schedule_runs_100_critic_updates_early_and_every_500th(data_dir):
  config, objective, batch = _clipped_wgan(data_dir, wgan_schedule=True)
  state = objective.init(jax.random.key(0), batch)
  records = []
  _record_projections(objective, records)
  step = jax.jit(objective.step)
  for at, expected in ((0, 100), (24, 100), (25, 5), (500, 100), (501, 5)):
    records.clear()
    _, metrics = step(state.replace(step=jnp.asarray(at, jnp.int32)), batch, jax.random.key(at))
    jax.effects_barrier()
    assert len(records) == expected and float(metrics["critic_iterations"]) == expected
    assert max(records) <= config.model.clip_value


def test_generator_ema_warms_up_with_stylegan2s_half_life(data_dir):
  """ema_rampup r: half-life min(r x step, the decay's), so step 0 copies the generator (no weight on
  the init); ema_rampup 0 keeps the constant decay."""
  from genjax.optim import ema_decay_at
  steps = jnp.asarray([0, 10, 100, 100_000])  # 0.05 x 100,000 exceeds 0.999's half-life (693 steps)
  np.testing.assert_allclose(ema_decay_at(steps, 0.999, 0.05), [0.0, 0.5 ** 2, 0.5 ** 0.2, 0.999], rtol=1e-6)
  np.testing.assert_allclose(ema_decay_at(steps, 0.999, 0.0), 0.999)
  for rampup, cases in ((0.05, ((0, 0.0), (40, 0.5 ** 0.5))), (0.0, ((40, 0.9),))):
    _, objective, batch = _clipped_wgan(data_dir, ema_decay=0.9, ema_rampup=rampup)
    start, step = objective.init(jax.random.key(0), batch), jax.jit(objective.step)
    start = start.replace(extras=dict(start.extras, ema=jax.tree_util.tree_map(jnp.zeros_like, start.extras["ema"])))
    for at, decay in cases:
      new_state, _ = step(start.replace(step=jnp.asarray(at, jnp.int32)), batch, jax.random.key(1))
      for ema, live in zip(jax.tree_util.tree_leaves(new_state.extras["ema"]),
                           jax.tree_util.tree_leaves(new_state.params["generator"])):
        np.testing.assert_allclose(ema, (1 - decay) * live, rtol=1e-5, atol=1e-7)  # from a zero average


def test_gan_validation_names_the_key():
  with pytest.raises(ConfigError, match="model.loss"):
    validate(gan_config(loss="hinge"))
  with pytest.raises(ConfigError, match="batch_size"):
    config = gan_config("wgan")
    config.model.n_critic = 3  # 320 rows do not split into 3 critic minibatches
    validate(config)
  with pytest.raises(ConfigError, match="critic_norm"):
    validate(gan_config("wgan_gp", norm="batch"))
  from genjax.config import is_int, is_number  # every family's checks: True is an int in Python
  assert is_int(3) and not is_int(True) and not is_int(3.0)
  assert is_number(0.5) and is_number(2) and not is_number(False) and not is_number("1")


# ----------------------------------------------------------------------------- mode coverage

def test_mode_coverage_counts_modes_quality_and_reverse_kl():
  centres = toy2d_mode_centres({"mixture": "ring"})
  std, rng = 0.02, np.random.default_rng(0)
  everywhere = centres[np.arange(2500) % 8] + std * rng.normal(size=(2500, 2))
  result = mc.mode_coverage(everywhere, centres, std)
  assert result["modes_covered"] == 8 and result["high_quality_percent"] > 99.0
  assert result["reverse_kl_all_samples"] < 1e-5  # 2500 is not a multiple of 8: four modes get one more
  assert result["reverse_kl"] < 1e-4  # over the high-quality samples only (PacGAN): a few fall outside 3 std
  collapsed = mc.mode_coverage(centres[[3] * 2500] + std * rng.normal(size=(2500, 2)), centres, std)
  assert collapsed["modes_covered"] == 1
  np.testing.assert_allclose(collapsed["reverse_kl"], math.log(8), atol=1e-9)
  half = np.concatenate([everywhere[:1250], np.zeros((1250, 2))])  # half at the centre: low quality
  result = mc.mode_coverage(half, centres, std)
  assert result["modes_covered"] == 8 and abs(result["high_quality_percent"] - 50.0) < 1.0
  np.testing.assert_allclose(mc.reverse_kl_to_uniform(np.array([0.5, 0.5, 0.0, 0.0])), math.log(2))


def test_latent_arithmetic_decodes_the_combined_mean():
  z = jnp.arange(12.0).reshape(6, 2)
  out = latent_arithmetic(lambda zs: zs * 10, z[:2], z[2:4], z[4:])
  np.testing.assert_allclose(out[3], 10 * (z[:2].mean(0) - z[2:4].mean(0) + z[4:].mean(0)))
  np.testing.assert_allclose(out[:3], 10 * jnp.stack([z[:2].mean(0), z[2:4].mean(0), z[4:].mean(0)]))


# ----------------------------------------------------------------------------- short trainings

def nearest_neighbour_distance(samples: np.ndarray, data: np.ndarray) -> float:
  """Mean squared distance from each sample to its nearest data point (lower is closer to the data)."""
  s, d = samples.reshape(len(samples), -1), data.reshape(len(data), -1)
  sq = (s * s).sum(1)[:, None] + (d * d).sum(1)[None] - 2 * s @ d.T
  return float(np.mean(np.min(sq, axis=1)))


def test_wgan_on_digits_moves_samples_towards_the_data(data_dir, tmp_path):
  config = experiment("wgan")
  config.dataset.data_dir = data_dir
  config.update(num_steps=100, log_every=50, sample_every=0, checkpoint_every=1000)
  objective = GANObjective(config)
  init = objective.init(jax.random.key(config.seed), first_batch(config))
  state = train(config, str(tmp_path / "wgan"))
  test = load_dataset(config.dataset, "test")["x"]
  key = jax.random.key(7)
  before = nearest_neighbour_distance(np.asarray(objective.sample(init, key, 256)), test)
  after = nearest_neighbour_distance(np.asarray(objective.sample(state, key, 256)), test)
  assert np.isfinite(after) and after < 0.7 * before, (before, after)
  metrics = [eval(line.replace("NaN", "float('nan')")) for line in open(tmp_path / "wgan" / "metrics.jsonl")]
  assert all(np.isfinite(m["critic_gap"]) for m in metrics)
  assert metrics[-1]["critic_gap"] > 0  # the critic tells real from fake
  # Pictures: fixed-noise samples and interpolations are images in [0, 1].
  pictures = jax.jit(objective.pictures)(state, first_batch(config, 64), jax.random.key(3))
  assert pictures["samples"].shape == (64, 8, 8, 1)
  assert pictures["interpolation"].shape == (8, 10, 8, 8, 1)
  assert 0.0 <= float(pictures["samples"].min()) and float(pictures["samples"].max()) <= 1.0


def test_gan_on_the_ring_moves_samples_onto_the_modes(data_dir, tmp_path):
  """A 1000-step non-saturating GAN is not yet on the modes (0-1 of 8 covered, and which depends on
  the seed), so the reliable signal is the mean distance to the nearest mode, which falls from ~2
  (samples at the origin) to ~0.8; coverage and quality must not get worse."""
  config = experiment("gan_toy_ring")
  # The experiment's PacGAN protocol (Adam 1e-4, 4 x 400 generator) needs far more than 400 steps:
  # this test keeps the earlier toy setting (Gulrajani et al.'s Adam 1e-3 / 0.5, 3 x 128 MLPs, radius 2).
  config.dataset.update(SMALL_RING, data_dir=data_dir, radius=2.0, std=0.02)
  config.model.update(latent_dim=8, hidden=(128, 128, 128), norm="none", critic_norm="",
                      critic_activation="leaky_relu", critic_hidden=())
  config.optimizer.update(learning_rate=1e-3, b1=0.5)
  config.update(num_steps=400, batch_size=64, log_every=200, sample_every=0, checkpoint_every=5000)
  objective = GANObjective(config)
  test = load_dataset(config.dataset, "test")
  init = objective.init(jax.random.key(config.seed), first_batch(config))
  before = objective.evaluate(init, test, jax.random.key(5))
  state = train(config, str(tmp_path / "ring"))
  after = objective.evaluate(state, test, jax.random.key(5))
  assert after["mean_mode_distance"] < 0.6 * before["mean_mode_distance"], (before, after)
  assert after["modes_covered"] >= before["modes_covered"], (before, after)
  assert after["high_quality_percent"] >= before["high_quality_percent"], (before, after)
  assert np.isfinite(after["critic_gap"]) and 0.0 < after["d_real"] < 1.0
  assert after["num_modes"] == 8 and 0.0 <= after["reverse_kl"] <= after["max_reverse_kl"] + 1e-9

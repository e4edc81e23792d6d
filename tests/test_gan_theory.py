"""The lecture's GAN theory, checked: D* = p_data / (p_data + p_G), V(G, D*) = -log 4 + 2 JSD, and the
Wasserstein example where KL = inf and JSD = log 2 are flat in theta but a critic recovers |theta|."""
import math

import jax
import numpy as np
import pytest

from genjax.evaluate import divergences as dv

GRID = np.linspace(-6.0, 6.0, 2001)
WEIGHTS = dv.trapezoid_weights(GRID)
# Two 1-D mixtures with overlapping supports (equal widths keep the log-ratio tame in the tails).
P_DATA = dv.gaussian_mixture_density(GRID, [-1.5, 1.5], [0.6, 0.6], [0.4, 0.6])
P_G = dv.gaussian_mixture_density(GRID, [-0.5, 0.5], [0.6, 0.6])
LOG2 = math.log(2.0)


def test_quadrature_matches_closed_forms():
  m1, s1, m2, s2 = 0.3, 0.7, -0.4, 1.3
  p, q = dv.gaussian_mixture_density(GRID, [m1], [s1]), dv.gaussian_mixture_density(GRID, [m2], [s2])
  closed_kl = math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
  assert np.sum(WEIGHTS * p) == pytest.approx(1.0, abs=1e-9)
  assert dv.kl_divergence(p, q, WEIGHTS) == pytest.approx(closed_kl, abs=1e-6)
  assert dv.kl_divergence(p, p, WEIGHTS) == pytest.approx(0.0, abs=1e-12)
  jsd = dv.js_divergence(p, q, WEIGHTS)
  assert 0 < jsd < LOG2 and jsd == pytest.approx(dv.js_divergence(q, p, WEIGHTS), abs=1e-12)
  # Disjoint supports: JSD = log 2 exactly, KL infinite.
  left, right = (GRID < -1) / np.sum(GRID < -1), (GRID > 1) / np.sum(GRID > 1)  # masses
  assert dv.js_divergence(left, right) == pytest.approx(LOG2, abs=1e-12)
  assert dv.kl_divergence(left, right) == math.inf


def test_wasserstein_1d_equals_sorted_matching():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=50), rng.normal(1.0, 2.0, size=50)
  masses = np.full(50, 1 / 50)
  # Equal-mass samples on the line: the optimal coupling matches the sorted samples.
  assert dv.wasserstein_1d(a, masses, b, masses) == pytest.approx(
      np.mean(np.abs(np.sort(a) - np.sort(b))), rel=1e-12)


def test_optimal_discriminator_maximises_the_integrand_pointwise():
  d_values = np.linspace(1e-4, 1 - 1e-4, 20001)
  integrand = P_DATA[:, None] * np.log(d_values) + P_G[:, None] * np.log1p(-d_values)
  brute = d_values[np.argmax(integrand, axis=1)]
  d_star = dv.optimal_discriminator(P_DATA, P_G)
  seen = np.maximum(P_DATA, P_G) > 1e-3
  np.testing.assert_allclose(brute[seen], d_star[seen], atol=1e-4)
  v_star = dv.game_value(d_star, P_DATA, P_G, WEIGHTS)
  assert v_star == pytest.approx(-dv.LOG4 + 2 * dv.js_divergence(P_DATA, P_G, WEIGHTS), abs=1e-9)
  assert dv.game_value(dv.optimal_discriminator(P_DATA, P_DATA), P_DATA, P_DATA, WEIGHTS) == pytest.approx(
      -dv.LOG4, abs=1e-9)
  wiggle = np.clip(d_star + 0.05 * np.sin(3 * GRID), 1e-6, 1 - 1e-6)
  assert dv.game_value(wiggle, P_DATA, P_G, WEIGHTS) < v_star - 1e-4


def test_trained_discriminator_matches_the_optimum():
  """An MLP trained with gan_discriminator_loss (Adam) reaches D* and the value -log 4 + 2 JSD."""
  pairs = [(P_DATA, P_G), (P_DATA, P_DATA)]
  d, trace = dv.fit_discriminators_1d(pairs, GRID, jax.random.PRNGKey(0), num_steps=600)
  for (p, q), trained, losses in zip(pairs, d, trace):
    d_star = dv.optimal_discriminator(p, q)
    seen = np.maximum(p, q) > 1e-2 * max(p.max(), q.max())
    assert np.max(np.abs(trained - d_star)[seen]) < 0.02
    expected = -dv.LOG4 + 2 * dv.js_divergence(p, q, WEIGHTS)
    assert dv.game_value(trained, p, q, WEIGHTS) == pytest.approx(expected, abs=0.01)
    assert dv.game_value(trained, p, q, WEIGHTS) <= dv.game_value(d_star, p, q, WEIGHTS) + 1e-9
    assert losses[-50:].mean() < losses[:10].mean()
  assert dv.game_value(d[1], P_DATA, P_DATA, WEIGHTS) == pytest.approx(-dv.LOG4, abs=0.01)


@pytest.mark.parametrize("theta", [-2.0, -0.5, 0.1, 1.0, 2.0])
def test_parallel_lines_kl_infinite_jsd_flat_wasserstein_linear(theta):
  found = dv.parallel_lines_divergences(theta)
  assert found["kl"] == math.inf
  assert found["jsd"] == pytest.approx(LOG2, abs=1e-12)
  assert found["optimal_value"] == pytest.approx(-dv.LOG4 + 2 * LOG2, abs=1e-12)  # = 0
  assert found["wasserstein"] == pytest.approx(abs(theta), abs=1e-12)
  same = dv.parallel_lines_divergences(0.0)
  assert (same["kl"], same["jsd"], same["wasserstein"]) == (0.0, 0.0, 0.0)
  assert same["optimal_value"] == pytest.approx(-dv.LOG4, abs=1e-12)


THETAS = [0.0, 0.5, 1.0, 1.5, 2.0, -0.5, -1.0, -2.0]
POSITIVE, NEGATIVE = [0, 1, 2, 3, 4], [0, 5, 6, 7]  # indices into THETAS along each direction


@pytest.fixture(scope="module")
def sweep():
  """GAN discriminator, WGAN-GP and clipped critics for every theta: one compiled program."""
  return dv.lines_sweep(THETAS, jax.random.PRNGKey(0), num_steps=500)


def test_gradient_penalty_critic_estimates_theta(sweep):
  out = sweep["gradient_penalty"]
  for theta, gap, normalised in zip(THETAS, out["gap"], out["normalised_gap"]):
    # The penalty is soft: the critic's slope settles at 1 + W / (2 lambda), a known overshoot.
    assert gap == pytest.approx(dv.penalised_linear_gap(abs(theta), 10.0), abs=0.03 + 0.03 * abs(theta))
    if 0.5 <= abs(theta) <= 2:
      assert normalised == pytest.approx(abs(theta), rel=0.10)


def test_clipped_critic_is_monotone_in_theta(sweep):
  """Clipping fixes the critic's scale, not its slope: the gap is K |theta| for an unknown K, so only
  its order is checked, along each direction (the net's initialisation is not symmetric in x)."""
  gaps = sweep["clip"]["gap"]
  assert abs(gaps[0]) < 1e-6
  assert np.all(np.diff(gaps[POSITIVE]) > 0) and np.all(np.diff(gaps[NEGATIVE]) > 0), gaps


def test_gan_discriminator_value_is_flat_in_theta(sweep):
  values = sweep["gan"]["value"]
  assert values[0] == pytest.approx(-dv.LOG4, abs=0.01)  # p = q: D = 1/2 is all it can do
  # Disjoint supports: the discriminator separates them and V -> -log 4 + 2 log 2 = 0 for every theta.
  np.testing.assert_allclose(values[1:], 0.0, atol=0.02)


# ----------------------------------------------------------------------------- PacGAN pieces

def _pac_objective(pack: int, **model):
  from genjax.configs import gan_config
  from genjax.models.gan import GANObjective
  config = gan_config("wgan_gp", {"name": "toy2d", "mixture": "ring"}, 8, latent_dim=2,
                      hidden=(16,), pack=pack, **model)
  return GANObjective(config), config


def test_pack_samples_concatenates_consecutive_examples():
  from genjax.models.gan import pack_samples
  points = np.arange(12.0).reshape(6, 2)
  np.testing.assert_array_equal(pack_samples(points, 3), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  images = np.arange(4 * 2 * 2 * 1.0).reshape(4, 2, 2, 1)
  packed = np.asarray(pack_samples(images, 2))
  assert packed.shape == (2, 2, 2, 2)  # channels of the two images side by side
  np.testing.assert_array_equal(packed[1, ..., 0], images[2, ..., 0])
  np.testing.assert_array_equal(packed[1, ..., 1], images[3, ..., 0])
  np.testing.assert_array_equal(pack_samples(points, 1), points)


def test_packed_critic_judges_m_samples_concatenated():
  """pack = 2: the critic's first layer reads 2 x 2 coordinates, and its score for a pack is the
  plain MLP applied to the two samples concatenated; the gradient penalty is taken per pack."""
  objective, _ = _pac_objective(2)
  x = jax.random.normal(jax.random.PRNGKey(1), (8, 2))
  state = objective.init(jax.random.PRNGKey(0), {"x": x, "label": np.zeros(8, np.int32)})
  critic = state.params["critic"]
  assert critic["Dense_0"]["kernel"].shape == (4, 16)
  scores, _ = objective.scores(critic, {}, x, objective.onehot(np.zeros(8, np.int32)), False)
  manual = objective.critic.apply({"params": critic}, x.reshape(4, 4))[:, 0]
  np.testing.assert_allclose(scores, manual, rtol=1e-6)
  single, _ = _pac_objective(1)
  assert single.init(jax.random.PRNGKey(0), {"x": x, "label": np.zeros(8, np.int32)}).params[
      "critic"]["Dense_0"]["kernel"].shape == (2, 16)
  # real = fake: every interpolate is x, and the penalty is the mean over PACKS of (||grad|| - 1)^2.
  grads = jax.grad(lambda p: objective.critic.apply({"params": critic}, p)[:, 0].sum())(x.reshape(4, 4))
  expected = np.mean((np.linalg.norm(grads, axis=1) - 1) ** 2)
  _, (aux, _) = objective.critic_objective(critic, {}, x, x, objective.onehot(np.zeros(8, np.int32)),
                                           jax.random.PRNGKey(2))
  assert float(aux["gradient_penalty"]) == pytest.approx(expected, rel=1e-4)


def test_maxout_is_the_max_over_pieces():
  from genjax.layers.maxout import MaxoutMLP, maxout
  x = np.random.default_rng(0).normal(size=(3, 10))
  np.testing.assert_allclose(maxout(x, 5), np.stack([x[:, :5].max(1), x[:, 5:].max(1)], 1), rtol=1e-6)
  net = MaxoutMLP((7, 7), 1, pieces=3)
  params = net.init(jax.random.PRNGKey(0), np.zeros((1, 2)))["params"]
  assert params["Maxout_0"]["Dense_0"]["kernel"].shape == (2, 21)
  assert net.apply({"params": params}, np.zeros((4, 2))).shape == (4, 1)


def test_bad_pack_is_one_line_error():
  from tests.helpers import run_cli
  result = run_cli("--config", "experiments/gan_toy_ring.py", "--workdir", "/tmp/never_written_pack",
                   "--config.model.pack=3")
  assert result.returncode == 2, result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith("error: config.batch_size=100 is not allowed")
  assert "model.pack=3" in result.stderr

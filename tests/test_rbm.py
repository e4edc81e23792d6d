"""RBM family: free energy and log Z against brute force, AIS against exact log Z, Gibbs sampling
against exact p(v), CD-1 raising the exact likelihood, and the CLI / notebook paths."""
from __future__ import annotations

import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genjax
from genjax.config import ConfigError, validate
from genjax.data import Batches, load_dataset
from genjax.evaluate import likelihood, partition
from genjax.models import rbm
from tests.helpers import load_experiment, run_cli, tiny


def random_params(num_visible: int, num_hidden: int, scale: float = 1.0, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  return {"weights": jnp.asarray(scale * rng.normal(size=(num_visible, num_hidden)), jnp.float32),
          "visible_bias": jnp.asarray(rng.normal(size=num_visible), jnp.float32),
          "hidden_bias": jnp.asarray(rng.normal(size=num_hidden), jnp.float32)}


def all_states(n: int) -> np.ndarray:
  return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def brute_force_negative_energies(params: dict) -> np.ndarray:
  """-E(v, h) = b.v + c.h + v.W.h for every (v, h): [2^V, 2^H] in float64."""
  w, b, c = (np.asarray(params[k], np.float64) for k in ("weights", "visible_bias", "hidden_bias"))
  v, h = all_states(w.shape[0]), all_states(w.shape[1])
  return (v @ b)[:, None] + (h @ c)[None, :] + v @ w @ h.T


def logsumexp(a, axis=None):
  top = np.max(a, axis=axis, keepdims=True)
  return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(a - top), axis=axis))


# ----------------------------------------------------------------------------- closed forms

def test_free_energy_equals_brute_force_marginalisation_over_h():
  params = random_params(3, 4)
  expected = logsumexp(brute_force_negative_energies(params), axis=1)  # log sum_h exp(-E(v, h))
  got = -np.asarray(partition.free_energy(params, jnp.asarray(all_states(3), jnp.float32)))
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  expected_h = logsumexp(brute_force_negative_energies(params), axis=0)  # and the hidden side
  got_h = -np.asarray(partition.hidden_free_energy(params, jnp.asarray(all_states(4), jnp.float32)))
  np.testing.assert_allclose(got_h, expected_h, rtol=1e-5)


@pytest.mark.parametrize("num_visible,num_hidden", [(6, 4), (4, 6)])
def test_exact_log_z_enumerating_h_equals_enumerating_v(num_visible, num_hidden):
  params = random_params(num_visible, num_hidden, seed=1)
  brute = logsumexp(brute_force_negative_energies(params))
  # chunk_size 4 < 2^n: several chunks, so the running logsumexp over chunks is exercised.
  over_h = partition.enumerate_log_sum_exp(lambda h: -partition.hidden_free_energy(params, h),
                                           num_hidden, chunk_size=4)
  over_v = partition.enumerate_log_sum_exp(lambda v: -partition.free_energy(params, v),
                                           num_visible, chunk_size=4)
  np.testing.assert_allclose([float(over_h), float(over_v)], [brute, brute], rtol=1e-5)
  np.testing.assert_allclose(float(partition.exact_log_partition(params, chunk_size=8)), brute, rtol=1e-5)


def test_exact_log_z_refuses_more_than_20_units_in_the_smaller_layer():
  with pytest.raises(ValueError, match="at most 20 units"):
    partition.exact_log_partition(random_params(21, 22))


def test_ais_betas_follow_the_papers_schedule():
  betas = partition.ais_betas()
  assert len(betas) == 14_501 and betas[0] == 0.0 and betas[-1] == 1.0
  assert np.all(np.diff(betas) > 0)
  np.testing.assert_allclose([betas[500], betas[4500]], [0.5, 0.9], rtol=1e-6)
  np.testing.assert_allclose(np.diff(betas)[[0, 600, 5000]], [1e-3, 1e-4, 1e-5], rtol=1e-2)  # float32


# ----------------------------------------------------------------------------- sampling

def test_gibbs_chain_histogram_matches_exact_distribution():
  params = random_params(4, 3, scale=1.0, seed=2)
  log_p = logsumexp(brute_force_negative_energies(params), axis=1)
  exact = np.exp(log_p - logsumexp(log_p))
  num_chains, burn_in, kept = 1000, 20, 200

  @jax.jit
  def draws(key):
    start = jax.random.bernoulli(key, 0.5, (num_chains, 4)).astype(jnp.float32)
    v, _ = rbm.gibbs_chain(params, start, jax.random.fold_in(key, 1), burn_in)

    def sweep(v, k):
      v, _ = rbm.gibbs_sweep(params, v, k)
      return v, v
    return jax.lax.scan(sweep, v, jax.random.split(jax.random.fold_in(key, 2), kept))[1]

  v = np.asarray(draws(jax.random.key(0))).reshape(-1, 4)
  index = (v * 2 ** np.arange(3, -1, -1)).sum(axis=1).astype(int)  # itertools.product's order
  histogram = np.bincount(index, minlength=16) / len(index)
  assert 0.5 * np.abs(histogram - exact).sum() < 0.02
  assert exact.max() > 2 * exact.min()  # a non-uniform target, so a broken sampler cannot pass


# ----------------------------------------------------------------------------- training

def _binary_digits(config, split: str) -> np.ndarray:
  x = load_dataset(config.dataset, split)["x"]
  return likelihood.binarize_test_set(x, 0).reshape(len(x), -1)


def _train(config, num_steps: int):
  """num_steps jitted steps of the family on the trainer's batches; (objective, states at 0 and end)."""
  objective = rbm.RBMObjective(config)
  batches = Batches(load_dataset(config.dataset, "train"), config.batch_size, config.seed, binarize=True)
  state = objective.init(jax.random.key(0), batches(0))
  step = jax.jit(lambda s, b, k: objective.step(s, b, k)[0])
  first = state
  for i in range(num_steps):
    state = step(state, batches(i), jax.random.key(i))
  return objective, first, state


@pytest.fixture(scope="module")
def trained_cd1():
  """16 hidden units, CD-1, 300 steps on binarised digits, with its evaluate() (AIS on 3,000 betas)."""
  config = load_experiment("rbm")
  config.model.ais_counts = (200, 800, 2000)
  objective, before, after = _train(config, 300)
  test = load_dataset(config.dataset, "test")
  return objective, before, after, objective.evaluate(after, test, jax.random.key(3))


def test_cd1_raises_the_exact_log_likelihood(trained_cd1):
  objective, before, after, results = trained_cd1
  x = objective.binary(load_dataset(objective.dataset, "test")["x"])
  # At init (W ~ N(0, 0.01^2), base-rate biases) the model is almost the pixel-marginal model.
  initial = (objective.split_means(before, x, jax.random.key(0))["negative_free_energy"]
             - objective.log_partition(before, jax.random.key(0), "exact")["log_z"])
  assert results["log_z_method"] == "exact" and results["log_z"] == results["log_z_exact"]
  assert results["test_log_likelihood"] > initial + 2.0, (initial, results["test_log_likelihood"])
  brute = float(jnp.mean(-partition.free_energy(after.params, jnp.asarray(x).reshape(len(x), -1))))
  np.testing.assert_allclose(results["test_log_likelihood"], brute - results["log_z_exact"], rtol=1e-5)
  for key in ("train_log_likelihood", "pseudo_log_likelihood", "log_z_std"):
    assert np.isfinite(results[key]), key


def test_ais_is_within_three_standard_deviations_of_exact_log_z(trained_cd1):
  objective, _, state, results = trained_cd1
  log_z, std, exact = results["log_z_ais"], results["log_z_ais_std"], results["log_z_exact"]
  assert results["ais_num_betas"] == 3000 and results["ais_num_chains"] == 100
  assert abs(log_z - exact) <= 3 * std, (log_z, exact, std)
  assert 0 < std < 0.5 and results["log_z_ais_lower"] < log_z < results["log_z_ais_upper"]
  # Trained weights: log Z is far from the base-rate RBM's, so agreement is not by construction.
  base = float(partition.base_log_partition(state.extras["base_visible_bias"], 16))
  assert abs(exact - base) > 1.0, (exact, base)


# ----------------------------------------------------------------------------- CLI and notebook

@pytest.mark.parametrize("key,value,message", [
    ("cd_k", 0, "config.model.cd_k=0 is not allowed; expected an integer >= 1"),
    ("ais_counts", (10, 10), "config.model.ais_counts=(10, 10) is not allowed"),
    ("ais_num_chains", 1, "config.model.ais_num_chains=1 is not allowed; expected an integer >= 2"),
    ("log_z_method", "exact", "config.model.log_z_method='exact' is not allowed"),
])
def test_bad_settings_are_one_line_config_errors(key, value, message):
  config = load_experiment("rbm")
  if key == "log_z_method":
    config.model.num_hidden = 30  # 64 visible, 30 hidden: 2^30 states
  config.model[key] = value
  with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
    validate(config)


def test_notebook_trains_samples_and_gives_log_partition(tmp_path):
  config = tiny(load_experiment("rbm", "pcd"), num_steps=10, log_every=5)
  config.model.update({"sample_gibbs_steps": 5, "ais_counts": (20, 40, 80), "num_chains": 30})
  model = genjax.train(config, str(tmp_path / "run"))
  chains = np.asarray(model.state.extras["chains"])  # PCD: the fantasy particles are checkpointed
  assert chains.shape == (30, 64) and set(np.unique(chains)) == {0.0, 1.0}
  exact = model.log_partition("exact")
  np.testing.assert_allclose(exact["log_z"], float(partition.exact_log_partition(model.state.params)), rtol=1e-6)
  ais = model.log_partition("ais")
  assert abs(ais["log_z"] - exact["log_z"]) < 3 * ais["log_z_std"] + 0.05
  x = _binary_digits(config, "test")[:5]
  expected = -np.asarray(partition.free_energy(model.state.params, jnp.asarray(x))) - exact["log_z"]
  np.testing.assert_allclose(model.log_likelihood(x.reshape(5, 8, 8, 1)), expected, rtol=1e-5)
  samples = model.sample(6)
  assert samples.shape == (6, 8, 8, 1) and 0 <= samples.min() and samples.max() <= 1
  for name in ("samples", "filters", "reconstructions"):
    assert os.path.exists(tmp_path / "run" / "images" / f"{name}_final.png"), name


def test_cli_refuses_grey_level_data_without_binarize(tmp_path):
  workdir = str(tmp_path / "bad")
  bad = run_cli("--config", "experiments/rbm.py", "--workdir", workdir, "--config.dataset.binarize=False")
  assert bad.returncode == 2
  last = bad.stderr.strip().splitlines()[-1]
  assert last.startswith("error: config.dataset.binarize=False is not allowed; expected True"), last
  assert not os.path.exists(workdir)

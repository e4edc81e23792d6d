"""VAE family: the bounds against closed forms (KL, probabilistic PCA), gradients, and a short run."""
from __future__ import annotations

import json
import math
import os
import statistics

import jax
import jax.numpy as jnp
import numpy as np
import pytest


from genjax import losses
from genjax import modes
from genjax.config import ConfigError, validate
from genjax.configs import vae_config
from genjax.evaluate import likelihood
from genjax.models import vae
from genjax.trainer import train


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("data"))


# ----------------------------------------------------------------------------- closed-form KL

def test_gaussian_kl_textbook_formula_monte_carlo_and_zero():
  rng = np.random.default_rng(0)
  mean, logvar = rng.normal(size=(3, 4)), rng.normal(scale=0.5, size=(3, 4))
  var = np.exp(logvar)
  textbook = 0.5 * np.sum(var + mean ** 2 - 1.0 - logvar, axis=1)  # the lecture's KL term
  kl = np.asarray(losses.gaussian_kl(jnp.asarray(mean), jnp.asarray(logvar)))
  np.testing.assert_allclose(kl, textbook, rtol=1e-5)

  # E_q[log q(z) - log p(z)] from 200k draws, within 4 standard errors.
  mean32, logvar32 = jnp.asarray(mean, jnp.float32), jnp.asarray(logvar, jnp.float32)

  @jax.jit
  def log_ratios(key):
    z = vae.reparameterize(key, mean32, logvar32, 200_000)
    return (jax.vmap(lambda zi: losses.gaussian_log_likelihood(zi, mean32, logvar32))(z)
            - jax.vmap(losses.standard_normal_log_density)(z))

  log_ratio = np.asarray(log_ratios(jax.random.key(1)))
  stderr = np.std(log_ratio, axis=0) / math.sqrt(log_ratio.shape[0])
  assert np.all(np.abs(np.mean(log_ratio, axis=0) - kl) < 4 * stderr + 1e-4)

  zeros = jnp.zeros((2, 5))
  np.testing.assert_array_equal(losses.gaussian_kl(zeros, zeros), np.zeros(2))
  assert np.all(kl > 0)


# ----------------------------------------------------------------------------- exact model: PPCA

def _ppca(x_count: int = 4, data_dim: int = 5, latent_dim: int = 2, noise_std: float = 0.5):
  """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I) -> p(x) = N(b, WW^T + s^2 I) and p(z|x) in closed form.

  W has orthogonal columns, so the exact posterior N(M^-1 W^T (x - b), s^2 M^-1), M = W^T W + s^2 I,
  is diagonal and a mean-field q can equal it.
  """
  rng = np.random.default_rng(3)
  basis = np.linalg.qr(rng.normal(size=(data_dim, data_dim)))[0][:, :latent_dim]
  w = basis * np.array([2.0, 0.7])[:latent_dim]
  b = rng.normal(size=data_dim)
  s2 = noise_std ** 2
  x = rng.normal(size=(x_count, latent_dim)) @ w.T + b + noise_std * rng.normal(size=(x_count, data_dim))
  cov = w @ w.T + s2 * np.eye(data_dim)
  diff = x - b
  log_px = -0.5 * (data_dim * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1]
                   + np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff))
  m_diag = np.sum(w ** 2, axis=0) + s2
  post_mean = diff @ w / m_diag
  post_logvar = np.broadcast_to(np.log(s2 / m_diag), post_mean.shape)
  to_jnp = lambda a: jnp.asarray(a, jnp.float64)
  log_likelihood_fn = lambda z: losses.gaussian_log_likelihood(to_jnp(x), z @ to_jnp(w).T + to_jnp(b),
                                                               jnp.asarray(math.log(s2)))
  return dict(x=to_jnp(x), w=w, s2=s2, log_px=log_px, mean=to_jnp(post_mean),
              logvar=to_jnp(post_logvar), log_likelihood_fn=log_likelihood_fn, b=b)


def _log_weight_fn(model, mean, logvar):
  """The VAE's log weights (genjax.models.vae) for q = N(mean, exp(logvar)), as evaluate.likelihood wants."""
  return lambda rng, x, k: vae.log_importance_weights(
      model["log_likelihood_fn"], vae.reparameterize(rng, mean, logvar, k), mean, logvar)


def test_exact_posterior_bounds_equal_log_px():
  with jax.enable_x64(True):
    model = _ppca()
    mean, logvar = model["mean"], model["logvar"]
    # log p(x, z) - log q(z|x) = log p(x) for EVERY z when q is the exact posterior.
    log_weights = jax.jit(_log_weight_fn(model, mean, logvar), static_argnums=2)(
        jax.random.key(0), model["x"], 16)
    assert log_weights.dtype == jnp.float64
    np.testing.assert_allclose(log_weights, np.broadcast_to(model["log_px"], log_weights.shape),
                               rtol=0, atol=1e-10)
    iwae = jax.jit(lambda key: vae.iwae_terms(model["log_likelihood_fn"], key, mean, logvar,
                                              7)["bound"])(jax.random.key(1))
    np.testing.assert_allclose(iwae, model["log_px"], rtol=0, atol=1e-10)

    # The closed-form-KL ELBO with E_q[log p(x|z)] in closed form (linear decoder):
    # log N(x; W mu + b, s^2) - tr(W Sigma W^T) / (2 s^2).
    w, s2 = model["w"], model["s2"]
    expected_log_lik = (losses.gaussian_log_likelihood(model["x"], mean @ w.T + model["b"],
                                                       jnp.asarray(math.log(s2)))
                        - 0.5 * jnp.exp(logvar) @ np.sum(w ** 2, axis=0) / s2)
    elbo = losses.elbo(expected_log_lik, losses.gaussian_kl(mean, logvar))
    np.testing.assert_allclose(elbo, model["log_px"], rtol=0, atol=1e-10)

    # The training ELBO (Monte-Carlo reconstruction, closed-form KL) is unbiased for it.
    terms = jax.jit(lambda key: vae.elbo_terms(model["log_likelihood_fn"], key, mean, logvar,
                                               20_000))(jax.random.key(2))
    np.testing.assert_allclose(terms["elbo"], model["log_px"], atol=0.05)


def test_iwae_bound_below_log_px_and_increasing_in_k():
  with jax.enable_x64(True):
    model = _ppca()
    # A perturbed q: shifted mean, twice-too-wide variance.
    mean, logvar = model["mean"] + 0.4, model["logvar"] + math.log(2.0)
    repeats = 200
    bounds, stderrs = [], []
    for k in (1, 10, 100, 1000):
      keys = jax.random.split(jax.random.key(k), repeats)
      values = jax.jit(jax.vmap(lambda key: vae.iwae_terms(
          model["log_likelihood_fn"], key, mean, logvar, k)["bound"]))(keys)  # [repeats, batch]
      bounds.append(np.mean(values, axis=0))
      stderrs.append(np.std(values, axis=0) / math.sqrt(repeats))
    bounds, stderrs = np.array(bounds), np.array(stderrs)
    assert np.all(bounds <= model["log_px"] + 4 * stderrs + 1e-9)
    assert np.all(np.diff(bounds, axis=0) > -4 * (stderrs[1:] + stderrs[:-1]))
    # The gap closes: k=1 (the ELBO) is well below, k=1000 nearly at log p(x).
    assert np.all(model["log_px"] - bounds[0] > 0.1)
    assert np.all(model["log_px"] - bounds[-1] < 0.2 * (model["log_px"] - bounds[0]))


def test_chunked_importance_sampling_converges_and_chunks_exactly():
  with jax.enable_x64(True):
    model = _ppca()
    mean, logvar = model["mean"] + 0.4, model["logvar"] + math.log(2.0)
    log_weight_fn = _log_weight_fn(model, mean, logvar)
    rng, x = jax.random.key(5), model["x"]
    # Chunking is exact: 2 full chunks of 500 + a last one of 250 = one logsumexp over all 1250.
    chunked = jax.jit(lambda: likelihood.importance_sampled_log_likelihood(
        log_weight_fn, rng, x, 1250, 500))()
    all_weights = jax.jit(lambda: jnp.concatenate([
        log_weight_fn(jax.random.fold_in(rng, i), x, size) for i, size in enumerate((500, 500, 250))]))()
    np.testing.assert_allclose(chunked, jax.nn.logsumexp(all_weights, axis=0) - math.log(1250),
                               rtol=0, atol=1e-10)
    estimate = jax.jit(lambda: likelihood.importance_sampled_log_likelihood(
        log_weight_fn, rng, x, 50_000, 500))()
    np.testing.assert_allclose(estimate, model["log_px"], atol=0.01)
    assert likelihood.bits_per_dim(math.log(2.0) * 64, 64) == pytest.approx(1.0)


def test_dataset_means_pads_the_last_batch_and_logs_progress(caplog):
  x = np.arange(10, dtype=np.float32)[:, None]
  shapes = []

  def per_example(xb, index):
    shapes.append(xb.shape)
    return {"x": xb[:, 0], "square": xb[:, 0] ** 2}

  batches = [{"x": x[i:i + 4]} for i in range(0, 10, 4)]
  with caplog.at_level("INFO"):
    means = likelihood.dataset_means(per_example, batches, pad_to=4, total=10, progress_every_s=0.0)
  # The padded rows (copies of 9) are dropped: exact means of 0..9 and of their squares.
  assert means == {"x": 4.5, "square": 28.5, "num_examples": 10}
  assert shapes == [(4, 1)] * 3
  assert "eval: 4/10 examples" in caplog.text and "eval: 8/10 examples" in caplog.text


# ----------------------------------------------------------------------------- reparameterisation

def test_reparameterised_gradient_matches_central_differences():
  with jax.enable_x64(True):
    rng = jax.random.key(0)
    f = lambda z: jnp.sum(jnp.sin(z) * z ** 2 + 0.3 * z ** 3, axis=-1)

    def objective(mean, logvar):  # E_eps[f(mu + s eps)] with the eps fixed by rng
      return jnp.mean(f(vae.reparameterize(rng, mean, logvar, 64)))

    mean = jnp.array([[0.3, -1.2, 0.7]])
    logvar = jnp.array([[-0.5, 0.2, -1.0]])
    grad_mean, grad_logvar = jax.jit(jax.grad(objective, argnums=(0, 1)))(mean, logvar)
    objective = jax.jit(objective)
    h = 1e-6
    for i in range(3):
      e = np.zeros(mean.shape)
      e[0, i] = h
      fd_mean = (objective(mean + e, logvar) - objective(mean - e, logvar)) / (2 * h)
      fd_logvar = (objective(mean, logvar + e) - objective(mean, logvar - e)) / (2 * h)
      assert float(grad_mean[0, i]) == pytest.approx(float(fd_mean), rel=1e-6, abs=1e-8)
      assert float(grad_logvar[0, i]) == pytest.approx(float(fd_logvar), rel=1e-6, abs=1e-8)
    # d/dmu E[z^2] = 2 mu for z ~ N(mu, s^2), in expectation over many eps.
    square = lambda m: jnp.mean(vae.reparameterize(rng, m, logvar, 200_000) ** 2, axis=0).sum()
    np.testing.assert_allclose(jax.jit(jax.grad(square))(mean), 2 * mean, atol=0.03)


# ----------------------------------------------------------------------------- schedule, pictures, config

def test_kl_warmup_is_linear_from_zero_to_beta():
  steps = jnp.array([0, 50, 100, 400])
  np.testing.assert_allclose(vae.kl_weight(steps, 4.0, 100), [0.0, 2.0, 4.0, 4.0])
  np.testing.assert_allclose(vae.kl_weight(steps, 0.5, 0), 0.5)


def test_manifold_grid_is_inverse_normal_cdf_of_uniform_grid():
  grid = np.asarray(vae.manifold_grid(15))
  assert grid.shape == (15, 15, 2)
  expected = [statistics.NormalDist().inv_cdf(u) for u in np.linspace(0.05, 0.95, 15)]
  np.testing.assert_allclose(grid[0, :, 0], expected, atol=1e-5)  # z1 along a row
  np.testing.assert_allclose(grid[::-1, 0, 1], expected, atol=1e-5)  # z2 grows upwards


def test_validate_rejects_bad_vae_keys():
  validate(vae_config())
  validate(vae_config(likelihood="gaussian", decoder_variance="0.01"))  # a CLI string on a str field
  for key, value in (("likelihood", "poisson"), ("objective", "vimco"), ("decoder_variance", -1.0),
                     ("num_importance_samples", 0), ("beta", -1.0), ("kl_warmup_steps", 1.5),
                     ("norm", "batch")):
    config = vae_config(**{key: value})
    with pytest.raises(ConfigError, match=f"model.{key}"):
      validate(config)


def _tiny_config(**model):
  return vae_config(latent_dim=2, **{"hidden": (16,), "features": (4, 8), **model})


def _tiny_batch():
  return {"x": jnp.asarray(np.random.default_rng(0).uniform(size=(8, 8, 8, 1)), jnp.float32)}


@pytest.mark.parametrize("model", [
    # One stride-2 conv and one transposed conv: the conv path at a fraction of the compile time.
    dict(likelihood="gaussian", decoder_variance="learned", architecture="conv", features=(4,)),
    dict(likelihood="gaussian", decoder_variance=0.05, objective="iwae", num_importance_samples=3),
    dict(beta=4.0, kl_warmup_steps=10)])
def test_variants_take_a_finite_step(model):
  config = _tiny_config(**model)
  validate(config)
  objective = vae.VAEObjective(config)
  batch = _tiny_batch()
  state = jax.jit(objective.init)(jax.random.key(0), batch)
  state, metrics = jax.jit(objective.step)(state, batch, jax.random.key(1))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  expected_beta = 0.0 if model.get("kl_warmup_steps") else float(model.get("beta", 1.0))
  assert float(metrics["beta"]) == pytest.approx(expected_beta)
  assert float(metrics["loss"]) == pytest.approx(-float(metrics["bound"]), rel=1e-6)


def test_pictures_and_samples_shapes():
  objective = vae.VAEObjective(_tiny_config())
  batch = _tiny_batch()
  state = jax.jit(objective.init)(jax.random.key(0), batch)
  # Shapes by tracing only (no compile); values of the real pictures are checked by the digits run.
  pictures = jax.eval_shape(objective.pictures, state, batch, jax.random.key(2))
  assert pictures["manifold"].shape == (15, 15, 8, 8, 1)
  assert pictures["samples"].shape == (64, 8, 8, 1)
  assert pictures["interpolation"].shape == (4, 10, 8, 8, 1)
  assert pictures["reconstructions"].shape == (2, 8, 8, 8, 1)
  manifold = jax.jit(objective.latent_manifold, static_argnums=1)(state, 3)
  assert manifold.shape == (3, 3, 8, 8, 1)
  assert 0.0 <= float(jnp.min(manifold)) and float(jnp.max(manifold)) <= 1.0
  with pytest.raises(ValueError, match="latent_dim=2"):
    vae.VAEObjective(vae_config(latent_dim=3)).latent_manifold(state, 3)


def test_binarized_test_set_is_fixed():
  x = np.random.default_rng(0).uniform(size=(50, 8, 8, 1)).astype(np.float32)
  first, second = likelihood.binarize_test_set(x, 0), likelihood.binarize_test_set(x, 0)
  np.testing.assert_array_equal(first, second)
  assert set(np.unique(first)) <= {0.0, 1.0}
  assert abs(first.mean() - x.mean()) < 0.05


# ----------------------------------------------------------------------------- a short real run

def _digits_config(data_dir: str, num_steps: int):
  config = vae_config("mlp", 2, eval_importance_samples=200, eval_chunk_size=100)
  config.dataset.data_dir = data_dir
  config.update(dict(num_steps=num_steps, log_every=50, checkpoint_every=1000, sample_every=0))
  return config


def test_vae_mlp_on_digits_improves_test_elbo(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  config = _digits_config(data_dir, 150)
  validate(config)
  train(config, workdir)
  trained = modes.evaluate(config, workdir)
  with open(os.path.join(workdir, "eval.json")) as f:
    assert json.load(f)["likelihood"] == "bernoulli"
  # Measured on this config: test ELBO -43.7 after 1 step (logits start near 0: 64 ln 2 = 44.4),
  # -26.4 after 150 steps, -25.7 after 300; the threshold leaves 6 nats of margin.
  assert trained["test_elbo"] > -32.5
  # The importance-sampled estimate is a tighter bound than the ELBO (up to Monte-Carlo noise).
  assert -trained["test_nll"] >= trained["test_elbo"] - 0.1
  assert trained["test_bits_per_dim"] == pytest.approx(trained["test_nll"] / (64 * math.log(2)))
  assert "note" in trained and trained["num_examples"] == 297
  assert os.path.exists(os.path.join(workdir, "images", "manifold_final.png"))

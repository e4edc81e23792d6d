"""Flow family: exact inverses, log-dets against brute-force Jacobians, a normalised 2-D density,
the discrete bits/dim bookkeeping on a uniform model, bad configs, and a short digits run."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genjax
from genjax.config import ConfigError, validate
from genjax.configs import FLOW_LAYERS, flow_config
from genjax.evaluate import likelihood
from genjax.layers import coupling
from genjax.models import flow
from tests.helpers import load_experiment, run_cli, tiny


def _randomize(params, key, scale=0.05):
  """Every leaf (array or shape) replaced by noise, so zero-initialised (identity) layers become real
  bijections. One draw cut into the leaves: a draw per leaf compiles a program per shape (seconds)."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  sizes = [math.prod(x.shape) for x in leaves]
  noise = np.asarray(scale * jax.random.normal(key, (sum(sizes),)))
  pieces = np.split(noise, np.cumsum(sizes)[:-1])
  return treedef.unflatten([jnp.asarray(p.reshape(x.shape)) for p, x in zip(pieces, leaves)])


def _init(module, *args, **kwargs):
  """Parameters of `module` (init's shapes: traced, never run) as _randomize's noise."""
  return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))["params"]


def _layer(op, width=4):
  return {"checkerboard": coupling.AffineCoupling("checkerboard", 1, width, 1),
          "channel": coupling.AffineCoupling("channel", 0, width, 1), "actnorm": coupling.ActNorm()}[op]


def _init_layer(layer, x, context=None):
  if isinstance(layer, coupling.ActNorm):  # data-dependent init: run it
    return layer.init(jax.random.key(0), x, jnp.zeros(x.shape[0]), context=context)["params"]
  return _randomize(_init(layer, x, jnp.zeros(x.shape[0]), context=context), jax.random.key(1), 0.3)


def _slogdet_per_example(fn, x):
  """log|det J| of fn on each example (one example in, one out), by jacfwd + slogdet."""
  size = math.prod(x.shape[1:])
  one = lambda xi: fn(xi.reshape((1,) + x.shape[1:])).reshape(-1)
  jacobians = jax.jit(jax.vmap(jax.jacfwd(one)))(x).reshape(x.shape[0], size, size)
  return np.linalg.slogdet(np.asarray(jacobians, np.float64))[1]


# ----------------------------------------------------------------------------- layers

@pytest.mark.parametrize("op,shape", [("checkerboard", (4, 4, 1)), ("checkerboard", (4, 4, 2)),
                                      ("channel", (4, 4, 2)), ("actnorm", (4, 4, 2))])
def test_layer_log_det_is_brute_force_jacobian_and_inverse_is_exact(op, shape):
  x = jax.random.normal(jax.random.key(2), (3,) + shape)
  layer = _layer(op)
  params = _init_layer(layer, 2.0 * x + 1.0)  # ActNorm's data-dependent init: not the identity here
  apply = jax.jit(lambda x, reverse=False: layer.apply({"params": params}, x, jnp.zeros(x.shape[0]), reverse),
                  static_argnums=1)
  y, log_det = apply(x)
  assert not np.allclose(y, x, atol=1e-2)
  np.testing.assert_allclose(log_det, _slogdet_per_example(lambda xi: apply(xi)[0], x), atol=1e-4)
  x_back, log_det_back = apply(y, reverse=True)
  np.testing.assert_allclose(x_back, x, atol=1e-5)
  np.testing.assert_allclose(log_det_back, -log_det, atol=1e-4)


def test_coupling_leaves_its_conditioning_half_alone_and_bounds_s():
  x = jax.random.normal(jax.random.key(3), (2, 4, 4, 2))
  for mask in ("checkerboard", "channel"):
    layer = coupling.AffineCoupling(mask, 0, 4, 1)
    params = _randomize(_init(layer, x, jnp.zeros(2)), jax.random.key(4), 1.0)
    y, log_det = layer.apply({"params": params}, x, jnp.zeros(2))
    b = coupling.MASKS[mask]((4, 4, 2), 0)
    np.testing.assert_array_equal(np.asarray(y) * b, np.asarray(x) * b)
    bound = np.exp(np.asarray(params["log_s_bound"]))
    assert np.all(np.abs(log_det) <= np.sum((1 - b) * bound) + 1e-4)  # |s| <= c per element


def test_squeeze_is_a_permutation_with_exact_inverse():
  x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
  y = coupling.squeeze(x)
  assert y.shape == (2, 2, 3, 12)
  np.testing.assert_array_equal(np.sort(np.asarray(y).ravel()), np.asarray(x).ravel())
  np.testing.assert_array_equal(y[0, 0, 0], np.asarray(x[0, :2, :2]).reshape(-1))  # one 2x2 patch
  np.testing.assert_array_equal(coupling.unsqueeze(y), x)


def test_logit_transform_log_det_and_inverse():
  v = jax.random.uniform(jax.random.key(5), (3, 2, 2, 1))
  y, log_det = jax.jit(flow.logit_transform, static_argnums=1)(v, 0.05)
  np.testing.assert_allclose(log_det, _slogdet_per_example(lambda vi: flow.logit_transform(vi, 0.05)[0], v),
                             atol=1e-4)
  np.testing.assert_allclose(flow.inverse_logit_transform(y, 0.05), v, atol=1e-6)


# ----------------------------------------------------------------------------- whole flows

def _flow(ops, shape, widths=(4,), actnorm=False):
  f = coupling.Flow(tuple(ops), shape, widths, 1, actnorm)
  x = jax.random.uniform(jax.random.key(6), (2,) + shape)
  params = _randomize(_init(f, x), jax.random.key(7))
  return f, params, x


@pytest.mark.parametrize("ops,shape", [(FLOW_LAYERS["multiscale"], (28, 28, 1)),
                                       (FLOW_LAYERS["multiscale"], (8, 8, 1)),
                                       (FLOW_LAYERS["simple"], (7, 7, 1))])
def test_whole_flow_inverts_exactly(ops, shape):
  f, params, x = _flow(ops, shape)
  z, log_det = jax.jit(lambda x: f.apply({"params": params}, x))(x)
  assert z.shape == (2, math.prod(shape)) and np.all(np.abs(log_det) > 1e-1)
  x_back, log_det_back = jax.jit(lambda z: f.apply({"params": params}, z, method=coupling.Flow.inverse))(z)
  np.testing.assert_allclose(x_back, x, atol=2e-5)
  np.testing.assert_allclose(log_det_back, -log_det, rtol=1e-4, atol=1e-4)


def test_multiscale_log_det_is_brute_force_jacobian():
  # 4x4x1: couplings, squeeze -> 2x2x4, channel couplings, split -> 2x2x2, squeeze -> 1x1x8, ...
  f, params, x = _flow(FLOW_LAYERS["multiscale"], (4, 4, 1), actnorm=True)
  params = _randomize(params, jax.random.key(8), 0.2)
  forward = jax.jit(lambda xi: f.apply({"params": params}, xi))
  np.testing.assert_allclose(forward(x)[1], _slogdet_per_example(lambda xi: forward(xi)[0], x), atol=1e-3)


def test_two_dimensional_flow_density_integrates_to_one():
  f = coupling.Flow(("channel",) * 4, (1, 1, 2), (16,), 1)
  params = _randomize(_init(f, jnp.zeros((1, 1, 1, 2))), jax.random.key(9), 0.1)
  grid = jnp.linspace(-10.0, 10.0, 801)
  points = jnp.stack(jnp.meshgrid(grid, grid), axis=-1).reshape(-1, 1, 1, 2)
  z, log_det = jax.jit(lambda p: f.apply({"params": params}, p))(points)
  density = np.exp(np.asarray(flow.PRIORS["normal"].log_density(z) + log_det))
  mass = density.sum() * float(grid[1] - grid[0]) ** 2
  assert abs(mass - 1.0) < 1e-2, mass
  assert np.abs(np.asarray(z) - np.asarray(points).reshape(-1, 2)).max() > 0.5  # not the identity


# ----------------------------------------------------------------------------- the family

def _digits_config(layers="simple", dequantization="uniform", **model):
  config = flow_config(layers, dequantization, widths=(8,), dequant_widths=(4,), **model)
  config.dataset.name = "digits"
  return config


@pytest.mark.parametrize("levels,alpha,dequantization", [(17, 0.0, "uniform"), (256, 0.0, "variational"),
                                                        (256, 0.05, "uniform")])
def test_uniform_model_scores_log2_levels_bits_per_dim(levels, alpha, dequantization):
  """An identity flow (fresh init) under NICE's logistic prior is the uniform density on [0, 1)^D
  after the logit (times (1 - 2 alpha)^D): exactly log2(L) - log2(1 - 2 alpha) bits/dim."""
  objective = flow.FlowObjective(_digits_config(dequantization=dequantization, prior="logistic",
                                                logit_alpha=alpha))
  objective.levels = levels  # 256: the same 8x8 shapes with 8-bit pixels
  x = jax.random.randint(jax.random.key(10), (64, 8, 8, 1), 0, levels) / (levels - 1)
  state = objective.init(jax.random.key(0), {"x": x})
  log_w = objective.log_weights(state.params, x, jax.random.key(11))
  bits = -np.asarray(log_w) / (64 * math.log(2))
  np.testing.assert_allclose(bits, math.log2(levels) - math.log2(1 - 2 * alpha), atol=2e-4)


def test_binarized_flow_scores_the_vaes_binary_test_set(monkeypatch):
  """dataset.binarize: 2 levels, scored on the test set binarised once as the VAE family scores it,
  and an identity flow under the logistic prior scores 1 - log2(1 - 2 alpha) bits/dim there."""
  config = _digits_config(prior="logistic", logit_alpha=0.05, eval_importance_samples=1)
  config.dataset.binarize = True
  objective = flow.FlowObjective(config)
  test = genjax.data.load_dataset(config.dataset, "test")
  binary = likelihood.binarize_test_set(test["x"], int(config.seed))
  assert objective.levels == 2 and set(np.unique(binary)) == {0.0, 1.0}
  state = objective.init(jax.random.key(0), {"x": jnp.asarray(binary[:64])})
  scores = objective.evaluate(state, test, jax.random.key(1))
  assert scores["levels"] == 2 and scores["binarized_test_set"] is True
  np.testing.assert_allclose(scores["bits_per_dim"], 1 - math.log2(0.9), atol=2e-4)
  seen, eval_batches = [], genjax.data.eval_batches
  monkeypatch.setattr(flow.genjax_data, "eval_batches", lambda arrays, *a: seen.append(arrays["x"]) or eval_batches(arrays, *a))
  objective.evaluate(state, test, jax.random.key(1))
  np.testing.assert_array_equal(seen[0], binary)  # the VAE's binary pixels


def test_bad_flow_configs_name_the_key():
  for layers, message in ((("checkerboard", "diagonal"), "model.layers[1]='diagonal'"),
                          (("channel",), "model.layers[0]='channel'"),
                          (("squeeze", "squeeze", "squeeze", "squeeze"), "model.layers[3]='squeeze'")):
    with pytest.raises(ConfigError) as error:
      validate(_set(_digits_config(), layers=layers))
    assert message in str(error.value), str(error.value)
  with pytest.raises(ConfigError, match="model.dequantization"):
    validate(_set(_digits_config(), dequantization="gaussian"))


def _set(config, **model):
  config.model.update(model)
  return config


@pytest.mark.parametrize("name,uva_params", [("flow_simple", 0.56e6), ("flow_vardeq", 0.63e6), ("realnvp", 1.7e6)])
def test_experiment_sizes_are_the_uva_tutorials_and_the_small_ones(name, uva_params):
  """`:uva` (the default) within 6% of the UvA tutorial 11 parameter counts; `:small` the earlier models."""
  small = {"flow_simple": 89_624, "flow_vardeq": 102_372, "realnvp": 311_914}[name]
  counts = {}
  for size in ("uva", "small"):
    config = load_experiment(name, size)
    objective = flow.FlowObjective(config)
    params = jax.eval_shape(lambda: objective.init(jax.random.key(0), {"x": jnp.zeros((1, 28, 28, 1))})).params
    counts[size] = sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(params))
  assert abs(counts["uva"] / uva_params - 1) < 0.06 and counts["small"] == small, counts
  assert load_experiment(name).model.blocks == 7
  with pytest.raises(ValueError, match="unknown size 'big'.*uva, small"):
    load_experiment(name, "big")


def test_cli_rejects_a_squeeze_the_image_cannot_take(tmp_path):
  workdir = tmp_path / "run"
  result = run_cli("--config", "experiments/realnvp.py", "--workdir", str(workdir),
                   "--config.dataset.name=digits",
                   "--config.model.layers=('squeeze','squeeze','squeeze','squeeze')")
  assert result.returncode == 2, result.stderr[-2000:]
  lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(lines) == 1 and "model.layers[3]='squeeze'" in lines[0] and "even height" in lines[0], lines
  assert not workdir.exists()


def test_short_digits_run_lowers_bits_per_dim_and_notebook_api_inverts(tmp_path):
  config = tiny(_digits_config(actnorm=True), num_steps=60, log_every=30, batch_size=64,
                **{"model.layers": ("checkerboard",) * 2, "model.eval_importance_samples": 2})
  config.optimizer.learning_rate = 3e-3
  test = genjax.data.load_dataset(config.dataset, "test")
  objective = flow.FlowObjective(config)
  fresh = objective.init(jax.random.key(0), {"x": jnp.asarray(test["x"][:64])})
  before = objective.evaluate(fresh, test, jax.random.key(1))
  model = genjax.train(config, str(tmp_path))
  after = model.objective.evaluate(model.state, test, jax.random.key(1))
  assert after["bits_per_dim"] < before["bits_per_dim"] - 1.0, (before, after)
  assert after["bits_per_dim"] <= after["one_sample_bits_per_dim"] + 1e-6  # K = 2 is the tighter bound
  assert after["levels"] == 17 and after["num_examples"] == len(test["x"])
  x = test["x"][:8]
  np.testing.assert_allclose(model.reconstruct(x), x, atol=1e-6)
  samples = model.sample(16)
  assert samples.shape == (16, 8, 8, 1) and set(np.unique(samples * 16).round(4)) <= set(range(17))

"""The autoencoder terms: contractive penalty against finite differences and closed forms."""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax import losses


def _mlp_encoder(key, sizes, activation=jnp.tanh):
  keys = jax.random.split(key, len(sizes) - 1)
  weights = [jax.random.normal(k, (a, b), jnp.float64) / np.sqrt(a)
             for k, a, b in zip(keys, sizes[:-1], sizes[1:])]

  def encode(x):  # one example, flattened
    h = x.reshape(-1)
    for i, w in enumerate(weights):
      h = h @ w
      if i < len(weights) - 1:
        h = activation(h)
    return h
  return encode


def _finite_difference_penalty(encode, x, eps=1e-6):
  """||J||_F^2 from central differences, column by column."""
  flat = x.reshape(-1)
  steps = eps * jnp.eye(flat.size, dtype=flat.dtype)
  encode_flat = jax.jit(jax.vmap(lambda v: encode(v.reshape(x.shape))))  # eager op-by-op is 10x slower
  columns = (encode_flat(flat + steps) - encode_flat(flat - steps)) / (2 * eps)
  return float(jnp.sum(columns ** 2))


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


@pytest.mark.parametrize("mode", ["fwd", "rev", "auto"])
def test_jacobian_penalty_matches_finite_differences(x64, mode):
  encode = _mlp_encoder(jax.random.key(0), [12, 7, 3])
  x = jax.random.normal(jax.random.key(1), (4, 3, 4), jnp.float64)
  penalty = jax.jit(losses.jacobian_frobenius_penalty, static_argnums=(0, 2))(encode, x, mode)
  expected = [_finite_difference_penalty(encode, xi) for xi in x]
  assert penalty.shape == (4,)
  np.testing.assert_allclose(penalty, expected, rtol=1e-7)


def test_jacobian_penalty_of_linear_encoder_is_frobenius_norm_of_weights(x64):
  w = jax.random.normal(jax.random.key(2), (10, 4), jnp.float64)
  x = jax.random.normal(jax.random.key(3), (5, 10), jnp.float64)
  for mode in ("fwd", "rev"):
    penalty = losses.jacobian_frobenius_penalty(lambda xi: xi @ w + 1.0, x, mode)
    np.testing.assert_allclose(penalty, np.full(5, float(jnp.sum(w ** 2))), rtol=1e-12)


def test_jacobian_modes_agree_on_conv_encoder():
  import flax.linen as nn
  encoder = nn.Sequential([nn.Conv(4, (3, 3), strides=(2, 2)), nn.sigmoid,
                           lambda h: h.reshape(h.shape[0], -1), nn.Dense(5)])
  x = jax.random.uniform(jax.random.key(4), (3, 8, 8, 1))
  params = encoder.init(jax.random.key(5), x)
  encode = lambda xi: encoder.apply(params, xi[None])[0]
  penalty = jax.jit(losses.jacobian_frobenius_penalty, static_argnums=(0, 2))
  fwd, rev = penalty(encode, x, "fwd"), penalty(encode, x, "rev")
  np.testing.assert_allclose(fwd, rev, rtol=1e-5)
  assert np.all(fwd > 0)


def test_jacobian_penalty_rejects_unknown_mode():
  with pytest.raises(ValueError, match="'fwd', 'rev' or 'auto'"):
    losses.jacobian_frobenius_penalty(lambda v: v, jnp.ones((2, 3)), "sideways")


def test_sparsity_and_squared_error_closed_forms():
  z = jnp.array([[1.0, -2.0, 0.5], [0.0, 0.0, -3.0]])
  np.testing.assert_allclose(losses.l1_sparsity(z), [3.5, 3.0])
  x = jnp.zeros((2, 2, 2, 1))
  y = x.at[0, 0, 0, 0].set(2.0).at[1].set(1.0)
  np.testing.assert_allclose(losses.squared_error(y, x), [4.0, 4.0])


def test_sigmoid_cross_entropy_is_stable_for_large_logits():
  logits = jnp.array([[80.0, -80.0]])
  np.testing.assert_allclose(losses.sigmoid_cross_entropy(logits, jnp.array([[1.0, 0.0]])), [0.0], atol=1e-6)
  np.testing.assert_allclose(losses.sigmoid_cross_entropy(logits, jnp.array([[0.0, 1.0]])), [160.0], rtol=1e-6)



@pytest.mark.parametrize("side", ["input", "output"])
@pytest.mark.parametrize("sizes, activation", [((6, 5, 3), jnp.tanh), ((5, 4, 4, 2), jax.nn.sigmoid),
                                               ((4, 3, 5, 2, 3), jax.nn.softplus)])
def test_closed_form_mlp_penalty_matches_finite_differences(x64, sizes, activation, side):
  """mlp_jacobian_frobenius (Gram-matrix chain) == ||J||_F^2 by central differences, per example."""
  key_w, key_x = jax.random.split(jax.random.key(3))
  keys = jax.random.split(key_w, len(sizes) - 1)
  kernels = [jax.random.normal(k, (a, b), jnp.float64) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]
  xs = jax.random.normal(key_x, (3, sizes[0]), jnp.float64)

  def encode(x):
    h = x
    for i, w in enumerate(kernels):
      h = h @ w
      if i < len(kernels) - 1:
        h = activation(h)
    return h

  pre, h = [], xs
  for w in kernels[:-1]:
    pre.append(h @ w)
    h = activation(pre[-1])
  slopes = [jax.vmap(jax.vmap(jax.grad(activation)))(a) for a in pre]
  closed = jax.jit(partial(losses.mlp_jacobian_frobenius, side=side))(kernels, slopes)
  expected = [_finite_difference_penalty(encode, x) for x in xs]
  np.testing.assert_allclose(np.asarray(closed), expected, rtol=1e-6)


@pytest.mark.parametrize("activation, hidden", [("tanh", (16,)), ("sigmoid", (12, 9)), ("elu", (7, 6, 5))])
def test_autoencoder_dense_penalty_equals_jacfwd_with_gradients(activation, hidden):
  """The family's 'dense' (closed form, what 'auto' picks for MLPs) == jax.jacfwd, values and grads."""
  from genjax.configs import autoencoder_config
  from genjax.models.autoencoder import AutoencoderObjective
  config = autoencoder_config("mlp", activation=activation, hidden=hidden, latent_dim=4,
                              contractive_weight=0.1, jacobian_mode="auto")
  objective = AutoencoderObjective(config)
  assert objective.jacobian_mode == "dense"
  x = jax.random.uniform(jax.random.key(0), (5, 3, 3, 1))
  params = objective.encoder.init(jax.random.key(1), x)["params"]
  dense = lambda p: objective.contractive_penalty(p, x)
  one = lambda p: (lambda xi: objective.encoder.apply({"params": p}, xi[None])[0])
  reference = lambda p: losses.jacobian_frobenius_penalty(one(p), x, "fwd")
  np.testing.assert_allclose(jax.jit(dense)(params), jax.jit(reference)(params), rtol=2e-5)
  grads = [jax.tree_util.tree_leaves(jax.jit(jax.grad(lambda p: f(p).sum()))(params)) for f in (dense, reference)]
  for a, b in zip(*grads):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_closed_form_takes_the_cheaper_chain():
  kernels = lambda *sizes: [jnp.zeros((a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
  # One hidden layer: width^2 from the input side against code * width^2 from the code side.
  assert losses._chain_costs(kernels(784, 256, 32)) == {"input": 256 ** 2, "output": 32 * 256 ** 2}
  # cae.py's 784-256-128-16: 12.6M multiply-adds per example from the input side, 1.6M from the code.
  assert losses._chain_costs(kernels(784, 256, 128, 16)) == {
      "input": 256 ** 2 * 128 + 256 * 128 ** 2 + 128 ** 2, "output": 16 * (256 * 128 + 256 ** 2)}


def test_dense_penalty_only_for_mlp_encoders():
  from genjax.config import ConfigError, validate
  from genjax.configs import autoencoder_config
  from genjax.models.autoencoder import resolve_jacobian_mode
  assert resolve_jacobian_mode(autoencoder_config("conv", contractive_weight=0.1).model) == "auto"
  assert resolve_jacobian_mode(autoencoder_config("mlp", norm="layer", contractive_weight=0.1).model) == "auto"
  with pytest.raises(ConfigError, match="model.jacobian_mode='dense' is not allowed"):
    validate(autoencoder_config("conv", contractive_weight=0.1, jacobian_mode="dense"))


def test_evaluate_scores_the_jacobian_of_an_unpenalised_mlp():
  """eval's test_jacobian_frobenius is the test mean of ||J_x E(x)||_F^2 even at lambda = 0."""
  from genjax.configs import autoencoder_config
  from genjax.models.autoencoder import AutoencoderObjective
  objective = AutoencoderObjective(autoencoder_config("mlp", activation="tanh", hidden=(8, 6), latent_dim=3))
  x = jax.random.uniform(jax.random.key(0), (10, 8, 8, 1))  # the digits shape the config names
  state = objective.init(jax.random.key(1), {"x": x[:4]})
  results = objective.evaluate(state, {"x": np.asarray(x)}, jax.random.key(2))
  one = lambda xi: objective.encoder.apply({"params": state.params["encoder"]}, xi[None])[0]
  expected = float(jnp.mean(losses.jacobian_frobenius_penalty(one, x, "fwd")))
  assert "test_contractive" not in results and results["num_examples"] == 10
  np.testing.assert_allclose(results["test_jacobian_frobenius"], expected, rtol=1e-5)
  assert expected > 0.01

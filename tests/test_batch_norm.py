"""genjax's BatchNorm must be flax's nn.BatchNorm: same variables, outputs, running statistics,
first- and second-order gradients; only the column sums are computed as dots."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.layers.batch_norm import BatchNorm, column_sums

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the dot path is CPU-only")


def _close(a, b, tol=2e-6):
  np.testing.assert_allclose(b, a, rtol=0, atol=tol * (1 + np.abs(np.asarray(a)).max()))


def _data(shape, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.normal(1.5, 2.0, shape).astype(np.float32))


def test_column_sums_are_sums():
  x = _data((37, 5))
  _close(np.asarray(x).sum(0), column_sums(x), 1e-6)


@pytest.mark.parametrize("shape", [(16, 7), (8, 5, 5, 6)])
def test_training_mode_matches_flax(shape):
  x, cot = _data(shape), _data(shape, 1)
  ref, new = nn.BatchNorm(momentum=0.9), BatchNorm(momentum=0.9)
  variables = ref.init(jax.random.key(0), x, use_running_average=False)
  assert jax.tree.map(jnp.shape, new.init(jax.random.key(0), x, use_running_average=False)) == \
      jax.tree.map(jnp.shape, variables)
  features = shape[-1]
  params = {"scale": jnp.linspace(0.5, 2.0, features), "bias": jnp.linspace(-1.0, 1.0, features)}
  variables = {**variables, "params": params}
  # The custom rule is really what runs.
  assert "custom_vjp" in str(jax.make_jaxpr(
      lambda x: new.apply(variables, x, use_running_average=False, mutable=["batch_stats"]))(x))

  def loss(module, p, x):
    y, updates = module.apply({**variables, "params": p}, x, use_running_average=False,
                              mutable=["batch_stats"])
    return jnp.sum(y * cot) + 0.1 * jnp.sum(y ** 2), (y, updates)

  for module_result in zip(*(jax.jit(jax.value_and_grad(lambda p, x, m=m: loss(m, p, x), argnums=(0, 1),
                                                         has_aux=True))(params, x) for m in (ref, new))):
    jax.tree.map(_close, *module_result)

  def penalty(module, p):  # what WGAN-GP differentiates: a norm of the input gradient
    grad_x = jax.grad(lambda x: loss(module, p, x)[0])(x)
    return jnp.sum(grad_x ** 2)

  jax.tree.map(lambda a, b: _close(a, b, 1e-5), jax.jit(jax.grad(lambda p: penalty(ref, p)))(params),
               jax.jit(jax.grad(lambda p: penalty(new, p)))(params))


def test_constant_channel_and_evaluation_mode():
  x = _data((12, 3)).at[:, 1].set(4.0)  # zero variance: flax clips E[x^2] - E[x]^2 at 0
  ref, new = nn.BatchNorm(momentum=0.9), BatchNorm(momentum=0.9)
  variables = ref.init(jax.random.key(0), x, use_running_average=False)
  grads = [jax.grad(lambda x, m=m: jnp.sum(m.apply(variables, x, use_running_average=False,
                                                    mutable=["batch_stats"])[0] ** 3))(x)
           for m in (ref, new)]
  _close(*grads, 1e-4)
  _close(ref.apply(variables, x, use_running_average=True),
         new.apply(variables, x, use_running_average=True))


def test_constructor_flag_falls_through_to_flax_for_running_averages():
  x = _data((6, 4))
  variables = nn.BatchNorm().init(jax.random.key(0), x, use_running_average=False)
  for train in (False, True):
    _close(nn.BatchNorm(use_running_average=not train, momentum=0.9).apply(variables, x, mutable=["batch_stats"])[0],
           BatchNorm(use_running_average=not train, momentum=0.9).apply(variables, x, mutable=["batch_stats"])[0])

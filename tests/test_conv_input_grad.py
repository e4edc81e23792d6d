"""conv_phase_input_grad must be lax.conv_general_dilated: same outputs, same gradients (incl. second
order for the gradient penalty); only how XLA computes the input gradient differs."""
from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genjax import configs
from genjax.config import ConfigError
from genjax.layers.conv_transpose import conv_phase_input_grad
from genjax.layers.networks import ConvEncoder
from genjax.registry import MODELS

DN = ("NHWC", "HWIO", "NHWC")
PADDINGS = ("SAME", "VALID", ((1, 1), (1, 1)), ((0, 2), (2, 1)), ((2, 0), (0, 0)))


def _fast_jit(fn):
  return jax.jit(fn, compiler_options={"xla_backend_optimization_level": 0})


def _vjps(conv, x, w, strides, padding, cot):
  y, vjp = jax.vjp(lambda x, w: conv(x, w, strides, padding, dimension_numbers=DN), x, w)
  return y, vjp(cot)


@pytest.mark.parametrize("kernel,strides", [(2, 2), (3, 2), (4, 2), (5, 2), (3, 3), (4, 3), (5, 1)])
def test_values_and_gradients_match_lax(kernel, strides):
  rng = np.random.default_rng(kernel * 10 + strides)
  cases = []
  for padding, size in itertools.product(PADDINGS, (6, 7, 14)):
    x = rng.standard_normal((2, size, size + 1, 4)).astype(np.float32)
    w = rng.standard_normal((kernel, kernel, 4, 5)).astype(np.float32)
    try:
      out = jax.eval_shape(lambda: lax.conv_general_dilated(x, w, (strides,) * 2, padding,
                                                            dimension_numbers=DN))
    except (ValueError, TypeError):  # padding larger than the input: lax refuses too
      continue
    if 0 in out.shape:
      continue
    cases.append((x, w, padding, rng.standard_normal(out.shape).astype(np.float32)))
  assert len(cases) >= 10
  for x, w, padding, cot in cases:
    both = _fast_jit(lambda x, w, c: (_vjps(lax.conv_general_dilated, x, w, (strides,) * 2, padding, c),
                                      _vjps(conv_phase_input_grad, x, w, (strides,) * 2, padding, c)))
    (y_ref, (gx_ref, gw_ref)), (y, (gx, gw)) = both(x, w, cot)
    for a, b in ((y_ref, y), (gx_ref, gx), (gw_ref, gw)):
      np.testing.assert_allclose(b, a, rtol=0, atol=2e-5 * (1 + np.abs(a).max()))


def _critic(input_grad):
  return ConvEncoder((4, 8), 1, activation="leaky_relu", input_grad=input_grad)


def test_the_phase_path_is_taken_and_second_order_gradients_match():
  """The WGAN-GP penalty differentiates the critic's input gradient w.r.t. its parameters."""
  x = np.random.default_rng(0).standard_normal((3, 12, 12, 1)).astype(np.float32)
  params = _critic("xla").init(jax.random.key(0), x)

  def penalty(input_grad):
    def fn(p):
      grad_x = jax.grad(lambda x: jnp.sum(_critic(input_grad).apply(p, x)))(x)
      return jnp.mean((jnp.sqrt(jnp.sum(grad_x ** 2, axis=(1, 2, 3))) - 1.0) ** 2)
    return jax.value_and_grad(fn)(params)

  (ref, ref_grads), (val, grads) = penalty("xla"), penalty("phase")
  np.testing.assert_allclose(val, ref, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * (1 + np.abs(a).max())),
               ref_grads, grads)
  # The 4->8 conv's input gradient went through the custom rule: forward mode cannot pass it.
  with pytest.raises(TypeError, match="custom_vjp"):
    jax.jacfwd(lambda x: _critic("phase").apply(params, x))(x)
  # 'xla' stays forward-differentiable.
  assert jax.jacfwd(lambda x: _critic("xla").apply(params, x))(x).shape == (3, 1, 3, 12, 12, 1)


def test_contractive_autoencoder_falls_back_to_xla_for_forward_jacobians():
  config = configs.autoencoder_config("conv", contractive_weight=0.1, jacobian_mode="fwd",
                                      features=(4, 8))
  objective = MODELS.lookup("autoencoder")(config)
  assert objective.encoder.input_grad == "xla"
  config.model.conv_input_grad = "phase"
  with pytest.raises(ConfigError, match="conv_input_grad"):
    MODELS.lookup("autoencoder").validate(config)
  config.model.jacobian_mode = "rev"
  MODELS.lookup("autoencoder").validate(config)
  assert MODELS.lookup("autoencoder")(config).encoder.input_grad == "phase"

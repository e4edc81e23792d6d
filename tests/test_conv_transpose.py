"""PhaseConvTranspose must be the same function as nn.ConvTranspose (values and grads)."""
from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genjax.layers.conv_transpose import (PhaseConvTranspose, resolve_upsample_kind,
                                          upsample_conv)

EXPLICIT_PADS = (((1, 2), (0, 1)), ((2, 2), (2, 2)))


def _normal(rng, shape, dtype):
  # numpy RNG: jax.random would compile a threefry kernel per shape (seconds each).
  return jnp.asarray(np.asarray(rng.standard_normal(shape), dtype))


def _fast_jit(fn):
  """jit with cheap XLA backend codegen: compiling dominates this file's runtime."""
  return jax.jit(fn, compiler_options={'xla_backend_optimization_level': 0})


def _value_and_vjp(module, params, x, cot):
  """Output and (d params, d x) of <y, cot>."""
  y, vjp = jax.vjp(module.apply, params, x)
  return y, vjp(cot)


def _assert_close(a, b, tol):
  """Tolerance relative to the magnitude of the reference array."""
  a, b = np.asarray(a), np.asarray(b)
  assert a.shape == b.shape
  np.testing.assert_allclose(b, a, rtol=0, atol=tol * (1 + np.abs(a).max()))


def _check_same(kw, x_shape, dtype=jnp.float32, tol=2e-5):
  """Feeds one params dict to both modules; compares outputs and all gradients."""
  rng = np.random.default_rng(0)
  x = _normal(rng, x_shape, dtype)
  ref, phase = nn.ConvTranspose(**kw), PhaseConvTranspose(**kw)
  shapes = jax.eval_shape(ref.init, jax.random.key(1), x)
  assert jax.eval_shape(phase.init, jax.random.key(1), x) == shapes
  # Random bias too, so no parameter is trivially zero.
  params = jax.tree.map(lambda a: _normal(rng, a.shape, dtype), shapes)
  cot = _normal(rng, jax.eval_shape(ref.apply, params, x).shape, dtype)
  # One jit for both modules: a single compile instead of one per eager op.
  both = _fast_jit(lambda p, x, c: (_value_and_vjp(ref, p, x, c), _value_and_vjp(phase, p, x, c)))
  (y_ref, (gp_ref, gx_ref)), (y, (gp, gx)) = both(params, x, cot)
  _assert_close(y_ref, y, tol)
  _assert_close(gx_ref, gx, tol)
  jax.tree.map(lambda a, b: _assert_close(a, b, tol), gp_ref, gp)


@pytest.mark.parametrize('padding', ['SAME', 'VALID', *EXPLICIT_PADS], ids=str)
@pytest.mark.parametrize('strides', [1, 2, 3])
@pytest.mark.parametrize('kernel', [2, 3, 4, 5])
def test_matches_flax_2d(kernel, strides, padding):
  # H=5 odd, W=6 even; channels vary with the case to cover a few counts.
  cin, cout = [(1, 3), (3, 2), (4, 1)][(kernel + strides) % 3]
  kw = dict(features=cout, kernel_size=(kernel, kernel), strides=(strides, strides),
            padding=padding)
  _check_same(kw, (2, 5, 6, cin))


@pytest.mark.parametrize('kw', [
    dict(kernel_size=(4, 3), strides=(2, 3)),  # per-axis kernels and strides
    dict(kernel_size=(2, 2), strides=(3, 3)),  # kernel < stride: an empty phase
    dict(kernel_size=(5, 4), strides=(2, 2), transpose_kernel=True),
    dict(kernel_size=(3, 3), strides=(2, 2), kernel_dilation=(2, 1)),
    dict(kernel_size=(4, 4), strides=(2, 2), padding='CIRCULAR'),
    dict(kernel_size=(3, 3), strides=(2, 2), padding=((-1, 2), (3, -1))),
    dict(kernel_size=(4, 4), strides=(2, 2), padding=1, use_bias=False),
    dict(kernel_size=(1, 1), strides=(2, 2), padding='VALID'),
], ids=lambda kw: ','.join(f'{k}={v}' for k, v in kw.items()))
def test_matches_flax_variants(kw):
  _check_same(dict(features=5, **kw), (3, 4, 5, 2))


@pytest.mark.parametrize('x_shape', [(7, 3), (2, 7, 3), (2, 3, 7, 3)])
@pytest.mark.parametrize('padding', ['SAME', 'VALID', ((2, 1),)], ids=str)
def test_matches_flax_1d_and_batch_dims(x_shape, padding):
  """1-D NWC input without, with one and with two batch dims."""
  _check_same(dict(features=2, kernel_size=(4,), strides=(2,), padding=padding), x_shape)


def test_exact_in_float64():
  """In float64 the two differ only by summation order, i.e. ~1e-15."""
  with jax.enable_x64(True):
    for k, s, pad in [(4, 2, 'SAME'), (5, 3, ((1, 2), (0, 1)))]:
      kw = dict(features=3, kernel_size=(k, k), strides=(s, s), padding=pad)
      _check_same(kw, (2, 4, 5, 3), dtype=jnp.float64, tol=1e-12)


def test_dtype_attributes():
  kw = dict(features=4, kernel_size=(4, 4), strides=(2, 2), dtype=jnp.bfloat16)
  x = jnp.ones((1, 3, 3, 2))
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda a: _normal(rng, a.shape, a.dtype),
                        jax.eval_shape(nn.ConvTranspose(**kw).init, jax.random.key(0), x))
  y_ref = _fast_jit(nn.ConvTranspose(**kw).apply)(params, x)
  y = _fast_jit(PhaseConvTranspose(**kw).apply)(params, x)
  assert y.dtype == y_ref.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.float32(y), np.float32(y_ref), atol=0.05, rtol=0.05)


def _strided_conv_1d(x4, w):
  """Size-4 'SAME' conv with kernel w keeping every 2nd output: x4 -> A_{w,s} @ x4."""
  y = lax.conv_general_dilated(x4[None, :, None], w[:, None, None], (2,), ((1, 1),),
                               dimension_numbers=('NHC', 'HIO', 'NHC'))
  return y[0, :, 0]


def test_lecture_1d_transposed_convolution_example():
  """Lecture example: upsample a size-2 signal to size 4 with w = [1, 2, 1], stride 2.

  A_w (size-4 'SAME' conv) has rows [2,1,0,0], [1,2,1,0], [0,1,2,1], [0,0,1,2];
  stride 2 keeps rows 0 and 2, so A_{w,s} = [[2,1,0,0],[0,1,2,1]]. The seed prints
  the second row as [0,1,2,0]: that last 0 is a typo, since row 2 of its own A_w
  keeps x_3 with weight 1. Transposed conv = multiplication by A_{w,s}^T.

  In nn.ConvTranspose terms that adjoint is padding ((1, 2),) on the stride-dilated
  input (forward pad 1 each side gives k-1-1 = 1 low; the high side also absorbs the
  input sample the stride skipped: 1 + 1 = 2). 'SAME' ((2, 1)) gives the
  one-sample-shifted [x0, 2x0, x0+x1, 2x1] instead. w is symmetric, so
  transpose_kernel (which flips w) does not matter here; both values are checked.
  """
  w = jnp.array([1.0, 2.0, 1.0])
  # Column j = strided conv of basis vector e_j.
  a_ws = _fast_jit(jax.vmap(lambda e: _strided_conv_1d(e, w), out_axes=1))(jnp.eye(4))
  np.testing.assert_array_equal(a_ws, [[2, 1, 0, 0], [0, 1, 2, 1]])

  x = jnp.array([3.0, -5.0])
  expected = a_ws.T @ x  # [6, -2, -10, -5]
  np.testing.assert_allclose(_adjoint_of_strided_conv(w, x), expected)

  params = {'params': {'kernel': w[:, None, None]}}
  cases = list(itertools.product([nn.ConvTranspose, PhaseConvTranspose], [False, True],
                                 [((1, 2),), 'SAME']))
  layers = [cls(1, (3,), strides=(2,), padding=pad, use_bias=False, transpose_kernel=tk)
            for cls, tk, pad in cases]
  # One compile for all eight layers.
  outs = _fast_jit(lambda x: [m.apply(params, x[:, None])[:, 0] for m in layers])(x)
  shifted = [x[0], 2 * x[0], x[0] + x[1], 2 * x[1]]
  for (_, _, pad), y in zip(cases, outs):
    np.testing.assert_allclose(y, expected if pad == ((1, 2),) else shifted)


def _adjoint_of_strided_conv(w, x):
  """A_{w,s}^T x via jax.linear_transpose of the strided conv."""
  return _fast_jit(lambda w, x: jax.linear_transpose(
      lambda v: _strided_conv_1d(v, w), jnp.zeros(4))(x)[0])(w, x)


def test_adjoint_of_strided_conv_for_asymmetric_kernel():
  """For a general w the adjoint of the strided conv needs transpose_kernel=True."""
  w = jnp.array([1.0, 2.0, 4.0])
  x = jnp.array([3.0, -5.0])
  adjoint = _adjoint_of_strided_conv(w, x)
  params = {'params': {'kernel': w[:, None, None]}}
  layer = PhaseConvTranspose(1, (3,), strides=(2,), padding=((1, 2),), use_bias=False,
                             transpose_kernel=True)
  np.testing.assert_allclose(_fast_jit(layer.apply)(params, x[:, None])[:, 0], adjoint)


def test_upsample_conv_factory():
  kw = dict(features=2, kernel_size=(4, 4), strides=(2, 2))
  assert type(upsample_conv('transpose', **kw)) is nn.ConvTranspose
  assert type(upsample_conv('phase', **kw)) is PhaseConvTranspose
  cpu = jax.default_backend() == 'cpu'
  assert resolve_upsample_kind('auto') == ('phase' if cpu else 'transpose')
  # On CPU also the 1-feature image layer: the whole DCGAN step is faster so (docs/benchmarks.md).
  assert type(upsample_conv('auto', 1, (4, 4), (2, 2))) is (PhaseConvTranspose if cpu else nn.ConvTranspose)
  layer = upsample_conv('phase', name='up', use_bias=False, **kw)
  assert layer.name == 'up' and not layer.use_bias
  with pytest.raises(ValueError, match='transpose.*phase.*auto'):
    upsample_conv('interpolate', **kw)


def test_checkpoints_interchangeable_inside_a_model():
  """With an explicit name the params tree is identical across the two kinds."""

  class Decoder(nn.Module):
    kind: str

    @nn.compact
    def __call__(self, z):
      return upsample_conv(self.kind, 3, (4, 4), (2, 2), name='up')(z)

  z = jnp.ones((1, 3, 3, 2))
  shapes = jax.eval_shape(Decoder('transpose').init, jax.random.key(0), z)
  assert jax.eval_shape(Decoder('phase').init, jax.random.key(0), z) == shapes
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda a: _normal(rng, a.shape, a.dtype), shapes)
  np.testing.assert_allclose(_fast_jit(Decoder('phase').apply)(params, z),
                             _fast_jit(Decoder('transpose').apply)(params, z), atol=1e-5)


def test_decoder_checkpoints_are_interchangeable_between_upsampling_kinds():
  """A ConvDecoder trained with 'phase' loads into 'transpose' (and back) and computes the same."""
  from genjax.layers.networks import ConvDecoder
  z = np.random.default_rng(0).normal(size=(2, 5)).astype(np.float32)
  phase = ConvDecoder((8, 4), (12, 12, 1), upsample="phase")
  transpose = ConvDecoder((8, 4), (12, 12, 1), upsample="transpose")
  params = phase.init(jax.random.key(0), z)
  assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(
      transpose.init(jax.random.key(0), z))
  np.testing.assert_allclose(phase.apply(params, z), transpose.apply(params, z), atol=1e-5)

"""Exact, CPU-fast transposed convolution via the phase (sub-pixel) decomposition.

XLA's CPU backend computes the weight gradient of a transposed convolution
(``lax.conv_transpose``, i.e. a conv with ``lhs_dilation=s``) very slowly. A
stride-``s`` transposed convolution is, however, exactly ``s`` ordinary stride-1
convolutions per spatial axis (``s**n`` for ``n`` axes), one per output *phase*.

Per axis, ``lax.conv_transpose`` (no kernel flip, kernel dilation ``d``, padding
``(p_lo, p_hi)`` applied to the ``s``-dilated input) computes, for output
position ``o`` with ``q = o - p_lo``::

  y[o] = sum_t w[t] * x[(q + t*d) / s]      (only terms where s divides q + t*d)

Writing ``q = s*a + r - delta`` with phase ``r`` in ``[0, s)`` and a fixed shift
``delta`` (chosen to make the sub-kernels shortest), the taps that reach phase
``r`` are ``T_r = {t : s | r - delta + t*d}`` and::

  y_r[a] = sum_{t in T_r} w[t] * x[a + c_t],   c_t = (r - delta + t*d) / s

an ordinary stride-1 correlation of the *undilated* input with the sub-kernel
``g_r[c_t - c_min] = w[t]``. All ``s**n`` sub-kernels are zero-padded to a
common size and stacked along the output channels, so the whole layer is ONE
stride-1 conv to ``s**n * features`` channels followed by a depth-to-space
interleave and a crop to flax's exact output window. The kernel rearrangement is
a static gather, so parameters keep ``nn.ConvTranspose``'s layout and
checkpoints are interchangeable.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.linear import canonicalize_padding
from jax import lax

UPSAMPLE_KINDS = ('transpose', 'phase', 'auto')
# The phase input gradient of a strided conv with fewer input channels (an image layer) is slower
# than XLA's own kernel on CPU (see conv_phase_input_grad).
_CPU_PHASE_MIN_FEATURES = 3


class _AxisPlan(NamedTuple):
  """Static per-axis recipe for one phase-decomposed transposed conv axis."""

  taps: np.ndarray  # [s, K'] kernel tap index per (phase, offset); k means zero
  pad: tuple[int, int]  # input padding before the stride-1 conv (may be < 0)
  start: int  # crop start in the interleaved output
  length: int  # flax output length


def _transpose_pads(k_eff: int, s: int, padding) -> tuple[int, int]:
  """Padding of the dilated input, exactly as ``lax.conv_transpose`` derives it."""
  if padding == 'SAME':
    pad_len = k_eff + s - 2
    pad_a = k_eff - 1 if s > k_eff - 1 else math.ceil(pad_len / 2)
  elif padding == 'VALID':
    pad_len = k_eff + s - 2 + max(k_eff - s, 0)
    pad_a = k_eff - 1
  else:
    # Explicit pairs are used verbatim on the dilated input (use_consistent_padding=False).
    return tuple(padding)
  return pad_a, pad_len - pad_a


def _best_shift(k: int, s: int, d: int) -> tuple[int, int, int]:
  """Phase origin ``delta`` giving the shortest common sub-kernel; (delta, c_min, K')."""
  best = None
  for delta in range(s):
    offs = [(r - delta + t * d) // s for r in range(s) for t in range(k)
            if (r - delta + t * d) % s == 0]
    span = max(offs) - min(offs) + 1
    if best is None or span < best[2]:
      best = (delta, min(offs), span)
  return best


def _axis_plan(n: int, k: int, s: int, d: int, pads: tuple[int, int]) -> _AxisPlan:
  """Derives sub-kernel taps, input padding and output crop for one spatial axis."""
  k_eff = (k - 1) * d + 1
  p_lo, p_hi = pads
  length = (n - 1) * s + 1 + p_lo + p_hi - k_eff + 1
  if length <= 0:
    raise ValueError(f'Transposed conv output would be empty (size {length}).')
  delta, c_min, span = _best_shift(k, s, d)
  taps = np.full((s, span), k, dtype=np.int32)
  for r in range(s):
    for t in range(k):
      if (r - delta + t * d) % s == 0:
        taps[r, (r - delta + t * d) // s - c_min] = t
  # Phase blocks a_lo..a_hi cover q = s*a + r - delta over q in [-p_lo, length - p_lo).
  a_lo = (delta - p_lo) // s
  a_hi = (length - 1 - p_lo + delta) // s
  first = a_lo + c_min  # first input index read by the stride-1 conv
  last = a_hi + c_min + span - 1  # last input index read
  return _AxisPlan(taps, (-first, last - (n - 1)), delta - p_lo - s * a_lo, length)


def _phase_kernel(kernel: jax.Array, plans: Sequence[_AxisPlan]) -> jax.Array:
  """Rearranges [k..., I, O] into stacked sub-kernels [K'..., I, prod(s)*O]."""
  nsp = len(plans)
  w = kernel
  for i, plan in enumerate(plans):
    ax = 2 * i  # axes before it are already split into (s, K') pairs
    # An appended zero tap fills offsets that no kernel tap reaches in a phase.
    w = jnp.pad(w, [(0, 1) if j == ax else (0, 0) for j in range(w.ndim)])
    s, span = plan.taps.shape
    w = jnp.take(w, plan.taps.reshape(-1), axis=ax)
    w = w.reshape(w.shape[:ax] + (s, span) + w.shape[ax + 1:])
  # [s1, K1, ..., sn, Kn, I, O] -> [K1, ..., Kn, I, s1, ..., sn, O]
  perm = (tuple(range(1, 2 * nsp, 2)) + (2 * nsp,) + tuple(range(0, 2 * nsp, 2))
          + (2 * nsp + 1,))
  w = jnp.transpose(w, perm)
  return w.reshape(w.shape[:nsp + 1] + (-1,))


def _depth_to_space(y: jax.Array, strides: Sequence[int]) -> jax.Array:
  """[N, A..., prod(s)*O] -> [N, A1*s1, ..., An*sn, O] (phase-major interleave)."""
  nsp = len(strides)
  spatial = y.shape[1:1 + nsp]
  y = y.reshape(y.shape[:1 + nsp] + tuple(strides) + (-1,))
  # [N, A1..An, s1..sn, O] -> [N, A1, s1, ..., An, sn, O]
  perm = (0,) + tuple(a for i in range(nsp) for a in (1 + i, 1 + nsp + i)) + (
      1 + 2 * nsp,)
  y = jnp.transpose(y, perm)
  return y.reshape((y.shape[0],) + tuple(a * s for a, s in zip(spatial, strides))
                   + (y.shape[-1],))


def _conv_dimension_numbers(ndim: int) -> lax.ConvDimensionNumbers:
  """Channels-last (NH..C / H..IO) dimension numbers, as flax uses."""
  lhs_spec = (0, ndim - 1) + tuple(range(1, ndim - 1))
  rhs_spec = (ndim - 1, ndim - 2) + tuple(range(0, ndim - 2))
  return lax.ConvDimensionNumbers(lhs_spec, rhs_spec, lhs_spec)


def _pad_spatial(x: jax.Array, pads: Sequence[tuple[int, int]]) -> jax.Array:
  """Pads (or, for negative pads, crops) the spatial axes of [N, spatial..., C]."""
  cfg = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pads] + [(0, 0, 0)]
  return lax.pad(x, jnp.zeros((), x.dtype), cfg)


def phase_conv_transpose(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    padding,
    kernel_dilation: Sequence[int] | None = None,
    precision=None,
    preferred_element_type=None,
) -> jax.Array:
  """``lax.conv_transpose(x, kernel, strides, padding, rhs_dilation)`` via phases.

  ``x`` is [N, spatial..., I] and ``kernel`` [k..., I, O] (already un-transposed);
  ``padding`` is 'SAME', 'VALID' or a sequence of (lo, hi) pairs.
  """
  nsp = x.ndim - 2
  ks = kernel.shape[:nsp]
  dil = tuple(kernel_dilation or (1,) * nsp)
  pads = [padding] * nsp if isinstance(padding, str) else list(padding)
  dn = _conv_dimension_numbers(x.ndim)
  tpads = [_transpose_pads((k - 1) * d + 1, s, p)
           for k, s, d, p in zip(ks, strides, dil, pads)]
  if all(s == 1 for s in strides):
    # Stride 1 has a single phase: conv_transpose is already a plain conv.
    return lax.conv_general_dilated(
        _pad_spatial(x, tpads), kernel, (1,) * nsp, 'VALID', rhs_dilation=dil,
        dimension_numbers=dn, precision=precision,
        preferred_element_type=preferred_element_type)
  plans = [_axis_plan(n, k, s, d, p)
           for n, k, s, d, p in zip(x.shape[1:-1], ks, strides, dil, tpads)]
  w = _phase_kernel(kernel, plans)
  # Explicit pad + VALID conv: XLA:CPU's weight gradient of a conv whose padding
  # grows the output (sum of pads > K'-1) is ~20x slower than the VALID form.
  x = _pad_spatial(x, [p.pad for p in plans])
  y = lax.conv_general_dilated(
      x, w, (1,) * nsp, 'VALID', dimension_numbers=dn, precision=precision,
      preferred_element_type=preferred_element_type)
  y = _depth_to_space(y, strides)
  return y[(slice(None),) + tuple(slice(p.start, p.start + p.length) for p in plans)]


def _circular_wrap(y, in_spatial, strides, transpose_kernel):
  """flax's CIRCULAR post-processing of a VALID transposed conv, verbatim."""
  periods = [n * s for n, s in zip(in_spatial, strides)]
  diffs = [-(yd - p) % (2 * p) for yd, p in zip(y.shape[1:-1], periods)]
  if transpose_kernel:
    total_pad = [(df // 2, (df + 1) // 2) for df in diffs]
  else:
    total_pad = [((df + 1) // 2, df // 2) for df in diffs]
  y = jnp.pad(y, [(0, 0)] + total_pad + [(0, 0)])
  for i in range(1, y.ndim - 1):
    y = y.reshape(y.shape[:i] + (-1, periods[i - 1]) + y.shape[i + 1:])
    y = y.sum(axis=i)
  return y


class PhaseConvTranspose(nn.ConvTranspose):
  """Drop-in ``nn.ConvTranspose`` computed as one stride-1 conv + depth-to-space.

  Same attributes, parameter names/shapes (``kernel`` [k..., in, out] or
  [k..., out, in] with ``transpose_kernel``, ``bias`` [out]) and outputs as
  ``nn.ConvTranspose`` (to float rounding); see the module docstring for the
  decomposition. Note flax auto-names submodules by class name
  (``PhaseConvTranspose_0``), so pass ``name=`` explicitly if checkpoints must be
  shared with an ``nn.ConvTranspose`` model.
  """

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    ks = (self.kernel_size,) if isinstance(self.kernel_size, int) else tuple(
        self.kernel_size)
    nsp = len(ks)

    def bcast(v):
      v = 1 if v is None else v
      return (v,) * nsp if isinstance(v, int) else tuple(v)

    # Flatten all leading batch dims into one (or add one), like flax.
    nbatch = inputs.ndim - (nsp + 1)
    batch_shape = inputs.shape[:nbatch]
    if nbatch != 1:
      inputs = jnp.reshape(inputs, (-1,) + inputs.shape[nbatch:])
    strides, dil = bcast(self.strides), bcast(self.kernel_dilation)

    in_features = inputs.shape[-1]
    kshape = ks + ((self.features, in_features) if self.transpose_kernel else
                   (in_features, self.features))
    if self.mask is not None and self.mask.shape != kshape:
      raise ValueError('Mask needs to have the same shape as weights. '
                       f'Shapes are: {self.mask.shape}, {kshape}')
    kernel = self.param('kernel', self.kernel_init, kshape, self.param_dtype)
    if self.mask is not None:
      kernel *= self.mask
    padding = canonicalize_padding(self.padding, nsp)
    if padding == 'CIRCULAR':
      padding = 'VALID'
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    inputs, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
    if self.transpose_kernel:
      # Same as lax.conv_transpose(transpose_kernel=True): flip space, swap I/O.
      kernel = jnp.flip(kernel, axis=tuple(range(nsp))).swapaxes(-1, -2)

    y = phase_conv_transpose(inputs, kernel, strides, padding, dil,
                             self.precision, self.preferred_element_type)
    if self.padding == 'CIRCULAR':
      y = _circular_wrap(y, inputs.shape[1:-1], strides, self.transpose_kernel)
    if bias is not None:
      y += jnp.reshape(bias, (1,) * (y.ndim - 1) + (-1,))
    if nbatch != 1:
      y = jnp.reshape(y, batch_shape + y.shape[1:])
    return y


def resolve_upsample_kind(kind: str) -> str:
  """Maps 'auto' to a concrete kind for the current backend."""
  if kind not in UPSAMPLE_KINDS:
    raise ValueError(f'Unknown upsample kind {kind!r}; choose one of {UPSAMPLE_KINDS} '
                     "('interpolate' is handled by the model code).")
  if kind != 'auto':
    return kind
  # GPU/TPU: keep nn.ConvTranspose until benchmarks/upsample_bench.py shows phase wins.
  # CPU: phase at every width. Alone, XLA's kernel is faster for a 1-feature image layer, but the
  # whole DCGAN-28 step is 11% faster with phase there too (7.8 vs 7.0 steps/s, two idle runs).
  return 'phase' if jax.default_backend() == 'cpu' else 'transpose'


def upsample_conv(kind: str, features: int, kernel_size, strides, padding='SAME',
                  **kw) -> nn.Module:
  """Builds a learned upsampling layer: 'transpose' | 'phase' | 'auto'.

  Both concrete kinds have identical parameters and outputs; only speed differs.
  Pass ``name=`` if checkpoints must load across kinds (flax auto-names by class).
  """
  cls = {'transpose': nn.ConvTranspose,
         'phase': PhaseConvTranspose}[resolve_upsample_kind(kind)]
  return cls(features=features, kernel_size=kernel_size, strides=strides,
             padding=padding, **kw)


# -- strided convolutions whose input gradient is a phase-decomposed transposed conv

CONV_INPUT_GRADS = ('xla', 'phase', 'auto')


def _input_grad_pads(n: int, k_eff: int, s: int, pads: tuple[int, int]) -> tuple[int, int] | None:
  """Padding of the transposed conv that is a strided conv's input gradient (None: not supported).

  Forward: y[o] = sum_t w[t] x[s*o + t - lo]; so dx[i] = sum_t w[t] g[(i + lo - t) / s], the
  transposed conv of g by the flipped kernel with padding (k_eff-1-lo, n+lo-1-(m-1)*s).
  """
  lo, hi = pads
  m = (n + lo + hi - k_eff) // s + 1
  grad_pads = (k_eff - 1 - lo, n + lo - 1 - (m - 1) * s)
  return grad_pads if min(grad_pads) >= 0 and max(lo, hi) <= k_eff - 1 else None


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_phase_grad(x, kernel, strides, pads, precision):
  return lax.conv_general_dilated(x, kernel, strides, pads, precision=precision,
                                  dimension_numbers=_conv_dimension_numbers(x.ndim))


def _conv_phase_grad_fwd(x, kernel, strides, pads, precision):
  return _conv_phase_grad(x, kernel, strides, pads, precision), (x, kernel)


def _conv_phase_grad_bwd(strides, pads, precision, residuals, g):
  x, kernel = residuals
  nsp = x.ndim - 2
  conv_of_kernel = lambda w: lax.conv_general_dilated(
      x, w, strides, pads, precision=precision, dimension_numbers=_conv_dimension_numbers(x.ndim))
  kernel_grad, = jax.vjp(conv_of_kernel, kernel)[1](g)  # XLA's own kernel gradient is fast
  grad_pads = [_input_grad_pads(n, k, s, p)
               for n, k, s, p in zip(x.shape[1:-1], kernel.shape[:nsp], strides, pads)]
  flipped = jnp.flip(kernel, axis=tuple(range(nsp))).swapaxes(-1, -2)
  input_grad = phase_conv_transpose(g, flipped, strides, grad_pads, None, precision)
  return input_grad, kernel_grad


_conv_phase_grad.defvjp(_conv_phase_grad_fwd, _conv_phase_grad_bwd)


def conv_phase_input_grad(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                          dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                          precision=None, preferred_element_type=None):
  """``lax.conv_general_dilated`` (same signature, same result) whose input gradient is computed
  by the phase decomposition instead of XLA's ``lhs_dilation`` convolution (slow on CPU).

  For a flax ``nn.Conv(..., conv_general_dilated=conv_phase_input_grad)``. Reverse mode only
  (a ``jax.custom_vjp``): forward-mode differentiation (``jax.jacfwd``) raises. Configurations
  outside plain strided channels-last convolutions fall through to ``lax.conv_general_dilated``.
  """
  nsp = lhs.ndim - 2
  strides = tuple(window_strides)
  pads = (tuple(lax.padtype_to_pads(lhs.shape[1:-1], rhs.shape[:nsp], strides, padding))
          if isinstance(padding, str) else tuple(tuple(p) for p in padding))
  plain = (all(d == 1 for d in (lhs_dilation or ())) and all(d == 1 for d in (rhs_dilation or ()))
           and feature_group_count == 1 and batch_group_count == 1 and preferred_element_type is None
           and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
           == _conv_dimension_numbers(lhs.ndim))
  # A 1-2 channel input gradient (an image layer) is faster by XLA's own kernel, as in upsampling.
  supported = (plain and any(s > 1 for s in strides) and rhs.shape[-2] >= _CPU_PHASE_MIN_FEATURES
               and all(_input_grad_pads(n, k, s, p) is not None
                       for n, k, s, p in zip(lhs.shape[1:-1], rhs.shape[:nsp], strides, pads)))
  if not supported:
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
        feature_group_count, batch_group_count, precision, preferred_element_type)
  pads = tuple((int(lo), int(hi)) for lo, hi in pads)
  return _conv_phase_grad(lhs, rhs, strides, pads, precision)


def resolve_conv_input_grad(kind: str) -> str:
  """'auto' -> 'phase' on CPU (XLA:CPU's lhs-dilated conv is the slow part), else 'xla'."""
  if kind not in CONV_INPUT_GRADS:
    raise ValueError(f'Unknown conv input gradient {kind!r}; choose one of {CONV_INPUT_GRADS}.')
  if kind != 'auto':
    return kind
  return 'phase' if jax.default_backend() == 'cpu' else 'xla'

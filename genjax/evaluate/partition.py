"""Partition functions of Bernoulli-Bernoulli RBMs: exact enumeration and annealed importance sampling.

E(v, h) = -b.v - c.h - v.W.h, p(v, h) = exp(-E) / Z. Summing out either layer is closed form:

  F(v) = -b.v - sum_j softplus(c_j + (v W)_j)        p(v) = exp(-F(v)) / Z     (Hinton 2010, eq. 12)
  G(h) = -c.h - sum_i softplus(b_i + (W h)_i)        p(h) = exp(-G(h)) / Z

so log Z = logsumexp over the 2^n states of the smaller layer (exact for n <= 20, chunked), and
otherwise AIS (Salakhutdinov & Murray 2008, sec. 3-4) from a base-rate RBM (W = 0, c = 0, visible
biases b_A) along p_k(v) ~ exp((1 - beta_k) b_A.v + beta_k b.v) prod_j (1 + exp(beta_k (c + vW)_j)).
`params` is {'weights' [V, H], 'visible_bias' [V], 'hidden_bias' [H]}; nothing here knows the trainer.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Params = dict  # {'weights': [V, H], 'visible_bias': [V], 'hidden_bias': [H]}

# Enumeration beyond this many units (2^20 ~ 1M states) is left to AIS.
MAX_EXACT_UNITS = 20
# Salakhutdinov & Murray (2008) sec. 4: 500 betas spaced uniformly in [0, 0.5], 4,000 in [0.5, 0.9]
# and 10,000 in [0.9, 1]: 14,500 intermediate distributions.
PAPER_BREAKS, PAPER_COUNTS = (0.5, 0.9, 1.0), (500, 4000, 10000)
# Pixel means are clipped to [eps, 1 - eps] before the logit: always-off pixels get a finite bias.
BASE_RATE_EPS = 1e-3


def free_energy(params: Params, v: Array) -> Array:
  """F(v) = -b.v - sum_j softplus(c_j + (v W)_j), [batch] (Hinton 2010, eq. 12)."""
  hidden_input = v @ params["weights"] + params["hidden_bias"]
  return -(v @ params["visible_bias"]) - jnp.sum(jax.nn.softplus(hidden_input), axis=-1)


def hidden_free_energy(params: Params, h: Array) -> Array:
  """G(h) = -c.h - sum_i softplus(b_i + (W h)_i), [batch]: F with the layers' roles swapped."""
  visible_input = h @ params["weights"].T + params["visible_bias"]
  return -(h @ params["hidden_bias"]) - jnp.sum(jax.nn.softplus(visible_input), axis=-1)


def binary_states(start: Array, count: int, num_units: int) -> Array:
  """States start .. start + count - 1 of `num_units` bits (bit i of the index is unit i): [count, n]."""
  index = start + jnp.arange(count, dtype=jnp.int32)
  return ((index[:, None] >> jnp.arange(num_units, dtype=jnp.int32)) & 1).astype(jnp.float32)


def enumerate_log_sum_exp(negative_energy_fn, num_units: int, chunk_size: int = 4096) -> Array:
  """log sum over all 2^n binary states s of exp(negative_energy_fn(s)), a chunk of states at a time."""
  total = 2 ** num_units
  chunk_size = min(chunk_size, total)
  num_chunks = total // chunk_size  # both powers of two

  def add_chunk(running, chunk):
    states = binary_states(chunk * chunk_size, chunk_size, num_units)
    return jnp.logaddexp(running, jax.nn.logsumexp(negative_energy_fn(states))), None

  running, _ = jax.lax.scan(add_chunk, jnp.asarray(-jnp.inf, jnp.float32), jnp.arange(num_chunks))
  return running


def exact_log_partition(params: Params, chunk_size: int = 4096) -> Array:
  """log Z by enumerating the smaller layer (hidden on ties); ValueError past MAX_EXACT_UNITS units."""
  num_visible, num_hidden = params["weights"].shape
  smaller = min(num_visible, num_hidden)
  if smaller > MAX_EXACT_UNITS:
    raise ValueError(f"exact log Z enumerates 2^{smaller} states; at most {MAX_EXACT_UNITS} units "
                     f"in the smaller layer are allowed, use AIS")
  if num_hidden <= num_visible:
    return enumerate_log_sum_exp(lambda h: -hidden_free_energy(params, h), num_hidden, chunk_size)
  return enumerate_log_sum_exp(lambda v: -free_energy(params, v), num_visible, chunk_size)


def ais_betas(breaks: Sequence[float] = PAPER_BREAKS, counts: Sequence[int] = PAPER_COUNTS) -> np.ndarray:
  """0 = beta_0 < ... < beta_K = 1: `counts[i]` equal steps from breaks[i-1] (0 first) to breaks[i]."""
  if len(breaks) != len(counts) or not breaks or breaks[-1] != 1.0:
    raise ValueError(f"need as many breaks as counts, the last break 1.0; got {breaks}, {counts}")
  starts = (0.0,) + tuple(breaks[:-1])
  pieces = [np.linspace(lo, hi, n + 1)[1:] for lo, hi, n in zip(starts, breaks, counts)]
  return np.concatenate([[0.0]] + pieces).astype(np.float32)


def base_rate_bias(mean_visible: Array | np.ndarray, eps: float = BASE_RATE_EPS) -> Array:
  """b_A = log(p / (1 - p)) of the data's pixel means, clipped: the base-rate RBM of AIS (and the
  visible-bias initialisation of Hinton's practical guide, sec. 8.1)."""
  p = jnp.clip(jnp.asarray(mean_visible, jnp.float32), eps, 1.0 - eps)
  return jnp.log(p) - jnp.log1p(-p)


def _log_unnormalised(params: Params, base_bias: Array, beta: Array, v: Array,
                      hidden_input: Array) -> Array:
  """log p*_beta(v) = (1 - beta) b_A.v + beta b.v + sum_j softplus(beta (c + vW)_j), [chains]."""
  return ((1.0 - beta) * (v @ base_bias) + beta * (v @ params["visible_bias"])
          + jnp.sum(jax.nn.softplus(beta * hidden_input), axis=-1))


def _transition(params: Params, base_bias: Array, beta: Array, hidden_input: Array,
                rng: Array) -> Array:
  """One Gibbs sweep v -> h -> v that leaves p_beta invariant (hidden_input = c + vW of the old v)."""
  h_key, v_key = jax.random.split(rng)
  h = jax.random.bernoulli(h_key, jax.nn.sigmoid(beta * hidden_input)).astype(hidden_input.dtype)
  v_logits = (1.0 - beta) * base_bias + beta * (h @ params["weights"].T + params["visible_bias"])
  return jax.random.bernoulli(v_key, jax.nn.sigmoid(v_logits)).astype(hidden_input.dtype)


def ais_log_weights(params: Params, base_bias: Array, betas: Array, rng: Array,
                    num_chains: int) -> Array:
  """log w of `num_chains` AIS runs (Salakhutdinov & Murray 2008, eq. 9-10), [chains]:
  v_0 ~ p_A, log w = sum_k log p*_k(v_{k-1}) - log p*_{k-1}(v_{k-1}), v_k ~ T_k(v_{k-1})."""
  base_bias = jnp.asarray(base_bias, jnp.float32)
  start_key, chain_key = jax.random.split(rng)
  v = jax.random.bernoulli(start_key, jax.nn.sigmoid(base_bias),
                           (num_chains, base_bias.shape[0])).astype(jnp.float32)

  def anneal(carry, inputs):
    v, log_w = carry
    k, beta_prev, beta = inputs
    hidden_input = v @ params["weights"] + params["hidden_bias"]  # shared by both terms and T_k
    log_w = log_w + (_log_unnormalised(params, base_bias, beta, v, hidden_input)
                     - _log_unnormalised(params, base_bias, beta_prev, v, hidden_input))
    v = _transition(params, base_bias, beta, hidden_input, jax.random.fold_in(chain_key, k))
    return (v, log_w), None

  betas = jnp.asarray(betas, jnp.float32)
  steps = (jnp.arange(1, betas.shape[0]), betas[:-1], betas[1:])
  (_, log_w), _ = jax.lax.scan(anneal, (v, jnp.zeros((num_chains,), jnp.float32)), steps)
  return log_w


def base_log_partition(base_bias: Array, num_hidden: int) -> Array:
  """log Z_A of the base-rate RBM (W = 0, c = 0): sum_i softplus(b_A,i) + H log 2."""
  return jnp.sum(jax.nn.softplus(jnp.asarray(base_bias, jnp.float32))) + num_hidden * math.log(2.0)


def ais_log_partition(params: Params, base_bias: Array, betas: Array, rng: Array,
                      num_chains: int = 100) -> dict[str, Array]:
  """AIS estimate of log Z: log Z_A + log mean(w), and its spread (Salakhutdinov & Murray, sec. 4).

  'log_z_std' is the delta-method standard deviation of log Z-hat, std(w) / (sqrt(M) mean(w));
  'log_z_lower' / 'log_z_upper' are log(Z-hat -+ 3 std(Z-hat)) as in the paper's tables (the lower
  one is NaN when 3 std exceeds Z-hat).
  """
  log_w = ais_log_weights(params, base_bias, betas, rng, num_chains)
  log_mean_w = jax.nn.logsumexp(log_w) - math.log(num_chains)
  relative_w = jnp.exp(log_w - log_mean_w)  # w / mean(w): mean 1
  relative_std = jnp.std(relative_w) / math.sqrt(num_chains)  # std(Z-hat) / Z-hat
  log_z = base_log_partition(base_bias, params["weights"].shape[1]) + log_mean_w
  return {"log_z": log_z, "log_z_std": relative_std,
          "log_z_lower": log_z + jnp.log(1.0 - 3.0 * relative_std),
          "log_z_upper": log_z + jnp.log1p(3.0 * relative_std)}

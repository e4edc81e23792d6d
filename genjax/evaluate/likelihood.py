"""Likelihood bounds of latent-variable models, as pure functions of a log-weight function.

A model supplies `log_weight_fn(rng, x, k) -> [k, batch]` with log w_i = log p(x, z_i) - log q(z_i | x),
z_i ~ q(. | x). Then (Burda et al. 2016, eq. 8) L_k = log (1/k) sum_i w_i <= log p(x) is the
importance-sampled log-likelihood estimate, which rises to log p(x) as k grows. Nothing here knows
the model: VAEs and (later) flows with a variational dequantiser reuse the same code.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from genjax.data import dynamic_binarize

Array = jax.Array
LogWeightFn = Callable[[Array, Array, int], Array]  # (rng, x, k) -> log weights [k, batch]

# Salt of the one fixed binarisation of a test set: every checkpoint is scored on the same bits.
_TEST_BINARIZATION_STEP = 0x7E57


def importance_sampled_log_likelihood(log_weight_fn: LogWeightFn, rng: Array, x: Array,
                                      num_samples: int, chunk_size: int = 500) -> Array:
  """log (1/k) sum_{i<k} w_i per example ([batch]), drawing the k weights in chunks.

  Memory is that of one chunk: a `lax.scan` over the full chunks carries a running logsumexp, and a
  smaller last call covers k mod chunk_size. Chunk i uses fold_in(rng, i), so the estimate for a
  given k does not depend on how much memory the caller can spare only through the chunk size.
  """
  if num_samples < 1 or chunk_size < 1:
    raise ValueError(f"need num_samples >= 1 and chunk_size >= 1, got {num_samples}, {chunk_size}")
  chunk_size = min(chunk_size, num_samples)
  num_full, remainder = divmod(num_samples, chunk_size)

  def add_chunk(running, index_and_size):
    index, size = index_and_size
    log_weights = log_weight_fn(jax.random.fold_in(rng, index), x, size)
    return jnp.logaddexp(running, jax.nn.logsumexp(log_weights, axis=0))

  batch = x.shape[0]
  running = jnp.full((batch,), -jnp.inf, dtype=jnp.result_type(float))
  running, _ = jax.lax.scan(lambda r, i: (add_chunk(r, (i, chunk_size)), None), running,
                            jnp.arange(num_full))
  if remainder:
    running = add_chunk(running, (num_full, remainder))
  return running - math.log(num_samples)


def bits_per_dim(nll_nats: Array | float, num_dims: int) -> Array | float:
  """NLL per example in nats -> bits per dimension: NLL / (D ln 2)."""
  return nll_nats / (num_dims * math.log(2.0))


def binarize_test_set(x: np.ndarray, seed: int) -> np.ndarray:
  """Stochastic binarisation 1[u < x] drawn ONCE from a fixed seed, so every evaluation (and every
  checkpoint) is scored on the same binary test set; the training pipeline's own binarisation."""
  return dynamic_binarize(np.asarray(x), seed, _TEST_BINARIZATION_STEP)


def dataset_means(per_example_fn: Callable[[np.ndarray, int], dict[str, Array]],
                  batches: Iterable[dict], pad_to: int | None = None, total: int | None = None,
                  progress_every_s: float = 30.0) -> dict[str, float]:
  """Means over a whole split of per-example values: `per_example_fn(x, batch_index)` -> {name: [b]}.

  With `pad_to`, a short last batch is padded (repeating its last row) and the padding dropped, so a
  jitted `per_example_fn` compiles once. With `total` (the split's size), a pass longer than
  `progress_every_s` logs how far it is, its rate and an ETA.
  """
  totals: dict[str, float] = {}
  count = 0
  started = last_log = time.perf_counter()
  for index, batch in enumerate(batches):
    x = np.asarray(batch["x"])
    n = len(x)
    if pad_to and n < pad_to:
      x = np.concatenate([x, np.repeat(x[-1:], pad_to - n, axis=0)])
    values = jax.device_get(per_example_fn(x, index))
    for name, value in values.items():
      totals[name] = totals.get(name, 0.0) + float(np.sum(np.asarray(value, np.float64)[:n]))
    count += n
    now = time.perf_counter()
    if total and now - last_log >= progress_every_s and count < total:
      rate = count / (now - started)
      logging.info("eval: %d/%d examples | %.1f examples/s | ETA %s", count, total, rate,
                   time.strftime("%H:%M:%S", time.gmtime((total - count) / rate)))
      last_log = now
  return {name: value_sum / count for name, value_sum in totals.items()} | {"num_examples": count}

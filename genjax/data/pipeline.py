"""Input pipeline whose batch is a pure function of (seed, step): resuming needs no iterator state.

Example position p = step * global_batch_size + i walks an endless sequence of epochs; epoch e is
`default_rng([seed, e]).permutation(N)`. Every process computes the same global batch positions and
keeps only its own contiguous rows, so the union over processes is the 1-process batch.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

Arrays = dict  # name -> np.ndarray with a shared leading example axis


def _num_examples(arrays: Arrays) -> int:
  """The shared leading length; mismatched or empty arrays are a caller bug, so fail here."""
  lengths = {k: len(v) for k, v in arrays.items()}
  if not lengths or len(set(lengths.values())) != 1:
    raise ValueError(f"arrays must share a non-empty leading axis, got lengths {lengths}")
  n = next(iter(lengths.values()))
  if n == 0:
    raise ValueError("cannot draw batches from an empty dataset")
  return n


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """The example order of one epoch; a pure function so every process and restart agrees."""
  return np.random.default_rng([seed, epoch]).permutation(n)


def example_indices(seed: int, positions: np.ndarray, n: int,
                    cache: dict | None = None) -> np.ndarray:
  """Dataset indices of global example positions (permutations memoised in `cache`)."""
  cache = {} if cache is None else cache
  epochs = positions // n
  out = np.empty_like(positions)
  for epoch in np.unique(epochs):
    if epoch not in cache:
      if len(cache) >= 4:  # a batch spans at most a few epochs; keep memory bounded
        cache.pop(next(iter(cache)))
      cache[epoch] = epoch_permutation(seed, int(epoch), n)
    where = epochs == epoch
    out[where] = cache[epoch][positions[where] % n]
  return out


def dynamic_binarize(x: np.ndarray, seed: int, step: int, row_offset: int = 0,
                     global_rows: int | None = None) -> np.ndarray:
  """x := 1[u < x], u from rng([seed, step, 1]) drawn for all `global_rows` rows then sliced.

  Drawing the whole global batch and keeping rows [row_offset, row_offset + len(x)) makes the
  result independent of how the batch is split over processes.
  """
  global_rows = len(x) if global_rows is None else global_rows
  u = np.random.default_rng([seed, step, 1]).uniform(size=(global_rows, *x.shape[1:]))
  return (u[row_offset:row_offset + len(x)] < x).astype(np.float32)


class Batches:
  """Deterministic, resumable batches: the batch for step t is a pure function of (seed, t)."""

  def __init__(self, arrays: Arrays, global_batch_size: int, seed: int, *, binarize: bool = False,
               process_index: int = 0, process_count: int = 1):
    if global_batch_size <= 0 or seed < 0:
      raise ValueError(f"need global_batch_size > 0 and seed >= 0, got {global_batch_size}, {seed}")
    if global_batch_size % process_count:
      raise ValueError(f"global_batch_size {global_batch_size} is not divisible by "
                       f"process_count {process_count}")
    if not 0 <= process_index < process_count:
      raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    self.arrays = dict(arrays)
    self.num_examples = _num_examples(self.arrays)
    self.global_batch_size = global_batch_size
    self.local_batch_size = global_batch_size // process_count
    self.seed = int(seed)
    self.binarize = binarize
    self.process_index = process_index
    self.process_count = process_count
    self._permutations: dict = {}

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    step = int(step)  # also accepts numpy / jax scalars from the train state
    if step < 0:
      raise ValueError(f"step must be >= 0, got {step}")
    start = step * self.global_batch_size + self.process_index * self.local_batch_size
    positions = np.arange(start, start + self.local_batch_size, dtype=np.int64)
    rows = example_indices(self.seed, positions, self.num_examples, self._permutations)
    batch = {k: v[rows] for k, v in self.arrays.items()}
    if self.binarize:
      batch["x"] = dynamic_binarize(batch["x"], self.seed, step,
                                    self.process_index * self.local_batch_size,
                                    self.global_batch_size)
    return batch


def eval_batches(arrays: Arrays, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
  """Every example exactly once, in stored order; the last batch may be smaller."""
  if batch_size <= 0:
    raise ValueError(f"batch_size must be > 0, got {batch_size}")
  n = _num_examples(arrays)
  for start in range(0, n, batch_size):
    yield {k: v[start:start + batch_size] for k, v in arrays.items()}

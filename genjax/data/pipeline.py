"""Input pipeline whose batch is a pure function of (seed, step): resuming needs no iterator state.

Example position p = step * global_batch_size + i walks an endless sequence of epochs; epoch e is
`default_rng([seed, e]).permutation(N)`. Every process computes the same global batch positions and
keeps only its own contiguous rows, so the union over processes is the 1-process batch.

Rows come from a source: arrays held in memory (`ArraySource`) or a TFDS array_record data source
read on demand (`RecordSource`, for data that does not fit); both give identical batches.
`batch_stream` serves the steps of a run in order through grain, threads (and optionally worker
processes) reading ahead of the device. A resumed run starts its stream at its step.

Served pixels: 8-bit images travel as uint8 (k stands for k / 255), dynamically binarised ones as
bool; `to_float` turns them into float32 inside the jitted step, bit-equal to the float path.
"""
from __future__ import annotations

import functools
from typing import Iterator

import numpy as np

Arrays = dict  # name -> np.ndarray with a shared leading example axis

# k / 255 in float32, computed as the float path computes it. The jitted conversion looks values up
# here: XLA rewrites x / 255 as x * (1 / 255), which differs in the last bit for 126 of the 256 values.
PIXEL_VALUES = np.arange(256, dtype=np.float32) / np.float32(255)


def _num_examples(arrays: Arrays) -> int:
  """The shared leading length; mismatched or empty arrays are a caller bug, so fail here."""
  lengths = {k: len(v) for k, v in arrays.items()}
  if not lengths or len(set(lengths.values())) != 1:
    raise ValueError(f"arrays must share a non-empty leading axis, got lengths {lengths}")
  n = next(iter(lengths.values()))
  if n == 0:
    raise ValueError("cannot draw batches from an empty dataset")
  return n


# ----------------------------------------------------------------------------- served form

def served(x: np.ndarray, label: np.ndarray, scale: float) -> dict[str, np.ndarray]:
  """The rows a pipeline moves: 8-bit pixels (scale 255) stay uint8, other values float32 x / scale."""
  if not (x.dtype == np.uint8 and scale == 255):
    x = x.astype(np.float32) / np.float32(scale)
  return {"x": x, "label": label.astype(np.int32)}


def _float(array, xp):
  if array.dtype == np.uint8:
    return xp.asarray(PIXEL_VALUES)[array]
  if array.dtype == np.bool_:
    return array.astype(xp.float32)
  return array


def as_float(batch: dict, xp=np) -> dict:
  """uint8 pixels -> k / 255 and bool -> 0 / 1, in float32; other arrays unchanged (xp: np or jnp)."""
  return {k: _float(v, xp) for k, v in batch.items()}


def to_float(batch: dict) -> dict:
  """`as_float` on device arrays: what the jitted step applies before the family sees the batch."""
  import jax.numpy as jnp
  return as_float(batch, jnp)


# ----------------------------------------------------------------------------- sources

class ArraySource:
  """Rows held in memory: arrays (already in served form) with a shared leading axis."""

  def __init__(self, arrays: Arrays):
    self.arrays = dict(arrays)
    self.num_examples = _num_examples(self.arrays)

  def __len__(self) -> int:
    return self.num_examples

  def rows(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[indices] for k, v in self.arrays.items()}


class RecordSource:
  """Rows read on demand from a TFDS data source of {'x', 'label'} records, served like `served`."""

  def __init__(self, data_source, scale: float):
    if len(data_source) == 0:
      raise ValueError("cannot draw batches from an empty dataset")
    self.data_source = data_source
    self.scale = scale

  def __len__(self) -> int:
    return len(self.data_source)

  def rows(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    records = self.data_source.__getitems__(indices.tolist())
    x = np.stack([np.asarray(r["x"]) for r in records])
    return served(x, np.asarray([r["label"] for r in records]), self.scale)


# ----------------------------------------------------------------------------- indices

@functools.lru_cache(maxsize=16)  # a batch spans at most a few epochs; thread-safe for grain's readers
def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """The example order of one epoch; a pure function so every process and restart agrees."""
  permutation = np.random.default_rng([seed, epoch]).permutation(n)
  permutation.flags.writeable = False  # shared by every caller through the cache
  return permutation


def example_indices(seed: int, positions: np.ndarray, n: int) -> np.ndarray:
  """Dataset indices of global example positions."""
  epochs = positions // n
  out = np.empty_like(positions)
  for epoch in np.unique(epochs):
    where = epochs == epoch
    out[where] = epoch_permutation(seed, int(epoch), n)[positions[where] % n]
  return out


def dynamic_binarize(x: np.ndarray, seed: int, step: int, row_offset: int = 0,
                     global_rows: int | None = None) -> np.ndarray:
  """x := 1[u < x], u from rng([seed, step, 1]) drawn for all `global_rows` rows then sliced.

  Drawing the whole global batch and keeping rows [row_offset, row_offset + len(x)) makes the
  result independent of how the batch is split over processes. uint8 pixels compare as k / 255 and
  come back bool (one byte moved); float pixels come back float32 0 / 1.
  """
  global_rows = len(x) if global_rows is None else global_rows
  u = np.random.default_rng([seed, step, 1]).uniform(size=(global_rows, *x.shape[1:]))
  ones = u[row_offset:row_offset + len(x)] < _float(x, np)
  return ones if x.dtype == np.uint8 else ones.astype(np.float32)


class Batches:
  """Deterministic, resumable batches: the batch for step t is a pure function of (seed, t).

  `source` is a dict of arrays or a source with `rows(indices)` (`ArraySource`, `RecordSource`).
  """

  def __init__(self, source, global_batch_size: int, seed: int, *, binarize: bool = False,
               process_index: int = 0, process_count: int = 1):
    if global_batch_size <= 0 or seed < 0:
      raise ValueError(f"need global_batch_size > 0 and seed >= 0, got {global_batch_size}, {seed}")
    if global_batch_size % process_count:
      raise ValueError(f"global_batch_size {global_batch_size} is not divisible by "
                       f"process_count {process_count}")
    if not 0 <= process_index < process_count:
      raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    self.source = source if hasattr(source, "rows") else ArraySource(source)
    self.num_examples = len(self.source)
    self.global_batch_size = global_batch_size
    self.local_batch_size = global_batch_size // process_count
    self.seed = int(seed)
    self.binarize = binarize
    self.process_index = process_index
    self.process_count = process_count

  def rows(self, step: int) -> np.ndarray:
    """The dataset indices this process reads at `step` (its contiguous slice of the global batch)."""
    start = step * self.global_batch_size + self.process_index * self.local_batch_size
    positions = np.arange(start, start + self.local_batch_size, dtype=np.int64)
    return example_indices(self.seed, positions, self.num_examples)

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    step = int(step)  # also accepts numpy / jax scalars from the train state
    if step < 0:
      raise ValueError(f"step must be >= 0, got {step}")
    batch = self.source.rows(self.rows(step))
    if self.binarize:
      batch["x"] = dynamic_binarize(batch["x"], self.seed, step,
                                    self.process_index * self.local_batch_size,
                                    self.global_batch_size)
    return batch


def batch_stream(batches: Batches, start: int, stop: int, *, threads: int = 2, workers: int = 0,
                 prefetch: int = 8) -> Iterator[dict[str, np.ndarray]]:
  """batches(start), ..., batches(stop - 1) in order, read ahead through grain: `threads` reader
  threads keep up to `prefetch` batches ready; `workers` > 0 moves reading into worker processes."""
  import grain  # here, not at module import: it takes seconds and only training streams
  dataset = grain.MapDataset.range(start, stop).map(batches).to_iter_dataset(
      grain.ReadOptions(num_threads=threads, prefetch_buffer_size=prefetch))
  if workers:
    from absl import flags
    if not flags.FLAGS.is_parsed():  # grain's workers read absl flags, which scripts never parse
      flags.FLAGS.mark_as_parsed()
    dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
  return iter(dataset)


def eval_batches(arrays: Arrays, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
  """Every example exactly once, in stored order; the last batch may be smaller."""
  if batch_size <= 0:
    raise ValueError(f"batch_size must be > 0, got {batch_size}")
  n = _num_examples(arrays)
  for start in range(0, n, batch_size):
    yield {k: v[start:start + batch_size] for k, v in arrays.items()}

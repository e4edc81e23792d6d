"""The protocol a model family implements to plug into the one training loop (see genjax/trainer.py)."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from genjax.state import TrainState

Batch = dict[str, jax.Array]


@runtime_checkable
class Objective(Protocol):
  """What every family supplies. Optional abilities are plain methods the caller checks for:

  - `pictures(state, batch, rng) -> {name: array}`: images [N,H,W,C] in [0,1] or points [N,2],
    drawn every `sample_every` steps from a fixed test batch and a fixed key (same z each time).
  - `sample(state, rng, n) -> array`: n draws from the model (`--mode sample` writes samples.npy).
  - `evaluate(state, arrays, rng) -> {name: float}`: test-set numbers for `--mode eval`.
  - `warnings(interval_means) -> [str]`: host-side checks of the logged means (the trainer logs
    each string as a warning), e.g. a discriminator that wins outright.
  - `encode`, `decode`, `log_likelihood`: used by evaluation and the notebook API where present.
  - `program_key(step) -> hashable` and `for_program(key) -> objective`: a step whose structure
    changes with the step (progressive growing's level); the trainer compiles
    `for_program(key).step` once per key, switching at the steps where the key changes.
  """

  def init(self, rng: jax.Array, batch: Batch) -> TrainState:
    """A fresh state (step 0) shaped for this batch; pure, jitted by the trainer."""

  def step(self, state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, dict[str, Any]]:
    """One update (all phases of it); pure, jitted by the trainer, which then increments `step`."""


def has_ability(objective: Any, name: str) -> bool:
  return callable(getattr(objective, name, None))


def as_numpy(tree) -> Any:
  return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))

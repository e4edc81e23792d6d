"""The train state every family uses: one pytree holding everything a resume needs."""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
  """Params and optimizer states are dicts keyed by parameter group ('model', or 'generator'/'critic').

  `rng` is the run's base key; the key of step t is `fold_in(rng, t)` (big_vision), so randomness is
  a function of the step number and a resumed run draws exactly what the uninterrupted one drew.
  `extras` holds family state that is neither a parameter nor an optimizer state (batch statistics,
  EMA weights, counters).
  """
  step: jax.Array
  rng: jax.Array
  params: Any
  opt_state: Any
  extras: Any = flax.struct.field(default_factory=dict)
  # Updates dropped for a non-finite loss or parameter (only with `skip_nonfinite`).
  skipped: jax.Array = flax.struct.field(default_factory=lambda: jnp.zeros((), jnp.int32))

  @classmethod
  def create(cls, rng: jax.Array, params, opt_state, extras=None) -> "TrainState":
    return cls(step=jnp.zeros((), jnp.int32), rng=rng, params=params, opt_state=opt_state,
               extras={} if extras is None else extras, skipped=jnp.zeros((), jnp.int32))


# A run's base key is fold_in(key(config.seed), TRAIN_KEY_SALT): apart from the key `init` gets.
TRAIN_KEY_SALT = 1


def train_key(seed_key: jax.Array) -> jax.Array:
  """The base key (`TrainState.rng`) of the run whose init key is `seed_key` = key(config.seed)."""
  return jax.random.fold_in(seed_key, TRAIN_KEY_SALT)


def step_key(state: TrainState) -> jax.Array:
  """The key of this step: a pure function of (base key, step)."""
  return jax.random.fold_in(state.rng, state.step)

"""S seeds of one config as ONE vmapped program: a wrapper around any family, switched on by
`config.num_seeds > 1` (the registry applies it, so the trainer never names it).

Seed s (s = 0 .. S-1) is the single run with `config.seed = config.seed + s`, exactly:
- init: the family's `init` under vmap, with that run's key `key(seed + s)` and its first batch;
- step: the family's `step` under vmap, with that run's step key `fold_in(fold_in(key(seed + s), 1),
  step)` (the trainer's train key and step key, see genjax/trainer.py) and that run's rows
  (`Batches` of seed + s, drawn on the host by a callback from the step number: the trainer's own
  batch is drawn for `config.seed` only, so it is used for nothing but its shape);
- evaluate: the family's `evaluate` per seed, with the key `--mode eval` gives that run, reported as
  the mean, the standard error over seeds (`KEY_se`) and the per-seed values (`KEY_per_seed`).

Every leaf of `params`, `opt_state` and `extras` gets a leading seed axis; `step` and `rng` stay the
trainer's scalars. Logged metrics are means over seeds (a NaN in any seed stays a NaN). Pictures are
drawn for every seed (`NAME_seedS`); `sample` draws from seed 0 (`config.seed`'s model).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from genjax import data as genjax_data
from genjax.config import ConfigError, is_int, require
from genjax.objective import as_numpy, has_ability
from genjax.registry import MODELS
from genjax.state import TrainState, step_key, train_key

def num_seeds(config: ConfigDict) -> int:
  return config.get("num_seeds", 1)


def validate_num_seeds(config: ConfigDict) -> None:
  value = num_seeds(config)
  require(is_int(value) and value >= 1, "num_seeds", value,
          "an integer >= 1 (seeds config.seed .. config.seed + num_seeds - 1 as one vmapped program)")


def stack_mean_se(values: list) -> dict[str, Any]:
  """{'': mean, '_se': std(ddof=1) / sqrt(S) (0 for one seed), '_per_seed': [S]} of S numbers."""
  per_seed = np.asarray(values, np.float64)
  se = float(np.std(per_seed, ddof=1) / math.sqrt(len(per_seed))) if len(per_seed) > 1 else 0.0
  return {"": float(np.mean(per_seed)), "_se": se, "_per_seed": per_seed}


class SeedsObjective:
  """`family(config)` trained for `config.num_seeds` seeds at once; see the module docstring."""

  def __init__(self, family: Callable[[ConfigDict], Any], config: ConfigDict):
    if jax.process_count() > 1:  # each seed's batch is drawn whole on the host
      raise ConfigError(f"config.num_seeds={num_seeds(config)} is not allowed on "
                        f"{jax.process_count()} processes; expected 1 with more than one process")
    self.inner = family(config)
    self.config = config
    self.seeds = tuple(config.seed + s for s in range(num_seeds(config)))
    self._batches = None

  # -- per-seed randomness and data, exactly what each single run gets
  def seed_keys(self) -> jax.Array:
    """[S] keys key(seed + s): each single run's init key."""
    return jax.vmap(jax.random.key)(jnp.asarray(self.seeds, jnp.uint32))

  def train_keys(self) -> jax.Array:
    """[S] train keys fold_in(key(seed + s), 1): each single run's `state.rng`."""
    return jax.vmap(train_key)(self.seed_keys())

  def host_batches(self, step) -> dict[str, np.ndarray]:
    """[S, B, ...] rows of step `step` for every seed (the single runs' `Batches`)."""
    if self._batches is None:
      arrays = genjax_data.load_dataset(self.config.dataset, "train")
      binarize = bool(self.config.dataset.get("binarize", False))
      self._batches = [genjax_data.Batches(arrays, self.config.batch_size, seed, binarize=binarize)
                       for seed in self.seeds]
    per_seed = [batches(int(step)) for batches in self._batches]
    return {k: np.stack([b[k] for b in per_seed]) for k in per_seed[0]}

  def seed_batches(self, batch: dict, step: jax.Array) -> dict:
    """The callback from the traced step number to every seed's batch, shaped like `batch`."""
    shapes = {k: jax.ShapeDtypeStruct((len(self.seeds),) + v.shape, v.dtype) for k, v in batch.items()}
    return jax.pure_callback(self.host_batches, shapes, step)

  # -- state with a leading seed axis
  def seed_state(self, state: TrainState, rng: jax.Array, params, opt_state, extras) -> TrainState:
    return state.replace(rng=rng, params=params, opt_state=opt_state, extras=extras)

  def init(self, rng: jax.Array, batch: dict) -> TrainState:
    del rng  # each seed uses its single run's key
    batches = self.seed_batches(batch, jnp.zeros((), jnp.int32))
    states = jax.vmap(self.inner.init)(self.seed_keys(), batches)
    return TrainState.create(rng=self.seed_keys()[0], params=states.params, opt_state=states.opt_state,
                             extras=states.extras)

  def step(self, state: TrainState, batch: dict, rng: jax.Array):
    del rng  # each seed uses its single run's step key
    batches = self.seed_batches(batch, state.step)

    def one_seed(base_key, params, opt_state, extras, seed_batch):
      single = self.seed_state(state, base_key, params, opt_state, extras)
      new, metrics = self.inner.step(single, seed_batch, step_key(single))
      return new.params, new.opt_state, new.extras, metrics

    params, opt_state, extras, metrics = jax.vmap(one_seed)(
        self.train_keys(), state.params, state.opt_state, state.extras, batches)
    metrics = jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=0), metrics)
    return state.replace(params=params, opt_state=opt_state, extras=extras), metrics

  def single(self, state: TrainState, s: int) -> TrainState:
    """Seed s's state as its single run holds it."""
    take = lambda tree: jax.tree_util.tree_map(lambda x: x[s], tree)
    return self.seed_state(state, self.train_keys()[s], take(state.params), take(state.opt_state),
                           take(state.extras))

  # -- abilities: present exactly when the family has them (has_ability sees None otherwise)
  @property
  def evaluate(self):
    return self._evaluate if has_ability(self.inner, "evaluate") else None

  def _evaluate(self, state: TrainState, arrays: dict, rng: jax.Array) -> dict[str, Any]:
    del rng  # each seed gets the key `--mode eval` gives its single run (genjax/modes.py)
    step = int(state.step)
    per_seed = [as_numpy(self.inner.evaluate(self.single(state, s), arrays,
                                             jax.random.fold_in(jax.random.key(seed), step)))
                for s, seed in enumerate(self.seeds)]
    results: dict[str, Any] = {"num_seeds": len(self.seeds), "seeds": np.asarray(self.seeds)}
    for key in per_seed[0]:
      for suffix, value in stack_mean_se([r[key] for r in per_seed]).items():
        results[key + suffix] = value
    return results

  @property
  def pictures(self):
    return self._pictures if has_ability(self.inner, "pictures") else None

  def _pictures(self, state: TrainState, batch: dict, rng: jax.Array) -> dict[str, Any]:
    out = {}
    for s in range(len(self.seeds)):  # the same fixed key for every seed: same z, different models
      for name, picture in self.inner.pictures(self.single(state, s), batch, rng).items():
        out[f"{name}_seed{self.seeds[s]}"] = picture
    return out

  @property
  def sample(self):
    return self._sample if has_ability(self.inner, "sample") else None

  def _sample(self, state: TrainState, rng: jax.Array, n: int):
    return self.inner.sample(self.single(state, 0), rng, n)

  @property
  def warnings(self):  # the logged means are already means over seeds
    return self.inner.warnings if has_ability(self.inner, "warnings") else None


MODELS.register_wrapper(lambda config: num_seeds(config) > 1, SeedsObjective, validate_num_seeds)

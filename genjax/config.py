"""The config contract every experiment follows, checked before anything is written."""
from __future__ import annotations

from ml_collections import ConfigDict

from genjax.registry import DATASETS, MODELS


class ConfigError(ValueError):
  """A bad config value; the message is one line naming the key and what is allowed."""


# key -> (type, predicate on the value, what is allowed)
_CONTRACT = {
    "seed": (int, lambda v: v >= 0, "an integer >= 0"),
    "num_steps": (int, lambda v: v >= 0, "an integer >= 0"),
    "batch_size": (int, lambda v: v >= 1, "an integer >= 1"),
    "log_every": (int, lambda v: v >= 1, "an integer >= 1"),
    "checkpoint_every": (int, lambda v: v >= 1, "an integer >= 1"),
    "sample_every": (int, lambda v: v >= 0, "an integer >= 0 (0: only at the end)"),
}


def _check(config: ConfigDict, key: str, kind, ok, allowed: str) -> None:
  if key not in config:
    raise ConfigError(f"config.{key} is missing; expected {allowed}")
  value = config[key]
  if isinstance(value, bool) or not isinstance(value, kind) or not ok(value):
    raise ConfigError(f"config.{key}={value!r} is not allowed; expected {allowed}")


def validate(config: ConfigDict) -> None:
  """Raises ConfigError for the first thing wrong with the shared part of a config."""
  for key, (kind, ok, allowed) in _CONTRACT.items():
    _check(config, key, kind, ok, allowed)
  from genjax.xla_options import FAST_COMPILE_CHOICES
  fast_compile = config.get("fast_compile", "auto")
  require(fast_compile in FAST_COMPILE_CHOICES, "fast_compile", fast_compile,
          f"one of {', '.join(FAST_COMPILE_CHOICES)}")
  for group, registry in (("dataset", DATASETS), ("model", MODELS)):
    if not isinstance(config.get(group), ConfigDict) or "name" not in config[group]:
      raise ConfigError(f"config.{group} must be a ConfigDict with a 'name'")
    if config[group].name not in registry:
      raise ConfigError(f"config.{group}.name={config[group].name!r} is unknown; "
                        f"known: {', '.join(registry.names())}")
  from genjax.data import validate_options
  validate_options(config.dataset)  # reading options, and the dataset's own (e.g. a folder's path)
  optimizer = config.get("optimizer")
  if not isinstance(optimizer, ConfigDict) or "name" not in optimizer:
    raise ConfigError("config.optimizer must be a ConfigDict with a 'name' and a 'learning_rate'")
  from genjax.optim import OPTIMIZERS
  if optimizer.name not in OPTIMIZERS:
    raise ConfigError(f"config.optimizer.name={optimizer.name!r} is unknown; "
                      f"known: {', '.join(OPTIMIZERS.names())}")
  from genjax.optim import SCHEDULES
  schedule = optimizer.get("schedule", "constant") or "constant"
  if schedule not in SCHEDULES:
    raise ConfigError(f"config.optimizer.schedule={schedule!r} is unknown; known: {', '.join(SCHEDULES.names())}")
  lr = optimizer.get("learning_rate")
  if not is_number(lr) or not lr > 0:
    raise ConfigError(f"config.optimizer.learning_rate={lr!r} is not allowed; expected a number > 0")
  family = MODELS.lookup(config.model.name)
  if hasattr(family, "validate"):
    family.validate(config)


def is_int(value) -> bool:
  """An integer and not a bool (Python's True is an int: `--config.model.blocks=True` must be refused)."""
  return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
  """A real number (int or float) and not a bool."""
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def require(condition: bool, key: str, value, allowed: str) -> None:
  """One-line check used by families for their own keys (e.g. model.latent_dim)."""
  if not condition:
    raise ConfigError(f"config.{key}={value!r} is not allowed; expected {allowed}")

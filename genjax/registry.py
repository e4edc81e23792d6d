"""Name -> thing registries: configs say `model.name` / `dataset.name`, code never branches on names."""
from __future__ import annotations

import functools
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
  """A named table filled by `@REGISTRY.register("name")` decorators at import time."""

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    def add(entry: T) -> T:
      if name in self._entries:
        raise ValueError(f"{self.kind} {name!r} is registered twice")
      self._entries[name] = entry
      return entry
    return add

  def lookup(self, name: str) -> T:
    if name not in self._entries:
      raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}")
    return self._entries[name]

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: str) -> bool:
    return name in self._entries


class WrappedFamily:
  """A family behind the wrappers its config switches on: calling it builds the wrapped objective,
  `validate` checks the wrappers' keys then the family's; other attributes are the family's."""

  def __init__(self, family, wrappers: tuple):
    self.family = family
    self.wrappers = wrappers

  def __call__(self, config):
    factory = self.family
    for applies, wrap, _ in self.wrappers:
      if applies(config):
        factory = functools.partial(wrap, factory)
    return factory(config)

  def validate(self, config) -> None:
    for _, _, validate in self.wrappers:
      validate(config)
    if hasattr(self.family, "validate"):
      self.family.validate(config)

  def __getattr__(self, name: str):
    return getattr(self.family, name)


class FamilyRegistry(Registry):
  """Model families, plus wrappers around any of them that a config key switches on (e.g.
  `num_seeds > 1`: genjax/models/seeds.py), so the trainer's `lookup(name)(config)` stays as it is."""

  def __init__(self, kind: str):
    super().__init__(kind)
    self._wrappers: list[tuple[Callable, Callable, Callable]] = []

  def register_wrapper(self, applies: Callable, wrap: Callable, validate: Callable) -> None:
    """`wrap(factory, config)` replaces `factory(config)` when `applies(config)`; `validate(config)`
    raises ConfigError for the wrapper's own keys."""
    self._wrappers.append((applies, wrap, validate))

  def lookup(self, name: str):
    family = super().lookup(name)
    return WrappedFamily(family, tuple(self._wrappers)) if self._wrappers else family


# Model families: name -> factory(config) -> Objective.
MODELS: FamilyRegistry = FamilyRegistry("model")
# Datasets: name -> DatasetSpec (see genjax.data).
DATASETS: Registry = Registry("dataset")

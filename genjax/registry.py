"""Name -> thing registries: configs say `model.name` / `dataset.name`, code never branches on names."""
from __future__ import annotations

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


# Model families: name -> factory(config) -> Objective.
MODELS: Registry = Registry("model")
# Datasets: name -> DatasetSpec (see genjax.data).
DATASETS: Registry = Registry("dataset")

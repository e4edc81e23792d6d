"""What keeps a run safe: one process per workdir, no silent config changes, a clean stop on signals."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import threading

from ml_collections import ConfigDict

from genjax.config import ConfigError

# Keys that only schedule a run, or say where files are: a resumed run may change them freely.
SCHEDULE_KEYS = frozenset({"num_steps", "log_every", "checkpoint_every", "sample_every",
                           "keep_checkpoints", "dataset.data_dir", "dataset.manual_dir",
                           "dataset.in_memory", "dataset.read_threads", "dataset.read_workers"})


class WorkdirLock:
  """An exclusive flock on WORKDIR/.lock; the kernel drops it when the process dies, even by SIGKILL."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, ".lock")
    self._file = None

  def __enter__(self) -> "WorkdirLock":
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    self._file = open(self.path, "a+")
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      self._file.seek(0)
      owner = self._file.read().strip() or "unknown"
      self._file.close()
      raise ConfigError(f"workdir {os.path.dirname(self.path)} is in use by another genjax process "
                        f"(pid {owner}); wait for it or choose another --workdir") from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write(str(os.getpid()))
    self._file.flush()
    return self

  def __exit__(self, *exc) -> None:
    fcntl.flock(self._file, fcntl.LOCK_UN)
    self._file.close()


def _flatten(tree, prefix: str = "") -> dict:
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(_flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def config_changes(saved: dict, config: ConfigDict) -> list[str]:
  """'key: old -> new' for every key that differs, schedule keys excepted."""
  from genjax.data import dataset_options  # lazy: the data package imports the registry
  old = _flatten(saved)
  new = _flatten(json.loads(config.to_json_best_effort()))
  # A dataset option added after the run was saved, left at its default, reads as before.
  for key, default in dataset_options().items():
    old.setdefault(f"dataset.{key}", default)
  old.setdefault("fast_compile", "auto")  # likewise a top-level key added later
  return [f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}"
          for k in sorted(set(old) | set(new))
          if k not in SCHEDULE_KEYS and old.get(k, "<absent>") != new.get(k, "<absent>")]


def check_resume_config(workdir: str, config: ConfigDict, allow_change: bool) -> None:
  """Refuses to resume a run under a different config unless the user says so."""
  path = os.path.join(workdir, "config.json")
  if allow_change or not os.path.exists(os.path.join(workdir, "checkpoints")) or not os.path.exists(path):
    return
  with open(path) as f:
    changes = config_changes(json.load(f), config)
  if changes:
    raise ConfigError(f"{workdir} was trained with a different config ({'; '.join(changes)}); "
                      f"use a new --workdir, or pass --allow_config_change to resume anyway")


class StopRequest:
  """SIGTERM / Ctrl-C set a flag the loop checks between steps, so it can checkpoint and exit.

  Raising inside a step could land between a donated call and its result, losing the state; a
  second Ctrl-C falls back to Python's default and interrupts at once.
  """

  def __init__(self):
    self.signal_name: str | None = None
    self._previous = {}

  def __enter__(self) -> "StopRequest":
    if threading.current_thread() is threading.main_thread():  # notebooks' worker threads can't
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame) -> None:
    self.signal_name = signal.Signals(signum).name
    signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

  def __bool__(self) -> bool:
    return self.signal_name is not None

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

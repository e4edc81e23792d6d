"""Small shared helpers for tests: tiny configs, reading a run's outputs, running the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_experiment(name: str, arg: str | None = None):
  """get_config() of experiments/NAME.py, as the CLI would load it."""
  import importlib.util
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "experiments", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg is not None else module.get_config()


def tiny(config, num_steps: int = 20, **overrides):
  """Shrinks a config's schedule for a test; the model stays as the experiment defines it."""
  config.num_steps = num_steps
  config.log_every = overrides.pop("log_every", 5)
  config.checkpoint_every = overrides.pop("checkpoint_every", 10_000)
  config.sample_every = overrides.pop("sample_every", 0)
  for key, value in overrides.items():
    target = config
    *path, leaf = key.split(".")
    for part in path:
      target = target[part]
    target[leaf] = value
  return config


def read_metrics(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def leaves(tree) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(tree))]


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
  """python -m genjax.main ARGS in a subprocess (fresh JAX, like a user's shell)."""
  full_env = {**os.environ, **(env or {})}
  return subprocess.run([sys.executable, "-m", "genjax.main", *args], cwd=ROOT, env=full_env,
                        capture_output=True, text=True, timeout=timeout)

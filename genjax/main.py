"""Command line: python -m genjax.main --config experiments/NAME.py --workdir DIR [--mode train|eval|sample]."""
from __future__ import annotations

import logging as std_logging
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment file: experiments/NAME.py[:ARG].",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and pictures.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "sample"], "What to do.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "How many draws --mode sample makes.")


def _enable_compilation_cache() -> None:
  """Re-running an experiment on a laptop skips XLA compilation (often most of a short run)."""
  import jax
  path = os.environ.get("GENJAX_COMPILATION_CACHE", os.path.join("~", ".cache", "genjax", "xla"))
  if path:
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _maybe_initialize_distributed() -> None:
  """Multi-host: jax.distributed reads the coordinator from the environment (or the TPU metadata)."""
  import jax
  if os.environ.get("JAX_COORDINATOR_ADDRESS") or os.environ.get("GENJAX_DISTRIBUTED") == "1":
    jax.distributed.initialize()


class _QuietLibraries(std_logging.Filter):
  """Keeps progress lines readable: orbax and TFDS log every file they touch at INFO."""
  _NOISY = ("/orbax/", "/tensorflow_datasets/", "/jax/_src/")

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or not any(p in record.pathname for p in self._NOISY)


def _fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def main(argv) -> None:
  del argv
  import genjax  # noqa: F401  registers every family and dataset
  from genjax import modes, train
  from genjax.config import ConfigError, validate
  from genjax.data import DatasetError

  logging.get_absl_handler().addFilter(_QuietLibraries())
  config = _CONFIG.value
  if config is None:
    _fail("--config is required, e.g. --config experiments/ae_mlp.py")
  if not _WORKDIR.value:
    _fail("--workdir is required, e.g. --workdir runs/ae_mlp")
  try:
    validate(config)
    _enable_compilation_cache()
    _maybe_initialize_distributed()
    if _MODE.value == "train":
      train.train(config, _WORKDIR.value)
      logging.info("done: %s (pictures in %s)", _WORKDIR.value, os.path.join(_WORKDIR.value, "images"))
    elif _MODE.value == "eval":
      modes.evaluate(config, _WORKDIR.value)
    else:
      modes.sample(config, _WORKDIR.value, _NUM_SAMPLES.value)
  except (ConfigError, DatasetError, train.TrainingError, NotImplementedError) as e:
    _fail(str(e))
  except KeyError as e:  # unknown names from a registry
    _fail(e.args[0] if e.args else str(e))


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()

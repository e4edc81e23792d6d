"""Command line: python -m genjax.main --config experiments/NAME.py[:ARG] [--workdir DIR] [--mode train|eval|sample]."""
from __future__ import annotations

import logging as std_logging
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment file: experiments/NAME.py[:ARG].",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and pictures "
                                "(default: runs/NAME for experiments/NAME.py[:ARG], NAME_ARG with an ARG).")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "sample"], "What to do.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "How many draws --mode sample makes.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume a workdir even though its config.json differs from --config.")
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    "coordinator_address", None, "Multi-host: HOST:PORT of process 0 (else $JAX_COORDINATOR_ADDRESS, "
    "or found by jax on TPU pods, SLURM and Open MPI).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-host: how many processes in all.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-host: this process, in [0, num_processes).")


def _distributed_requested() -> bool:
  """Flags or $JAX_COORDINATOR_ADDRESS, GENJAX_DISTRIBUTED=1 (=0 forces one process), or a launcher
  that started several processes (srun, mpirun, a GKE TPU slice) and that jax can read."""
  env = os.environ
  if _COORDINATOR_ADDRESS.value or _NUM_PROCESSES.value or _PROCESS_ID.value is not None:
    return True
  if env.get("GENJAX_DISTRIBUTED") in ("0", "1"):
    return env["GENJAX_DISTRIBUTED"] == "1"
  several = lambda name: env.get(name, "1").isdigit() and int(env.get(name, "1")) > 1
  return bool(env.get("JAX_COORDINATOR_ADDRESS")
              or ("SLURM_STEP_NODELIST" in env and several("SLURM_NTASKS"))
              or several("OMPI_COMM_WORLD_SIZE")
              or "," in env.get("TPU_WORKER_HOSTNAMES", "") + env.get("TPU_PROCESS_ADDRESSES", ""))


def _maybe_initialize_distributed() -> None:
  """Multi-host: must run before any JAX computation. Arguments left None are read by jax itself:
  the coordinator from $JAX_COORDINATOR_ADDRESS, all three from TPU metadata, SLURM or Open MPI."""
  import jax
  if not _distributed_requested():
    return
  try:
    jax.distributed.initialize(coordinator_address=_COORDINATOR_ADDRESS.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  except (ValueError, TypeError, RuntimeError) as e:
    _fail(f"jax.distributed.initialize failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}; "
          f"pass --coordinator_address, --num_processes and --process_id, or launch under a TPU pod, "
          f"srun or mpirun")


class _QuietLibraries(std_logging.Filter):
  """Keeps progress lines readable: orbax and TFDS log every file they touch at INFO."""
  _NOISY = ("/orbax/", "/tensorflow_datasets/", "/jax/_src/")

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or not any(p in record.pathname for p in self._NOISY)


def default_workdir(config_path: str) -> str:
  """experiments/wgan.py -> runs/wgan; experiments/vae_mlp.py:2 -> runs/vae_mlp_2."""
  file, _, arg = config_path.partition(":")
  name = os.path.splitext(os.path.basename(file))[0]
  return os.path.join("runs", f"{name}_{arg}" if arg else name)


def _fail(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def main(argv) -> None:
  del argv
  import genjax  # noqa: F401  registers every family and dataset
  from genjax import modes, trainer
  from genjax.config import ConfigError, validate
  from genjax.data import DatasetError

  logging.get_absl_handler().addFilter(_QuietLibraries())
  try:
    config = _CONFIG.value
    config.get("seed")  # config_flags defers a failed load until first use
  except OSError as e:
    _fail(" ".join(line.strip() for line in str(e).splitlines()[-2:]))
  if config is None:
    _fail("--config is required, e.g. --config experiments/ae_mlp.py")
  workdir = _WORKDIR.value or default_workdir(config_flags.get_config_filename(flags.FLAGS["config"]))
  try:
    validate(config)
    trainer.enable_compilation_cache()
    _maybe_initialize_distributed()
    if _MODE.value == "train":
      trainer.train(config, workdir, allow_config_change=_ALLOW_CONFIG_CHANGE.value)
      logging.info("done: %s (pictures in %s)", workdir, os.path.join(workdir, "images"))
    elif _MODE.value == "eval":
      modes.evaluate(config, workdir)
    else:
      modes.sample(config, workdir, _NUM_SAMPLES.value)
  except (ConfigError, DatasetError, trainer.TrainingError, NotImplementedError) as e:
    _fail(str(e))
  except KeyError as e:  # unknown names from a registry
    _fail(e.args[0] if e.args else str(e))


def _unknown_override(argv: list[str]) -> str | None:
  """The first --config.KEY=VALUE whose KEY the experiment file does not define, if any."""
  import importlib.util
  from ml_collections import ConfigDict
  path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if path is None and "--config" in argv:
    path = argv[argv.index("--config") + 1]
  if path is None:
    return None
  file, _, arg = path.partition(":")
  spec = importlib.util.spec_from_file_location("experiment", file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg) if arg else module.get_config()
  for override in (a for a in argv if a.startswith("--config.")):
    node = config
    for part in override[len("--config."):].split("=", 1)[0].split("."):
      if not isinstance(node, ConfigDict) or part not in node:
        known = ", ".join(sorted(node.keys())) if isinstance(node, ConfigDict) else "none (not a group)"
        return f"{override.split('=', 1)[0]}: unknown config key {part!r}; known here: {known}"
      node = node[part]
  return None


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing with every failure (bad file, unknown key, bad value) as one line, exit 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    lines = [line for line in str(e).splitlines() if line.strip()]
    # A config file that raised: its exception (the traceback's last line) says what is allowed.
    _fail(lines[0] + (" " + lines[-1] if "Traceback" in str(e) else ""))
  except Exception as e:  # config_flags surfaces unknown keys as AttributeError/KeyError
    try:
      detail = _unknown_override(argv[1:])
    except Exception:
      detail = None
    _fail(detail or f"could not read the config: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def run() -> None:
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()

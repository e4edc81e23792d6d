"""The one training loop: init, jitted data-parallel step, checkpoints, logs, pictures. Knows no family.

Data parallelism is `jax.jit` over a `Mesh` with a `data` axis (batch sharded, state replicated), the
current replacement for `jax.pmap`; the same code runs on 1 CPU, 8 simulated devices or a TPU pod.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from ml_collections import ConfigDict

from genjax import data as genjax_data
from genjax import images as genjax_images
from genjax import xla_options
from genjax.config import ConfigError
from genjax.objective import has_ability
from genjax.registry import MODELS
from genjax.safety import StopRequest, WorkdirLock, check_resume_config
from genjax.state import TrainState, step_key, train_key

# Salt for the fixed key of periodic pictures, so they use the same noise at every snapshot.
_PICTURE_KEY_SALT = 0x5EED


class TrainingError(RuntimeError):
  """A run that cannot go on (non-finite loss, missing checkpoint); the message says what to do."""


def enable_compilation_cache() -> None:
  """Re-running an experiment skips XLA compilation (often most of a short CPU run).

  On by default under ~/.cache/genjax/xla; GENJAX_COMPILATION_CACHE names another directory, or
  turns it off when set to the empty string.
  """
  path = os.environ.get("GENJAX_COMPILATION_CACHE", os.path.join("~", ".cache", "genjax", "xla"))
  if path:
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


# ----------------------------------------------------------------------------- sharding

def make_mesh(devices=None) -> Mesh:
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), ("data",))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  n = mesh.devices.size
  if batch_size % n or batch_size % jax.process_count():
    raise ConfigError(f"batch_size {batch_size} must divide evenly over {n} devices "
                     f"({jax.process_count()} processes); use a multiple of {n}")


def with_global_batch_size(config: ConfigDict, mesh: Mesh) -> ConfigDict:
  """`batch_size` is the global batch; `per_device_batch_size` > 0 sets it to per_device * devices
  (in a copy of the config), so each device's batch stays the same when the run scales out."""
  per_device = config.get("per_device_batch_size", 0)
  if not per_device:
    return config
  if isinstance(per_device, bool) or not isinstance(per_device, int) or per_device < 0:
    raise ConfigError(f"config.per_device_batch_size={per_device!r} is not allowed; expected an integer "
                      f">= 0 (0: use batch_size)")
  config = copy.deepcopy(config)
  config.batch_size = per_device * mesh.devices.size
  from genjax.config import validate  # the family's own batch rules (e.g. GAN n_critic) see the result
  validate(config)
  return config


def shard_batch(local_batch: dict, mesh: Mesh) -> dict:
  """This process's rows -> one global array sharded over `data` (the multi-host path too)."""
  sharding = NamedSharding(mesh, P("data"))
  if jax.process_count() == 1:  # device_put is ~4x cheaper per step than the multi-host constructor
    return jax.device_put(local_batch, sharding)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


# ----------------------------------------------------------------------------- the run

class Run:
  """One experiment in one workdir: objective, data, mesh and checkpoints, shared by every mode."""

  def __init__(self, config: ConfigDict, workdir: str, mesh: Mesh | None = None,
               check_batch: bool = True):
    self.workdir = os.path.abspath(workdir)
    self.mesh = mesh or make_mesh()
    self.config = config = with_global_batch_size(config, self.mesh)
    if check_batch:  # only training needs the batch to split evenly over devices
      check_batch_size(config.batch_size, self.mesh)
    self.objective = MODELS.lookup(config.model.name)(config)
    self.is_chief = jax.process_index() == 0
    self._train_arrays = None
    self._batches = None
    self._manager = None
    self._pictures = {}  # program key -> jitted pictures

  # -- data
  @property
  def train_arrays(self) -> dict:
    if self._train_arrays is None:
      self._train_arrays = genjax_data.load_dataset(self.config.dataset, "train")
    return self._train_arrays

  def test_arrays(self) -> dict:
    return genjax_data.load_dataset(self.config.dataset, "test")

  def batches(self) -> genjax_data.Batches:
    """This process's rows of every step, in served form (8-bit pixels uint8: the step converts them),
    read from memory or from the array_record files (genjax.data.train_source)."""
    if self._batches is None:
      self._batches = genjax_data.Batches(
          genjax_data.train_source(self.config.dataset), self.config.batch_size, self.config.seed,
          binarize=bool(self.config.dataset.get("binarize", False)),
          process_index=jax.process_index(), process_count=jax.process_count())
    return self._batches

  def batch_stream(self, start: int) -> Iterator[dict]:
    """batches(start), ..., batches(num_steps - 1), read ahead by grain (dataset.read_threads / read_workers)."""
    return genjax_data.batch_stream(self.batches(), start, self.config.num_steps,
                                    **genjax_data.read_options(self.config.dataset))

  # -- state
  def _init_fn(self):
    objective = self.objective
    base_key = train_key(jax.random.key(self.config.seed))

    def init(rng, batch):
      # The trainer owns the step and the base key; the family owns everything else.
      state = objective.init(rng, genjax_data.to_float(batch))
      return state.replace(step=jnp.zeros((), jnp.int32), rng=base_key)
    return init

  def abstract_state(self, batch) -> Any:
    shapes = jax.eval_shape(self._init_fn(), jax.random.key(self.config.seed), batch)
    sharding = replicated(self.mesh)
    return jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)

  def init_state(self, batch) -> TrainState:
    init = xla_options.jit(self._init_fn(), run_once=True, out_shardings=replicated(self.mesh))
    return init(jax.random.key(self.config.seed), batch)

  # -- checkpoints
  @property
  def manager(self) -> ocp.CheckpointManager:
    if self._manager is None:
      options = ocp.CheckpointManagerOptions(
          max_to_keep=int(self.config.get("keep_checkpoints", 3)), create=True)
      self._manager = ocp.CheckpointManager(os.path.join(self.workdir, "checkpoints"), options=options)
    return self._manager

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def restore(self, batch, step: int | None = None) -> TrainState:
    step = self.latest_step() if step is None else step
    if step is None:
      raise TrainingError(f"no checkpoint in {self.workdir}/checkpoints; train first "
                          f"(--mode train) or point --workdir at a trained run")
    return self.manager.restore(step, args=ocp.args.StandardRestore(self.abstract_state(batch)))

  def save(self, state: TrainState, force: bool = False) -> None:
    step = int(state.step)
    if self.manager.latest_step() != step:
      self.manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def first_batch(self) -> dict:
    """Step 0's rows as float32 (what families see), sharded: for init, restore and tools."""
    return shard_batch(genjax_data.as_float(self.batches()(0)), self.mesh)

  def load_or_init(self) -> TrainState:
    """The newest readable checkpoint, else a fresh state; an unreadable one is set aside, never
    silently replaced by a fresh start."""
    batch = self.first_batch()
    steps = sorted(self.manager.all_steps(), reverse=True)
    for step in steps:
      try:
        state = self.restore(batch, step)
      except Exception as e:  # orbax raises many types for truncated / garbled files
        self._set_aside(step, e)
        continue
      if step != steps[0]:
        logging.warning("resumed from step %d, the newest readable checkpoint", step)
      return state
    if steps:
      raise TrainingError(f"no checkpoint in {self.workdir}/checkpoints could be read (tried {steps}); "
                          f"they were moved to {self.workdir}/corrupt_checkpoints")
    return self.init_state(batch)

  def _set_aside(self, step: int, error: Exception) -> None:
    """Moves an unreadable checkpoint out of the manager's directory so it can be rewritten."""
    source = os.path.join(self.workdir, "checkpoints", str(step))
    target = os.path.join(self.workdir, "corrupt_checkpoints", f"{step}-{int(time.time())}")
    logging.warning("checkpoint %d is unreadable (%s: %s); moving it to %s and trying an older one",
                    step, type(error).__name__, str(error).splitlines()[0][:200], target)
    if self.is_chief:
      os.makedirs(os.path.dirname(target), exist_ok=True)
      os.replace(source, target)
    self._manager.close()
    self._manager = None  # it cached the step list

  # -- pictures
  def picture_batch(self, n: int = 64) -> dict:
    test = self.test_arrays()
    n = min(n, len(next(iter(test.values()))))
    return {k: jnp.asarray(v[:n]) for k, v in test.items()}

  def picture_key(self) -> jax.Array:
    return jax.random.fold_in(jax.random.key(self.config.seed), _PICTURE_KEY_SALT)

  def write_pictures(self, state: TrainState, tag: str) -> list[str]:
    if not (self.is_chief and has_ability(self.objective, "pictures")):
      return []
    step = int(state.step)
    key = program_key(self.objective, step)
    if key not in self._pictures:  # jitted once per program: eager flax applies cost seconds per snapshot
      self._pictures[key] = xla_options.jit(objective_at(self.objective, step).pictures, run_once=True)
    pictures = self._pictures[key](state, self.picture_batch(), self.picture_key())
    points = genjax_data.dataset_spec(self.config.dataset).kind == "points"  # images: no float train split
    reference = self.train_arrays["x"][:2000] if points else None
    paths = []
    for name, array in pictures.items():
      path = os.path.join(self.workdir, "images", f"{name}_{tag}.png")
      genjax_images.save_png(path, genjax_images.to_picture(np.asarray(array), reference))
      paths.append(path)
    return paths

  def close(self) -> None:
    if self._manager is not None:
      self._manager.wait_until_finished()
      self._manager.close()
      self._manager = None


# ----------------------------------------------------------------------------- logging

class MetricsWriter:
  """metrics.jsonl + TensorBoard, chief process only."""

  def __init__(self, workdir: str, enabled: bool):
    self.enabled = enabled
    self._jsonl = None
    self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
      from tensorboardX import SummaryWriter  # imported lazily: only the chief writes events
      self._tb = SummaryWriter(workdir)

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.enabled:
      return
    self._jsonl.write(json.dumps({"step": step, **metrics}) + "\n")
    self._jsonl.flush()
    for name, value in metrics.items():
      self._tb.add_scalar(name, value, step)
    self._tb.flush()

  def close(self) -> None:
    if self.enabled:
      self._jsonl.close()
      self._tb.close()


def _mean_metrics(history: list[dict]) -> dict[str, float]:
  """Interval means over finite values (a skipped update's NaN metrics would hide the rest)."""
  stacked = jax.device_get(history)  # the only host sync of the loop, once per log_every steps
  means = {}
  for k in stacked[0]:
    values = np.asarray([np.asarray(m[k], np.float64) for m in stacked])
    finite = values[np.isfinite(values)]
    means[k] = float(finite.mean()) if finite.size else float("nan")
  return means


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# ----------------------------------------------------------------------------- train

def _all_finite(tree) -> jax.Array:
  leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def make_train_step(objective, mesh: Mesh, state_sharding, skip_nonfinite: bool = False,
                    compiler_options: dict | None = None, fast_compile: bool = False) -> Callable:
  """jit(objective.step) with the batch sharded over `data`, the state replicated and donated.

  `compiler_options` default to `xla_options.compiler_options` of the mesh's platform ({} = XLA's own);
  `fast_compile` adds the run-once options (lower LLVM effort) for short runs.

  With `skip_nonfinite`, an update whose metrics or new parameters are not finite is dropped
  (params, optimizer and family state keep their old values) and counted in `state.skipped`.
  """

  def train_step(state: TrainState, batch: dict):
    # uint8 / bool pixels become float32 here, on the device: 4x less host memory and transfer.
    new_state, metrics = objective.step(state, genjax_data.to_float(batch), step_key(state))
    if skip_nonfinite:
      finite = _all_finite((metrics, new_state.params))
      keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), new, old)
      new_state = new_state.replace(
          params=keep(new_state.params, state.params), opt_state=keep(new_state.opt_state, state.opt_state),
          extras=keep(new_state.extras, state.extras), skipped=state.skipped + (1 - finite.astype(jnp.int32)))
      metrics = {**metrics, "update_skipped": 1 - finite.astype(jnp.float32)}  # interval mean: the fraction
    return new_state.replace(step=state.step + 1), metrics

  platform = mesh.devices.flat[0].platform
  if compiler_options is None:
    compiler_options = xla_options.compiler_options(platform)
  if fast_compile:
    compiler_options = {**compiler_options, **xla_options.run_once_options(platform)}
  return jax.jit(train_step, in_shardings=(state_sharding, NamedSharding(mesh, P("data"))),
                 out_shardings=(state_sharding, replicated(mesh)), donate_argnums=0,
                 compiler_options=compiler_options or None)


def program_key(objective, step: int):
  """Which compiled step trains `step` (None: one program for the whole run; see genjax/objective.py)."""
  return objective.program_key(step) if has_ability(objective, "program_key") else None


def objective_at(objective, step: int):
  """The objective specialised to `step`'s program (itself for one-program families): for the
  train step, and for evaluating or sampling a state without the lax.switch over programs."""
  key = program_key(objective, step)
  return objective if key is None else objective.for_program(key)


def compile_train_step(run: Run, state: TrainState, program=None) -> Callable:
  """make_train_step's step (of `for_program(program)` where given) compiled for `state` and the
  run's batches. A short run of cheap steps is compiled for compile time (`xla_options.fast_compile`),
  judged by XLA's FLOP count of the step."""
  config = run.config
  objective = run.objective if program is None else run.objective.for_program(program)
  if program is not None:
    logging.info("compiling the train step for program %s (from step %d)", program, int(state.step))
  step = make_train_step(objective, run.mesh, replicated(run.mesh),
                         bool(config.get("skip_nonfinite", False)))
  lowered = step.lower(state, shard_batch(run.batches()(int(state.step)), run.mesh))
  flops = xla_options.program_flops(lowered) if xla_options.needs_step_flops(config) else None
  fast = xla_options.fast_compile(config, flops)
  if flops is not None:
    logging.info("train step: %.3g FLOPs x %d steps: compiled for %s", flops, config.num_steps,
                 "compile time" if fast else "speed")
  platform = run.mesh.devices.flat[0].platform
  return lowered.compile(xla_options.run_once_options(platform) if fast else None)


def write_config(config: ConfigDict, workdir: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))


def _first_nonfinite(first_step: int, history: list[dict]) -> tuple[int, dict] | None:
  """(step, offending terms) of the first logged-interval step whose metrics are not all finite."""
  for i, metrics in enumerate(jax.device_get(history)):
    bad = {k: float(v) for k, v in metrics.items() if not np.all(np.isfinite(v))}
    if bad:
      return first_step + i, bad
  return None


def _raise_nonfinite(found: tuple[int, dict]) -> None:
  step, bad = found
  raise TrainingError(
      f"non-finite loss at step {step}: {bad}; stopped, the last good checkpoint is kept. "
      f"Hint: lower optimizer.learning_rate, set optimizer.grad_clip_norm, or set "
      f"skip_nonfinite=True to drop such updates and count them")


def train(config: ConfigDict, workdir: str, mesh: Mesh | None = None,
          allow_config_change: bool = False) -> TrainState:
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the final state."""
  run = Run(config, workdir, mesh)
  lock = WorkdirLock(run.workdir) if run.is_chief else contextlib.nullcontext()
  with lock, StopRequest() as stop:
    check_resume_config(run.workdir, run.config, allow_config_change)
    if run.is_chief:
      write_config(run.config, run.workdir)
    try:
      return _train_loop(run, stop)
    finally:
      run.close()


def _train_loop(run: Run, stop: StopRequest) -> TrainState:
  config = run.config
  state = run.load_or_init()
  start = int(state.step)
  if start:
    logging.info("resuming %s from step %d", run.workdir, start)
  else:
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
    logging.info("%s on %s: %d parameters, %d devices", config.model.name, config.dataset.name,
                 n_params, run.mesh.devices.size)
  train_step, program = None, None
  writer = MetricsWriter(run.workdir, run.is_chief)
  history: list[dict] = []
  # With skip_nonfinite the step itself drops bad updates; otherwise the loop stops on them.
  check = (lambda first, hist: None) if config.get("skip_nonfinite", False) else _first_nonfinite
  tick, tick_step = time.perf_counter(), start
  batches = run.batch_stream(start)  # a pure function of (seed, step): resuming needs no reader state
  try:
    step = start
    while step < config.num_steps and not stop:
      key = program_key(run.objective, step)
      if train_step is None or key != program:
        program, train_step = key, None  # frees the previous program before compiling the next
        train_step = compile_train_step(run, state, program)
      state, metrics = train_step(state, shard_batch(next(batches), run.mesh))
      history.append(metrics)
      step += 1
      if step % config.log_every == 0 or step == config.num_steps:
        found = check(step - len(history) + 1, history)
        if found:
          _raise_nonfinite(found)
        means = _mean_metrics(history)
        history = []
        writer.write(step, means)
        if has_ability(run.objective, "warnings"):  # e.g. a GAN whose discriminator wins outright
          for message in run.objective.warnings(means):
            logging.warning("step %d: %s", step, message)
        now = time.perf_counter()
        rate = (step - tick_step) / max(now - tick, 1e-9)
        tick, tick_step = now, step
        logging.info("step %d/%d | %.1f steps/s | ETA %s | %s", step, config.num_steps, rate,
                     _format_eta((config.num_steps - step) / max(rate, 1e-9)),
                     " ".join(f"{k} {v:.4g}" for k, v in sorted(means.items())))
      if step % config.checkpoint_every == 0:
        _save_if_finite(run, state, history, step, check)
      if config.sample_every and step % config.sample_every == 0:
        run.write_pictures(state, f"{step:06d}")
    _save_if_finite(run, state, history, step, check, force=True)
    if stop:
      logging.warning("stopped by %s at step %d; checkpoint written, rerun the same command to resume",
                      stop.signal_name, step)
      return state
    paths = run.write_pictures(state, "final")
    if paths:
      logging.info("pictures: %s", ", ".join(paths))
  finally:
    batches.close()
    writer.close()
  return state


def _save_if_finite(run: Run, state: TrainState, history: list[dict], step: int, check,
                    force: bool = False) -> None:
  """Checkpoints only a state whose unlogged metrics are finite: a NaN never overwrites a good run."""
  found = check(step - len(history) + 1, history) if history else None
  if found:
    _raise_nonfinite(found)
  run.save(state, force=force)

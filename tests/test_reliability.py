"""Faults a long run meets: SIGKILL, corrupted checkpoints, SIGTERM, NaNs, two processes, config drift."""
import os
import random
import signal
import subprocess
import sys
import time

import hypothesis
import hypothesis.strategies as st
import jax
import numpy as np
import pytest

from genjax import trainer
from genjax.config import ConfigError, validate
from genjax.safety import WorkdirLock
from tests.helpers import ROOT, leaves, load_experiment, read_metrics, run_cli, tiny

CLI_ARGS = ["--config", "experiments/dae.py", "--config.batch_size=16", "--config.log_every=1"]


def _final_params(config, workdir):
  run = trainer.Run(config, workdir)
  try:
    return leaves(run.restore(run.first_batch()).params)
  finally:
    run.close()


def _start_cli(workdir, *args):
  return subprocess.Popen([sys.executable, "-m", "genjax.main", *CLI_ARGS, "--workdir", workdir, *args],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_step(workdir, step, process, timeout=240):
  """Blocks until metrics.jsonl shows `step`; fails if the process ends first."""
  path = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + timeout
  while time.time() < deadline:
    if os.path.exists(path) and any(m["step"] >= step for m in read_metrics(workdir)):
      return
    assert process.poll() is None, process.communicate()[1][-3000:]
    time.sleep(0.05)
  raise TimeoutError(f"step {step} not reached")


def test_sigkill_at_a_random_step_then_restart_equals_uninterrupted_run(tmp_path):
  steps = ["--config.num_steps=30", "--config.checkpoint_every=4"]
  kill_at = random.Random(os.getpid()).randint(5, 25)
  killed = str(tmp_path / "killed")
  process = _start_cli(killed, *steps)
  _wait_for_step(killed, kill_at, process)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert run_cli(*CLI_ARGS, "--workdir", killed, *steps).returncode == 0
  # The uninterrupted run in-process, with the CLI's config (one interpreter start fewer).
  config = tiny(load_experiment("dae"), num_steps=30, batch_size=16, checkpoint_every=4, log_every=1,
                sample_every=load_experiment("dae").sample_every)
  straight = trainer.train(config, str(tmp_path / "straight"))
  for a, b in zip(_final_params(config, killed), leaves(straight.params)):
    np.testing.assert_array_equal(a, b, err_msg=f"killed at step {kill_at}")


def test_sigterm_writes_a_final_checkpoint(tmp_path):
  workdir = str(tmp_path / "run")
  process = _start_cli(workdir, "--config.num_steps=100000", "--config.checkpoint_every=100000")
  _wait_for_step(workdir, 3, process)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 0, stderr[-3000:]
  assert "stopped by SIGTERM" in stderr
  saved = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
  assert saved and saved[-1] >= 3 and saved[-1] == read_metrics(workdir)[-1]["step"]


def test_corrupted_latest_checkpoint_resumes_from_the_previous_one(tmp_path):
  config = tiny(load_experiment("ae_mlp"), num_steps=20, batch_size=16, checkpoint_every=10)
  straight = trainer.train(config, str(tmp_path / "straight"))
  workdir = tmp_path / "corrupt"
  trainer.train(config, str(workdir))
  for root, _, files in os.walk(workdir / "checkpoints" / "20"):
    for name in files:  # truncate every file of the newest checkpoint
      open(os.path.join(root, name), "w").close()
  resumed = trainer.train(config, str(workdir))
  assert os.listdir(workdir / "corrupt_checkpoints")[0].startswith("20-")
  for a, b in zip(leaves(straight.params), leaves(resumed.params)):
    np.testing.assert_array_equal(a, b)


def test_nonfinite_loss_stops_with_step_and_terms_or_is_skipped(tmp_path):
  config = tiny(load_experiment("ae_mlp"), num_steps=30, batch_size=16, checkpoint_every=5, log_every=10)
  config.optimizer.name, config.optimizer.learning_rate = "sgd", 1e12  # diverges within a few steps
  with pytest.raises(trainer.TrainingError, match=r"non-finite loss at step \d+: \{.*'loss'"):
    trainer.train(config, str(tmp_path / "stop"))
  run = trainer.Run(config, str(tmp_path / "stop"))
  saved_state = run.restore(run.first_batch()) if run.latest_step() else None
  run.close()
  if saved_state is not None:  # whatever was kept is finite
    assert all(np.all(np.isfinite(x)) for x in leaves(saved_state.params))

  config.skip_nonfinite = True
  state = trainer.train(config, str(tmp_path / "skip"))
  assert int(state.step) == 30 and int(state.skipped) > 0
  logged = read_metrics(str(tmp_path / "skip"))
  assert sum(m["update_skipped"] * 10 for m in logged) == pytest.approx(int(state.skipped))
  assert all(np.all(np.isfinite(x)) for x in leaves(state.params))


def test_second_process_on_a_workdir_is_refused(tmp_path):
  workdir = str(tmp_path / "run")
  with WorkdirLock(workdir):
    result = run_cli(*CLI_ARGS, "--workdir", workdir, "--config.num_steps=2")
  assert result.returncode == 2
  assert "is in use by another genjax process" in result.stderr.strip().splitlines()[-1]


def test_resume_with_a_changed_config_is_refused_unless_allowed(tmp_path):
  config = tiny(load_experiment("ae_mlp"), num_steps=4, batch_size=16)
  trainer.train(config, str(tmp_path))
  config.num_steps, config.log_every = 6, 2  # schedule keys may change: extends the run
  assert int(trainer.train(config, str(tmp_path)).step) == 6
  config.optimizer.learning_rate = 0.5
  with pytest.raises(ConfigError, match=r"optimizer.learning_rate: 0.001 -> 0.5"):
    trainer.train(config, str(tmp_path))
  config.num_steps = 7
  assert int(trainer.train(config, str(tmp_path), allow_config_change=True).step) == 7


_VALUES = st.one_of(st.integers(-3, 100), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=8), st.booleans(), st.none())
_KEYS = ["seed", "num_steps", "batch_size", "log_every", "checkpoint_every", "sample_every",
         "optimizer.learning_rate", "optimizer.name", "optimizer.schedule", "model.name", "dataset.name",
         "model.latent_dim", "model.noise", "model.noise_level", "model.architecture", "model.hidden",
         "model.features", "model.activation", "model.norm", "model.upsample", "model.n_critic",
         "model.clip_value", "model.loss", "model.critic_regularizer", "model.beta",
         "model.num_importance_samples", "model.likelihood", "model.objective", "model.kl_warmup_steps"]


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(st.sampled_from(["ae_mlp", "vae_mlp", "wgan"]),
                  st.lists(st.tuples(st.sampled_from(_KEYS), _VALUES), min_size=1, max_size=3))
def test_validator_accepts_or_gives_one_line_error(experiment, overrides):
  """Random values for the keys a user overrides: validate() accepts them or raises ONE line."""
  config = load_experiment(experiment)
  for key, value in overrides:
    node = config
    *path, leaf = key.split(".")
    for part in path:
      node = node[part]
    if leaf not in node:  # the CLI refuses keys an experiment lacks before validation
      continue
    try:
      node[leaf] = value
    except TypeError:  # ConfigDict is typed: the CLI's flag parser rejects these in one line already
      continue
  try:
    validate(config)
  except ConfigError as e:
    message = str(e)
    assert "\n" not in message and message.startswith("config."), message


def test_nothing_is_written_outside_the_workdir_and_the_caches(tmp_path):
  """A run from an empty directory with an empty HOME leaves files only in --workdir, the data
  directory and ~/.cache/genjax (XLA's compilation cache)."""
  home, cwd, data = tmp_path / "home", tmp_path / "cwd", tmp_path / "data"
  for d in (home, cwd, data):
    d.mkdir()
  env = {k: v for k, v in os.environ.items() if k != "GENJAX_COMPILATION_CACHE"}
  env.update(HOME=str(home), GENJAX_DATA_DIR=str(data), PYTHONPATH=ROOT)
  result = subprocess.run([sys.executable, "-m", "genjax.main", "--config",
                           os.path.join(ROOT, "experiments", "ae_mlp.py"), "--workdir", "run",
                           "--config.num_steps=3", "--config.log_every=1", "--config.batch_size=16"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(os.listdir(cwd)) == ["run"]
  written = {os.path.relpath(os.path.join(root, f), home) for root, _, files in os.walk(home) for f in files}
  assert written and all(p.startswith(os.path.join(".cache", "genjax", "xla")) for p in written), written
  assert os.listdir(data)  # the prepared digits


def test_a_dataset_option_added_since_the_run_was_saved_is_no_change_at_its_default():
  """Workdirs saved before an option existed still resume; a non-default value is still a change."""
  import json
  from genjax.safety import config_changes
  config = tiny(load_experiment("vae_mlp"), 2)
  saved = json.loads(config.to_json_best_effort())
  del saved["dataset"]["on_corrupt"]
  assert config_changes(saved, config) == []
  config.dataset.on_corrupt = "error" if config.dataset.on_corrupt != "error" else "skip"
  assert [c.split(":")[0] for c in config_changes(saved, config)] == ["dataset.on_corrupt"]

"""Scaling out changes nothing but speed: 8 simulated devices, or 2 processes with 2 devices each, train
exactly what 1 device trains from the same global batch; a batch that does not split fails early.

Device counts are fixed when JAX starts, so every multi-device run is a subprocess with XLA_FLAGS set.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from helpers import ROOT, leaves, load_experiment, read_metrics, run_cli, tiny
from genjax import trainer

STEPS = 20
# family -> (experiment, tiny overrides). WGAN: 5 critic chunks of 8 rows, one row per device each.
FAMILIES = {
    "vae": ("vae_mlp", {"model.hidden": (32,), "batch_size": 16}),
    "wgan": ("wgan", {"model.hidden": (32, 32), "model.latent_dim": 8, "batch_size": 40}),
}


def devices_env(n: int) -> dict:
  flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}".strip()
  return {"XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}  # keeps the session's flags (tests/conftest.py)


def tiny_config(family: str, num_steps: int = STEPS):
  experiment, overrides = FAMILIES[family]
  return tiny(load_experiment(experiment), num_steps, **overrides)


# Runs in a fresh interpreter with 8 CPU devices: trains each family through the trainer's own
# pieces (Run, Batches, shard_batch, make_train_step) on a 1-device and an 8-device mesh.
_MESH_SCRIPT = """
import json, os, sys
import jax, numpy as np
sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
from test_scaling import tiny_config, STEPS
from genjax import trainer
trainer.enable_compilation_cache()  # GENJAX_COMPILATION_CACHE: the test session's
from genjax.config import ConfigError

out, workdir = sys.argv[1], sys.argv[2]
assert jax.device_count() == 8, jax.devices()
arrays = {}
for family in json.loads(sys.argv[3]):
  for n in (1, 8):
    run = trainer.Run(tiny_config(family), workdir, trainer.make_mesh(jax.devices()[:n]))
    batches = run.batches()
    state = run.init_state(trainer.shard_batch(batches(0), run.mesh))
    step = trainer.make_train_step(run.objective, run.mesh, trainer.replicated(run.mesh))
    history = []
    for t in range(STEPS):
      batch = trainer.shard_batch(batches(t), run.mesh)
      assert len(batch["x"].sharding.device_set) == n and len(batch["x"].addressable_shards) == n
      state, metrics = step(state, batch)
      history.append(metrics)
    assert state.params is not None and all(
        x.sharding.is_fully_replicated for x in jax.tree_util.tree_leaves(state.params))
    history = jax.device_get(history)
    for key in history[0]:
      arrays[f"{family}/{n}/metric/{key}"] = np.asarray([m[key] for m in history])
    for i, leaf in enumerate(jax.tree_util.tree_leaves(jax.device_get(state.params))):
      arrays[f"{family}/{n}/param/{i}"] = np.asarray(leaf)

config = tiny_config("vae")
config.per_device_batch_size = 2
run = trainer.Run(config, workdir)
checks = {"global_batch": run.config.batch_size, "unchanged": config.batch_size}
config = tiny_config("vae")
config.batch_size = 12
try:
  trainer.Run(config, workdir)
except ConfigError as e:
  checks["error"] = str(e)
np.savez(out, **arrays)
print("CHECKS " + json.dumps(checks))
"""


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory):
  """(arrays saved by _MESH_SCRIPT, its other checks): one subprocess for every multi-device test."""
  tmp = tmp_path_factory.mktemp("mesh")
  out = str(tmp / "arrays.npz")
  result = subprocess.run(
      [sys.executable, "-c", _MESH_SCRIPT, out, str(tmp / "run"), json.dumps(sorted(FAMILIES))],
      cwd=ROOT, env={**os.environ, **devices_env(8)}, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  checks = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("CHECKS "))[7:])
  return dict(np.load(out)), checks


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_eight_devices_train_what_one_device_trains(eight_devices, family):
  arrays, _ = eight_devices
  one = {k.split("/", 2)[2]: v for k, v in arrays.items() if k.startswith(f"{family}/1/")}
  eight = {k.split("/", 2)[2]: v for k, v in arrays.items() if k.startswith(f"{family}/8/")}
  assert one.keys() == eight.keys() and any(k.startswith("param/") for k in one)
  for key in sorted(one):  # only the order of the cross-device sums differs
    np.testing.assert_allclose(eight[key], one[key], rtol=1e-4, atol=1e-5, err_msg=f"{family} {key}")
  assert np.all(np.isfinite(one["metric/" + ("loss" if family == "vae" else "critic_loss")]))


def test_per_device_batch_size_sets_the_global_batch(eight_devices):
  _, checks = eight_devices
  assert checks["global_batch"] == 2 * 8  # per-device batch times the device count
  assert checks["unchanged"] == 16  # the caller's config is not modified
  assert "batch_size 12" in checks["error"] and "8 devices" in checks["error"]


def test_cli_rejects_a_batch_that_does_not_split_over_devices(tmp_path):
  result = run_cli("--config", "experiments/ae_mlp.py", "--workdir", str(tmp_path / "run"),
                   "--config.batch_size=12", "--config.num_steps=1", env=devices_env(8), timeout=120)
  assert result.returncode == 2, result.stderr[-2000:]
  message = result.stderr.strip().splitlines()[-1]
  assert message.startswith("error: batch_size 12 must divide evenly over 8 devices"), result.stderr[-2000:]
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _cli_overrides(family: str) -> list[str]:
  _, overrides = FAMILIES[family]
  schedule = {"num_steps": STEPS, "log_every": 5, "checkpoint_every": STEPS, "sample_every": 0}
  return [f"--config.{k}={v}".replace(" ", "") for k, v in {**schedule, **overrides}.items()]


def test_two_processes_train_what_one_process_trains(tmp_path):
  """2 processes x 2 devices = one 4-device mesh; each reads its half of every batch, process 0
  alone writes logs, and orbax writes one checkpoint from both."""
  family = "vae"
  workdir = str(tmp_path / "two")
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-m", "genjax.main", "--config", f"experiments/{FAMILIES[family][0]}.py",
       "--workdir", workdir, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
       f"--process_id={i}", *_cli_overrides(family)],
      cwd=ROOT, env={**os.environ, **devices_env(2)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  # The reference run meanwhile: one process, one device, the same global batches.
  single = trainer.train(tiny_config(family), str(tmp_path / "one"), mesh=trainer.make_mesh(jax.devices()[:1]))
  for i, proc in enumerate(procs):
    try:
      _, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
      for p in procs:
        p.kill()
      raise
    assert proc.returncode == 0, f"process {i}: {stderr[-3000:]}"
    assert "4 devices" in stderr or i > 0, stderr[-2000:]  # the chief logs the global mesh

  metrics, reference = read_metrics(workdir), read_metrics(str(tmp_path / "one"))
  assert [m["step"] for m in metrics] == [5, 10, 15, 20]  # one writer: no line twice
  for got, want in zip(metrics, reference):
    for key in want:
      np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-5, err_msg=key)
  run = trainer.Run(tiny_config(family), workdir, trainer.make_mesh(jax.devices()[:1]))
  try:
    assert run.latest_step() == STEPS
    restored = run.restore(run.first_batch())
  finally:
    run.close()
  for got, want in zip(leaves(restored.params), leaves(single.params)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

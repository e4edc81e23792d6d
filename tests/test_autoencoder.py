"""The autoencoder family end to end: every variant learns, resume is exact, the CLI writes its files."""
import json
import os

import jax
import numpy as np
import pytest

from genjax import modes, trainer
from genjax.config import ConfigError, validate
from tests.helpers import leaves, load_experiment, read_metrics, run_cli, tiny

AE_EXPERIMENTS = ["ae_mlp", "ae_conv", "dae", "sparse_ae", "cae"]


@pytest.mark.parametrize("name", AE_EXPERIMENTS)
def test_each_autoencoder_experiment_lowers_its_loss(tmp_path, name):
  config = tiny(load_experiment(name), num_steps=60, log_every=10, batch_size=32)
  validate(config)
  trainer.train(config, str(tmp_path))
  losses = [m["loss"] for m in read_metrics(str(tmp_path))]
  assert len(losses) == 6
  assert all(np.isfinite(losses))
  # A clear margin: the last 10 steps average well under the first 10.
  assert losses[-1] < 0.6 * losses[0], losses


def test_resume_is_bit_exact(tmp_path):
  """20 steps straight == 10 steps, a fresh Run from the checkpoint, 10 more (params, opt state, rng, data)."""
  config = tiny(load_experiment("dae"), num_steps=20, batch_size=16)  # noise: the rng must resume too
  straight = trainer.train(config, str(tmp_path / "straight"))
  config.num_steps = 10
  trainer.train(config, str(tmp_path / "resumed"))
  config.num_steps = 20
  resumed = trainer.train(config, str(tmp_path / "resumed"))
  assert int(resumed.step) == int(straight.step) == 20
  for a, b in zip(leaves(straight.params) + leaves(straight.opt_state),
                  leaves(resumed.params) + leaves(resumed.opt_state)):
    np.testing.assert_array_equal(a, b)
  assert read_metrics(str(tmp_path / "straight"))[-1] == read_metrics(str(tmp_path / "resumed"))[-1]


def test_eval_and_sample_modes(tmp_path):
  config = tiny(load_experiment("ae_conv"), num_steps=10, batch_size=16)
  trainer.train(config, str(tmp_path))
  results = modes.evaluate(config, str(tmp_path))
  assert results["step"] == 10 and results["num_examples"] == 297
  with open(tmp_path / "eval.json") as f:
    assert json.load(f)["test_reconstruction"] == pytest.approx(results["test_reconstruction"])
  strips = modes.sample(config, str(tmp_path))
  assert strips.shape[1:] == (10, 8, 8, 1)  # interpolation strips of 10 steps between test digits
  assert 0.0 <= strips.min() and strips.max() <= 1.0
  # The ends of each strip decode the two encoded test images: the first column is a reconstruction.
  assert os.path.exists(tmp_path / "samples.npy") and os.path.exists(tmp_path / "images" / "samples.png")


def test_interpolation_endpoints_are_reconstructions(tmp_path):
  config = tiny(load_experiment("ae_mlp"), num_steps=5, batch_size=16)
  state = trainer.train(config, str(tmp_path))
  objective = trainer.Run(config, str(tmp_path)).objective
  x = jax.numpy.asarray(np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype(np.float32))
  y = x[::-1]
  strip = objective.interpolate(state, x, y, steps=5)
  np.testing.assert_allclose(strip[:, 0], objective.reconstruct(state, x), atol=1e-6)
  np.testing.assert_allclose(strip[:, -1], objective.reconstruct(state, y), atol=1e-6)


@pytest.mark.parametrize("override, message", [
    ("--config.model.name=nope", "config.model.name='nope' is unknown"),
    ("--config.batch_size=0", "config.batch_size=0 is not allowed"),
    ("--config.optimizer.learning_rate=-1.0", "config.optimizer.learning_rate=-1.0 is not allowed"),
    ("--config.model.latent_dim=0", "config.model.latent_dim=0 is not allowed"),
])
def test_bad_config_values_are_one_line_errors(override, message):
  config = load_experiment("ae_mlp")
  key, value = override[len("--config."):].split("=")
  target = config
  *path, leaf = key.split(".")
  for part in path:
    target = target[part]
  target[leaf] = type(target[leaf])(value)
  with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
    validate(config)


def test_cli_trains_evaluates_and_refuses_bad_input(tmp_path):
  workdir = str(tmp_path / "run")
  args = ["--config", "experiments/ae_mlp.py", "--workdir", workdir, "--config.num_steps=12",
          "--config.log_every=4", "--config.batch_size=16"]
  result = run_cli(*args)
  assert result.returncode == 0, result.stderr[-3000:]
  assert [m["step"] for m in read_metrics(workdir)] == [4, 8, 12]
  for name in ("config.json", "images/reconstructions_final.png", "images/interpolation_final.png"):
    assert os.path.exists(os.path.join(workdir, name)), name
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
  assert run_cli(*args, "--mode", "eval").returncode == 0
  assert json.load(open(os.path.join(workdir, "eval.json")))["step"] == 12

  bad_dir = str(tmp_path / "bad")
  bad = run_cli("--config", "experiments/ae_mlp.py", "--workdir", bad_dir, "--config.model.name=nope")
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1].startswith("error: config.model.name='nope' is unknown")
  assert not os.path.exists(bad_dir)
  # A config file's own refusal (an unknown variant after ':') reaches the one error line.
  bad = run_cli("--config", "experiments/vae_fashion_best.py:nope", "--workdir", bad_dir)
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1].endswith("unknown variant 'nope' after ':'; known: elbo, iwae")
  assert not os.path.exists(bad_dir)


def test_default_workdir_is_named_after_the_experiment():
  from genjax.main import default_workdir
  assert default_workdir("experiments/wgan.py") == os.path.join("runs", "wgan")
  assert default_workdir("experiments/vae_mlp.py:2") == os.path.join("runs", "vae_mlp_2")

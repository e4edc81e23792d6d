"""GAN inversion (genjax/invert.py) and the GAN encoder family, on a tiny GAN trained on digits here."""
from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import genjax
from genjax import api, invert
from genjax.configs import gan_config
from helpers import ROOT, load_experiment, run_cli, tiny


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> api.Model:
  """A small MLP GAN on 8x8 digits, trained long enough that G(z) varies with z."""
  config = tiny(gan_config("gan", hidden=(64,), latent_dim=8), num_steps=100, log_every=50)
  return genjax.train(config, str(tmp_path_factory.mktemp("gan")))


@pytest.fixture(scope="module")
def encoder_runs(gan_run, tmp_path_factory) -> tuple[api.Model, api.Model]:
  """(untrained, trained) gan_encoder models for gan_run's generator."""
  config = tiny(load_experiment("gan_encoder"), num_steps=100, log_every=50,
                **{"model.generator_workdir": gan_run.workdir, "model.architecture": "mlp",
                   "model.hidden": (64,), "optimizer.learning_rate": 3e-3})
  trained = genjax.train(config, str(tmp_path_factory.mktemp("encoder")))
  batch = trained._run.first_batch()
  untrained = api.Model(trained.config, trained.workdir, trained._run,
                        trained.objective.init(jax.random.key(1), batch))
  return untrained, trained


def own_samples(model: api.Model, n: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
  g = invert.generator_of(model)
  z = np.asarray(g.noise(jax.random.key(seed), (n,)))
  return z, np.asarray(jax.jit(g.generate)(z))


def test_opt_inverts_own_samples_above_30_db(gan_run):
  z_true, x = own_samples(gan_run, 8)
  _, x_prior = own_samples(gan_run, 8, seed=6)  # unrelated samples: what no inversion looks like
  assert np.mean(invert.psnr(np.mean(np.square(x_prior - x), axis=(1, 2, 3)))) < 20.0
  z, x_hat = gan_run.invert(x, method="opt", steps=300, restarts=4, learning_rate=0.05)
  assert z.shape == z_true.shape and x_hat.shape == x.shape
  assert np.mean(invert.psnr(np.mean(np.square(x_hat - x), axis=(1, 2, 3)))) > 30.0


def test_masked_pixels_do_not_change_the_result(gan_run):
  _, x = own_samples(gan_run, 4)
  unknown = 1.0 - invert.make_mask("center", x.shape[1:])
  other = np.where(unknown > 0, 1.0 - x, x)  # the same known pixels, the unknown ones flipped
  settings = dict(method="opt", steps=10, restarts=1, mask="center", feature_weight=0.1, features="critic")
  z, _ = gan_run.invert(x, **settings)
  z_other, _ = gan_run.invert(other, **settings)
  np.testing.assert_array_equal(z, z_other)
  known_changed = x.copy()
  known_changed[:, 0, 0, 0] = 1.0 - known_changed[:, 0, 0, 0]  # a corner pixel is known
  assert not np.array_equal(gan_run.invert(known_changed, **settings)[0], z)


def test_training_the_encoder_lowers_its_reconstruction_error(encoder_runs, gan_run):
  untrained, trained = encoder_runs
  _, samples = own_samples(gan_run, 32)  # G(z): an encoder can reconstruct them exactly
  real = trained.test_data()["x"][:32]
  for x, factor in ((samples, 0.5), (real, 0.9)):
    before, after = [np.mean(np.square(m.invert(x, method="encoder")[1] - x)) for m in (untrained, trained)]
    assert after < factor * before, (before, after)


def test_hybrid_starts_at_the_encoder_and_improves_on_it(encoder_runs):
  _, trained = encoder_runs
  x = trained.test_data()["x"][:8]
  g = invert.generator_of(trained)
  encoded = invert.invert_images(g, x, invert.Settings(method="encoder"))
  hybrid = invert.invert_images(g, x, invert.Settings(method="hybrid", steps=30, restarts=1))
  np.testing.assert_allclose(hybrid["start"], np.asarray(g.encode(x)), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(hybrid["trace"][:, 0], encoded["loss"], rtol=1e-4)  # the first iterate's loss
  assert np.all(hybrid["loss"] <= encoded["loss"] + 1e-4) and np.mean(hybrid["loss"]) < np.mean(encoded["loss"])


def test_shell_projection_keeps_the_prior_norm():
  z = invert.project_shell(jax.random.normal(jax.random.key(0), (5, 16)) * 3.0)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(z), axis=1), 4.0, rtol=1e-5)


def _invert_cli(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "genjax.invert", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=300)


def test_bad_input_is_one_error_line_and_writes_nothing(gan_run, tmp_path):
  empty = tmp_path / "not_a_run"  # not a trained generator
  empty.mkdir()
  result = _invert_cli("--workdir", str(empty), "--method", "hybrid")
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2 and lines[-1].startswith("error: ") and "no checkpoints" in lines[-1], result.stderr
  assert os.listdir(empty) == [] and not os.path.exists(os.path.join(gan_run.workdir, "inversion"))
  with pytest.raises(invert.InversionError, match=r"images shape=\(2, 5, 5, 1\) .* \[N, 8, 8, 1\]"):
    gan_run.invert(np.zeros((2, 5, 5, 1), np.float32))
  with pytest.raises(invert.InversionError, match=r"method='backprop' is not allowed; expected one of"):
    gan_run.invert(np.zeros((1, 8, 8, 1), np.float32), method="backprop")
  with pytest.raises(invert.InversionError, match=r"images range"):
    gan_run.invert(np.full((1, 8, 8, 1), 2.0, np.float32))
  with pytest.raises(invert.InversionError, match="needs an encoder"):
    gan_run.invert(np.zeros((1, 8, 8, 1), np.float32), method="hybrid")


def test_encoder_config_names_a_trained_gan(tmp_path):
  result = run_cli("--config", os.path.join(ROOT, "experiments", "gan_encoder.py"), "--workdir",
                   str(tmp_path / "e"), f"--config.model.generator_workdir={tmp_path / 'missing'}")
  assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(
      "error: config.model.generator_workdir=") and not (tmp_path / "e").exists(), result.stderr

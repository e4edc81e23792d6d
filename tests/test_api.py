"""The notebook API on tiny runs: round trips, the same numbers as the CLI, clear errors."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import genjax
from genjax import modes
from genjax.trainer import TrainingError
from tests.helpers import ROOT, tiny


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory):
  config = tiny(genjax.get_config(os.path.join(ROOT, "experiments/ae_mlp.py")), num_steps=8, batch_size=16)
  workdir = str(tmp_path_factory.mktemp("ae"))
  return genjax.train(config, workdir)


def test_get_config_reads_an_experiment_and_can_be_changed_in_place():
  config = genjax.get_config(os.path.join(ROOT, "experiments/cae.py"))
  assert config.model.name == "autoencoder" and config.model.contractive_weight > 0
  config.model.latent_dim = 3
  assert config.model.latent_dim == 3
  with pytest.raises(FileNotFoundError, match="no experiment file"):
    genjax.get_config("experiments/missing.py")


def test_round_trips(autoencoder):
  x = autoencoder.test_data()["x"][:6]
  z = autoencoder.encode(x)
  assert z.shape == (6, 16)
  np.testing.assert_allclose(autoencoder.decode(z), autoencoder.reconstruct(x), atol=1e-6)
  strip = autoencoder.interpolate(x[:3], x[3:], steps=4)
  assert strip.shape == (3, 4, 8, 8, 1)
  np.testing.assert_allclose(strip[:, 0], autoencoder.reconstruct(x[:3]), atol=1e-5)


def test_evaluate_equals_eval_mode(autoencoder):
  from_api = autoencoder.evaluate()
  from_cli = modes.evaluate(autoencoder.config, autoencoder.workdir)
  assert from_api == from_cli
  with open(os.path.join(autoencoder.workdir, "eval.json")) as f:
    assert json.load(f)["test_loss"] == pytest.approx(from_api["test_loss"])


def test_load_restores_the_same_state_and_a_chosen_step(autoencoder):
  again = genjax.load(autoencoder.workdir)
  assert again.step == 8
  x = autoencoder.test_data()["x"][:4]
  np.testing.assert_array_equal(again.reconstruct(x), autoencoder.reconstruct(x))
  assert "autoencoder on digits, step 8" in repr(again)


def test_clear_errors(autoencoder, tmp_path):
  with pytest.raises(NotImplementedError, match="no sample\\(\\); this one supports: encode, decode"):
    autoencoder.sample(4)
  with pytest.raises(TrainingError, match="has no checkpoints"):
    genjax.load(str(tmp_path))


def test_show_grid_renders_a_pil_image(autoencoder):
  x = autoencoder.test_data()["x"][:12]
  picture = autoencoder.show_grid(x, ncol=4)
  assert isinstance(picture, Image.Image)
  scale = 96 // 8
  assert picture.size == (4 * (8 + 1) * scale + scale, 3 * (8 + 1) * scale + scale)
  points = genjax.Model.show_grid(np.random.default_rng(0).normal(size=(50, 2)))
  assert picture.mode == "L" and points.mode == "RGB"

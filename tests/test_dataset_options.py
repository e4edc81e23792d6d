"""Every dataset option is settable from the command line on every experiment (issue 14's bug)."""
import glob
import os

import jax
import pytest

from genjax import data as gd
from genjax.trainer import Run
from helpers import ROOT, read_metrics, run_cli
from test_data import write_mnist

EXPERIMENTS = sorted(os.path.splitext(os.path.basename(p))[0]
                     for p in glob.glob(os.path.join(ROOT, "experiments", "*.py")))
# Overrides a new user types to move any experiment to Fashion-MNIST in their own folder.
FASHION = ("--config.dataset.name=fashion_mnist", "--config.dataset.manual_dir={dir}")


def test_every_registered_option_is_in_every_experiment():
  options = gd.dataset_options()
  assert {"manual_dir", "crop_size", "crops_per_texture", "mixture", "radius", "spacing", "std",
          "num_train", "num_test", "binarize", "data_dir"} <= set(options)
  from helpers import load_experiment
  for name in EXPERIMENTS:
    dataset = load_experiment(name).dataset
    missing = set(options) - set(dataset.keys())
    assert not missing, f"experiments/{name}.py lacks dataset options {sorted(missing)}"


# Experiments that cannot take an image set as such refuse it in one line naming the key.
REFUSALS = {"gan_encoder": "config.model.generator_workdir=", "texture": "config.dataset.name=",
            "style_transfer": "config.dataset.name=", "texture_net": "config.dataset.name="}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_experiment_fits_fashion_mnist_from_a_manual_dir(tmp_path, name):
  """Set as the CLI sets them (every key exists, see above), then the model traced on 28x28x1."""
  from genjax.config import ConfigError, validate
  from helpers import load_experiment
  write_mnist(tmp_path / "fm", n_train=8, n_test=4)
  config = load_experiment(name)
  config.dataset.name, config.dataset.manual_dir = "fashion_mnist", str(tmp_path / "fm")
  config.dataset.data_dir = str(tmp_path / "tfds")  # prepared once per data_dir: keep tests apart
  config.batch_size = 8 * config.model.get("n_critic", 1)
  if name in REFUSALS:
    with pytest.raises(ConfigError, match=REFUSALS[name]) as refused:
      validate(config)
    assert "\n" not in str(refused.value)
    return
  validate(config)
  run = Run(config, str(tmp_path / "never-written"))
  state = run.abstract_state(run.first_batch())  # traced, not compiled
  assert jax.tree_util.tree_leaves(state.params)
  assert not (tmp_path / "never-written").exists()


def test_cli_trains_on_fashion_mnist_idx_files(tmp_path):
  written = write_mnist(tmp_path / "fm", n_train=16, n_test=8)
  workdir = tmp_path / "run"
  result = run_cli("--config", "experiments/vae_mlp.py", "--workdir", str(workdir),
                   *(f.format(dir=tmp_path / "fm") for f in FASHION),
                   f"--config.dataset.data_dir={tmp_path / 'tfds'}",
                   "--config.num_steps=2", "--config.log_every=1", "--config.batch_size=8",
                   "--config.sample_every=0", "--config.model.eval_importance_samples=4")
  assert result.returncode == 0, result.stderr[-3000:]
  assert [m["step"] for m in read_metrics(str(workdir))] == [1, 2]
  test = gd.load_dataset({"name": "fashion_mnist", "manual_dir": str(tmp_path / "fm"),
                          "data_dir": str(tmp_path / "tfds")}, "test")
  assert test["x"].shape == (8, 28, 28, 1)
  assert (test["x"][..., 0] * 255).round().astype(int).tolist() == written["test"][0].tolist()


def test_unknown_dataset_option_is_one_line_error(tmp_path):
  result = run_cli("--config", "experiments/vae_mlp.py", "--workdir", str(tmp_path / "w"),
                   "--config.dataset.manual_dri=/x")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      result.stderr.strip().splitlines()[0]] and "manual_dri" in result.stderr
  assert "manual_dir" in result.stderr  # the known keys are listed
  assert not (tmp_path / "w").exists()

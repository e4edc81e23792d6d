"""Seeds in parallel (genjax/models/seeds.py) and the PacGAN-protocol toy experiments."""
from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

import genjax  # noqa: F401  registers families and datasets
from genjax.config import validate
from genjax.configs import gan_config
from genjax.models.gan import GANObjective
from genjax.models.seeds import SeedsObjective
from genjax.modes import evaluate
from genjax.registry import MODELS
from genjax.trainer import train
from tests.helpers import leaves, load_experiment, run_cli

SEEDS = 3


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("tfds"))


def tiny_gan(data_dir: str, seed: int = 0, num_seeds: int = 1):
  """A toy GAN with EMA generator weights (extras) and packing, 4 steps on a small ring. (Not batch
  norm: the bias before it has a zero gradient up to rounding, whose sign Adam turns into +-lr.)"""
  config = gan_config("gan", {"name": "toy2d", "mixture": "ring", "num_train": 240, "num_test": 60,
                              "data_dir": data_dir}, 8, latent_dim=2, hidden=(16,), ema_decay=0.9,
                      pack=2)
  config.update(seed=seed, num_seeds=num_seeds, num_steps=4, log_every=2, sample_every=0,
                checkpoint_every=1000)
  return config


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
  """One vmapped run of seeds 5, 6, 7 and the three single runs, each with its eval.json."""
  root = tmp_path_factory.mktemp("seeds")
  vmapped = tiny_gan(data_dir, seed=5, num_seeds=SEEDS)
  validate(vmapped)
  together = train(vmapped, str(root / "vmapped"))
  together_eval = evaluate(vmapped, str(root / "vmapped"))
  singles, single_evals = [], []
  for s in range(SEEDS):
    config = tiny_gan(data_dir, seed=5 + s)
    singles.append(train(config, str(root / f"single{s}")))
    single_evals.append(evaluate(config, str(root / f"single{s}")))
  return vmapped, together, together_eval, singles, single_evals, root


def test_registry_wraps_only_when_num_seeds_is_above_one(data_dir):
  assert isinstance(MODELS.lookup("gan")(tiny_gan(data_dir, num_seeds=2)), SeedsObjective)
  assert isinstance(MODELS.lookup("gan")(tiny_gan(data_dir, num_seeds=1)), GANObjective)
  assert MODELS.lookup("gan").family is GANObjective


def test_vmapped_seeds_equal_their_single_runs(runs):
  _, together, _, singles, _, _ = runs
  assert int(together.step) == 4
  for s, single in enumerate(singles):
    for name in ("params", "opt_state", "extras"):
      stacked = leaves(getattr(together, name))
      alone = leaves(getattr(single, name))
      assert len(stacked) == len(alone) > 0
      for a, b in zip(stacked, alone):
        assert a.shape == (SEEDS,) + b.shape
        np.testing.assert_allclose(a[s], b, rtol=2e-5, atol=2e-6, err_msg=f"seed {s} {name}")
  # Seeds really differ (the comparison above could not pass with one shared seed).
  first = leaves(together.params)[0]
  assert not np.allclose(first[0], first[1])


def test_vmapped_metrics_are_the_mean_over_seeds(runs):
  _, _, _, _, _, root = runs
  read = lambda d: [json.loads(line) for line in open(root / d / "metrics.jsonl")]
  together = read("vmapped")
  singles = [read(f"single{s}") for s in range(SEEDS)]
  assert [m["step"] for m in together] == [2, 4]
  for i, row in enumerate(together):
    for key in ("critic_loss", "generator_loss", "d_real"):
      np.testing.assert_allclose(row[key], np.mean([s[i][key] for s in singles]), rtol=1e-4)


def test_eval_reports_mean_standard_error_and_per_seed(runs):
  vmapped, _, together_eval, _, single_evals, root = runs
  assert together_eval["num_seeds"] == SEEDS and list(together_eval["seeds"]) == [5, 6, 7]
  on_disk = json.load(open(root / "vmapped" / "eval.json"))
  for key in ("modes_covered", "high_quality_percent", "reverse_kl", "mean_mode_distance", "critic_gap"):
    per_seed = np.asarray([e[key] for e in single_evals], np.float64)
    np.testing.assert_allclose(together_eval[f"{key}_per_seed"], per_seed, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(on_disk[key], per_seed.mean(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(on_disk[f"{key}_se"], per_seed.std(ddof=1) / np.sqrt(SEEDS),
                               rtol=1e-3, atol=1e-6)
  assert any(len(set(np.round(together_eval[f"{k}_per_seed"], 6))) > 1 for k in ("critic_gap", "mean_mode_distance"))


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "many"])
def test_bad_num_seeds_is_one_line_error_nothing_written(tmp_path, value):
  workdir = tmp_path / "never_written"
  result = run_cli("--config", "experiments/gan_toy_ring.py", "--workdir", str(workdir),
                   f"--config.num_seeds={value}")
  assert result.returncode == 2, result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and "num_seeds" in last, result.stderr
  assert not workdir.exists()


@pytest.mark.parametrize("name", ["gan_toy_ring", "gan_toy_grid"])
@pytest.mark.parametrize("recipe,pack", [("gan", 1), ("pacgan2", 2), ("pacgan3", 3), ("pacgan4", 4),
                                         ("wgan_gp", 1)])
def test_toy_experiments_follow_pacgan_protocol(name, recipe, pack):
  config = load_experiment(name, recipe)
  validate(config)
  model = config.model
  assert config.dataset.name == "toy2d" and config.dataset.num_train == 100_000
  assert model.latent_dim == 2 and tuple(model.hidden) == (400,) * 4 and model.norm == "batch"
  assert model.activation == "relu"
  assert model.critic_activation == "maxout" and tuple(model.critic_hidden) == (200,) * 3
  assert model.maxout_pieces == 5 and model.critic_norm == "none" and model.pack == pack
  assert config.batch_size == 100 * pack * model.n_critic  # 100 packs per critic update
  assert config.num_seeds == 1
  if recipe == "wgan_gp":
    assert model.loss == "wasserstein" and model.critic_regularizer == "gradient_penalty"
    assert (config.optimizer.learning_rate, config.optimizer.b1, config.optimizer.b2) == (1e-4, 0.0, 0.9)
  else:
    assert model.loss == "non_saturating" and model.critic_regularizer == "none"
    assert (config.optimizer.name, config.optimizer.learning_rate, config.optimizer.b1) == ("adam", 1e-4, 0.8)
  mixture = {"gan_toy_ring": ("ring", "radius", 1.0, 0.01), "gan_toy_grid": ("grid", "spacing", 2.0, 0.05)}
  kind, size_key, size, std = mixture[name]
  assert config.dataset.mixture == kind and config.dataset[size_key] == size and config.dataset.std == std

"""Seeds in parallel (genjax/models/seeds.py) and the PacGAN-protocol toy experiments."""
from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

import genjax  # noqa: F401  registers families and datasets
from genjax.config import ConfigError, validate
from genjax.configs import gan_config
from genjax.evaluate import mode_coverage as mc
from genjax.data import toy2d_mode_centres
from genjax.models.gan import GANObjective
from genjax.models.seeds import SeedsObjective
from genjax.modes import evaluate, evaluation
from genjax.registry import MODELS
from genjax.trainer import Run, make_train_step, replicated, shard_batch, train
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


def single_run(config):
  """The trainer's own pieces for one seed (init, jitted step, batches, --mode eval's numbers),
  without checkpoints or pictures: (final state, per-step metrics, eval)."""
  run = Run(config, "/tmp/never_written_single")
  state = run.init_state(run.first_batch())
  step = make_train_step(run.objective, run.mesh, replicated(run.mesh))
  batches, metrics = run.batches(), []
  for i in range(config.num_steps):
    state, m = step(state, shard_batch(batches(i), run.mesh))
    metrics.append(jax.device_get(m))
  return state, metrics, evaluation(run, state)


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
  """One vmapped run of seeds 5, 6, 7 through the CLI's train and eval, and the three single runs."""
  root = tmp_path_factory.mktemp("seeds")
  vmapped = tiny_gan(data_dir, seed=5, num_seeds=SEEDS)
  validate(vmapped)
  together = train(vmapped, str(root / "vmapped"))
  together_eval = evaluate(vmapped, str(root / "vmapped"))
  singles = [single_run(tiny_gan(data_dir, seed=5 + s)) for s in range(SEEDS)]
  return together, together_eval, singles, root


def test_registry_wraps_only_when_num_seeds_is_above_one(data_dir):
  assert isinstance(MODELS.lookup("gan")(tiny_gan(data_dir, num_seeds=2)), SeedsObjective)
  assert isinstance(MODELS.lookup("gan")(tiny_gan(data_dir, num_seeds=1)), GANObjective)
  assert MODELS.lookup("gan").family is GANObjective


def test_vmapped_seeds_equal_their_single_runs(runs):
  together, _, singles, _ = runs
  assert int(together.step) == 4
  for s, (single, _, _) in enumerate(singles):
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
  _, _, singles, root = runs
  together = [json.loads(line) for line in open(root / "vmapped" / "metrics.jsonl")]
  assert [m["step"] for m in together] == [2, 4]
  for i, row in enumerate(together):  # log_every=2: the interval mean of steps 2i, 2i+1, then over seeds
    for key in ("critic_loss", "generator_loss", "d_real"):
      expected = np.mean([[float(m[key]) for m in metrics[2 * i:2 * i + 2]] for _, metrics, _ in singles])
      np.testing.assert_allclose(row[key], expected, rtol=1e-4)


def test_eval_reports_mean_standard_error_and_per_seed(runs):
  _, together_eval, singles, root = runs
  single_evals = [e for _, _, e in singles]
  assert together_eval["num_seeds"] == SEEDS and list(together_eval["seeds"]) == [5, 6, 7]
  on_disk = json.load(open(root / "vmapped" / "eval.json"))
  for key in ("modes_covered", "high_quality_percent", "reverse_kl", "mean_mode_distance", "critic_gap"):
    per_seed = np.asarray([e[key] for e in single_evals], np.float64)
    np.testing.assert_allclose(together_eval[f"{key}_per_seed"], per_seed, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(on_disk[key], per_seed.mean(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(on_disk[f"{key}_se"], per_seed.std(ddof=1) / np.sqrt(SEEDS),
                               rtol=1e-3, atol=1e-6)
  assert any(len(set(np.round(together_eval[f"{k}_per_seed"], 6))) > 1 for k in ("critic_gap", "mean_mode_distance"))


@pytest.mark.parametrize("value", [0, -2, 2.5, True, "3"])
def test_bad_num_seeds_names_the_key(data_dir, value):
  config = tiny_gan(data_dir)
  config._fields["num_seeds"] = value  # past ConfigDict's type lock, as a config built in Python could be
  with pytest.raises(ConfigError, match=r"config\.num_seeds=.* is not allowed; expected an integer >= 1"):
    validate(config)


def test_bad_num_seeds_is_one_line_error_nothing_written(tmp_path):
  workdir = tmp_path / "never_written"
  result = run_cli("--config", "experiments/gan_toy_ring.py", "--workdir", str(workdir),
                   "--config.num_seeds=0")
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


def test_reverse_kl_counts_high_quality_samples_only_as_pacgan():
  """PacGAN's MetricLogger histograms only samples within 3 std of their mode: half the samples at
  the origin (low quality, all nearest to mode 0) leave PacGAN's KL at ~0 but not the all-samples one."""
  centres, std, rng = toy2d_mode_centres({"mixture": "ring", "radius": 1.0}), 0.01, np.random.default_rng(0)
  on_modes = centres[np.arange(1200) % 8] + std * rng.normal(size=(1200, 2))
  result = mc.mode_coverage(np.concatenate([on_modes, np.zeros((1200, 2))]), centres, std)
  hq = mc.nearest_modes(on_modes, centres)[1] <= 3 * std
  expected = mc.reverse_kl_to_uniform(mc.mode_histogram(mc.nearest_modes(on_modes[hq], centres)[0], 8))
  np.testing.assert_allclose(result["reverse_kl"], expected, atol=1e-12)
  assert result["reverse_kl"] < 1e-3 and abs(result["high_quality_percent"] - 100 * hq.sum() / 2400) < 1e-9
  # all samples: mode 0 holds 1200 + 150 of 2400, the others 150 each
  p = np.array([1350] + [150] * 7) / 2400
  np.testing.assert_allclose(result["reverse_kl_all_samples"], np.sum(p * np.log(8 * p)), atol=1e-3)
  nowhere = mc.mode_coverage(np.full((10, 2), 5.0), centres, std)
  assert nowhere["modes_covered"] == 0 and nowhere["reverse_kl"] == nowhere["max_reverse_kl"] == np.log(8)

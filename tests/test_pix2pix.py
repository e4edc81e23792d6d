"""pix2pix: U-Net sizes and skips, PatchGAN receptive field, paired masks, PSNR/SSIM, a short run."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import genjax
from genjax import modes, trainer
from genjax.config import ConfigError, validate
from genjax.configs import pix2pix_config
from genjax.data import dataset_options, load_dataset, paired
from genjax.evaluate import paired_metrics
from genjax.layers.patchgan import PatchGAN, receptive_field
from genjax.layers.unet import UNet, auto_depth, instance_norm
from tests.helpers import read_metrics, run_cli, tiny

TINY_NETS = dict(unet_features=4, unet_max_features=8, critic_features=4, critic_max_features=8,
                 critic_downsamplings=0)


def digits_config(**model):
  config = pix2pix_config("digits", "inpaint", **{**TINY_NETS, **model})
  config.dataset.mask_size = 4
  return config


@pytest.mark.parametrize("size", [8, 25, 28, 32])
def test_unet_output_has_the_input_size(size):
  net = UNet(1, auto_depth(size, size), 2, 4, norm="instance")
  x = jax.ShapeDtypeStruct((2, size, size, 2), jnp.float32)
  variables = jax.eval_shape(lambda x: net.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x), x)
  out = jax.eval_shape(lambda v, x: net.apply(v, x, rngs={"dropout": jax.random.key(1)}), variables, x)
  assert out.shape == (2, size, size, 1)
  assert auto_depth(size, size) == {8: 3, 25: 5, 28: 5, 32: 5}[size]  # 25 and 28 px are padded to 32


def test_every_skip_reaches_the_output():
  """Non-zero gradient of the output w.r.t. each skip connection (flax perturbations on the skips)."""
  net = UNet(1, 5, 2, 4, norm="instance", upsample="transpose", input_grad="xla")  # XLA's own: quicker to compile
  x = jax.random.uniform(jax.random.key(0), (2, 25, 25, 2))
  variables = jax.jit(lambda x: net.init({"params": jax.random.key(1), "dropout": jax.random.key(2)}, x,
                                         train=False))(x)
  assert sorted(variables["perturbations"]) == [f"skip_{i}" for i in range(4)]  # all but the innermost level
  grads = jax.jit(jax.grad(lambda p: jnp.sum(net.apply({"params": variables["params"], "perturbations": p}, x,
                                                       train=False) ** 2)))(variables["perturbations"])
  for name, grad in grads.items():
    assert float(jnp.abs(grad).max()) > 0, name


def test_instance_norm_normalises_each_example_and_channel_alone():
  x = jax.random.normal(jax.random.key(0), (3, 6, 5, 4)) * 3.0 + 2.0
  norm = instance_norm()
  params = jax.jit(norm.init)(jax.random.key(1), x)
  # Example 0 alone and beside zeroed others: instance norm does not mix examples.
  y, other = jax.jit(lambda p, x: (norm.apply(p, x), norm.apply(p, x.at[1:].set(0.0))))(params, x)
  np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(y.var(axis=(1, 2)), 1.0, rtol=1e-3)
  np.testing.assert_allclose(other[0], y[0], atol=1e-6)


def test_patchgan_receptive_field_is_the_documented_size():
  """Rows/columns of the input with a non-zero gradient of one interior output cell, for 0, 1, 2
  downsamplings (one jit for all three nets)."""
  assert [receptive_field(n) for n in range(4)] == [7, 16, 34, 70]  # 3: the paper's 70x70 critic
  nets = [PatchGAN(n, 4, 8, norm="none", input_grad="xla") for n in range(3)]
  x = jax.random.normal(jax.random.key(0), (1, 48, 48, 3))
  params = jax.jit(lambda x: [net.init(jax.random.key(1), x) for net in nets])(x)

  def centre_cell_grads(params, x):
    grads = []
    for net, p in zip(nets, params):
      middle = 48 // 2 ** net.downsamplings // 2
      grads.append(jax.grad(lambda x: net.apply(p, x)[0, middle, middle])(x))
    return grads

  for n, grad in enumerate(jax.jit(centre_cell_grads)(params, x)):
    rows, cols = np.nonzero(np.abs(np.asarray(grad[0])).sum(-1))
    assert rows.max() - rows.min() + 1 == receptive_field(n), n
    assert cols.max() - cols.min() + 1 == receptive_field(n), n


@pytest.mark.parametrize("kind", ["centre", "rectangles", "strokes"])
def test_masks_area_and_determinism(kind):
  config = ConfigDict({**paired.OPTIONS, "task": "inpaint", "mask": kind, "mask_size": 10})
  masks = paired.masks(config, "train", 12, 28, 28)
  area = masks.sum(axis=(1, 2))
  if kind == "rectangles":  # sides within sqrt(2) of 10: area 100 up to rounding of one side
    assert np.all(np.abs(area - 100) <= 10), area
  else:
    np.testing.assert_array_equal(area, 100)
  np.testing.assert_array_equal(paired.masks(config, "train", 5, 28, 28), masks[:5])  # pure in (seed, index)
  config.pair_seed = 1
  if kind != "centre":
    assert len({m.tobytes() for m in masks}) == len(masks)  # different across indices
    assert not np.array_equal(paired.masks(config, "train", 12, 28, 28), masks)  # and across seeds


def test_paired_views_of_digits():
  options = ConfigDict({"name": "digits", **dataset_options(), "mask_size": 4})
  plain = load_dataset(options, "test")
  for task, channels in (("inpaint", 2), ("edges", 1), ("superres", 1), ("denoise", 1)):
    arrays = load_dataset(ConfigDict({**options.to_dict(), "task": task}), "test")
    assert arrays["input"].shape == plain["x"].shape[:3] + (channels,)
    np.testing.assert_array_equal(arrays["target"], plain["x"])
  inpaint = load_dataset(ConfigDict({**options.to_dict(), "task": "inpaint"}), "test")["input"]
  hole = inpaint[..., 1]
  assert hole[:, 2:6, 2:6].min() == 1 and hole.sum() == 16 * len(hole)  # the 4x4 centre square
  assert np.all(inpaint[..., 0][hole == 1] == 0)
  superres = load_dataset(ConfigDict({**options.to_dict(), "task": "superres"}), "test")["input"]
  np.testing.assert_allclose(superres[:, :4, :4].mean(axis=(1, 2)), plain["x"][:, :4, :4].mean(axis=(1, 2)), atol=1e-6)


def test_psnr_ssim_l1_match_scikit_image_and_closed_forms():
  rng = np.random.default_rng(0)
  target = rng.uniform(size=(3, 16, 16, 1))
  output = np.clip(target + 0.1 * rng.standard_normal(target.shape), 0, 1)
  expected_psnr = np.mean([peak_signal_noise_ratio(t, o, data_range=1.0) for t, o in zip(target, output)])
  expected_ssim = np.mean([structural_similarity(t, o, data_range=1.0, channel_axis=-1) for t, o in zip(target, output)])
  assert paired_metrics.psnr(target, output) == pytest.approx(expected_psnr, rel=1e-9)
  assert paired_metrics.ssim(target, output) == pytest.approx(expected_ssim, rel=1e-9)
  # A box region: PSNR and L1 of the crop; a constant error d: PSNR = -20 log10 d, L1 = d.
  region = np.zeros((3, 16, 16))
  region[:, 4:12, 4:12] = 1
  crop = np.mean([peak_signal_noise_ratio(t[4:12, 4:12], o[4:12, 4:12], data_range=1.0) for t, o in zip(target, output)])
  assert paired_metrics.psnr(target, output, region) == pytest.approx(crop, rel=1e-9)
  shifted = target.copy()
  shifted[:, 4:12, 4:12] += 0.25
  assert paired_metrics.psnr(target, shifted, region) == pytest.approx(-20 * np.log10(0.25))
  assert paired_metrics.l1(target, shifted, region) == pytest.approx(0.25)
  assert paired_metrics.l1(target, shifted) == pytest.approx(0.25 * 64 / 256)
  assert paired_metrics.ssim(target, target, region) == pytest.approx(1.0)


def test_l1_only_run_lowers_the_masked_error_translates_and_evaluates(tmp_path):
  # A 10x higher learning rate than the paper's so that 150 steps of a tiny net show progress.
  config = tiny(digits_config(adversarial_weight=0.0), num_steps=150, batch_size=32, log_every=50,
                eval_num_samples=100, **{"optimizer.learning_rate": 2e-3})
  validate(config)
  run = trainer.Run(config, str(tmp_path / "init"))
  test = run.test_arrays()
  region = test["input"][..., -1]
  before = np.asarray(jax.jit(run.objective.translate)(run.init_state(run.first_batch()), test["input"]))
  model = genjax.train(config, str(tmp_path / "run"))
  assert "critic" not in model.state.params  # the ablation has no critic at all
  after = model.translate(test["input"])
  assert after.shape == test["target"].shape
  np.testing.assert_array_equal(after * (1 - region[..., None]), test["input"][..., :1])  # known pixels kept
  l1_before = paired_metrics.l1(test["target"], before, region)
  l1_after = paired_metrics.l1(test["target"], after, region)
  assert l1_after < 0.9 * l1_before, (l1_before, l1_after)  # 0.354 -> 0.295 in 150 steps (measured)

  results = modes.evaluate(config, str(tmp_path / "run"))
  for prefix in ("", "input_", "biharmonic_"):
    for key in ("masked_psnr", "masked_ssim", "masked_l1", "psnr", "ssim", "l1", "fid", "kid_mean",
                "precision", "recall", "classifier_accuracy"):
      assert np.isfinite(results[prefix + key]), prefix + key
  assert results["masked_l1"] == pytest.approx(paired_metrics.l1(test["target"][:100], after[:100], region[:100]), rel=1e-5)
  # The masked input is black in the hole; biharmonic filling beats it there.
  assert results["input_masked_l1"] == pytest.approx(float(np.mean(test["target"][:100, 2:6, 2:6])), rel=1e-5)
  assert results["biharmonic_masked_psnr"] > results["input_masked_psnr"]
  assert results["num_examples"] == 100 and results["test_dropout"] is False
  with open(tmp_path / "run" / "eval.json") as f:
    assert json.load(f)["masked_psnr"] == pytest.approx(results["masked_psnr"])


def test_adversarial_steps_train_the_critic_and_draw_pictures(tmp_path):
  config = tiny(digits_config(loss="least_squares"), num_steps=6, batch_size=16, log_every=3, sample_every=6)
  run = trainer.Run(config, str(tmp_path / "init"))
  initial = run.init_state(run.first_batch())
  state = trainer.train(config, str(tmp_path / "run"))
  metrics = read_metrics(str(tmp_path / "run"))
  assert {"critic_loss", "generator_loss", "l1"} <= set(metrics[-1]) and "d_real" not in metrics[-1]
  assert all(np.isfinite(m["critic_loss"]) for m in metrics)
  changed = [not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(initial.params["critic"]),
                                                        jax.tree_util.tree_leaves(state.params["critic"]))]
  assert all(changed)
  assert (tmp_path / "run" / "images" / "translation_final.png").exists()


@pytest.mark.parametrize("key, value, message", [
    ("dataset.task", "colourise", "config.dataset.task='colourise' is not allowed"),
    ("model.critic_downsamplings", 1, "config.model.critic_downsamplings=1 is not allowed"),
    ("dataset.mask", "circle", "config.dataset.mask='circle' is not allowed"),
])
def test_bad_config_values_raise_one_line_errors(key, value, message):
  config = tiny(digits_config(), **{key: value})
  with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
    validate(config)


def test_cli_rejects_a_mask_larger_than_the_image(tmp_path):
  result = run_cli("--config", "experiments/pix2pix_inpaint.py", "--config.dataset.name=digits",
                   "--config.dataset.mask_size=9", f"--workdir={tmp_path / 'run'}")
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert lines[-1] == "error: config.dataset.mask_size=9 is not allowed; expected at most the image side 8 (images are 8x8)"
  assert not (tmp_path / "run").exists()

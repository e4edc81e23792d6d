"""Texture synthesis / style transfer / texture network: Gram algebra, zero loss at the exemplar,
L-BFGS progress, the held-out evaluation net, the metrics' known values, and one-line bad input."""
import os

import jax
import jax.numpy as jnp
import optax
import numpy as np
import pytest
from PIL import Image

from genjax.config import ConfigError, validate
from genjax.configs import texture_config
from genjax.data import DatasetError, load_dataset
from genjax.data.exemplar import named_image
from genjax.evaluate import texture_metrics
from genjax.layers import random_features
from genjax.models.texture import FAMILY_MODES, resize
from tests.helpers import load_experiment, run_cli

SMALL_NET = {"filter_sizes": (3, 5), "filters_per_size": 8, "eval_filter_sizes": (4, 7)}


def small_config(tmp_path, mode="optimize", **model):
  """A 32x32 crop of brick written as a PNG (so image_path is exercised), 32x32 syntheses."""
  path = tmp_path / "brick32.png"
  if not path.exists():
    Image.fromarray((named_image("brick")[200:232, 200:232, 0] * 255).astype(np.uint8)).save(path)
  config = texture_config(mode, **{**SMALL_NET, "output_size": 32, "train_size": 16,
                                   "generator_scales": 2, "generator_width": 8, **model})
  config.dataset.image_path = str(path)
  config.dataset.image_size = 0
  return config


def test_gram_matches_a_loop_and_ignores_positions():
  rng = np.random.default_rng(0)
  features = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
  g = np.asarray(random_features.gram(jnp.asarray(features)))
  expected = np.zeros((2, 5, 5))
  for b in range(2):
    for i in range(5):
      for j in range(5):
        expected[b, i, j] = sum(features[b, y, x, i] * features[b, y, x, j]
                                for y in range(3) for x in range(4)) / 12
  np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-6)
  shuffled = features.reshape(2, 12, 5)[:, rng.permutation(12)].reshape(2, 3, 4, 5)
  np.testing.assert_allclose(np.asarray(random_features.gram(jnp.asarray(shuffled))), g, rtol=1e-5, atol=1e-6)
  assert not np.allclose(g[0], g[1])  # and it does see the content


@pytest.mark.parametrize("shape, k", [((2, 16, 16, 1), 13), ((1, 17, 14, 3), 9), ((1, 32, 32, 2), 23)])
def test_fft_circular_correlation_is_the_wrapped_direct_convolution(shape, k):
  """The FFT path (windows >= FFT_MIN_KERNEL) equals the wrap-padded direct one, values and gradients."""
  rng = np.random.default_rng(k)
  x = jnp.asarray(rng.uniform(size=shape), jnp.float32)
  kernel = jnp.asarray(rng.standard_normal((k, k, shape[-1], 5)), jnp.float32)
  assert k >= random_features.FFT_MIN_KERNEL
  before, after = (k - 1) // 2, k // 2
  wrap = lambda x: jnp.pad(x, ((0, 0), (before, after), (before, after), (0, 0)), mode="wrap")
  direct = lambda x: jax.lax.conv_general_dilated(wrap(x), kernel, (1, 1), "VALID",
                                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))
  assert direct(x).shape == shape[:3] + (5,) and wrap(x).shape[1] == shape[1] + k - 1
  spectrum = random_features.circular_spectrum(kernel, *shape[1:3])
  fast = lambda x: random_features.circular_correlation_fft(x, spectrum)
  np.testing.assert_allclose(fast(x), direct(x), atol=1e-4 * float(jnp.max(jnp.abs(direct(x)))))
  loss = lambda f: lambda x: jnp.sum(jnp.sin(f(x)))
  np.testing.assert_allclose(jax.grad(loss(fast))(x), jax.grad(loss(direct))(x), rtol=1e-3, atol=1e-3)


def test_random_net_periodic_maps_by_fft_equal_the_direct_ones():
  """The net's periodic apply (wide windows by FFT, narrow ones direct) gives each layer's
  relu(wrapped conv + bias), values and gradients; the wide layers are the FFT's."""
  net = random_features.random_multiscale_net(2, (3, 9, 13), 4, seed=3)
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 16, 16, 2)), jnp.float32)
  def direct(x):
    maps = []
    for kernel, bias in net.weights:
      k = kernel.shape[0]
      wrapped = jnp.pad(x - 0.5, ((0, 0), ((k - 1) // 2, k // 2), ((k - 1) // 2, k // 2), (0, 0)), mode="wrap")
      maps.append(jax.nn.relu(jax.lax.conv_general_dilated(wrapped, kernel, (1, 1), "VALID",
                                                           dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias))
    return maps
  fast = lambda x: net.apply(x, True)
  compiled = jax.jit(fast).lower(x).compile().as_text()  # XLA shares the image's rfft2; an irfft2 per wide layer
  assert compiled.count("fft_type=RFFT") == 1 and compiled.count("fft_type=IRFFT") == 2
  for got, want in zip(fast(x), direct(x)):
    np.testing.assert_allclose(got, want, atol=1e-4 * float(jnp.max(jnp.abs(want))))
  loss = lambda f: lambda x: sum(jnp.sum(jnp.sin(3 * m)) for m in f(x))
  np.testing.assert_allclose(jax.grad(loss(fast))(x), jax.grad(loss(direct))(x), rtol=1e-3, atol=1e-3)


def test_gram_gradient_is_the_einsums_autodiff():
  """gram's hand-written VJP F (dG + dG^T) / N equals autodiff of the plain einsum (and an
  asymmetric cotangent is symmetrised, as the einsum's two operands require)."""
  rng = np.random.default_rng(1)
  features = jnp.asarray(rng.standard_normal((2, 3, 5, 4)), jnp.float32)
  weights = jnp.asarray(rng.standard_normal((2, 4, 4)), jnp.float32)  # not symmetric
  plain = lambda f: jnp.einsum("bnc,bnd->bcd", f.reshape(2, 15, 4), f.reshape(2, 15, 4)) / 15
  loss = lambda g: lambda f: jnp.sum(weights * g(f) ** 2)
  np.testing.assert_allclose(jax.grad(loss(random_features.gram))(features), jax.grad(loss(plain))(features),
                             rtol=1e-5, atol=1e-6)


def test_exemplar_against_itself_has_zero_loss_and_gradient():
  net = random_features.random_multiscale_net(1, (3, 5), 8, seed=0)
  exemplar = jnp.asarray(named_image("gravel")[:24, :24])[None]
  targets = random_features.grams(net, exemplar, periodic=False)
  loss = jax.jit(jax.value_and_grad(
      lambda x: jnp.sum(random_features.gram_loss(random_features.grams(net, x, False), targets))))
  value, grad = loss(exemplar)
  assert float(value) == pytest.approx(0.0, abs=1e-10)
  assert float(jnp.max(jnp.abs(grad))) < 1e-6
  value, grad = loss(jnp.asarray(named_image("brick")[:24, :24])[None])
  assert float(value) > 1e-3 and float(jnp.max(jnp.abs(grad))) > 1e-6  # not zero everywhere


def run_steps(objective, config, num_steps: int):
  """init + the jitted family step, the step counter advanced as the trainer does; (state, metrics)."""
  batch = {k: jnp.asarray(v) for k, v in load_dataset(config.dataset, "test").items()}
  state = objective.init(jax.random.key(0), batch)
  step = jax.jit(objective.step)
  history = []
  for i in range(num_steps):
    state, metrics = step(state, batch, jax.random.key(i))
    state = state.replace(step=state.step + 1)
    history.append({k: float(v) for k, v in metrics.items()})
  return state, history


def test_lbfgs_lowers_the_loss_from_noise_on_a_32px_crop(tmp_path):
  config = small_config(tmp_path)
  validate(config)
  objective = FAMILY_MODES["optimize"](config)
  state, history = run_steps(objective, config, 10)
  losses = [m["loss"] for m in history]
  assert losses[-1] < 0.2 * losses[0], losses
  syntheses = np.asarray(objective.syntheses(state))
  assert syntheses.shape == (2, 32, 32, 1) and 0 <= syntheses.min() and syntheses.max() <= 1
  assert np.sqrt(np.mean((syntheses[0] - syntheses[1]) ** 2)) > 0.05  # two seeds, two textures


def test_heldout_net_differs_from_the_optimised_one(tmp_path):
  config = small_config(tmp_path)
  objective = FAMILY_MODES["optimize"](config)
  assert objective.net.name != objective.eval_net.name
  x = jnp.asarray(named_image("grass")[:32, :32])[None]
  a = [np.asarray(f) for f in objective.net.apply(x, False)]
  b = [np.asarray(f) for f in objective.eval_net.apply(x, False)]
  assert [f.shape for f in a] != [f.shape for f in b]
  # Same sizes but another seed: other filters, other features.
  same_sizes = random_features.random_multiscale_net(1, (3, 5), 8, seed=1)
  c = [np.asarray(f) for f in same_sizes.apply(x, False)]
  assert all(not np.allclose(p, q) for p, q in zip(a, c))
  config.model.eval_filter_sizes, config.model.eval_feature_seed = (3, 5), config.model.feature_seed
  with pytest.raises(ConfigError, match="eval_feature_seed"):
    validate(config)


def test_patch_metrics_known_values():
  exemplar = named_image("brick")[:96, :96]
  assert texture_metrics.patch_swd(exemplar, exemplar, seed=0) < 0.2 * texture_metrics.patch_swd(
      np.full_like(exemplar, exemplar.mean()), exemplar, seed=0)
  crop = exemplar[10:42, 20:52]
  mean_ncc, max_ncc = texture_metrics.copy_ncc(crop, exemplar, seed=0)
  assert mean_ncc == pytest.approx(1.0, abs=1e-3) and max_ncc == pytest.approx(1.0, abs=1e-3)
  noise = np.random.default_rng(0).uniform(size=crop.shape).astype(np.float32)
  assert texture_metrics.copy_ncc(noise, exemplar, seed=0)[0] < 0.6
  base = texture_metrics.baselines(exemplar, 32, 2, seed=0)
  assert {k: v.shape for k, v in base.items()} == {k: (2, 32, 32, 1) for k in ("noise", "shuffle", "crop")}
  np.testing.assert_allclose(np.sort(base["shuffle"][0].ravel()), np.sort(base["shuffle"][0].ravel()))
  # Shuffling keeps the histogram exactly.
  assert np.isclose(base["noise"].mean(), exemplar.mean(), atol=0.03)


def test_normalised_score_is_zero_at_noise_one_at_the_crop_and_null_when_unranked():
  score = texture_metrics.normalised_score
  assert score(0.08, 0.08, 0.02) == 0.0 and score(0.08, 0.02, 0.02) == 1.0
  assert score(0.08, 0.05, 0.02) == pytest.approx(0.5)
  # Measured on immunohistochemistry at 256x256: noise 0.0797 below the crop's 0.0834 patch SWD.
  assert score(0.0797, 0.0868, 0.0834) is None and score(0.05, 0.01, 0.05) is None


def test_coarse_to_fine_starts_each_level_from_the_coarser_one(tmp_path):
  config = small_config(tmp_path, levels=2, coarse_steps=2, filter_sizes=(3,))
  config.optimizer = type(config.optimizer)({"name": "adam", "learning_rate": 0.05})
  validate(config)
  objective = FAMILY_MODES["optimize"](config)
  assert objective.sizes == [16, 32]
  state, history = run_steps(objective, config, 3)
  assert [m["level"] for m in history] == [0, 0, 1]
  coarse, fine = np.asarray(state.params["level0"]), np.asarray(state.params["level1"])
  upsampled = np.asarray(jax.image.resize(coarse, fine.shape, "linear"))
  # Adam's first step moves each logit by at most the learning rate (m / sqrt(v) = sign(g)):
  # so the fine level is the coarse result upsampled, not its zero placeholder.
  assert np.abs(fine - upsampled).max() < 0.05 + 1e-4 and upsampled.std() > 0.1


def test_generator_samples_new_textures_and_style_transfer_starts_from_content(tmp_path):
  config = small_config(tmp_path, "generator", generator_batch=2, generator_scales=1)
  config.optimizer = type(config.optimizer)({"name": "adam", "learning_rate": 1e-2})
  validate(config)
  objective = FAMILY_MODES["generator"](config)
  state, history = run_steps(objective, config, 6)
  assert history[-1]["loss"] < history[0]["loss"], history
  samples = np.asarray(objective.sample(state, jax.random.key(0), 3))
  assert samples.shape == (3, 32, 32, 1) and not np.allclose(samples[0], samples[1])
  style = small_config(tmp_path, init="content", content_weight=1.0, num_syntheses=1, content_layer=1)
  style.dataset.content = "gravel"
  validate(style)
  transfer = FAMILY_MODES["optimize"](style)
  assert transfer.content_weight == 1.0 and not transfer.periodic
  batch = {k: jnp.asarray(v) for k, v in load_dataset(style.dataset, "test").items()}
  assert batch["content"].shape == (1, 512, 512, 1)  # gravel at its native size (image_size 0)
  state = transfer.init(jax.random.key(0), batch)
  content = np.asarray(resize(batch["content"], 32))[0]
  np.testing.assert_allclose(np.asarray(transfer.syntheses(state))[0], np.clip(content, 0.02, 0.98), atol=1e-5)
  target = state.extras["targets"]["content"][0]
  relative = lambda x: float(jnp.sum((transfer.net.apply(x, False)[transfer.content_layer] - target) ** 2)
                              / jnp.sum(target ** 2))
  assert relative(transfer.syntheses(state)) < 0.01  # started from the content: its features match
  assert relative(jnp.full((1, 32, 32, 1), 0.5)) > 0.1


def test_bad_inputs_are_one_line_errors(tmp_path):
  config = small_config(tmp_path)
  for key, value, match in (("dataset.image_path", str(tmp_path / "missing.png"), "does not exist"),
                            ("model.features", "vgg19", "model.features"),
                            ("model.filter_sizes", (3, 55), "largest filter"),
                            ("model.mode", "gan", "model.mode"),
                            ("optimizer.increase_factor", 1.0, "optimizer.increase_factor")):
    bad = small_config(tmp_path)
    group, leaf = key.split(".")
    bad[group][leaf] = value
    with pytest.raises(ConfigError, match=match):
      validate(bad)
  not_image = tmp_path / "notes.png"
  not_image.write_text("not an image")
  workdir = tmp_path / "cli"
  result = run_cli("--config", "experiments/texture.py", "--workdir", str(workdir),
                   f"--config.dataset.image_path={not_image}")
  assert result.returncode == 2, result.stderr[-2000:]
  errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and "not a readable PNG/JPEG" in errors[0], result.stderr[-2000:]
  assert not workdir.exists()
  with pytest.raises(DatasetError, match="not a readable"):
    load_dataset({**config.dataset.to_dict(), "image_path": str(not_image)}, "test")


def test_experiments_validate():
  for name in ("texture", "style_transfer", "texture_net"):
    validate(load_experiment(name))
  assert load_experiment("texture", "grass").dataset.exemplar == "grass"


def test_lbfgs_increase_factor_widens_the_first_step_faster():
  """optimizer.increase_factor reaches the zoom line search: from x = 0 on (x - 100)^2 / 2 the first
  direction has unit length, so widening by 4 instead of 2 reaches an acceptable step in fewer evaluations."""
  from ml_collections import ConfigDict

  from genjax.optim import make_optimizer
  loss = lambda x: jnp.sum((x - 100.0) ** 2) / 2
  def first_step_evaluations(factor):
    tx = make_optimizer(ConfigDict({"name": "lbfgs", "learning_rate": 1.0, "increase_factor": factor}))
    x = jnp.zeros(1)
    value, grad = jax.value_and_grad(loss)(x)
    _, state = tx.update(grad, tx.init(x), x, value=value, grad=grad, value_fn=loss)
    return int(optax.tree.get(state, "num_linesearch_steps"))
  two, four = first_step_evaluations(2.0), first_step_evaluations(4.0)
  # Strong Wolfe's curvature condition holds from x = 10: steps 1, 2, 4, 8, 16 against 1, 4, 16.
  assert two >= 4 and four < two, (two, four)


def test_zero_mean_filters_miss_a_brightness_shift_and_the_mean_term_sees_it():
  """The random filters sum to zero, so the Gram loss of the exemplar shifted by c is 0 (the failure
  the texture network showed: brighter samples); mean_loss gives exactly c^2 / var."""
  from genjax.models.texture import mean_loss
  net = random_features.random_multiscale_net(1, (3, 5), 8, seed=0)
  exemplar = jnp.asarray(0.2 + 0.5 * named_image("brick")[200:232, 200:232, :1], jnp.float32)[None]
  targets = random_features.grams(net, exemplar, periodic=False)
  shifted = exemplar + 0.15
  gram_part = float(random_features.gram_loss(random_features.grams(net, shifted, periodic=False), targets)[0])
  assert gram_part < 1e-8
  mean, var = jnp.mean(exemplar, axis=(0, 1, 2)), jnp.var(exemplar, axis=(0, 1, 2))
  np.testing.assert_allclose(mean_loss(shifted, mean, var), 0.15 ** 2 / var, rtol=1e-4)
  np.testing.assert_allclose(mean_loss(exemplar, mean, var), 0.0, atol=1e-6)

"""Style-based generator and progressive growing in the GAN family: layer properties, R1, CLI runs.

Comparisons across separately jitted programs allow 1e-6 relative (XLA may fuse them differently)."""
from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import genjax  # noqa: F401  registers families and datasets
from genjax import losses, xla_options
from genjax.layers import progressive
from genjax.layers.networks import MLP
from genjax.layers.style import (EqualizedConv, EqualizedDense, ModulatedConv, StyleCritic, StyleGenerator,
                                 minibatch_stddev, mix_styles, modulated_conv, truncate)
from genjax.models.gan import GANObjective
from genjax.data import load_dataset
from tests.helpers import ROOT, leaves, load_experiment, read_metrics, run_cli, tiny

STYLE_TINY = ["--config", "experiments/stylegan_fashion.py:tiny"]
PROGAN_TINY = ["--config", "experiments/progan_fashion.py:tiny"]


# ----------------------------------------------------------------------------- layers

def test_demodulation_keeps_unit_variance_for_any_style():
  """StyleGAN2 sec. 2.2: with iid unit-variance inputs, demodulated outputs have unit variance
  whatever the style; without demodulation they do not."""
  k_x, k_w, k_s = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(k_x, (64, 34, 34, 8))
  kernel = jax.random.normal(k_w, (3, 3, 8, 4))
  styles = jnp.exp(jax.random.normal(k_s, (64, 8)))  # many random positive styles, spread 1/e .. e
  interior = lambda y: y[:, 1:-1, 1:-1, :]  # 'SAME' padding zeroes part of the border's receptive field
  conv = jax.jit(modulated_conv, static_argnums=3)
  demod = interior(conv(x, kernel, styles, True))
  per_style = jnp.var(demod, axis=(1, 2, 3))
  assert abs(float(jnp.var(demod)) - 1.0) < 0.02
  np.testing.assert_allclose(per_style, 1.0, atol=0.12)  # every style separately, 4096 outputs each
  plain = interior(conv(x, kernel, styles, False))
  assert float(jnp.var(plain)) > 5.0


def test_equalised_learning_rate_scales_stored_weights_at_run_time():
  """ProGAN sec. 4.1: the applied weight is sqrt(2 / fan_in) x the stored N(0, 1) weight (times the
  lr multiplier, whose stored weights have std 1 / lr_mul)."""
  dense = EqualizedDense(5)
  params = dense.init(jax.random.key(0), jnp.zeros((1, 7)))["params"]
  np.testing.assert_allclose(dense.apply({"params": params}, jnp.eye(7)),
                             params["kernel"] * math.sqrt(2 / 7), rtol=1e-6)
  assert 0.6 < float(jnp.std(params["kernel"])) < 1.4
  slow = EqualizedDense(64, lr_mul=0.01)
  slow_params = slow.init(jax.random.key(1), jnp.zeros((1, 64)))["params"]
  np.testing.assert_allclose(slow.apply({"params": slow_params}, jnp.eye(64)),
                             slow_params["kernel"] * math.sqrt(2 / 64) * 0.01, rtol=1e-5)
  assert 80 < float(jnp.std(slow_params["kernel"])) < 120
  conv = EqualizedConv(3, 3, use_bias=False)
  conv_params = conv.init(jax.random.key(2), jnp.zeros((1, 5, 5, 2)))["params"]
  delta = jnp.zeros((1, 5, 5, 2)).at[0, 2, 2, 1].set(1.0)  # a unit impulse in channel 1
  out = conv.apply({"params": conv_params}, delta)[0, 1:4, 1:4]  # = the flipped kernel slice, scaled
  np.testing.assert_allclose(out, conv_params["kernel"][::-1, ::-1, 1] * math.sqrt(2 / (9 * 2)), rtol=1e-5)


def test_minibatch_stddev_appends_the_mean_group_std():
  x = jax.random.normal(jax.random.key(0), (8, 3, 3, 2))
  out = minibatch_stddev(x, 4)
  assert out.shape == (8, 3, 3, 3)
  groups = np.asarray(x).reshape(4, 2, 3, 3, 2)  # rows r and r + 2, r + 4, r + 6 form a group
  expected = np.sqrt(groups.var(axis=0) + 1e-8).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(np.asarray(out[:, 0, 0, 2]), np.tile(expected, 4), rtol=1e-5)


def tiny_generator(**overrides) -> tuple[StyleGenerator, dict]:
  settings = dict(resolution=16, channels=8, w_dim=6, mapping_layers=2)
  settings.update(overrides)
  gen = StyleGenerator(**settings)
  init = lambda z: gen.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, z, None, 0,
                            method="init_levels")
  variables = xla_options.jit(init, run_once=True)(jnp.zeros((1, 6)))
  # noise scales start at 0; make them matter so a wrong layer/noise wiring would show
  params = jax.tree_util.tree_map_with_path(
      lambda path, p: p + 0.3 if "scale" in jax.tree_util.keystr(path) else p, variables["params"])
  return gen, params


def test_style_mixing_before_crossover_w1_from_it_w2():
  w1, w2 = jnp.ones((3, 4)), -jnp.ones((3, 4))
  ws = mix_styles(w1, w2, jnp.array([1, 3, 6]), 6)
  np.testing.assert_array_equal(ws[:, :, 0], [[1, -1, -1, -1, -1, -1], [1, 1, 1, -1, -1, -1], [1] * 6])
  # In the generator: crossover 2 = the 4x4 conv and ToRGB (ws 0, 1) see w1, the 8x8 and 16x16 layers w2.
  gen, params = tiny_generator()
  k1, k2 = jax.random.split(jax.random.key(3))
  a, b = jax.random.normal(k1, (4, 6)), jax.random.normal(k2, (4, 6))
  mixed = mix_styles(a, b, jnp.full((4,), 2), gen.num_ws)
  synth = lambda ws, level: gen.apply({"params": params}, ws, level, None, method="synthesize",
                                      rngs={"noise": jax.random.key(9)})
  only_a = jnp.repeat(a[:, None], gen.num_ws, 1)
  later_b = only_a.at[:, 2:].set(b[:, None])
  outputs = jax.jit(lambda: (synth(mixed, 0), synth(only_a, 0), synth(mixed, 2), synth(only_a, 2),
                             synth(later_b, 2)))()
  mixed_4, a_4, mixed_16, a_16, later_b_16 = outputs
  np.testing.assert_allclose(mixed_4, a_4, rtol=1e-6, atol=1e-7)  # 4x4 output: w1 only
  assert float(jnp.max(jnp.abs(mixed_16 - a_16))) > 1e-3  # fine layers: w2
  np.testing.assert_allclose(mixed_16, later_b_16, rtol=1e-6, atol=1e-7)


def _fir_1d(x: np.ndarray, axis: int, up: bool) -> np.ndarray:
  """StyleGAN2's [1, 3, 3, 1] filter along `axis`, written out: up x2 (edge-clamped) or down x2 (interior)."""
  x = np.moveaxis(x, axis, 0)
  if up:
    padded = np.concatenate([x[:1], x, x[-1:]])
    out = np.empty((2 * len(x),) + x.shape[1:])
    out[0::2] = (padded[:-2] + 3 * x) / 4
    out[1::2] = (3 * x + padded[2:]) / 4
  else:
    out = (x[1:-3:2] + 3 * x[2:-2:2] + 3 * x[3:-1:2] + x[4::2]) / 8  # outputs 1 .. n/2 - 2
  return np.moveaxis(out, 0, axis)


def test_bilinear_resampling_is_stylegan2s_fir_filter_and_refused_with_growth():
  x = np.asarray(jax.random.normal(jax.random.key(0), (2, 8, 8, 3)))
  up = progressive.upsample2x(jnp.asarray(x), "bilinear")
  np.testing.assert_allclose(up, _fir_1d(_fir_1d(x, 1, True), 2, True), rtol=1e-5, atol=1e-6)
  down = np.asarray(progressive.downsample2x(jnp.asarray(x), "bilinear"))
  np.testing.assert_allclose(down[:, 1:-1, 1:-1], _fir_1d(_fir_1d(x, 1, False), 2, False), rtol=1e-5, atol=1e-6)
  constant = jnp.full((1, 8, 8, 1), 0.3)  # the edges are renormalised, so constants stay constant
  np.testing.assert_allclose(progressive.downsample2x(constant, "bilinear"), 0.3, rtol=1e-6)
  assert float(jnp.max(jnp.abs(down - progressive.downsample2x(jnp.asarray(x))))) > 1e-2  # not the box mean
  from genjax.config import ConfigError
  for name, override in (("stylegan_fashion", "fir"), ("progan_fashion", "bilinear")):
    config = load_experiment(name, "tiny")
    config.model.resample_filter = override
    with pytest.raises(ConfigError, match="model.resample_filter"):
      GANObjective.validate(config)


def test_truncation_psi_zero_gives_w_avg_and_one_leaves_w():
  w = jax.random.normal(jax.random.key(0), (5, 4))
  w_avg = jnp.arange(4.0)
  np.testing.assert_array_equal(truncate(w, w_avg, 0.0), jnp.broadcast_to(w_avg, w.shape))
  np.testing.assert_array_equal(truncate(w, w_avg, 1.0), w)
  # Through the family: psi = 0 draws the same image for every z, psi = 1 the untruncated ones.
  config = load_experiment("stylegan_fashion", "tiny")
  gan = GANObjective(config)
  batch = {k: jnp.asarray(v[:16]) for k, v in load_dataset(config.dataset, "train").items()}
  state = xla_options.jit(gan.init, run_once=True)(jax.random.key(0), batch)  # as the trainer compiles it
  state = state.replace(extras={**state.extras, "w_avg": jnp.full((16,), 0.5)})
  z = jax.random.normal(jax.random.key(1), (6, 16))
  key = jax.random.key(2)
  same = jax.jit(lambda s: gan.generate_eval(s, z, psi=0.0, noise_key=key))(state)
  np.testing.assert_allclose(same, jnp.broadcast_to(same[:1], same.shape), atol=1e-6)  # noise scales are 0 at init
  untruncated = jax.jit(lambda s: gan.generate_eval(s, z, psi=1.0, noise_key=key))(state)
  params = gan.sampling_params(state)
  direct = jax.jit(lambda s: gan.render(s, gan.broadcast_styles(gan.map_z(params, z, gan.onehot(jnp.zeros(6, int)))), key))(state)
  np.testing.assert_allclose(untruncated, direct, atol=1e-6)
  assert float(jnp.std(untruncated, axis=0).mean()) > 1e-3


@pytest.mark.parametrize("skip", [True, False])
def test_progressive_fade_in_of_generator_and_critic(skip):
  """alpha 0: the upsampled output of the level below; alpha 1: the new block's (both exactly).
  The critic at alpha 0 is the critic of the level below on the pooled image."""
  gen, params = tiny_generator(skip=skip, modulation="demod" if skip else "none")
  ws = jnp.repeat(jax.random.normal(jax.random.key(4), (3, 1, 6)), gen.num_ws, 1)
  synth = lambda level, alpha: gen.apply({"params": params}, ws, level, alpha, method="synthesize",
                                         rngs={"noise": jax.random.key(5)})
  critic = StyleCritic(16, 8, minibatch_std=4)
  x = jax.random.uniform(jax.random.key(6), (4, 16, 16, 1))
  cparams = critic.init(jax.random.key(7), x, 0, method="init_levels")["params"]
  score = lambda level, alpha: critic.apply({"params": cparams}, x, level, alpha)

  @jax.jit  # one program for every variant: one compile
  def variants():
    return (synth(2, 0.0), synth(1, None), synth(2, 1.0), synth(2, None), synth(2, 0.5),
            score(2, 0.0), score(1, None), score(2, 1.0), score(2, None))

  faded_out, lower, faded_in, top, half, c_out, c_lower, c_in, c_top = variants()
  np.testing.assert_allclose(faded_out, progressive.upsample2x(lower), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(faded_in, top, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(half, 0.5 * top + 0.5 * progressive.upsample2x(lower), atol=1e-5)
  assert float(jnp.max(jnp.abs(top - progressive.upsample2x(lower)))) > 1e-3
  np.testing.assert_allclose(c_out, c_lower, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(c_in, c_top, rtol=1e-6, atol=1e-7)
  # the schedule: stable 8x8 for 4 steps, fade 16 over 4, stable 16 after
  level, alpha = jax.vmap(lambda s: progressive.phase_at(s, 2, 4))(jnp.arange(10))
  np.testing.assert_array_equal(level, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
  np.testing.assert_allclose(alpha, [1, 1, 1, 1, 0, 0.25, 0.5, 0.75, 1, 1])


def test_r1_is_the_squared_input_gradient_norm_on_real_data():
  """Mescheder et al. 2018 eq. 9, checked by central finite differences (float64)."""
  with jax.enable_x64(True):
    net = MLP((6,), 1, activation="tanh")
    x = jax.random.normal(jax.random.key(0), (3, 5), jnp.float64)
    params = net.init(jax.random.key(1), x)["params"]
    critic = jax.jit(lambda v: net.apply({"params": params}, v)[:, 0])
    h = 1e-6
    squared = np.zeros(3)
    for j in range(5):
      e = jnp.zeros((3, 5), jnp.float64).at[:, j].set(h)
      squared += np.asarray((critic(x + e) - critic(x - e)) / (2 * h)) ** 2
    np.testing.assert_allclose(float(jax.jit(losses.r1_penalty, static_argnums=0)(critic, x)), squared.mean(), rtol=1e-6)
  # In the family: gamma / 2 * r1_every * R1 on R1 steps, nothing on the others.
  config = load_experiment("stylegan_fashion", "tiny")
  gan = GANObjective(config)
  batch = {k: jnp.asarray(v[:8]) for k, v in load_dataset(config.dataset, "train").items()}
  state = xla_options.jit(gan.init, run_once=True)(jax.random.key(0), batch)  # as the trainer compiles it
  onehot = gan.onehot(batch["label"])
  fake = jax.random.uniform(jax.random.key(1), batch["x"].shape)
  objective = jax.jit(lambda on: gan.critic_objective(state.params["critic"], {}, batch["x"], fake, onehot,
                                                      jax.random.key(2), on))
  (total, (aux, _)), (off, (aux_off, _)) = objective(True), objective(False)
  expected = jax.jit(lambda x: losses.r1_penalty(lambda v: gan.scores(state.params["critic"], {}, v, onehot, True)[0], x))(batch["x"])
  np.testing.assert_allclose(aux["r1_penalty"], expected, rtol=1e-5)
  gamma, every = config.model.r1_gamma, config.model.r1_every
  assert gamma > 0 and every > 1
  np.testing.assert_allclose(total - aux["critic_loss"], gamma / 2 * every * expected, rtol=1e-4)
  assert float(aux_off["r1_penalty"]) == 0.0 and float(off) == float(aux_off["critic_loss"])


# ----------------------------------------------------------------------------- CLI

@pytest.mark.parametrize("config, override, key", [
    (STYLE_TINY, "--config.model.resolution=12", "model.resolution"),
    (STYLE_TINY, "--config.model.style_mixing=1.5", "model.style_mixing"),
    (STYLE_TINY, "--config.model.r1_gamma=-1.0", "model.r1_gamma"),
    (PROGAN_TINY, "--config.model.phase_steps=100", "model.phase_steps"),
])
def test_bad_style_input_is_one_line_exit_2_nothing_written(tmp_path, config, override, key):
  workdir = tmp_path / "run"
  result = run_cli(*config, "--workdir", str(workdir), override)
  assert result.returncode == 2, result.stderr[-2000:]
  lines = [l for l in result.stderr.strip().splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and key in lines[0], result.stderr[-2000:]
  assert not workdir.exists()


def _finite_losses(workdir) -> list[dict]:
  metrics = read_metrics(str(workdir))
  assert metrics and all(np.isfinite(m["critic_loss"]) and np.isfinite(m["generator_loss"]) for m in metrics)
  return metrics


def test_tiny_style_gan_trains_from_the_cli_and_evaluates(tmp_path):
  workdir = tmp_path / "style"
  result = run_cli(*STYLE_TINY, "--workdir", str(workdir), "--config.num_steps=6", "--config.log_every=3")
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = _finite_losses(workdir)
  assert "r1_penalty" in metrics[0]
  for picture in ("samples", "style_mixing", "noise_variation", "truncation"):
    assert (workdir / "images" / f"{picture}_final.png").exists(), picture
  model = genjax.load(str(workdir))  # the notebook API's truncation: psi = 0 pulls every z to w_avg
  spread = lambda psi: float(np.std(model.sample(16, seed=1, psi=psi), axis=0).mean())
  assert spread(0.0) < 0.5 * spread(1.0)
  evaluation = model.evaluate()  # what --mode eval writes, in-process: no second compile of the model
  for key in ("ppl_z", "ppl_w", "ppl_z_end", "ppl_w_end", "separability_z_accuracy", "separability_w_entropy",
              "fid_psi0.5", "precision_psi0.7", "recall_psi1.0", "fid"):
    assert np.isfinite(evaluation[key]), key


def _start(workdir, *args):
  return subprocess.Popen([sys.executable, "-m", "genjax.main", *PROGAN_TINY, "--workdir", str(workdir), *args],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _final_params(workdir):
  from genjax import trainer
  config = tiny(load_experiment("progan_fashion", "tiny"), num_steps=12)
  run = trainer.Run(config, str(workdir))
  try:
    return leaves(run.restore(run.first_batch()).params)
  finally:
    run.close()


def test_tiny_progressive_gan_compiles_a_program_per_level_and_a_mid_fade_kill_resumes_bit_exact(tmp_path, monkeypatch):
  """phase_steps 4: 8x8 for steps 0-3, fade 16x16 in over 4-7, stable after; killed during the fade.
  XLA:CPU ran the lax.switch over levels 35-54x slower than each level alone: one program per level."""
  from genjax import trainer
  for step in range(40):  # the host-side level is phase_at's
    assert progressive.level_at(step, 3, 4) == int(progressive.phase_at(jnp.asarray(step), 3, 4)[0])
  seen = []
  compile_step = trainer.compile_train_step
  monkeypatch.setattr(trainer, "compile_train_step",
                      lambda run, state, program=None: seen.append((int(state.step), program)) or compile_step(run, state, program))
  steps = ["--config.num_steps=12", "--config.checkpoint_every=2", "--config.log_every=1"]
  straight = tmp_path / "straight"  # in-process, as the CLI runs it
  config = tiny(load_experiment("progan_fashion", "tiny"), num_steps=12, checkpoint_every=2, log_every=1)
  state = trainer.train(config, str(straight))
  assert seen == [(0, 0), (4, 1)] and int(state.step) == 12
  metrics = _finite_losses(straight)
  np.testing.assert_allclose([m["alpha"] for m in metrics[3:9]], [1, 0, 0.25, 0.5, 0.75, 1])  # steps 4..9
  assert [m["resolution"] for m in metrics[:5]] == [8, 8, 8, 8, 16]
  assert (straight / "images" / "progressive_phases_final.png").exists()
  killed = tmp_path / "killed"
  process = _start(killed, *steps)
  deadline = time.time() + 240
  kill_at = random.Random(os.getpid()).randint(5, 7)
  while not ((killed / "metrics.jsonl").exists() and any(m["step"] >= kill_at for m in read_metrics(str(killed)))):
    assert process.poll() is None and time.time() < deadline, process.communicate()[1][-3000:]
    time.sleep(0.02)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert run_cli(*PROGAN_TINY, "--workdir", str(killed), *steps).returncode == 0
  for a, b in zip(_final_params(killed), leaves(state.params)):
    np.testing.assert_array_equal(a, b, err_msg=f"killed at step {kill_at}")


def test_each_levels_program_trains_what_the_switch_trains(tmp_path):
  from genjax import trainer
  config = tiny(load_experiment("progan_fashion", "tiny"), num_steps=6)  # 8x8 for steps 0-3, fade 16 from 4
  run = trainer.Run(config, str(tmp_path / "reference"))  # writes nothing
  batch = trainer.shard_batch(run.first_batch(), run.mesh)
  start = lambda step: run.init_state(batch).replace(step=jnp.asarray(step, jnp.int32))
  switched_step = trainer.make_train_step(run.objective, run.mesh, trainer.replicated(run.mesh)).lower(
      start(0), batch).compile(xla_options.run_once_options("cpu"))  # once, for both steps, as a short run's
  for step in (2, 5):  # stable 8x8; fading 16x16 in at alpha 0.25
    alone_step = trainer.compile_train_step(run, start(step), run.objective.program_key(step))  # the trainer's
    results = [train_step(start(step), batch) for train_step in (switched_step, alone_step)]
    (switched, switched_metrics), (alone, alone_metrics) = results
    for a, b in zip(leaves(alone.params), leaves(switched.params)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert float(alone_metrics["resolution"]) == float(switched_metrics["resolution"]) == (8 if step == 2 else 16)


def test_training_pictures_render_the_states_level_without_the_switch(tmp_path, monkeypatch):
  """write_pictures jits the program of the state's level (no lax.switch), and draws what the switch draws."""
  from genjax import trainer
  lowered, drawn = [], []
  jit = trainer.xla_options.jit

  def recording_jit(fun, **kwargs):
    jitted = jit(fun, **kwargs)
    return lambda *args: lowered.append(jitted.lower(*args).as_text()) or drawn.append(jitted(*args)) or drawn[-1]

  config = tiny(load_experiment("progan_fashion", "tiny"), num_steps=6)
  run = trainer.Run(config, str(tmp_path / "run"))
  state = run.init_state(run.first_batch()).replace(step=jnp.asarray(5, jnp.int32))  # fading 16x16 in
  monkeypatch.setattr(trainer.xla_options, "jit", recording_jit)
  assert run.write_pictures(state, "t")
  assert len(lowered) == 1 and "stablehlo.case" not in lowered[0]
  switched = jax.jit(run.objective.pictures)
  assert "stablehlo.case" in switched.lower(state, run.picture_batch(), run.picture_key()).as_text()
  alone, reference = drawn[0], switched(state, run.picture_batch(), run.picture_key())
  assert set(alone) == set(reference)
  for name in reference:
    np.testing.assert_allclose(alone[name], reference[name], atol=1e-5)

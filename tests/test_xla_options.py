"""genjax compiles its steps with YNNPACK off on CPU (the measured-faster setting), per jit only."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genjax import configs, trainer, xla_options
from genjax.registry import MODELS

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU compiler options")


def _kernel_grad(w, x):
  conv = lambda w: lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return jax.grad(lambda w: jnp.sum(conv(w) ** 2))(w)


def _compiled_text(fn, *args, **jit_kwargs):
  return jax.jit(fn, **jit_kwargs).lower(*args).compile().as_text()


def test_cpu_options_take_convolutions_away_from_ynnpack():
  # DCGAN's 64->128 critic layer (compiled, not run): small convolutions never reach YNNPACK.
  w, x = jnp.ones((4, 4, 64, 128)), jnp.ones((64, 14, 14, 64))
  options = xla_options.compiler_options("cpu")
  assert options == xla_options.CPU_COMPILER_OPTIONS
  if "ynn_fusion" not in _compiled_text(_kernel_grad, w, x):
    pytest.skip("this jaxlib does not send convolutions to YNNPACK by default")
  assert "ynn_fusion" not in _compiled_text(_kernel_grad, w, x, compiler_options=options)
  # Per jit: a plain jax.jit afterwards still gets XLA's defaults.
  assert "ynn_fusion" in _compiled_text(_kernel_grad, w, x)


def test_train_step_is_compiled_with_the_options():
  """The trainer's step (a DCGAN at benchmark size, compiled only) uses no YNNPACK fusion."""
  config = configs.gan_config("dcgan", critic_batch_size=64, latent_dim=100, features=(64, 128))
  objective = MODELS.lookup("gan")(config)
  objective.__dict__["data_shape"] = (28, 28, 1)  # no dataset needed to compile
  mesh = trainer.make_mesh()
  batch = {"x": jnp.zeros((64, 28, 28, 1)), "label": jnp.zeros((64,), jnp.int32)}
  state = jax.eval_shape(objective.init, jax.random.key(0), batch)
  texts = {name: trainer.make_train_step(objective, mesh, trainer.replicated(mesh), compiler_options=options)
               .lower(state, batch).compile().as_text()
           for name, options in (("genjax", None), ("xla", {}))}
  if "ynn_fusion" not in texts["xla"]:
    pytest.skip("this jaxlib does not use YNNPACK here by default")
  assert "ynn_fusion" not in texts["genjax"]


def test_unknown_platform_gets_no_options():
  assert xla_options.compiler_options("no-such-platform") == {}


def test_run_once_options_compile_faster_programs_with_the_same_values():
  """Inits and pictures are compiled at LLVM level 0: the parameters change by float rounding only
  (the unoptimised code fuses no multiply-adds: measured differences of 1 ulp)."""
  assert xla_options.run_once_options("cpu") == xla_options.RUN_ONCE_OPTIONS["cpu"]
  assert xla_options.run_once_options("no-such-platform") == {}
  config = configs.gan_config("dcgan", critic_batch_size=8, latent_dim=8, features=(4, 8))
  objective = MODELS.lookup("gan")(config)
  objective.__dict__["data_shape"] = (28, 28, 1)
  batch = {"x": jnp.full((8, 28, 28, 1), 0.5), "label": jnp.zeros((8,), jnp.int32)}
  fast = xla_options.jit(objective.init, run_once=True)(jax.random.key(3), batch)
  default = jax.jit(objective.init)(jax.random.key(3), batch)
  for a, b in zip(jax.tree_util.tree_leaves(fast.params), jax.tree_util.tree_leaves(default.params)):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_fast_compile_follows_the_run_length_or_the_config():
  config = configs.base_config(num_steps=xla_options.FAST_COMPILE_MAX_STEPS)
  assert xla_options.fast_compile(config)
  config.num_steps += 1
  assert not xla_options.fast_compile(config)
  config.fast_compile = "yes"
  assert xla_options.fast_compile(config)
  config.update(fast_compile="no", num_steps=10)
  assert not xla_options.fast_compile(config)
  del config["fast_compile"]  # configs written before the key existed: auto
  assert xla_options.fast_compile(config)


def test_a_short_run_of_heavy_steps_is_compiled_for_speed():
  config = configs.base_config(num_steps=100)
  limit = xla_options.FAST_COMPILE_MAX_FLOPS
  assert xla_options.needs_step_flops(config)
  assert xla_options.fast_compile(config, step_flops=limit / 100)
  assert not xla_options.fast_compile(config, step_flops=limit / 100 * 1.01)
  assert xla_options.fast_compile(config, step_flops=None)  # a backend that counts nothing: by length
  config.fast_compile = "yes"
  assert xla_options.fast_compile(config, step_flops=limit) and not xla_options.needs_step_flops(config)


def test_program_flops_counts_a_matmul():
  lowered = jax.jit(jnp.dot).lower(jnp.zeros((8, 16)), jnp.zeros((16, 32)))
  assert xla_options.program_flops(lowered) == 2 * 8 * 16 * 32


def test_fast_compiled_train_step_trains_what_the_default_step_trains(tmp_path):
  """A short run's step, compiled at LLVM level 0, changes parameters by float rounding only (plain
  SGD: Adam's normalised steps would turn rounding in near-zero gradients into +-lr)."""
  config = configs.autoencoder_config("conv", latent_dim=4, features=(4, 8))
  config.batch_size = 8
  config.optimizer = configs.ConfigDict({"name": "sgd", "learning_rate": 0.1})
  run = trainer.Run(config, str(tmp_path))  # writes nothing
  batches = [trainer.shard_batch(run.batches()(t), run.mesh) for t in range(3)]
  params = {}
  for fast in (False, True):
    state = run.init_state(batches[0])
    step = trainer.make_train_step(run.objective, run.mesh, trainer.replicated(run.mesh), fast_compile=fast)
    for batch in batches:
      state, metrics = step(state, batch)
    params[fast] = jax.tree_util.tree_leaves(state.params)
  for a, b in zip(params[True], params[False]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("choice, max_flops, fast", [("auto", 1e11, True), ("no", 1e11, False),
                                                      ("auto", 1.0, False)])  # 1 FLOP: heavy steps
def test_trainer_compiles_a_short_runs_step_fast(choice, max_flops, fast, tmp_path, monkeypatch):
  seen = []  # the options of every explicit Lowered.compile: the trainer's step is the only one with any
  compile = jax.stages.Lowered.compile
  monkeypatch.setattr(jax.stages.Lowered, "compile", lambda self, options=None, **k: seen.append(options) or compile(self, options, **k))
  monkeypatch.setattr(xla_options, "FAST_COMPILE_MAX_FLOPS", max_flops)
  config = configs.autoencoder_config(hidden=(16,), latent_dim=2)
  config.update(num_steps=2, batch_size=8, log_every=1, checkpoint_every=2, sample_every=0, fast_compile=choice)
  trainer.train(config, str(tmp_path / choice))
  assert [options for options in seen if options] == ([xla_options.run_once_options()] if fast else [])

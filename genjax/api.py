"""The notebook API: train, load and use a run without the CLI's plumbing.

    import genjax
    config = genjax.get_config("experiments/vae_mlp.py:2")
    config.num_steps = 500
    model = genjax.train(config, "runs/vae2")      # same loop and outputs as the CLI
    model.show_grid(model.sample(64))              # renders inline in Jupyter
    model = genjax.load("runs/vae2")               # later, from its checkpoint
"""
from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import os
from typing import Any

import jax
import numpy as np
from ml_collections import ConfigDict
from PIL import Image

from genjax import images as genjax_images
from genjax import modes
from genjax import trainer
from genjax import xla_options
from genjax.config import validate
from genjax.objective import has_ability
from genjax.trainer import Run, TrainingError, make_mesh

ABILITIES = ("sample", "encode", "decode", "reconstruct", "interpolate", "latent_manifold",
             "log_likelihood", "log_partition", "translate", "evaluate")


def get_config(path: str) -> ConfigDict:
  """`experiments/NAME.py[:ARG]` -> its get_config(ARG), as `--config` would load it."""
  file, _, arg = path.partition(":")
  if not os.path.exists(file):
    raise FileNotFoundError(f"no experiment file {file}")
  spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(file))[0], file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def train(config: ConfigDict, workdir: str, allow_config_change: bool = False) -> "Model":
  """Runs the CLI's training loop (same checks, outputs and resume) and returns the trained model."""
  validate(config)
  trainer.enable_compilation_cache()
  trainer.train(config, workdir, allow_config_change=allow_config_change)
  return load(workdir)


def load(workdir: str, step: int | None = None) -> "Model":
  """The run in `workdir` restored from its newest (or `step`) checkpoint, on the first local device."""
  config_path = os.path.join(workdir, "config.json")
  checkpoints = os.path.join(workdir, "checkpoints")
  if not os.path.exists(config_path) or not os.path.isdir(checkpoints) or not any(
      d.isdigit() for d in os.listdir(checkpoints)):
    raise TrainingError(f"{workdir} has no checkpoints; train it first with genjax.train(config, "
                        f"{workdir!r}) or `python -m genjax.main --workdir {workdir}`")
  with open(config_path) as f:
    config = ConfigDict(json.load(f))
  # One device: a notebook's machine may have another device count than the one that trained.
  run = Run(config, workdir, make_mesh(jax.local_devices()[:1]), check_batch=False)
  try:
    state = run.restore(run.first_batch(), step)
  finally:
    run.close()
  return Model(config, os.path.abspath(workdir), run, state)


class Model:
  """A trained run: its config, restored state and family objective, with the family's abilities."""

  def __init__(self, config: ConfigDict, workdir: str, run: Run, state):
    self.config, self.workdir, self.state = config, workdir, state
    self._run = run
    self.objective = run.objective
    self.step = int(state.step)

  def __repr__(self) -> str:
    supported = ", ".join(a for a in ABILITIES if has_ability(self.objective, a))
    return (f"genjax.Model({self.config.model.name} on {self.config.dataset.name}, step {self.step}, "
            f"{self.workdir}; supports {supported})")

  def _method(self, name: str):
    if not has_ability(self.objective, name):
      supported = ", ".join(a for a in ABILITIES if has_ability(self.objective, a))
      raise NotImplementedError(f"a {self.config.model.name!r} model has no {name}(); "
                                f"this one supports: {supported}")
    return getattr(self.objective, name)

  @functools.cache
  def _jitted(self, name: str, *static: Any):
    method = self._method(name)
    return xla_options.jit(lambda state, *args: method(state, *args, *static))

  def _key(self, seed: int) -> jax.Array:
    return jax.random.key(seed)

  @functools.cache
  def _sampler(self, with_psi: bool):
    """sample() jitted once per handle (n static; psi traced, so a sweep compiles once)."""
    method = self._method("sample")
    if with_psi:
      return xla_options.jit(lambda state, key, n, psi: method(state, key, n, psi=psi), static_argnums=2)
    return xla_options.jit(method, static_argnums=2)

  def sample(self, n: int = 64, seed: int = 0, psi: float | None = None) -> np.ndarray:
    """n draws; `psi` truncates a style generator's w towards w_avg (None: model.truncation_psi)."""
    if psi is None:
      return np.asarray(self._sampler(False)(self.state, self._key(seed), n))
    if "psi" not in inspect.signature(self._method("sample")).parameters:  # only the style GAN's takes psi
      raise NotImplementedError(f"a {self.config.model.name!r} model's sample() has no truncation psi")
    return np.asarray(self._sampler(True)(self.state, self._key(seed), n, np.float32(psi)))

  def encode(self, x) -> np.ndarray:
    return np.asarray(self._jitted("encode")(self.state, np.asarray(x, np.float32)))

  def decode(self, z) -> np.ndarray:
    return np.asarray(self._jitted("decode")(self.state, np.asarray(z, np.float32)))

  def reconstruct(self, x) -> np.ndarray:
    return np.asarray(self._jitted("reconstruct")(self.state, np.asarray(x, np.float32)))

  def interpolate(self, x_a, x_b, steps: int = 10) -> np.ndarray:
    """Decoded straight lines between the codes of x_a and x_b: [batch, steps, ...]."""
    return np.asarray(self._jitted("interpolate", steps)(
        self.state, np.asarray(x_a, np.float32), np.asarray(x_b, np.float32)))

  def latent_manifold(self, n: int = 15) -> np.ndarray:
    """Decoder means over an n x n grid of the 2-D latent through the inverse Gaussian CDF."""
    return np.asarray(self._jitted("latent_manifold", n)(self.state))

  def log_likelihood(self, x, k: int = 1000, seed: int = 0) -> np.ndarray:
    """Importance-sampled log p(x) per example, in nats, with k samples."""
    method = self._method("log_likelihood")
    return np.asarray(method(self.state, np.asarray(x, np.float32), self._key(seed), k))

  def log_partition(self, method: str = "auto", seed: int = 0) -> dict:
    """log Z of an energy model: method 'exact' (enumeration), 'ais' (with its +-3 std) or 'auto'."""
    return self._method("log_partition")(self.state, self._key(seed), method)

  def invert(self, x, method: str = "opt", steps: int = 200, restarts: int = 4, encoder=None,
             seed: int = 0, **options) -> tuple[np.ndarray, np.ndarray]:
    """(z, G(z)) for images x [N, H, W, C] in [0, 1] of a trained GAN (genjax/invert.py): method
    'opt', 'encoder' or 'hybrid'; `encoder` a gan_encoder Model or workdir (else this run's own E);
    options: optimizer, learning_rate, feature_weight, features, projection, mask."""
    from genjax import invert  # a tool over trained runs, imported on use
    result = invert.invert_model(self, x, encoder=encoder, seed=seed, method=method, steps=steps,
                                 restarts=restarts, **options)
    return result["z"], result["x_hat"]

  def translate(self, x) -> np.ndarray:
    """Paired-task inputs [N, H, W, C_in] (as in test_data()['input']) -> translated images (pix2pix)."""
    return np.asarray(self._jitted("translate")(self.state, np.asarray(x, np.float32)))

  def evaluate(self) -> dict:
    """The numbers `--mode eval` writes to eval.json, for this state."""
    self._method("evaluate")
    return modes.evaluation(self._run, self.state)

  def test_data(self) -> dict:
    return self._run.test_arrays()

  @staticmethod
  def show_grid(images, ncol: int | None = None) -> Image.Image:
    """A PIL image (renders inline in Jupyter) of images [N,H,W,C], [rows,cols,H,W,C] or points [N,2]."""
    return Image.fromarray(genjax_images.to_picture(np.asarray(images), ncol=ncol))

  @staticmethod
  def show_points(points, labels=None, extent: float | None = None) -> Image.Image:
    """A scatter plot of [N, 2] points (codes, samples), coloured by integer labels if given."""
    return Image.fromarray(genjax_images.scatter_plot(np.asarray(points), labels=labels, extent=extent))

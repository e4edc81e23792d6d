"""DCGAN latent arithmetic from a trained workdir (Radford et al. 2016, sec. 6.3.2), on the run's own
samples or on real images found in the latent space by inversion (genjax/invert.py).

  python -m genjax.latent_arithmetic --config experiments/dcgan.py --workdir W \
      --a 1,5,7 --b 2,9,12 --c 3,4,30
  python -m genjax.latent_arithmetic --workdir W --split test --method opt --a 1,5 --b 2,9 --c 3

Without --split, indices refer to the fixed-noise 'samples' picture of the run (W/images/samples_*.png,
8 per row: index i is row i // 8, column i % 8) and W/images/latent_arithmetic.png is one row:
G(mean z_A) | G(mean z_B) | G(mean z_C) | G(mean z_A - mean z_B + mean z_C).
With --split train|test, indices refer to that split's images, each inverted to its z with --method
(hybrid and encoder need --encoder_workdir or a gan_encoder --workdir); W/images/latent_arithmetic_real.png
adds a first row with the mean real image of A, B and C (pixel averages; the last cell is blank).
"""
from __future__ import annotations

import os
import sys

import numpy as np
from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment file of the trained run (fixed-noise mode).")
_WORKDIR = flags.DEFINE_string("workdir", None, "The trained run's directory.")
_GROUPS = {name: flags.DEFINE_list(name, None, f"Comma-separated sample indices of group {name.upper()}.")
           for name in ("a", "b", "c")}
_SPLIT = flags.DEFINE_string("split", "", "'' (indices into the fixed noise), or 'train' / 'test' (real images).")
_METHOD = flags.DEFINE_string("method", "opt", "Inversion method for real images: opt, encoder or hybrid.")
_STEPS = flags.DEFINE_integer("steps", 300, "Inversion steps for real images.")
_RESTARTS = flags.DEFINE_integer("restarts", 4, "Inversion restarts for real images.")
_ENCODER = flags.DEFINE_string("encoder_workdir", "", "A gan_encoder run for hybrid / encoder inversion.")


def fixed_noise_row(groups: dict[str, list[int]]) -> np.ndarray:
  """[1, 4, H, W, C] from the run's fixed noise, through --config's Run."""
  from genjax.trainer import Run
  run = Run(_CONFIG.value, _WORKDIR.value)
  try:
    state = run.restore(run.first_batch())
    z = run.objective.fixed_noise(run.picture_key())
    return np.asarray(run.objective.latent_arithmetic(state, z, groups["a"], groups["b"], groups["c"]))[None]
  finally:
    run.close()


def real_image_rows(groups: dict[str, list[int]]) -> np.ndarray:
  """[2, 4, H, W, C]: (mean real image of A, B, C | blank) over the arithmetic on their inversions."""
  import jax.numpy as jnp
  from genjax import api, invert
  from genjax.models.gan import latent_arithmetic
  model = api.load(_WORKDIR.value)
  arrays = model._run.train_arrays if _SPLIT.value == "train" else model.test_data()
  order = groups["a"] + groups["b"] + groups["c"]
  x = arrays["x"][np.asarray(order)]
  z, _ = model.invert(x, method=_METHOD.value, steps=_STEPS.value, restarts=_RESTARTS.value,
                      encoder=_ENCODER.value or None)
  ends = np.cumsum([len(groups[k]) for k in ("a", "b", "c")])
  g = invert.generator_of(model, api.load(_ENCODER.value) if _ENCODER.value else None)
  result = np.asarray(latent_arithmetic(g.generate, *map(jnp.asarray, np.split(z, ends[:2]))))
  real = [np.mean(part, axis=0) for part in np.split(x, ends[:2])]
  return np.stack([np.stack(real + [np.ones_like(real[0])]), result])


def main(argv) -> None:
  del argv
  import genjax  # noqa: F401  registers families and datasets
  from genjax import images
  from genjax.config import ConfigError
  from genjax.trainer import TrainingError
  groups = {name: [int(i) for i in flag.value] for name, flag in _GROUPS.items()}
  try:
    if _SPLIT.value and _SPLIT.value not in ("train", "test"):
      raise ConfigError(f"--split={_SPLIT.value!r} is not allowed; expected '', 'train' or 'test'")
    if not _SPLIT.value and _CONFIG.value is None:
      raise ConfigError("--config is required without --split (indices into the run's fixed noise)")
    rows = real_image_rows(groups) if _SPLIT.value else fixed_noise_row(groups)
  except (ConfigError, TrainingError, IndexError) as e:
    print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
    sys.exit(2)
  name = "latent_arithmetic_real.png" if _SPLIT.value else "latent_arithmetic.png"
  print(images.save_png(os.path.join(_WORKDIR.value, "images", name), images.to_picture(rows)))


if __name__ == "__main__":
  flags.mark_flags_as_required(["workdir", "a", "b", "c"])
  app.run(main)

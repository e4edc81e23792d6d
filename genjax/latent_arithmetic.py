"""DCGAN latent arithmetic from a trained workdir (Radford et al. 2016, sec. 6.3.2).

  python -m genjax.latent_arithmetic --config experiments/dcgan.py --workdir W \
      --a 1,5,7 --b 2,9,12 --c 3,4,30

Indices refer to the fixed-noise 'samples' picture of the run (W/images/samples_*.png, 8 per row:
index i is row i // 8, column i % 8). Writes W/images/latent_arithmetic.png, one row:
G(mean z_A) | G(mean z_B) | G(mean z_C) | G(mean z_A - mean z_B + mean z_C).
"""
from __future__ import annotations

import os

import numpy as np
from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment file of the trained run.")
_WORKDIR = flags.DEFINE_string("workdir", None, "The trained run's directory.")
_GROUPS = {name: flags.DEFINE_list(name, None, f"Comma-separated sample indices of group {name.upper()}.")
           for name in ("a", "b", "c")}


def main(argv) -> None:
  del argv
  import genjax  # noqa: F401  registers families and datasets
  from genjax import images
  from genjax.trainer import Run

  run = Run(_CONFIG.value, _WORKDIR.value)
  try:
    state = run.restore(run.first_batch())
    z = run.objective.fixed_noise(run.picture_key())
    groups = {name: [int(i) for i in flag.value] for name, flag in _GROUPS.items()}
    row = np.asarray(run.objective.latent_arithmetic(state, z, groups["a"], groups["b"], groups["c"]))
    path = images.save_png(os.path.join(run.workdir, "images", "latent_arithmetic.png"),
                           images.to_picture(row[None]))
    print(path)
  finally:
    run.close()


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir", "a", "b", "c"])
  app.run(main)

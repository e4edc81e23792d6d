"""Copies the README's Fashion-MNIST pictures from runs/fashion/* (made by reproduce_fashion.py) into
docs/images as small greyscale PNGs, and draws the 2-D VAE's test codes coloured by class.

  .venv/bin/python scripts/fashion_pictures.py
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS, IMAGES = os.path.join(ROOT, "runs", "fashion"), os.path.join(ROOT, "docs", "images")
# docs/images name -> the run's picture
PICTURES = {
    "fashion_vae2d_manifold.png": "vae_fashion_2d/images/manifold_final.png",
    "fashion_ae_conv_reconstructions.png": "ae_conv/images/reconstructions_final.png",
    "fashion_ae_conv_interpolation.png": "ae_conv/images/interpolation_final.png",
    "fashion_dcgan_samples.png": "dcgan/images/samples_final.png",
    "fashion_wgan_gp_samples.png": "wgan_gp/images/samples_final.png",
    "fashion_cgan_class_rows.png": "cgan/images/class_grid_final.png",
}
CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def copy_grey(source: str, target: str) -> None:
  Image.open(source).convert("L").save(target, optimize=True)


def latent_scatter(workdir: str, target: str) -> None:
  """Test-set posterior means of a 2-D VAE, one colour per class, legend with the class names."""
  import genjax
  from genjax.plots import scatter_plot
  model = genjax.load(workdir)
  test = model.test_data()
  picture = scatter_plot(model.encode(test["x"]), size=500, labels=np.asarray(test["label"]),
                         title="2-D VAE: 10,000 test images", axis_labels=("z₁ (posterior mean)", "z₂"),
                         label_names=CLASSES)
  Image.fromarray(picture).save(target, optimize=True)


def main() -> None:
  for name, source in PICTURES.items():
    copy_grey(os.path.join(RUNS, source), os.path.join(IMAGES, name))
  latent_scatter(os.path.join(RUNS, "vae_fashion_2d"), os.path.join(IMAGES, "fashion_vae2d_codes.png"))
  print(IMAGES)


if __name__ == "__main__":
  main()

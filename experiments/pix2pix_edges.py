"""pix2pix edges -> Fashion-MNIST (Canny edges, the edges2shoes of 28 px; `:l1` = L1-only U-Net)."""
from genjax.configs import pix2pix_config

VARIANTS = {"": {}, "l1": {"adversarial_weight": 0.0}}


def get_config(variant: str = ""):
  return pix2pix_config("fashion_mnist", "edges", **VARIANTS[variant])

"""pix2pix 4x super-resolution on Fashion-MNIST (7x7 block means -> 28x28; `:l1` = L1-only U-Net)."""
from genjax.configs import pix2pix_config

VARIANTS = {"": {}, "l1": {"adversarial_weight": 0.0}}


def get_config(variant: str = ""):
  return pix2pix_config("fashion_mnist", "superres", **VARIANTS[variant])

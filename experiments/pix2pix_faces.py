"""pix2pix inpainting of the 25x25 LFW subset (faces and background patches), a 10x10 centre hole.

200 images only (160 train): a small-data case; `:l1` = the L1-only U-Net ablation.
"""
from genjax.configs import pix2pix_config

VARIANTS = {"": {}, "l1": {"adversarial_weight": 0.0}}


def get_config(variant: str = ""):
  config = pix2pix_config("faces", "inpaint", **VARIANTS[variant])
  config.dataset.mask_size = 10
  return config

"""pix2pix inpainting on Fashion-MNIST: a 14x14 centre hole (`:l1` = the L1-only U-Net ablation).

python -m genjax.main --config experiments/pix2pix_inpaint.py        # cGAN + 100 L1
python -m genjax.main --config experiments/pix2pix_inpaint.py:l1     # adversarial_weight = 0
"""
from genjax.configs import pix2pix_config

VARIANTS = {"": {}, "l1": {"adversarial_weight": 0.0}}


def get_config(variant: str = ""):
  return pix2pix_config("fashion_mnist", "inpaint", **VARIANTS[variant])

"""Convolutional VAE (stride-2 convs 32-64, transposed convs back) on digits; `vae_conv.py:2` sets z."""
from genjax.configs import vae_config


def get_config(arg=None):
  return vae_config("conv", arg)

"""DCGAN (Radford et al. 2016) on 8x8 digits: transposed convolutions, batch norm, leaky-ReLU critic."""
from genjax.configs import gan_config


def get_config():
  return gan_config("dcgan")

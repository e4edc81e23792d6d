"""Denoising autoencoder: Gaussian noise (std 0.3) on the input, the clean image as the target."""
from genjax.configs import autoencoder_config


def get_config():
  return autoencoder_config("mlp", noise="gaussian", noise_level=0.3)

"""Convolutional autoencoder: strided convs down, (exact, CPU-fast) transposed convs up."""
from genjax.configs import autoencoder_config


def get_config():
  return autoencoder_config("conv", latent_dim=16, features=(32, 64))

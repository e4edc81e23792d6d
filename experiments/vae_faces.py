"""MLP VAE with a Gaussian decoder (learned per-pixel variance) on 25x25 faces; `vae_faces.py:2` sets z."""
from genjax.configs import vae_config


def get_config(arg=None):
  config = vae_config("mlp", arg or 5, likelihood="gaussian", decoder_variance="learned")
  config.dataset.name = "faces"
  return config

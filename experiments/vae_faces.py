"""MLP VAE with a Gaussian decoder (fixed variance 0.01) on 25x25 faces; `vae_faces.py:2` sets z.

The variance is a string so `--config.model.decoder_variance=learned` (per-pixel, learned) also
parses; on these 180 training images the learned variance overfits badly (docs/vae_results.md)."""
from genjax.configs import vae_config


def get_config(arg=None):
  config = vae_config("mlp", arg or 5, likelihood="gaussian", decoder_variance="0.01")
  config.dataset.name = "faces"
  return config

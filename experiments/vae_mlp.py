"""MLP VAE (64-256-128-z and back, Bernoulli decoder) on digits; `vae_mlp.py:2` sets the latent size."""
from genjax.configs import vae_config


def get_config(arg=None):
  return vae_config("mlp", arg)

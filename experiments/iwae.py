"""IWAE (Burda et al. 2016) with k=5 importance samples, same MLP as vae_mlp; `iwae.py:2` sets z."""
from genjax.configs import vae_config


def get_config(arg=None):
  return vae_config("mlp", arg, objective="iwae", num_importance_samples=5)

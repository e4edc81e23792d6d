"""Contractive autoencoder: lambda ||J_x E(x)||_F^2 (reverse mode here: the code is narrower than x)."""
from genjax.configs import autoencoder_config


def get_config():
  return autoencoder_config("mlp", activation="sigmoid", contractive_weight=0.1, jacobian_mode="auto")

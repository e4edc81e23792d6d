"""Sparse autoencoder: lambda ||z||_1 on a wider code, so few units fire per digit."""
from genjax.configs import autoencoder_config


def get_config():
  return autoencoder_config("mlp", latent_dim=64, sparsity_weight=0.05)

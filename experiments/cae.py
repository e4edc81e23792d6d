"""Contractive autoencoder: lambda ||J_x E(x)||_F^2 (reverse mode here: the code is narrower than x).

tanh hidden units: with sigmoid ones and lambda = 0.1 the penalty saturates the encoder within a few
dozen steps (Jacobian -> 0, reconstruction stuck at the mean digit), measured on digits.
"""
from genjax.configs import autoencoder_config


def get_config():
  return autoencoder_config("mlp", activation="tanh", contractive_weight=0.1, jacobian_mode="auto")

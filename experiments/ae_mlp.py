"""MLP autoencoder (64-256-128-16 and back) on digits: the lecture's plain bottleneck."""
from genjax.configs import autoencoder_config


def get_config():
  return autoencoder_config("mlp")

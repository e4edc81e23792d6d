"""The shared part of every experiment config (the contract in DESIGN.md); experiments override it."""
from __future__ import annotations

from ml_collections import ConfigDict


def base_config(**overrides) -> ConfigDict:
  """seed, num_steps, batch_size, log_every, checkpoint_every, sample_every, dataset, model, optimizer."""
  config = ConfigDict()
  config.seed = 0
  config.num_steps = 2000
  config.batch_size = 64
  config.log_every = 100
  config.checkpoint_every = 1000
  config.sample_every = 500
  config.dataset = ConfigDict({"name": "digits", "data_dir": "", "binarize": False})
  config.model = ConfigDict({"name": ""})
  config.optimizer = ConfigDict({"name": "adam", "learning_rate": 1e-3})
  config.update(overrides)
  return config


def autoencoder_config(architecture: str = "mlp", **model) -> ConfigDict:
  """An autoencoder on digits; `model` keys select the variant (noise, sparsity, contraction)."""
  config = base_config()
  config.model = ConfigDict({
      "name": "autoencoder", "architecture": architecture, "latent_dim": 16,
      "hidden": (256, 128), "features": (32, 64), "downsample": "stride", "upsample": "auto",
      "interpolation": "nearest", "activation": "relu", "norm": "none",
      "reconstruction_loss": "squared_error", "noise": "none", "noise_level": 0.0,
      "sparsity_weight": 0.0, "contractive_weight": 0.0, "jacobian_mode": "auto"})
  config.model.update(model)
  return config

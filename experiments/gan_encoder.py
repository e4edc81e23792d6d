"""An encoder E: x -> z for a trained DCGAN (Zhu et al. 2016): pass the GAN's workdir and dataset.

  python -m genjax.main --config experiments/gan_encoder.py --workdir runs/dcgan_encoder \
      --config.model.generator_workdir=runs/dcgan [--config.dataset.name=fashion_mnist]
"""
from ml_collections import ConfigDict

from genjax.configs import base_config


def get_config():
  config = base_config(num_steps=3000, batch_size=64, log_every=100, sample_every=1000)
  config.model = ConfigDict({
      "name": "gan_encoder", "generator_workdir": "runs/dcgan",
      # E mirrors the DCGAN critic: stride-2 convs, leaky ReLU, a dense layer to z.
      "architecture": "conv", "features": (32, 64), "hidden": (256, 256), "downsample": "stride",
      "conv_input_grad": "auto", "activation": "leaky_relu", "norm": "none",
      "image_weight": 1.0, "latent_weight": 1.0})
  config.optimizer = ConfigDict({"name": "adam", "learning_rate": 1e-3})
  return config

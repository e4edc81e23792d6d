"""Texture network (Ulyanov et al. 2016): a multi-scale conv generator from noise trained by Adam on
the Gram loss of brick (`:grass` etc.), so `--mode sample` draws new 128x128 textures at once."""
from ml_collections import ConfigDict

from genjax.configs import texture_config


def get_config(exemplar: str = "brick"):
  config = texture_config("generator", exemplar or "brick")
  config.num_steps = 1000
  config.optimizer = ConfigDict({"name": "adam", "learning_rate": 1e-2})
  return config

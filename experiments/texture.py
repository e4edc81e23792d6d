"""Texture synthesis (Gatys et al. 2015): L-BFGS on the pixels of two 128x128 syntheses of brick
(`:grass`, `:gravel`, `:astronaut`, ... or --config.dataset.exemplar=NAME / dataset.image_path=FILE),
matching Gram matrices of a random multi-scale CNN (Ustyuzhaninov et al. 2017)."""
from genjax.configs import texture_config


def get_config(exemplar: str = "brick"):
  return texture_config("optimize", exemplar or "brick")

"""WGAN-GP (Gulrajani et al. 2017: Adam 1e-4, betas (0, 0.9), lambda = 10, n_critic = 5) on digits."""
from genjax.configs import gan_config


def get_config():
  return gan_config("wgan_gp")

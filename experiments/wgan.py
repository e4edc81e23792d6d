"""WGAN with weight clipping (Arjovsky et al. 2017: RMSProp 5e-5, c = 0.01, n_critic = 5, batch 64) on digits."""
from genjax.configs import gan_config


def get_config():
  return gan_config("wgan")

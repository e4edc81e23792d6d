"""Non-saturating GAN (Goodfellow et al. 2014) with MLP generator and discriminator on 8x8 digits."""
from genjax.configs import gan_config


def get_config():
  return gan_config("gan")

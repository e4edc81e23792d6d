"""Conditional GAN (Mirza & Osindero 2014) on digits: one-hot label joined to z and to the critic input."""
from genjax.configs import gan_config


def get_config():
  return gan_config("gan", conditional=True)

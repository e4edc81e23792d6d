"""GAN on the 5x5 Gaussian grid with MLPs: the mode-collapse benchmark. Recipe after ':' (gan, wgan,
wgan_gp); toys use Adam 1e-3, beta1 0.5 as Gulrajani et al.'s toy code."""
from genjax.configs import gan_config


def get_config(recipe="gan"):
  return gan_config(recipe or "gan", {"name": "toy2d", "mixture": "grid"}, 256,
                    optimizer={"learning_rate": 1e-3, "b1": 0.5},
                    latent_dim=8, hidden=(128, 128, 128))

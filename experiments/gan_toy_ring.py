"""GAN on PacGAN's ring of 8 Gaussians (radius 1, std 0.01) in PacGAN's setting (Lin et al. 2018, Table 1;
see genjax/configs.py PACGAN_TOY_*). Recipe after ':': gan, pacgan2, pacgan3, pacgan4, wgan_gp.
`--config.num_seeds=10` trains 10 seeds as one vmapped program (genjax/models/seeds.py)."""
from genjax.configs import pacgan_toy_config


def get_config(recipe="gan"):
  return pacgan_toy_config(recipe or "gan", {"mixture": "ring", "radius": 1.0, "std": 0.01})

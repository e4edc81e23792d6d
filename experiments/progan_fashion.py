"""Progressive growing (Karras et al. 2018, ProGAN) on Fashion-MNIST resized to 32x32: 8 -> 16 -> 32.

The style generator with ProGAN's settings: the latent through a dense layer to 4x4 (no mapping, no
constant), pixel-normed 3x3 convs, no noise, ToRGB of the last block only, equalised learning rate;
WGAN-GP with one critic step, minibatch stddev; each new resolution fades in over `phase_steps`
(real images faded too) and then trains stable for as long. ':tiny' grows 8 -> 16 on digits in 12 steps.
"""
from genjax.configs import gan_config

PROGAN_MODEL = dict(
    architecture="style", latent_dim=64, style_channels=64, mapping_layers=0, modulation="none",
    const_input=False, noise_inputs=False, skip_rgb=False, resolution=32, resample_filter="box", style_mixing=0.0,
    truncation_psi=1.0, progressive=True, progressive_start=8, phase_steps=1000, minibatch_std=4,
    n_critic=1, ema_decay=0.999, ema_rampup=0.05, ppl_samples=2000, separability_samples=4000)
PROGAN_OPTIMIZER = {"name": "adam", "learning_rate": 1e-3, "b1": 0.0, "b2": 0.99}
TINY = dict(latent_dim=16, style_channels=8, resolution=16, phase_steps=4, ppl_samples=64,
            separability_samples=200)


def get_config(arg: str = ""):
  tiny = arg == "tiny"
  config = gan_config("wgan_gp", dataset="digits" if tiny else "fashion_mnist", critic_batch_size=16 if tiny else 32,
                      optimizer=PROGAN_OPTIMIZER, **dict(PROGAN_MODEL, **(TINY if tiny else {})))
  config.num_steps = 24 if tiny else 6000
  config.sample_every = 0 if tiny else 1000
  if tiny:
    config.eval_num_samples = 200
  return config

"""StyleGAN2 (Karras et al. 2020) on Fashion-MNIST resized to 32x32; ':tiny' is an 8x8 digits test size.

Mapping network (2 layers at lr x 0.01), learned 4x4 constant, modulated + demodulated 3x3 convs,
noise inputs, skip ToRGBs, equalised learning rate; non-saturating loss with lazy R1 (gamma 0.01 every
16 steps), minibatch stddev, style mixing 0.9, generator EMA (0.999, with StyleGAN2's 0.05 warm-up);
Adam 0.002, betas (0, 0.99). Mapping depth and gamma are StyleGAN2-ADA's CIFAR-10 preset for small
images (the paper's FFHQ values: 8 layers, gamma 10). Without the EMA warm-up the average still held
37% of the random init at step 1000 (FID 266.8 against 68.5 for the live weights of that checkpoint).
`--config.model.modulation=adain` gives StyleGAN1's AdaIN layers.
"""
from genjax.configs import gan_config

STYLE_MODEL = dict(
    architecture="style", latent_dim=64, w_dim=64, style_channels=64, mapping_layers=2,
    mapping_lr_mul=0.01, modulation="demod", const_input=True, noise_inputs=True, skip_rgb=True,
    resolution=32, resample_filter="box", style_mixing=0.9, truncation_psi=1.0, progressive=False, progressive_start=8,
    phase_steps=1000, minibatch_std=4, critic_regularizer="r1", r1_gamma=0.01, r1_every=16,
    ema_decay=0.999, ema_rampup=0.05, ppl_samples=2000, separability_samples=4000)
STYLE_OPTIMIZER = {"name": "adam", "learning_rate": 2e-3, "b1": 0.0, "b2": 0.99}
# The digits test size: 8x8 (4 -> 8), narrow, 2 mapping layers (the small-data setting).
TINY = dict(latent_dim=16, w_dim=16, style_channels=16, mapping_layers=2, resolution=0,
            ppl_samples=64, separability_samples=200)


def get_config(arg: str = ""):
  tiny = arg == "tiny"
  config = gan_config("gan", dataset="digits" if tiny else "fashion_mnist", critic_batch_size=16 if tiny else 32,
                      optimizer=STYLE_OPTIMIZER, **dict(STYLE_MODEL, **(TINY if tiny else {})))
  config.num_steps = 20 if tiny else 5000
  config.sample_every = 0 if tiny else 1000
  if tiny:
    config.eval_num_samples = 200
  return config

"""The shared part of every experiment config (the contract in DESIGN.md); experiments override it."""
from __future__ import annotations

from ml_collections import ConfigDict


def base_config(**overrides) -> ConfigDict:
  """seed, num_steps, batch_size, log_every, checkpoint_every, sample_every, dataset, model, optimizer."""
  config = ConfigDict()
  config.seed = 0
  config.num_steps = 2000
  config.batch_size = 64  # the GLOBAL batch: split over all devices, so a multiple of their count
  config.per_device_batch_size = 0  # > 0: batch_size = this * device count (constant per device)
  config.log_every = 100
  config.checkpoint_every = 1000
  config.sample_every = 500
  config.keep_checkpoints = 3
  config.eval_num_samples = 10000  # sample-quality N (capped by the test split): the usual 10k for FID
  config.num_seeds = 1  # > 1: seeds seed .. seed + num_seeds - 1 as one vmapped program (genjax/models/seeds.py)
  config.fast_compile = "auto"  # yes: compile the step for compile time (auto: <= 200 steps of <= 1e11 FLOPs in all)
  config.skip_nonfinite = False  # True: drop (and count) updates with a non-finite loss instead of stopping
  from genjax.data import dataset_options  # every dataset's options, so each is settable from the CLI
  config.dataset = ConfigDict({"name": "digits", **dataset_options()})
  config.model = ConfigDict({"name": ""})
  config.optimizer = ConfigDict({"name": "adam", "learning_rate": 1e-3})
  config.update(overrides)
  return config


def autoencoder_config(architecture: str = "mlp", **model) -> ConfigDict:
  """An autoencoder on digits; `model` keys select the variant (noise, sparsity, contraction)."""
  config = base_config()
  config.model = ConfigDict({
      "name": "autoencoder", "architecture": architecture, "latent_dim": 16,
      "hidden": (256, 128), "features": (32, 64), "downsample": "stride", "upsample": "auto",
      "conv_input_grad": "auto", "interpolation": "nearest", "activation": "relu", "norm": "none",
      "reconstruction_loss": "squared_error", "noise": "none", "noise_level": 0.0,
      "sparsity_weight": 0.0, "contractive_weight": 0.0, "jacobian_mode": "auto"})
  config.model.update(model)
  return config


def vae_config(architecture: str = "mlp", latent_dim: int | str | None = None, **model) -> ConfigDict:
  """A VAE on digits (Bernoulli decoder, ELBO); `model` keys select likelihood, beta, warm-up, IWAE.

  `latent_dim` may be the text after ':' in `--config experiments/vae_mlp.py:2`.
  """
  config = base_config(num_steps=3000, sample_every=1000)
  # Merged before ConfigDict types the fields: decoder_variance is 'learned' or a number.
  config.model = ConfigDict({
      "name": "vae", "architecture": architecture, "latent_dim": 10,
      "hidden": (256, 128), "features": (32, 64), "downsample": "stride", "upsample": "auto",
      "conv_input_grad": "auto", "interpolation": "nearest", "activation": "relu", "norm": "none",
      "likelihood": "bernoulli", "decoder_variance": "learned", "objective": "elbo",
      "num_importance_samples": 1, "beta": 1.0, "kl_warmup_steps": 0,
      "eval_importance_samples": 5000, "eval_chunk_size": 500, "eval_batch_size": 100, **model})
  if latent_dim not in (None, ""):
    config.model.latent_dim = int(latent_dim)
  return config


# recipe -> (model keys, optimizer) as published: Radford et al. 2016 (Adam 2e-4, beta1 0.5),
# Arjovsky et al. 2017 (RMSProp 5e-5, c = 0.01, n_critic = 5), Gulrajani et al. 2017 (Adam 1e-4,
# betas (0, 0.9), lambda = 10, n_critic = 5).
GAN_RECIPES = {
    "gan": ({"loss": "non_saturating", "critic_regularizer": "none", "n_critic": 1},
            {"name": "adam", "learning_rate": 2e-4, "b1": 0.5}),
    "dcgan": ({"loss": "non_saturating", "critic_regularizer": "none", "n_critic": 1,
               "architecture": "conv", "norm": "batch"},
              {"name": "adam", "learning_rate": 2e-4, "b1": 0.5}),
    "wgan": ({"loss": "wasserstein", "critic_regularizer": "clip", "clip_value": 0.01, "n_critic": 5},
             {"name": "rmsprop", "learning_rate": 5e-5}),
    "wgan_gp": ({"loss": "wasserstein", "critic_regularizer": "gradient_penalty", "gp_weight": 10.0,
                 "n_critic": 5},
                {"name": "adam", "learning_rate": 1e-4, "b1": 0.0, "b2": 0.9}),
}


def gan_config(recipe: str = "gan", dataset: str | dict = "digits", critic_batch_size: int = 64,
               optimizer: dict | None = None, **model) -> ConfigDict:
  """A GAN from a published recipe (GAN_RECIPES); `model` keys override it (loss, conditional, ...).

  batch_size = critic_batch_size * n_critic: the step's batch is split into one chunk per critic
  update (see genjax/models/gan.py), so every critic update sees `critic_batch_size` real rows.
  """
  recipe_model, recipe_optimizer = GAN_RECIPES[recipe]
  config = base_config(num_steps=5000, log_every=100, sample_every=500)
  config.dataset.update(dataset if isinstance(dataset, dict) else {"name": dataset})
  config.model = ConfigDict({
      "name": "gan", "architecture": "mlp", "latent_dim": 32, "hidden": (256, 256),
      "features": (32, 64), "downsample": "stride", "upsample": "auto",
      "conv_input_grad": "auto", "interpolation": "nearest",
      "activation": "relu", "critic_activation": "leaky_relu", "norm": "none",
      "critic_norm": "",  # '' = same as norm
      "loss": "non_saturating", "critic_regularizer": "none", "clip_value": 0.01, "gp_weight": 10.0,
      "n_critic": 1, "wgan_schedule": False, "ema_decay": 0.0, "ema_rampup": 0.0, "conditional": False,
      "pack": 1, "critic_hidden": (), "maxout_pieces": 5})  # PacGAN: packing, critic widths, maxout
  config.model.update(recipe_model)
  config.model.update(model)
  config.optimizer = ConfigDict(dict(recipe_optimizer, **(optimizer or {})))
  config.batch_size = critic_batch_size * config.model.n_critic
  return config


# PacGAN's toy protocol (Lin et al. 2018, sec. 4.1 and their code's config): a fixed training set of
# 100,000 points, z ~ N(0, I_2), generator 4 x 400 ReLU with batch norm, critic 3 maxout layers of
# 200 units x 5 pieces, Adam 1e-4 with beta1 0.8, 100 packs per critic update.
PACGAN_TOY_MODEL = {"latent_dim": 2, "hidden": (400, 400, 400, 400), "norm": "batch", "critic_norm": "none",
                    "critic_activation": "maxout", "critic_hidden": (200, 200, 200), "maxout_pieces": 5}
PACGAN_TOY_OPTIMIZER = {"name": "adam", "learning_rate": 1e-4, "b1": 0.8}
PACGAN_TOY_BATCH, PACGAN_TOY_TRAIN_POINTS = 100, 100_000
# recipe -> (GAN_RECIPES entry, pack, optimizer): PacGAN-m packs m samples per critic input; WGAN-GP
# keeps Gulrajani et al.'s loss, lambda, n_critic and Adam (1e-4, betas 0 / 0.9).
PACGAN_TOY_RECIPES = {"gan": ("gan", 1, PACGAN_TOY_OPTIMIZER),
                      **{f"pacgan{m}": ("gan", m, PACGAN_TOY_OPTIMIZER) for m in (2, 3, 4)},
                      "wgan_gp": ("wgan_gp", 1, GAN_RECIPES["wgan_gp"][1])}


def pacgan_toy_config(recipe: str, mixture: dict, **model) -> ConfigDict:
  """A PacGAN-protocol toy run (PACGAN_TOY_RECIPES) on the toy2d `mixture` options; the critic sees
  100 packs per update (batch 100 * pack rows, PacGAN's m minibatches of 100), `model` keys override."""
  if recipe not in PACGAN_TOY_RECIPES:
    raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(PACGAN_TOY_RECIPES)}")
  gan_recipe, pack, optimizer = PACGAN_TOY_RECIPES[recipe]
  dataset = {"name": "toy2d", "num_train": PACGAN_TOY_TRAIN_POINTS, **mixture}
  return gan_config(gan_recipe, dataset, PACGAN_TOY_BATCH * pack, optimizer=dict(optimizer),
                    **dict(PACGAN_TOY_MODEL, pack=pack, **model))


def rbm_config(dataset: str = "digits", num_hidden: int = 16, **model) -> ConfigDict:
  """A Bernoulli-Bernoulli RBM on a dynamically binarised dataset (CD-1 unless `model` says otherwise).

  SGD with momentum 0.5 at 0.05 (Hinton's practical guide, sec. 9), weight decay 1e-4 on W, batch
  100; AIS with Salakhutdinov & Murray's 14,500 betas and 100 runs.
  """
  config = base_config(num_steps=3000, batch_size=100, log_every=100, sample_every=1000,
                       eval_num_samples=1000)
  config.dataset.update({"name": dataset, "binarize": True})
  config.model = ConfigDict({
      "name": "rbm", "num_hidden": num_hidden, "cd_k": 1, "persistent": False, "num_chains": 100,
      "weight_decay": 1e-4, "sample_gibbs_steps": 1000, "log_z_method": "auto",
      "ais_breaks": (0.5, 0.9, 1.0), "ais_counts": (500, 4000, 10000), "ais_num_chains": 100,
      "eval_batch_size": 1000, **model})
  config.optimizer = ConfigDict({"name": "sgd", "learning_rate": 0.05, "momentum": 0.5})
  return config


# Op lists of genjax.layers.coupling.Flow: 8 alternating checkerboard couplings at full resolution
# (the UvA tutorial's simple flow), and Real NVP's multi-scale stack (Dinh et al. sec. 3.6).
FLOW_LAYERS = {
    "simple": ("checkerboard",) * 8,
    "multiscale": ("checkerboard", "checkerboard", "squeeze", "channel", "channel", "split",
                   "squeeze") + ("channel",) * 4,
}


# Conditioner depths of the experiments (`:uva` default, `:small`): 7 residual blocks put the three
# flows at the UvA tutorial's 0.56M / 0.63M / 1.7M parameters (its gated 3-layer nets at widths
# 32 / 48 / 64, dequantizer 16); 1 block is the earlier CPU-sized models (89k / 102k / 312k).
FLOW_SIZES = {"uva": dict(blocks=7, dequant_blocks=7), "small": dict(blocks=1, dequant_blocks=1)}


def flow_size(arg: str | None) -> dict:
  """The `model` keys of an experiment's `:size` argument (default 'uva')."""
  size = arg or "uva"
  if size not in FLOW_SIZES:
    raise ValueError(f"unknown size {size!r} after ':'; known: {', '.join(FLOW_SIZES)}")
  return FLOW_SIZES[size]


def flow_config(layers: str = "simple", dequantization: str = "uniform", **model) -> ConfigDict:
  """A flow on Fashion-MNIST (uniform or variational dequantization); `model` keys override it."""
  config = base_config(num_steps=20000, batch_size=64, log_every=100, sample_every=2000)
  config.dataset.name = "fashion_mnist"
  config.model = ConfigDict({
      "name": "flow", "layers": FLOW_LAYERS[layers], "widths": (32,), "blocks": 1, "actnorm": False,
      "dequantization": dequantization, "dequant_layers": ("checkerboard",) * 4, "dequant_widths": (16,),
      "dequant_blocks": 1, "prior": "normal", "logit_alpha": 0.05, "sample_temperature": 1.0,
      "eval_importance_samples": 8, "eval_batch_size": 100, "eval_num_examples": 0, **model})
  config.optimizer.update(dict(learning_rate=1e-3, grad_clip_norm=1.0))
  return config


def texture_config(mode: str = "optimize", exemplar: str = "brick", **model) -> ConfigDict:
  """Gram-matrix texture synthesis (Gatys et al. 2015) on random multi-scale features
  (Ustyuzhaninov et al. 2017): L-BFGS on the pixels ('optimize') or a texture network ('generator')."""
  config = base_config(num_steps=300, batch_size=1, log_every=10, checkpoint_every=100, sample_every=100)
  config.dataset.update({"name": "exemplar", "exemplar": exemplar, "image_size": 256})
  config.model = ConfigDict({
      "name": "texture", "mode": mode, "features": "random_multiscale",
      "filter_sizes": (3, 5, 7, 11, 15, 23), "filters_per_size": 64, "feature_seed": 0,
      "eval_filter_sizes": (4, 6, 9, 13, 19), "eval_feature_seed": 1,  # the held-out evaluation net
      "output_size": 128, "num_syntheses": 2, "levels": 1, "coarse_steps": 100, "periodic": True,
      "init": "noise", "content_weight": 0.0, "style_weight": 1.0, "mean_weight": 1.0, "content_layer": 2,
      "generator_width": 32, "generator_scales": 5, "generator_batch": 4, "train_size": 64,
      "noise_channels": 3, **model})
  config.optimizer = ConfigDict({"name": "lbfgs", "learning_rate": 1.0, "memory_size": 10, "increase_factor": 4.0})
  return config


def pix2pix_config(dataset: str = "fashion_mnist", task: str = "inpaint", **model) -> ConfigDict:
  """pix2pix (Isola et al. 2017) on a paired view of `dataset` (`dataset.task`); `model` keys override.

  Official defaults: lambda_L1 = 100, Adam 2e-4 with beta1 0.5, non-saturating cGAN loss, dropout 0.5
  in the 3 innermost decoder levels; widths are a quarter of the paper's for CPU-sized runs.
  """
  config = base_config(num_steps=3000, batch_size=16, log_every=100, sample_every=1000)
  config.dataset.update({"name": dataset, "task": task})
  config.model = ConfigDict({
      "name": "pix2pix", "loss": "non_saturating", "adversarial_weight": 1.0, "l1_weight": 100.0,
      "unet_depth": 0, "unet_features": 16, "unet_max_features": 128, "norm": "batch",
      "dropout": 0.5, "dropout_levels": 3, "test_dropout": False,
      "critic_downsamplings": 1, "critic_features": 16, "critic_max_features": 128, "critic_norm": "",
      "upsample": "auto", "conv_input_grad": "auto", **model})
  config.optimizer = ConfigDict({"name": "adam", "learning_rate": 2e-4, "b1": 0.5})
  return config

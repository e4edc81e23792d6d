"""An encoder E: x -> z for a trained, frozen GAN generator (Zhu et al. 2016, sec. 3.1, "encoder").

loss(E) = image_weight * ||G(E(x)) - x||^2         on real images x (through the frozen G)
        + latent_weight * ||E(G(z)) - z||^2         on generated pairs (G(z), z), z ~ N(0, I)

`model.generator_workdir` names the trained GAN run; its generator and critic (and batch
statistics, EMA weights) are read once from its newest checkpoint and copied into this run's state
(`extras['gan']`), so an encoder checkpoint inverts without the GAN's workdir. The generator is run
in evaluation mode and receives no gradient updates. `frozen_gan(state)` hands the GAN objective and
its state to `genjax.invert`, whose `encoder` / `hybrid` methods start from `encode(state, x)`.
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import optax
from ml_collections import ConfigDict

from genjax import losses
from genjax import xla_options
from genjax.config import is_number, require
from genjax.data import eval_batches, example_shape
from genjax.layers.networks import ACTIVATIONS, make_encoder
from genjax.optim import make_optimizer
from genjax.registry import MODELS
from genjax.state import TrainState

ENCODER_NORMS = ("none", "layer")  # batch norm would make E(x) depend on the rest of the batch
PICTURE_ROWS = 16


def generator_run_config(workdir: str) -> ConfigDict:
  """The config.json of a trained run (ConfigError-free: callers validate what it holds)."""
  with open(os.path.join(workdir, "config.json")) as f:
    return ConfigDict(json.load(f))


def latest_checkpoint(workdir: str) -> int | None:
  path = os.path.join(workdir, "checkpoints")
  steps = [int(d) for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
  return max(steps) if steps else None


def restore_gan(workdir: str):
  """(config, GAN objective, its newest TrainState) of a trained GAN run, without the trainer."""
  import orbax.checkpoint as ocp
  config = generator_run_config(workdir)
  objective = MODELS.lookup(config.model.name)(config)
  batch = {"x": jnp.zeros((1,) + example_shape(config.dataset)), "label": jnp.zeros((1,), jnp.int32)}
  sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
      jax.eval_shape(objective.init, jax.random.key(0), batch))
  with ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints")) as manager:
    state = manager.restore(latest_checkpoint(workdir), args=ocp.args.StandardRestore(abstract))
  return config, objective, state


@MODELS.register("gan_encoder")
class GANEncoderObjective:
  """Trains E for the frozen generator of `model.generator_workdir`; `model.*` sizes E."""

  def __init__(self, config: ConfigDict):
    model = config.model
    self.gan_config, self.gan, gan_state = restore_gan(model.generator_workdir)
    self.latent_dim = self.gan.latent_dim
    self.data_shape = example_shape(config.dataset)
    self.image_weight = float(model.get("image_weight", 1.0))
    self.latent_weight = float(model.get("latent_weight", 1.0))
    # Only what G and the critic need at evaluation time; the GAN's optimizer states stay behind.
    self._gan_params = {"params": gan_state.params, "extras": gan_state.extras}
    self.encoder = make_encoder(model, self.latent_dim, activation=model.get("activation", "leaky_relu"),
                                norm=model.get("norm", "none"))
    self.tx = make_optimizer(config.optimizer)

  @staticmethod
  def validate(config: ConfigDict) -> None:
    model = config.model
    workdir = model.get("generator_workdir", "")
    require(isinstance(workdir, str) and workdir != "", "model.generator_workdir", workdir,
            "the workdir of a trained GAN run")
    require(os.path.exists(os.path.join(workdir, "config.json")) and latest_checkpoint(workdir) is not None,
            "model.generator_workdir", workdir, "a trained run (config.json and checkpoints/); train the GAN first")
    gan = generator_run_config(workdir)
    family = MODELS.lookup(gan.model.name) if gan.model.name in MODELS else None
    require(family is not None and hasattr(family, "generate_eval"), "model.generator_workdir", workdir,
            f"a GAN run (it holds a {gan.model.name!r} model, which has no generator)")
    require(gan.dataset.name == config.dataset.name, "dataset.name", config.dataset.name,
            f"{gan.dataset.name!r}, the generator's dataset (set --config.dataset.name={gan.dataset.name})")
    require(not gan.model.get("conditional", False), "model.generator_workdir", workdir,
            "an unconditional GAN (z alone must determine G(z))")
    require(int(gan.get("num_seeds", 1)) == 1, "model.generator_workdir", workdir,
            "a single-seed GAN run (this one trained num_seeds > 1 generators at once)")
    require(model.get("architecture", "conv") in ("mlp", "conv"), "model.architecture",
            model.get("architecture"), "'mlp' or 'conv'")
    require(model.get("norm", "none") in ENCODER_NORMS, "model.norm", model.get("norm"), f"one of {ENCODER_NORMS}")
    require(model.get("activation", "leaky_relu") in ACTIVATIONS, "model.activation",
            model.get("activation"), f"one of {sorted(ACTIVATIONS)}")
    for key in ("image_weight", "latent_weight"):
      value = model.get(key, 1.0)
      require(is_number(value) and value >= 0,
              f"model.{key}", value, "a number >= 0")
    require(model.get("image_weight", 1.0) + model.get("latent_weight", 1.0) > 0, "model.image_weight",
            model.get("image_weight"), "> 0 when model.latent_weight is 0 (the loss would be empty)")

  # -- the frozen GAN
  def frozen_gan(self, state: TrainState):
    """(GAN objective, a GAN TrainState holding the frozen weights) for genjax.invert."""
    gan = state.extras["gan"]
    return self.gan, TrainState.create(state.rng, jax.lax.stop_gradient(gan["params"]), {},
                                       jax.lax.stop_gradient(gan["extras"]))

  def decode(self, state: TrainState, z: jax.Array) -> jax.Array:
    gan, gan_state = self.frozen_gan(state)
    return gan.generate_eval(gan_state, z)

  def encode(self, state: TrainState, x: jax.Array) -> jax.Array:
    return self.encoder.apply({"params": state.params["encoder"]}, x)

  def reconstruct(self, state: TrainState, x: jax.Array) -> jax.Array:
    return self.decode(state, self.encode(state, x))

  # -- protocol
  def init(self, rng: jax.Array, batch: dict) -> TrainState:
    params = {"encoder": self.encoder.init(rng, batch["x"][:1])["params"]}
    return TrainState.create(rng, params, {"encoder": self.tx.init(params["encoder"])},
                             {"gan": self._gan_params})

  def loss(self, params, state: TrainState, x: jax.Array, rng: jax.Array):
    with_params = state.replace(params={"encoder": params})
    z = self.gan.noise(rng, x.shape[0])
    image = jnp.mean(losses.squared_error(self.reconstruct(with_params, x), x))
    latent = jnp.mean(losses.squared_error(self.encode(with_params, self.decode(state, z)), z))
    total = self.image_weight * image + self.latent_weight * latent
    return total, {"loss": total, "image_error": image, "latent_error": latent}

  def step(self, state: TrainState, batch: dict, rng: jax.Array):
    grads, metrics = jax.grad(self.loss, has_aux=True)(state.params["encoder"], state, batch["x"], rng)
    updates, opt_state = self.tx.update(grads, state.opt_state["encoder"], state.params["encoder"])
    params = optax.apply_updates(state.params["encoder"], updates)
    return state.replace(params={"encoder": params}, opt_state={"encoder": opt_state}), metrics

  # -- abilities
  def pictures(self, state: TrainState, batch: dict, rng: jax.Array) -> dict:
    """Rows of (x, G(E(x))) pairs for the first test images."""
    x = batch["x"][:PICTURE_ROWS]
    pairs = jnp.stack([x, self.reconstruct(state, x)], axis=1)
    return {"reconstructions": pairs.reshape((PICTURE_ROWS // 4, 8) + self.data_shape)}

  def evaluate(self, state: TrainState, arrays: dict, rng: jax.Array) -> dict[str, float]:
    """Test-set MSE per pixel and PSNR of G(E(x)) (peak 1: images in [0, 1])."""
    import numpy as np
    mse_fn = xla_options.jit(lambda s, x: jnp.mean(jnp.square(self.reconstruct(s, x) - x), axis=(1, 2, 3)))
    mse = np.concatenate([np.asarray(mse_fn(state, jnp.asarray(b["x"]))) for b in eval_batches(arrays, 500)])
    return {"mse": float(mse.mean()), "psnr": float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-12)))),
            "num_examples": int(len(mse))}

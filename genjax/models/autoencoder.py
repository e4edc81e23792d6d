"""Autoencoders of the lecture as ONE objective: vanilla, denoising, sparse and contractive are settings.

loss(x) = ||D(E(x~)) - x||^2 + sparsity_weight ||z||_1 + contractive_weight ||J_x E(x)||_F^2,
with x~ = x (+ Gaussian noise, or masked) for the denoising autoencoder.
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from ml_collections import ConfigDict

from genjax import losses
from genjax import xla_options
from genjax.config import is_number, require
from genjax.data import eval_batches, example_shape
from genjax.evaluate.likelihood import dataset_means
from genjax.layers.networks import ACTIVATIONS, make_decoder, make_encoder, validate_architecture
from genjax.optim import make_optimizer
from genjax.registry import MODELS
from genjax.state import TrainState

NOISES = ("none", "gaussian", "masking")
RECONSTRUCTION_LOSSES = {
    # Decoders output logits: squared error is taken on sigmoid(logits), in the data's [0, 1] range.
    "squared_error": lambda logits, x: losses.squared_error(jax.nn.sigmoid(logits), x),
    "bernoulli": losses.sigmoid_cross_entropy,
}


def corrupt(x: jax.Array, rng: jax.Array, noise: str, level: float) -> jax.Array:
  """Denoising AE input x + eta: additive Gaussian (std=level) or masking (drop with prob=level)."""
  if noise == "gaussian":
    return x + level * jax.random.normal(rng, x.shape, x.dtype)
  if noise == "masking":
    return x * (jax.random.uniform(rng, x.shape) >= level).astype(x.dtype)
  return x


def interpolate_codes(z_a: jax.Array, z_b: jax.Array, steps: int) -> jax.Array:
  """Linear paths z_a -> z_b: [batch, steps, latent]."""
  t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
  return (1.0 - t) * z_a[:, None, :] + t * z_b[:, None, :]


class EncodeDecode:
  """What every family with an encoder and a decoder derives from `encode` and `decode`."""

  def reconstruct(self, state: TrainState, x: jax.Array) -> jax.Array:
    return self.decode(state, self.encode(state, x))

  def interpolate(self, state: TrainState, x_a: jax.Array, x_b: jax.Array, steps: int = 10) -> jax.Array:
    """Decoded straight lines between the codes of x_a and x_b: [batch, steps, H, W, C]."""
    path = interpolate_codes(self.encode(state, x_a), self.encode(state, x_b), steps)
    decoded = self.decode(state, path.reshape(-1, path.shape[-1]))
    return decoded.reshape(path.shape[:2] + decoded.shape[1:])

  def autoencoding_pictures(self, state: TrainState, batch: dict) -> dict[str, Any]:
    """'interpolation' strips between test images and 'reconstructions' (rows alternate 8
    originals / their 8 reconstructions; [rows, cols, H, W, C] keeps the layout)."""
    x = batch["x"][:max(8, min(32, batch["x"].shape[0] // 8 * 8))]
    half = x.shape[0] // 2
    pairs = jnp.stack([x, self.reconstruct(state, x)]).reshape((2, -1, 8) + x.shape[1:])
    return {"interpolation": self.interpolate(state, x[:min(half, 8)], x[half:half + min(half, 8)]),
            "reconstructions": jnp.swapaxes(pairs, 0, 1).reshape((-1, 8) + x.shape[1:])}


JACOBIAN_MODES = ("fwd", "rev", "auto", "dense")


def dense_jacobian_applies(model: ConfigDict) -> bool:
  """The closed-form penalty needs Dense -> elementwise activation layers only (an MLP, no norm)."""
  return (model.get("architecture", "mlp") == "mlp" and model.get("norm", "none") == "none"
          and len(model.get("hidden", ())) >= 1)


def resolve_jacobian_mode(model: ConfigDict) -> str:
  """'auto': the closed form for MLP encoders, else jacobian_frobenius_penalty's own choice."""
  mode = model.get("jacobian_mode", "auto")
  return "dense" if mode == "auto" and dense_jacobian_applies(model) else mode


def _forward_jacobian(model: ConfigDict) -> bool:
  """Whether the contractive penalty may differentiate the encoder in forward mode."""
  return bool(model.get("contractive_weight", 0.0)) and resolve_jacobian_mode(model) in ("fwd", "auto")


@MODELS.register("autoencoder")
class AutoencoderObjective(EncodeDecode):
  """The autoencoder family; `model.*` keys choose architecture, variant and weights."""

  def __init__(self, config: ConfigDict):
    self.model = config.model
    self.latent_dim = int(config.model.latent_dim)
    self.tx = make_optimizer(config.optimizer)
    self.noise = config.model.get("noise", "none")
    self.noise_level = float(config.model.get("noise_level", 0.0))
    self.sparsity_weight = float(config.model.get("sparsity_weight", 0.0))
    self.contractive_weight = float(config.model.get("contractive_weight", 0.0))
    self.jacobian_mode = resolve_jacobian_mode(config.model)
    self.reconstruction = RECONSTRUCTION_LOSSES[config.model.get("reconstruction_loss", "squared_error")]
    # jax.jacfwd cannot go through the phase input gradient (a custom_vjp): XLA's conv then.
    self.encoder = make_encoder(config.model, self.latent_dim,
                                **({"input_grad": "xla"} if _forward_jacobian(config.model) else {}))
    self.dataset = config.dataset

  @staticmethod
  def validate(config: ConfigDict) -> None:
    model = config.model
    validate_architecture(config)
    require(model.get("noise", "none") in NOISES, "model.noise", model.get("noise"), f"one of {NOISES}")
    level = model.get("noise_level", 0.0)
    require(is_number(level) and level >= 0, "model.noise_level", level, "a number >= 0")
    for key in ("sparsity_weight", "contractive_weight"):
      w = model.get(key, 0.0)
      require(is_number(w) and w >= 0, f"model.{key}", w, "a number >= 0")
    rec = model.get("reconstruction_loss", "squared_error")
    require(rec in RECONSTRUCTION_LOSSES, "model.reconstruction_loss", rec,
            f"one of {sorted(RECONSTRUCTION_LOSSES)}")
    mode = model.get("jacobian_mode", "auto")
    require(mode in JACOBIAN_MODES, "model.jacobian_mode", mode, f"one of {JACOBIAN_MODES}")
    require(mode != "dense" or dense_jacobian_applies(model), "model.jacobian_mode", mode,
            "'fwd', 'rev' or 'auto' unless the encoder is an MLP with a hidden layer and norm 'none'")
    require(not (_forward_jacobian(model) and model.get("conv_input_grad", "auto") == "phase"),
            "model.conv_input_grad", "phase", f"'xla' or 'auto' with jacobian_mode={mode!r} "
            "(forward mode cannot go through the phase input gradient; or set jacobian_mode='rev')")

  @functools.cached_property
  def data_shape(self) -> tuple[int, ...]:
    return example_shape(self.dataset)

  @functools.cached_property
  def decoder(self):
    return make_decoder(self.model, self.data_shape)

  # -- protocol
  def init(self, rng: jax.Array, batch: dict) -> TrainState:
    x = batch["x"]
    enc_key, dec_key = jax.random.split(rng)
    params = {"encoder": self.encoder.init(enc_key, x)["params"],
              "decoder": self.decoder.init(dec_key, jnp.zeros((1, self.latent_dim)))["params"]}
    return TrainState.create(rng, params, self.tx.init(params))

  def terms(self, params, x: jax.Array, rng: jax.Array, noisy: bool = True) -> dict[str, jax.Array]:
    """Per-example loss terms (all [batch]); 'loss' is their weighted sum."""
    x_in = corrupt(x, rng, self.noise, self.noise_level) if noisy else x
    z = self.encoder.apply({"params": params["encoder"]}, x_in)
    logits = self.decoder.apply({"params": params["decoder"]}, z)
    terms = {"reconstruction": self.reconstruction(logits, x)}
    loss = terms["reconstruction"]
    if self.sparsity_weight:
      terms["sparsity"] = losses.l1_sparsity(z)
      loss = loss + self.sparsity_weight * terms["sparsity"]
    if self.contractive_weight:
      terms["contractive"] = self.contractive_penalty(params["encoder"], x)
      loss = loss + self.contractive_weight * terms["contractive"]
    terms["loss"] = loss
    return terms

  def contractive_penalty(self, encoder_params, x: jax.Array) -> jax.Array:
    """||J_x E(x)||_F^2 per example: closed form for MLPs ('dense'), else jax.jacfwd / jacrev."""
    if self.jacobian_mode != "dense":
      encode_one = lambda xi: self.encoder.apply({"params": encoder_params}, xi[None])[0]
      return losses.jacobian_frobenius_penalty(encode_one, x, self.jacobian_mode)
    _, captured = self.encoder.apply({"params": encoder_params}, x, mutable=["intermediates"],
                                     capture_intermediates=lambda module, _: isinstance(module, nn.Dense))
    names = sorted(encoder_params, key=lambda name: int(name.rsplit("_", 1)[1]))  # Dense_0 .. Dense_L
    activation = ACTIVATIONS[self.model.get("activation", "relu")]
    pre_activations = [captured["intermediates"][name]["__call__"][0] for name in names[:-1]]
    slopes = [jax.jvp(activation, (a,), (jnp.ones_like(a),))[1] for a in pre_activations]
    return losses.mlp_jacobian_frobenius([encoder_params[name]["kernel"] for name in names], slopes)

  def step(self, state: TrainState, batch: dict, rng: jax.Array):
    def mean_loss(params):
      terms = self.terms(params, batch["x"], rng)
      return jnp.mean(terms["loss"]), jax.tree_util.tree_map(jnp.mean, terms)

    grads, metrics = jax.grad(mean_loss, has_aux=True)(state.params)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(params=params, opt_state=opt_state), metrics

  # -- abilities
  def encode(self, state: TrainState, x: jax.Array) -> jax.Array:
    return self.encoder.apply({"params": state.params["encoder"]}, x)

  def decode(self, state: TrainState, z: jax.Array) -> jax.Array:
    """Decoder means in [0, 1] (sigmoid of the logits)."""
    logits = self.decoder.apply({"params": state.params["decoder"]}, z)
    return jax.nn.sigmoid(logits)

  def pictures(self, state: TrainState, batch: dict, rng: jax.Array) -> dict[str, Any]:
    # Interpolation first: it is what `--mode sample` keeps as samples.npy for a model without a prior.
    return self.autoencoding_pictures(state, batch)

  def evaluate(self, state: TrainState, arrays: dict, rng: jax.Array) -> dict[str, float]:
    """Test-set means of every loss term (nats or squared error per example) on clean inputs, and
    for MLP encoders the mean ||J_x E(x)||_F^2 (test_jacobian_frobenius), penalised or not."""
    # A denoising AE is judged on clean inputs: the error a user of the code cares about.
    jacobian = dense_jacobian_applies(self.model)  # ||J||_F^2 in closed form: cheap for any MLP

    def eval_terms(params, x):
      terms = self.terms(params, x, rng, noisy=False)
      if jacobian:  # a contractive AE has computed it already as its penalty
        terms["jacobian_frobenius"] = (terms["contractive"] if "contractive" in terms
                                       else self.contractive_penalty(params["encoder"], x))
      return terms

    batch_terms = xla_options.jit(eval_terms)
    means = dataset_means(lambda x, _: batch_terms(state.params, x), eval_batches(arrays, 256), pad_to=256)
    count = means.pop("num_examples")
    return {f"test_{k}": v for k, v in means.items()} | {"num_examples": count}


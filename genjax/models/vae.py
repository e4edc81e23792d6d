"""Variational autoencoders of the lecture as ONE objective: VAE, beta-VAE (with KL warm-up) and IWAE.

Encoder q(z|x) = N(mu, diag s^2) with (mu, log s^2) = E(x); prior p(z) = N(0, I); decoder p(x|z)
Bernoulli(sigmoid(D(z))) or Gaussian(sigmoid(D(z)), s_x^2) with s_x^2 learned per pixel or fixed.
z = mu + s * eps, eps ~ N(0, I) (the reparameterisation trick) makes the bound differentiable in mu, s.

  'elbo': L = 1/k sum_i log p(x|z_i) - beta_t KL(q(z|x) || p(z))      (Kingma & Welling 2014, eq. 10)
  'iwae': L_k = log 1/k sum_i p(x|z_i) [p(z_i) / q(z_i|x)]^beta_t     (Burda et al. 2016, eq. 8)

with beta_t rising linearly from 0 to `model.beta` over `model.kl_warmup_steps` steps. The module-level
functions are the maths (tests check them on a linear-Gaussian model whose log p(x) is known); the
class wires them to networks, the trainer and evaluation.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from genjax import losses
from genjax import xla_options
from genjax.config import is_int, is_number, require
from genjax.data import eval_batches, example_shape
from genjax.evaluate import likelihood as likelihood_bounds
from genjax.models.autoencoder import EncodeDecode
from genjax.layers.networks import make_decoder, make_encoder, validate_architecture
from genjax.optim import make_optimizer
from genjax.registry import MODELS
from genjax.state import TrainState

Array = jax.Array
LogLikelihoodFn = Callable[[Array], Array]  # z [batch, latent] -> log p(x | z) [batch]

# A learned Gaussian decoder could shrink s_x -> 0 on constant pixels; keep s_x >= 0.01.
_MIN_DECODER_LOGVAR = math.log(1e-4)


# ----------------------------------------------------------------------------- the maths

def reparameterize(rng: Array, mean: Array, logvar: Array, num_samples: int) -> Array:
  """k draws z = mu + exp(log s^2 / 2) * eps, eps ~ N(0, I): [k, batch, latent]."""
  eps = jax.random.normal(rng, (num_samples,) + mean.shape, mean.dtype)
  return mean + jnp.exp(0.5 * logvar) * eps


def log_importance_weights(log_likelihood_fn: LogLikelihoodFn, z: Array, mean: Array,
                           logvar: Array, beta: float | Array = 1.0) -> Array:
  """log w_i = log p(x|z_i) + beta (log p(z_i) - log q(z_i|x)), for z of shape [k, batch, latent].

  beta = 1 gives the weights of Burda et al. (2016); their mean over i is a one-sample ELBO.
  """
  log_prior = jax.vmap(losses.standard_normal_log_density)(z)
  log_posterior = jax.vmap(lambda zi: losses.gaussian_log_likelihood(zi, mean, logvar))(z)
  return jax.vmap(log_likelihood_fn)(z) + beta * (log_prior - log_posterior)


def elbo_terms(log_likelihood_fn: LogLikelihoodFn, rng: Array, mean: Array, logvar: Array,
               num_samples: int = 1, beta: float | Array = 1.0) -> dict[str, Array]:
  """Kingma & Welling (2014) eq. 10: Monte-Carlo reconstruction term, closed-form KL; all [batch]."""
  z = reparameterize(rng, mean, logvar, num_samples)
  reconstruction = jnp.mean(jax.vmap(log_likelihood_fn)(z), axis=0)
  kl = losses.gaussian_kl(mean, logvar)
  return {"reconstruction": reconstruction, "kl": kl, "elbo": losses.elbo(reconstruction, kl),
          "bound": losses.elbo(reconstruction, kl, beta)}


def iwae_terms(log_likelihood_fn: LogLikelihoodFn, rng: Array, mean: Array, logvar: Array,
               num_samples: int = 1, beta: float | Array = 1.0) -> dict[str, Array]:
  """Burda et al. (2016) eq. 8 on k reparameterised samples; all [batch]."""
  z = reparameterize(rng, mean, logvar, num_samples)
  bound = losses.iwae_bound(log_importance_weights(log_likelihood_fn, z, mean, logvar, beta))
  return {"kl": losses.gaussian_kl(mean, logvar), "bound": bound}


# model.objective -> the bound the model maximises (both take the same arguments).
OBJECTIVES: dict[str, Callable[..., dict[str, Array]]] = {"elbo": elbo_terms, "iwae": iwae_terms}


# ----------------------------------------------------------------------------- likelihoods

@dataclasses.dataclass(frozen=True)
class Likelihood:
  """p(x|z) from the decoder's output: `channels` decoder channels per data channel."""
  channels: int
  log_prob: Callable[[Array, Array], Array]  # (decoder output, x) -> [batch]
  mean: Callable[[Array], Array]  # decoder output -> E[x|z] in [0, 1]


def _split_mean_logvar(out: Array) -> tuple[Array, Array]:
  raw_mean, raw_logvar = jnp.split(out, 2, axis=-1)
  # A soft floor keeps gradients alive, unlike a clip.
  logvar = _MIN_DECODER_LOGVAR + jax.nn.softplus(raw_logvar - _MIN_DECODER_LOGVAR)
  return jax.nn.sigmoid(raw_mean), logvar


def bernoulli_likelihood(model: ConfigDict) -> Likelihood:
  return Likelihood(1, lambda logits, x: losses.bernoulli_log_likelihood(logits, x), jax.nn.sigmoid)


def fixed_decoder_variance(value) -> float | None:
  """model.decoder_variance as a number (the CLI gives '0.05' on the 'learned' str field), None
  for 'learned'; ValueError otherwise."""
  if value == "learned":
    return None
  if isinstance(value, bool):
    raise ValueError(value)
  variance = float(value)
  if not variance > 0 or not math.isfinite(variance):
    raise ValueError(value)
  return variance


def gaussian_likelihood(model: ConfigDict) -> Likelihood:
  """Mean sigmoid(D(z)) in the data's [0, 1]; variance learned per pixel (2 channels) or fixed."""
  variance = fixed_decoder_variance(model.get("decoder_variance", "learned"))
  if variance is None:
    return Likelihood(2, lambda out, x: losses.gaussian_log_likelihood(x, *_split_mean_logvar(out)),
                      lambda out: _split_mean_logvar(out)[0])
  logvar = math.log(variance)
  return Likelihood(1, lambda out, x: losses.gaussian_log_likelihood(x, jax.nn.sigmoid(out), logvar),
                    jax.nn.sigmoid)


LIKELIHOODS: dict[str, Callable[[ConfigDict], Likelihood]] = {
    "bernoulli": bernoulli_likelihood, "gaussian": gaussian_likelihood}


def kl_weight(step: Array, beta: float, warmup_steps: int) -> Array:
  """beta_t = beta * min(1, t / warmup): linear KL warm-up (Bowman et al. 2016; Sonderby et al. 2016)."""
  if warmup_steps <= 0:
    return jnp.asarray(beta, jnp.float32)
  return beta * jnp.minimum(1.0, step.astype(jnp.float32) / warmup_steps)


def manifold_grid(n: int) -> Array:
  """Kingma & Welling fig. 4: an n x n grid of z = Phi^-1(u), u on linspace(0.05, 0.95): [n, n, 2]."""
  g = jax.scipy.special.ndtri(jnp.linspace(0.05, 0.95, n))
  # Row i, column j -> (z1, z2) = (g[j], g[n-1-i]): z2 grows upwards as on a plot.
  return jnp.stack(jnp.meshgrid(g, g[::-1], indexing="xy"), axis=-1)


# ----------------------------------------------------------------------------- the family

@MODELS.register("vae")
class VAEObjective(EncodeDecode):
  """The VAE family; `model.*` keys choose architecture, likelihood, beta, warm-up and the bound."""

  def __init__(self, config: ConfigDict):
    model = config.model
    self.model = model
    self.latent_dim = int(model.latent_dim)
    self.likelihood = LIKELIHOODS[model.get("likelihood", "bernoulli")](model)
    self.objective = OBJECTIVES[model.get("objective", "elbo")]
    self.num_samples = int(model.get("num_importance_samples", 1))
    self.beta = float(model.get("beta", 1.0))
    self.kl_warmup_steps = int(model.get("kl_warmup_steps", 0))
    self.eval_samples = int(model.get("eval_importance_samples", 5000))
    self.eval_chunk_size = int(model.get("eval_chunk_size", 500))
    self.eval_batch_size = int(model.get("eval_batch_size", 100))
    self.encoder = make_encoder(model, 2 * self.latent_dim)
    self.tx = make_optimizer(config.optimizer)
    self.dataset = config.dataset
    self.seed = int(config.seed)

  @staticmethod
  def validate(config: ConfigDict) -> None:
    model = config.model
    validate_architecture(config)
    require(model.get("norm", "none") != "batch", "model.norm", "batch",
            "'none' or 'layer' (batch statistics would couple the k importance samples)")
    kind = model.get("likelihood", "bernoulli")
    require(kind in LIKELIHOODS, "model.likelihood", kind, f"one of {sorted(LIKELIHOODS)}")
    variance = model.get("decoder_variance", "learned")
    try:
      fixed_decoder_variance(variance)
    except (TypeError, ValueError):
      require(False, "model.decoder_variance", variance, "'learned' or a number > 0")
    objective = model.get("objective", "elbo")
    require(objective in OBJECTIVES, "model.objective", objective, f"one of {sorted(OBJECTIVES)}")
    beta = model.get("beta", 1.0)
    require(is_number(beta) and beta >= 0, "model.beta", beta, "a number >= 0")
    for key, default in (("num_importance_samples", 1), ("eval_importance_samples", 5000),
                         ("eval_chunk_size", 500), ("eval_batch_size", 100)):
      value = model.get(key, default)
      require(is_int(value) and value >= 1, f"model.{key}", value, "an integer >= 1")
    warmup = model.get("kl_warmup_steps", 0)
    require(is_int(warmup) and warmup >= 0, "model.kl_warmup_steps", warmup, "an integer >= 0")

  # -- networks
  @functools.cached_property
  def data_shape(self) -> tuple[int, ...]:
    return example_shape(self.dataset)

  def decoder(self):
    *spatial, channels = self.data_shape
    return make_decoder(self.model, tuple(spatial) + (channels * self.likelihood.channels,))

  def posterior(self, params, x: Array) -> tuple[Array, Array]:
    """q(z|x) = N(mean, exp(logvar)): [batch, latent] each."""
    return jnp.split(self.encoder.apply({"params": params["encoder"]}, x), 2, axis=-1)

  def decoder_output(self, params, z: Array) -> Array:
    return self.decoder().apply({"params": params["decoder"]}, z)

  def log_likelihood_fn(self, params, x: Array) -> LogLikelihoodFn:
    """z -> log p(x|z), [batch]."""
    return lambda z: self.likelihood.log_prob(self.decoder_output(params, z), x)

  def log_weight_fn(self, params, x: Array):
    """(rng, x, k) -> log w [k, batch] for genjax.evaluate.likelihood; q is computed once per x."""
    mean, logvar = self.posterior(params, x)
    log_likelihood_fn = self.log_likelihood_fn(params, x)

    def log_weights(rng, x_again, k):
      del x_again  # the posterior and likelihood already hold x
      return log_importance_weights(log_likelihood_fn, reparameterize(rng, mean, logvar, k),
                                    mean, logvar)
    return log_weights

  def terms(self, params, x: Array, rng: Array, beta: float | Array = 1.0,
            objective: Callable | None = None, num_samples: int | None = None) -> dict[str, Array]:
    """Per-example terms ([batch]) of the configured bound (or `objective`); 'bound' is maximised."""
    objective = objective or self.objective
    mean, logvar = self.posterior(params, x)
    return objective(self.log_likelihood_fn(params, x), rng, mean, logvar,
                     num_samples or self.num_samples, beta)

  # -- protocol
  def init(self, rng: Array, batch: dict) -> TrainState:
    x = batch["x"]
    enc_key, dec_key = jax.random.split(rng)
    params = {"encoder": self.encoder.init(enc_key, x)["params"],
              "decoder": self.decoder().init(dec_key, jnp.zeros((1, self.latent_dim)))["params"]}
    return TrainState.create(rng, params, self.tx.init(params))

  def step(self, state: TrainState, batch: dict, rng: Array):
    beta = kl_weight(state.step, self.beta, self.kl_warmup_steps)

    def negative_bound(params):
      terms = self.terms(params, batch["x"], rng, beta)
      return -jnp.mean(terms["bound"]), jax.tree_util.tree_map(jnp.mean, terms)

    (loss, metrics), grads = jax.value_and_grad(negative_bound, has_aux=True)(state.params)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(params=params, opt_state=opt_state), {**metrics, "loss": loss, "beta": beta}

  # -- abilities
  def encode(self, state: TrainState, x: Array) -> Array:
    """The posterior mean of z."""
    return self.posterior(state.params, x)[0]

  def decode(self, state: TrainState, z: Array) -> Array:
    """Decoder means E[x|z] in [0, 1]: [batch, H, W, C]."""
    return self.likelihood.mean(self.decoder_output(state.params, z))

  def sample(self, state: TrainState, rng: Array, n: int) -> Array:
    """Decoder means of n draws z ~ N(0, I) (means, not Bernoulli draws, as in the papers' figures)."""
    return self.decode(state, jax.random.normal(rng, (n, self.latent_dim)))

  def latent_manifold(self, state: TrainState, n: int = 15) -> Array:
    """Decoder means over the 2-D latent grid of `manifold_grid`: [n, n, H, W, C]."""
    if self.latent_dim != 2:
      raise ValueError(f"the latent manifold needs model.latent_dim=2, got {self.latent_dim}")
    decoded = self.decode(state, manifold_grid(n).reshape(-1, 2))
    return decoded.reshape((n, n) + decoded.shape[1:])

  def log_likelihood(self, state: TrainState, x: Array, rng: Array,
                     num_samples: int | None = None) -> Array:
    """Importance-sampled log p(x) per example (nats), chunked over the k samples."""
    return likelihood_bounds.importance_sampled_log_likelihood(
        self.log_weight_fn(state.params, x), rng, x, num_samples or self.eval_samples,
        self.eval_chunk_size)

  def pictures(self, state: TrainState, batch: dict, rng: Array) -> dict[str, Any]:
    pictures = {"samples": self.sample(state, rng, 64), **self.autoencoding_pictures(state, batch)}
    if self.latent_dim == 2:
      pictures["manifold"] = self.latent_manifold(state, 15)
    return pictures

  def evaluate(self, state: TrainState, arrays: dict, rng: Array) -> dict[str, Any]:
    """Test ELBO and importance-sampled log-likelihood (k = model.eval_importance_samples), nats/example.

    With dataset.binarize the test set is binarised once from a fixed seed, so numbers of different
    runs and checkpoints are comparable.
    """
    x_all = np.asarray(arrays["x"])
    binarize = bool(self.dataset.get("binarize", False))
    if binarize:
      x_all = likelihood_bounds.binarize_test_set(x_all, self.seed)
    elbo_fn = xla_options.jit(partial(self.terms, objective=elbo_terms, num_samples=1))
    log_likelihood_fn = xla_options.jit(lambda params, x, key: likelihood_bounds.importance_sampled_log_likelihood(
        self.log_weight_fn(params, x), key, x, self.eval_samples, self.eval_chunk_size))

    def per_example(x, index):
      elbo_key, is_key = jax.random.split(jax.random.fold_in(rng, index))
      x = jnp.asarray(x)
      terms = elbo_fn(state.params, x, elbo_key)
      return {"elbo": terms["elbo"], "reconstruction": terms["reconstruction"], "kl": terms["kl"],
              "log_likelihood": log_likelihood_fn(state.params, x, is_key)}

    means = likelihood_bounds.dataset_means(
        per_example, eval_batches({"x": x_all}, self.eval_batch_size), pad_to=self.eval_batch_size,
        total=len(x_all))
    num_dims = int(np.prod(x_all.shape[1:]))
    nll = -means["log_likelihood"]
    kind = self.model.get("likelihood", "bernoulli")
    results = {
        "test_elbo": means["elbo"], "test_reconstruction_log_likelihood": means["reconstruction"],
        "test_kl": means["kl"], "test_nll": nll, "test_negative_elbo": -means["elbo"],
        "test_bits_per_dim": likelihood_bounds.bits_per_dim(nll, num_dims),
        "test_elbo_bits_per_dim": likelihood_bounds.bits_per_dim(-means["elbo"], num_dims),
        "eval_importance_samples": self.eval_samples, "num_examples": means["num_examples"],
        "likelihood": kind, "binarized_test_set": binarize, "units": "nats per example"}
    if kind == "bernoulli" and not np.all((x_all == 0) | (x_all == 1)):
      results["note"] = ("Bernoulli likelihood on non-binary data: the NLL is the cross-entropy "
                         "-sum[x log p + (1-x) log(1-p)] (no continuous-Bernoulli normaliser), a "
                         "bound-like score, not the log-density of the grey levels")
    if kind == "gaussian":
      results["note"] = "Gaussian likelihood: a continuous density on [0, 1] pixels (no dequantisation)"
    return results

"""Normalizing flows with exact likelihoods: Real NVP (Dinh, Sohl-Dickstein & Bengio 2016) as ONE family.

Pixels are integers k in {0..L-1} (L = the dataset's `levels`: digits 17, 8-bit images 256; 2 with
`dataset.binarize`, whose test set is binarised once as the VAE family's is, so NLLs compare). They
are dequantized to v = (k + u) / L in [0, 1)^D with u ~ q(u|x): uniform, or a small conditional flow
(variational dequantization, Ho et al. 2019 sec. 3.1). Then y = logit(alpha + (1 - 2 alpha) v)
(Dinh et al. sec. 4.1) and z = f(y) is the flow of genjax.layers.coupling with prior p(z). Then

  log P(k) >= E_q[log p(z) + log|det df/dy| + log|det dy/dv| - log q(u|x)] - D log L,

(the discrete convention: a density uniform on [0, 1)^D scores exactly log2 L bits/dim), and the
importance-weighted version log 1/K sum_i w_i (Ho et al. eq. 13) is the evaluation's estimate.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from genjax import data as genjax_data
from genjax import xla_options
from genjax.config import is_int, is_number, require
from genjax.evaluate import likelihood as likelihood_bounds
from genjax.layers.coupling import COUPLINGS, OPS, Flow, FlowPlanError, plan
from genjax.models.autoencoder import EncodeDecode
from genjax.optim import make_optimizer
from genjax.registry import MODELS
from genjax.state import TrainState

Array = jax.Array


# ----------------------------------------------------------------------------- the maths

def _sum_per_example(values: Array) -> Array:
  return jnp.sum(values.reshape(values.shape[0], -1), axis=1)


def logit_transform(v: Array, alpha: float) -> tuple[Array, Array]:
  """Dinh et al. sec. 4.1: y = logit(alpha + (1 - 2 alpha) v), log|dy/dv| = sum log((1-2a) / (s (1-s)))."""
  s = alpha + (1.0 - 2.0 * alpha) * v
  y = jnp.log(s) - jnp.log1p(-s)
  return y, _sum_per_example(math.log1p(-2.0 * alpha) - jnp.log(s) - jnp.log1p(-s))


def inverse_logit_transform(y: Array, alpha: float) -> Array:
  """v = (sigmoid(y) - alpha) / (1 - 2 alpha), the inverse of `logit_transform`."""
  return (jax.nn.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha)


def log_sigmoid_derivative(e: Array) -> Array:
  """log d sigmoid(e) / de = log sigmoid(e) + log sigmoid(-e), per example."""
  return _sum_per_example(jax.nn.log_sigmoid(e) + jax.nn.log_sigmoid(-e))


def discrete_log_likelihood(log_density: Array, log_q: Array, num_dims: int, levels: int) -> Array:
  """Ho et al. 2019 eq. 12: log P(k) >= log p(v) - log q(u|k) - D log L for v = (k + u) / L."""
  return log_density - log_q - num_dims * math.log(levels)


def quantize(v: Array, levels: int) -> Array:
  """v in [0, 1) -> the served pixel k / (L - 1) of its bin k = floor(L v)."""
  return jnp.clip(jnp.floor(v * levels), 0, levels - 1) / (levels - 1)


@dataclasses.dataclass(frozen=True)
class Prior:
  log_density: Callable[[Array], Array]  # z [B, D] -> [B]
  sample: Callable[[Array, tuple], Array]  # (rng, shape) -> z


def _normal_log_density(z: Array) -> Array:
  return -0.5 * jnp.sum(z * z + math.log(2 * math.pi), axis=-1)


def _logistic_log_density(z: Array) -> Array:
  return jnp.sum(jax.nn.log_sigmoid(z) + jax.nn.log_sigmoid(-z), axis=-1)


# model.prior -> p(z): Real NVP's standard normal, or NICE's logistic (Dinh et al. 2014 sec. 3.4).
PRIORS = {"normal": Prior(_normal_log_density, jax.random.normal),
          "logistic": Prior(_logistic_log_density, jax.random.logistic)}


# ----------------------------------------------------------------------------- the family

@MODELS.register("flow")
class FlowObjective(EncodeDecode):
  """The flow family; `model.layers` lists the ops, `model.dequantization` chooses q(u|x)."""

  def __init__(self, config: ConfigDict):
    model = self.model = config.model
    self.dataset = config.dataset
    # dataset.binarize: 2 levels, the binary pixels the VAE family scores (same test binarisation)
    self.binarize = bool(config.dataset.get("binarize", False))
    self.levels = 2 if self.binarize else genjax_data.levels(config.dataset)
    self.seed = int(config.seed)
    self.alpha = float(model.get("logit_alpha", 0.05))
    self.prior = PRIORS[model.get("prior", "normal")]
    self.temperature = float(model.get("sample_temperature", 1.0))
    self.dequantization = model.get("dequantization", "uniform")
    self.eval_samples = int(model.get("eval_importance_samples", 8))
    self.eval_batch_size = int(model.get("eval_batch_size", 100))
    self.eval_num_examples = int(model.get("eval_num_examples", 0))
    self.tx = make_optimizer(config.optimizer)

  @staticmethod
  def validate(config: ConfigDict) -> None:
    model = config.model
    levels = genjax_data.levels(config.dataset)
    require(levels >= 2, "dataset.name", config.dataset.name,
            "a dataset of discrete grey levels (DatasetSpec.levels >= 2) for the discrete likelihood")
    shape = genjax_data.example_shape(config.dataset)
    require(len(shape) == 3, "dataset.name", config.dataset.name, "an image dataset [H, W, C]")
    for key in ("layers", "dequant_layers"):
      ops = model.get(key, ())
      require(isinstance(ops, (tuple, list)) and all(isinstance(op, str) for op in ops),
              f"model.{key}", ops, f"a tuple of op names from {OPS}")
    require(len(model.get("layers", ())) >= 1, "model.layers", model.get("layers"), "at least one op")
    for key, allowed in (("layers", OPS), ("dequant_layers", COUPLINGS)):
      for i, op in enumerate(model.get(key, ())):
        require(op in allowed, f"model.{key}[{i}]", op, f"one of {allowed}")
      try:
        plan(tuple(model.get(key, ())), shape)
      except FlowPlanError as e:
        require(False, f"model.{key}[{e.index}]", model[key][e.index], str(e))
    for key in ("widths", "dequant_widths"):
      widths = model.get(key, (32,))
      require(isinstance(widths, (tuple, list)) and len(widths) >= 1
              and all(is_int(w) and w >= 1 for w in widths),
              f"model.{key}", widths, "a non-empty tuple of positive integers")
    for key, low in (("blocks", 0), ("dequant_blocks", 0), ("eval_importance_samples", 1),
                     ("eval_batch_size", 1), ("eval_num_examples", 0)):
      value = model.get(key, low)
      require(is_int(value) and value >= low,
              f"model.{key}", value, f"an integer >= {low}")
    require(isinstance(model.get("actnorm", False), bool), "model.actnorm", model.get("actnorm"), "True or False")
    kind = model.get("dequantization", "uniform")
    require(kind in DEQUANTIZERS, "model.dequantization", kind, f"one of {sorted(DEQUANTIZERS)}")
    require(kind != "variational" or len(model.get("dequant_layers", ())) >= 1, "model.dequant_layers",
            model.get("dequant_layers"), "at least one coupling with dequantization='variational'")
    prior = model.get("prior", "normal")
    require(prior in PRIORS, "model.prior", prior, f"one of {sorted(PRIORS)}")
    alpha = model.get("logit_alpha", 0.05)
    require(is_number(alpha) and 0 <= alpha < 0.5, "model.logit_alpha", alpha,
            "a number in [0, 0.5)")
    temperature = model.get("sample_temperature", 1.0)
    require(is_number(temperature) and temperature > 0, "model.sample_temperature",
            temperature, "a number > 0")

  # -- networks
  @functools.cached_property
  def data_shape(self) -> tuple[int, int, int]:
    return genjax_data.example_shape(self.dataset)

  @functools.cached_property
  def num_dims(self) -> int:
    return math.prod(self.data_shape)

  @functools.cached_property
  def flow(self) -> Flow:
    m = self.model
    return Flow(tuple(m.layers), self.data_shape, tuple(m.get("widths", (32,))), int(m.get("blocks", 1)),
                bool(m.get("actnorm", False)))

  @functools.cached_property
  def dequant_flow(self) -> Flow:
    m = self.model
    return Flow(tuple(m.get("dequant_layers", ())), self.data_shape, tuple(m.get("dequant_widths", (16,))),
                int(m.get("dequant_blocks", 1)))

  def bins(self, x: Array) -> Array:
    """The served pixels k / (L - 1) -> integer bins k (as floats)."""
    return jnp.round(x * (self.levels - 1))

  def dequantize(self, params, x: Array, rng: Array | None) -> tuple[Array, Array]:
    """(v = (k + u) / L, log q(u|x)); rng None: the deterministic u of `encode`."""
    u, log_q = DEQUANTIZERS[self.dequantization](self, params, x, rng)
    return (self.bins(x) + u) / self.levels, log_q

  def log_density(self, params, v: Array) -> Array:
    """Exact log p(v) of the continuous model on [0, 1)^D: prior + flow log-det + logit log-det."""
    y, logit_log_det = logit_transform(v, self.alpha)
    z, flow_log_det = self.flow.apply({"params": params["flow"]}, y)
    return self.prior.log_density(z) + flow_log_det + logit_log_det

  def log_weights(self, params, x: Array, rng: Array) -> Array:
    """One importance weight log P(k, u) - log q(u|k) of the discrete likelihood: [B]."""
    v, log_q = self.dequantize(params, x, rng)
    return discrete_log_likelihood(self.log_density(params, v), log_q, self.num_dims, self.levels)

  def log_weight_fn(self, params):
    """(rng, x, k) -> [k, B] for genjax.evaluate.likelihood."""
    return lambda rng, x, k: jax.vmap(lambda key: self.log_weights(params, x, key))(jax.random.split(rng, k))

  # -- protocol
  def init(self, rng: Array, batch: dict) -> TrainState:
    x = batch["x"]
    dequant_key, flow_key, noise_key = jax.random.split(rng, 3)
    params = {"dequantizer": {}}
    if self.dequantization == "variational":
      params["dequantizer"] = self.dequant_flow.init(dequant_key, x, context=2 * x - 1)["params"]
    v, _ = self.dequantize(params, x, noise_key)
    # ActNorm's data-dependent init sees the first batch as the flow will (dequantized, logit).
    params["flow"] = self.flow.init(flow_key, logit_transform(v, self.alpha)[0])["params"]
    return TrainState.create(rng, params, self.tx.init(params))

  def step(self, state: TrainState, batch: dict, rng: Array):
    def bits(params):
      log_w = self.log_weights(params, batch["x"], rng)
      loss = -jnp.mean(log_w) / (self.num_dims * math.log(2.0))
      return loss, {"bits_per_dim": loss, "nll_nats": -jnp.mean(log_w)}

    (loss, metrics), grads = jax.value_and_grad(bits, has_aux=True)(state.params)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(params=params, opt_state=opt_state), {**metrics, "loss": loss}

  # -- abilities
  def encode(self, state: TrainState, x: Array) -> Array:
    """x -> z [B, D] exactly, with the deterministic dequantization (u = 0.5, or q's median)."""
    v, _ = self.dequantize(state.params, x, None)
    return self.flow.apply({"params": state.params["flow"]}, logit_transform(v, self.alpha)[0])[0]

  def decode(self, state: TrainState, z: Array) -> Array:
    """z [B, D] -> pixels k / (L - 1) of the bins f^-1(z) falls in, so decode(encode(x)) = x."""
    y, _ = self.flow.apply({"params": state.params["flow"]}, z, method=Flow.inverse)
    return quantize(inverse_logit_transform(y, self.alpha), self.levels)

  def sample(self, state: TrainState, rng: Array, n: int, temperature: float | None = None) -> Array:
    """n draws at temperature T (z ~ prior scaled by T; N(0, T^2 I) for the normal prior)."""
    temperature = self.temperature if temperature is None else temperature
    return self.decode(state, temperature * self.prior.sample(rng, (n, self.num_dims)))

  def log_likelihood(self, state: TrainState, x: Array, rng: Array, num_samples: int | None = None) -> Array:
    """log P(x) of the discrete pixels per example (nats), importance-weighted over k draws of u."""
    return likelihood_bounds.importance_sampled_log_likelihood(
        self.log_weight_fn(state.params), rng, x, num_samples or self.eval_samples,
        min(num_samples or self.eval_samples, 64))

  def pictures(self, state: TrainState, batch: dict, rng: Array) -> dict[str, Any]:
    return {"samples": self.sample(state, rng, 64, 1.0), "samples_t0.7": self.sample(state, rng, 64, 0.7),
            **self.autoencoding_pictures(state, batch)}

  def evaluate(self, state: TrainState, arrays: dict, rng: Array) -> dict[str, Any]:
    """Test bits/dim and NLL (nats/example) of the discrete pixels: importance-weighted over
    K = model.eval_importance_samples draws of u, and the one-draw bound (the training objective);
    on the first model.eval_num_examples test images (0: all)."""
    k = self.eval_samples
    x = likelihood_bounds.binarize_test_set(arrays["x"], self.seed) if self.binarize else arrays["x"]
    arrays = {"x": x[:self.eval_num_examples or None]}
    weights_fn = xla_options.jit(lambda params, x, key: self.log_weight_fn(params)(key, x, k))

    def per_example(x, index):
      log_w = weights_fn(state.params, jnp.asarray(x), jax.random.fold_in(rng, index))
      return {"log_likelihood": jax.nn.logsumexp(log_w, axis=0) - math.log(k),
              "one_sample_bound": jnp.mean(log_w, axis=0)}

    means = likelihood_bounds.dataset_means(
        per_example, genjax_data.eval_batches(arrays, self.eval_batch_size), pad_to=self.eval_batch_size,
        total=len(arrays["x"]))
    nll, bound = -means["log_likelihood"], -means["one_sample_bound"]
    return {"bits_per_dim": likelihood_bounds.bits_per_dim(nll, self.num_dims), "nll_nats": nll,
            "one_sample_bits_per_dim": likelihood_bounds.bits_per_dim(bound, self.num_dims),
            "eval_importance_samples": k, "levels": self.levels, "num_examples": means["num_examples"],
            "binarized_test_set": self.binarize,
            "units": "nll_nats: nats per example of the discrete pixels; bits_per_dim = nll / (D ln 2)"}


# ----------------------------------------------------------------------------- dequantizers

def _uniform(objective: FlowObjective, params, x: Array, rng: Array | None) -> tuple[Array, Array]:
  """u ~ U[0, 1)^D, log q = 0 (Theis et al. 2016); rng None: the bin centre."""
  if rng is None:
    return jnp.full_like(x, 0.5), jnp.zeros(x.shape[0], x.dtype)
  return jax.random.uniform(rng, x.shape, x.dtype), jnp.zeros(x.shape[0], x.dtype)


def _variational(objective: FlowObjective, params, x: Array, rng: Array | None) -> tuple[Array, Array]:
  """Ho et al. 2019 sec. 3.1: e ~ Logistic, e' = g(e; x) a conditional flow, u = sigmoid(e'),
  log q(u|x) = log p(e) - log|det dg/de| - log sigmoid'(e'); rng None: e = 0 (the median)."""
  e = jnp.zeros_like(x) if rng is None else jax.random.logistic(rng, x.shape, x.dtype)
  flat, log_det = objective.dequant_flow.apply({"params": params["dequantizer"]}, e, context=2 * x - 1)
  e_out = flat.reshape(x.shape)
  log_q = _logistic_log_density(e.reshape(x.shape[0], -1)) - log_det - log_sigmoid_derivative(e_out)
  return jax.nn.sigmoid(e_out), log_q


# model.dequantization -> (objective, params, x, rng) -> (u, log q(u|x)).
DEQUANTIZERS = {"uniform": _uniform, "variational": _variational}

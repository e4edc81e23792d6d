"""Bernoulli-Bernoulli restricted Boltzmann machines trained by CD-k or persistent CD, with real likelihoods.

E(v, h) = -b.v - c.h - v.W.h on binary v [V] and h [H]; the layers are conditionally independent:
p(h_j = 1 | v) = sigmoid(c_j + (v W)_j), p(v_i = 1 | h) = sigmoid(b_i + (W h)_i). The log-likelihood
gradient is -dF(v_data)/dtheta + E_model[dF(v)/dtheta] with the free energy F of
genjax/evaluate/partition.py, so a step minimises mean F(v_data) - mean F(v_model) with the model
samples held fixed (stop_gradient), where v_model comes from k Gibbs sweeps (a `lax.scan`) started at
the data (CD-k, Hinton 2002) or at persistent chains kept in the train state (PCD / SML, Tieleman
2008), so a resumed run continues the same chains. log p(v) = -F(v) - log Z with log Z exact
(enumerating the smaller layer, <= 20 units) or by AIS (Salakhutdinov & Murray 2008).
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from genjax import xla_options
from genjax.config import is_int, is_number, require
from genjax.data import dataset_spec, eval_batches, example_shape, load_dataset
from genjax.evaluate import likelihood as likelihood_bounds
from genjax.evaluate import partition
from genjax.optim import make_optimizer
from genjax.registry import MODELS
from genjax.state import TrainState

Array = jax.Array
LOG_Z_METHODS = ("auto", "exact", "ais")
# Hinton's practical guide (sec. 8): weights start as N(0, 0.01^2), hidden biases at 0.
INIT_WEIGHT_STD = 0.01
PICTURE_SAMPLES, PICTURE_FILTERS, GRID_COLUMNS = 64, 64, 8


# ----------------------------------------------------------------------------- the maths

def hidden_probs(params: dict, v: Array) -> Array:
  """p(h = 1 | v) = sigmoid(c + v W), [batch, H]."""
  return jax.nn.sigmoid(v @ params["weights"] + params["hidden_bias"])


def visible_probs(params: dict, h: Array) -> Array:
  """p(v = 1 | h) = sigmoid(b + W h), [batch, V]."""
  return jax.nn.sigmoid(h @ params["weights"].T + params["visible_bias"])


def gibbs_sweep(params: dict, v: Array, rng: Array) -> tuple[Array, Array]:
  """h ~ p(h | v), then v' ~ p(v | h): (v' binary, p(v | h) the mean-field visibles)."""
  h_key, v_key = jax.random.split(rng)
  h = jax.random.bernoulli(h_key, hidden_probs(params, v)).astype(v.dtype)
  v_mean = visible_probs(params, h)
  return jax.random.bernoulli(v_key, v_mean).astype(v.dtype), v_mean


def gibbs_chain(params: dict, v: Array, rng: Array, num_sweeps: int) -> tuple[Array, Array]:
  """`num_sweeps` Gibbs sweeps as one `lax.scan`: the last (binary v, mean-field visibles)."""
  def sweep(carry, key):
    v, _ = carry
    return gibbs_sweep(params, v, key), None

  (v, v_mean), _ = jax.lax.scan(sweep, (v, jnp.zeros_like(v)), jax.random.split(rng, num_sweeps))
  return v, v_mean


def contrastive_divergence(params: dict, v_data: Array, v_model: Array, weight_decay: float) -> Array:
  """mean F(v_data) - mean F(v_model) + weight_decay / 2 ||W||^2; its gradient is the CD / SML update
  (Hinton 2002 eq. 5, Tieleman 2008 sec. 2) once v_model is held fixed."""
  v_model = jax.lax.stop_gradient(v_model)
  gap = jnp.mean(partition.free_energy(params, v_data)) - jnp.mean(partition.free_energy(params, v_model))
  return gap + 0.5 * weight_decay * jnp.sum(params["weights"] ** 2)


def pseudo_log_likelihood(params: dict, v: Array, rng: Array) -> Array:
  """scikit-learn's stochastic pseudo-log-likelihood: V log sigmoid(F(v~) - F(v)), v~ = v with one
  random bit flipped per example ([batch]); NOT a log-likelihood, kept for comparison only."""
  num_visible = v.shape[-1]
  flip = jax.nn.one_hot(jax.random.randint(rng, (v.shape[0],), 0, num_visible), num_visible)
  v_flipped = jnp.abs(v - flip)
  return num_visible * jax.nn.log_sigmoid(
      partition.free_energy(params, v_flipped) - partition.free_energy(params, v))


def normalise_filters(weights: Array) -> Array:
  """Each column of W scaled to [0, 1] on its own range, so faint and strong filters both show."""
  low, high = jnp.min(weights, axis=0), jnp.max(weights, axis=0)
  return (weights - low) / jnp.maximum(high - low, 1e-8)


# ----------------------------------------------------------------------------- the family

@MODELS.register("rbm")
class RBMObjective:
  """The RBM family; `model.*` keys choose size, CD-k / PCD, sampling and the log Z estimator."""

  def __init__(self, config: ConfigDict):
    model = config.model
    self.dataset = config.dataset
    self.seed = int(config.seed)
    self.num_hidden = int(model.num_hidden)
    self.cd_k = int(model.get("cd_k", 1))
    self.persistent = bool(model.get("persistent", False))
    self.num_chains = int(model.get("num_chains", config.batch_size))
    self.weight_decay = float(model.get("weight_decay", 0.0))
    self.sample_gibbs_steps = int(model.get("sample_gibbs_steps", 1000))
    self.log_z_method = model.get("log_z_method", "auto")
    self.betas = partition.ais_betas(tuple(model.get("ais_breaks", partition.PAPER_BREAKS)),
                                     tuple(model.get("ais_counts", partition.PAPER_COUNTS)))
    self.ais_num_chains = int(model.get("ais_num_chains", 100))
    self.eval_batch_size = int(model.get("eval_batch_size", 1000))
    self.tx = make_optimizer(config.optimizer)

  @staticmethod
  def validate(config: ConfigDict) -> None:
    model = config.model
    for key, default, low in (("num_hidden", 500, 1), ("cd_k", 1, 1), ("num_chains", 100, 1),
                              ("sample_gibbs_steps", 1000, 1), ("ais_num_chains", 100, 2),
                              ("eval_batch_size", 1000, 1)):
      value = model.get(key, default)
      require(is_int(value) and value >= low,
              f"model.{key}", value, f"an integer >= {low}")
    persistent = model.get("persistent", False)
    require(isinstance(persistent, bool), "model.persistent", persistent, "True (PCD) or False (CD-k)")
    decay = model.get("weight_decay", 0.0)
    require(is_number(decay) and decay >= 0, "model.weight_decay", decay, "a number >= 0")
    method = model.get("log_z_method", "auto")
    require(method in LOG_Z_METHODS, "model.log_z_method", method, f"one of {LOG_Z_METHODS}")
    breaks = tuple(model.get("ais_breaks", partition.PAPER_BREAKS))
    counts = tuple(model.get("ais_counts", partition.PAPER_COUNTS))
    require(len(breaks) >= 1 and all(is_number(b) for b in breaks)
            and all(a < b for a, b in zip((0.0,) + breaks[:-1], breaks)) and breaks[-1] == 1.0,
            "model.ais_breaks", breaks, "increasing numbers in (0, 1] ending at 1.0")
    require(len(counts) == len(breaks) and all(isinstance(c, int) and c >= 1 for c in counts),
            "model.ais_counts", counts, f"{len(breaks)} integers >= 1 (one per entry of model.ais_breaks)")
    spec = dataset_spec(config.dataset)
    require(spec.kind == "image", "dataset.name", config.dataset.name, "an image dataset (the RBM's "
            "visible units are pixels)")
    shape = example_shape(config.dataset)
    smaller = min(int(np.prod(shape)), model.get("num_hidden", 500))
    require(method != "exact" or smaller <= partition.MAX_EXACT_UNITS, "model.log_z_method", method,
            f"'auto' or 'ais': exact log Z enumerates 2^{smaller} states (at most "
            f"{partition.MAX_EXACT_UNITS} units in the smaller layer)")
    binarize = config.dataset.get("binarize", False)
    if not binarize:
      x = load_dataset(config.dataset, "test")["x"]
      require(bool(np.all((x == 0) | (x == 1))), "dataset.binarize", binarize,
              f"True: a Bernoulli RBM needs binary data and {config.dataset.name!r} has values "
              f"strictly between 0 and 1")

  # -- pieces
  @functools.cached_property
  def data_shape(self) -> tuple[int, ...]:
    return example_shape(self.dataset)

  @functools.cached_property
  def num_visible(self) -> int:
    return int(np.prod(self.data_shape))

  def flat(self, x: Array) -> Array:
    return x.reshape(x.shape[0], -1).astype(jnp.float32)

  def images(self, v: Array) -> Array:
    return v.reshape((v.shape[0],) + self.data_shape)

  def binary(self, x: np.ndarray) -> np.ndarray:
    """The split as scored: a fixed seeded binarisation when dataset.binarize, else as stored."""
    x = np.asarray(x)
    return likelihood_bounds.binarize_test_set(x, self.seed) if self.dataset.get("binarize", False) else x

  @functools.cached_property
  def base_rate(self) -> np.ndarray:
    """log(p / (1 - p)) of the training set's pixel means (stochastic binarisation keeps the means)."""
    x = np.asarray(load_dataset(self.dataset, "train")["x"], np.float64).reshape(-1, self.num_visible)
    p = np.clip(x.mean(axis=0), partition.BASE_RATE_EPS, 1.0 - partition.BASE_RATE_EPS)
    return (np.log(p) - np.log1p(-p)).astype(np.float32)  # host-side: init is traced

  # -- protocol
  def init(self, rng: Array, batch: dict) -> TrainState:
    w_key, chain_key = jax.random.split(rng)
    base = jnp.asarray(self.base_rate)
    params = {"weights": INIT_WEIGHT_STD * jax.random.normal(w_key, (self.num_visible, self.num_hidden)),
              "visible_bias": base, "hidden_bias": jnp.zeros((self.num_hidden,))}
    extras = {"base_visible_bias": base}  # AIS's base-rate RBM, kept so a checkpoint is self-contained
    if self.persistent:  # fantasy particles start at the data's base rate
      extras["chains"] = jax.random.bernoulli(
          chain_key, jax.nn.sigmoid(base), (self.num_chains, self.num_visible)).astype(jnp.float32)
    return TrainState.create(rng, params, self.tx.init(params), extras)

  def step(self, state: TrainState, batch: dict, rng: Array):
    v_data = self.flat(batch["x"])
    start = state.extras["chains"] if self.persistent else v_data
    v_model, _ = gibbs_chain(state.params, start, rng, self.cd_k)
    loss, grads = jax.value_and_grad(contrastive_divergence)(state.params, v_data, v_model,
                                                             self.weight_decay)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    extras = {**state.extras, "chains": v_model} if self.persistent else state.extras
    # One-step mean-field reconstruction error: the usual (weak) progress signal of CD training.
    reconstruction = visible_probs(state.params, hidden_probs(state.params, v_data))
    metrics = {"loss": loss, "reconstruction_error": jnp.mean(jnp.sum((v_data - reconstruction) ** 2, -1)),
               "free_energy_data": jnp.mean(partition.free_energy(state.params, v_data))}
    return state.replace(params=params, opt_state=opt_state, extras=extras), metrics

  # -- abilities
  def reconstruct(self, state: TrainState, x: Array) -> Array:
    """One mean-field step v -> p(h | v) -> p(v | h), as images."""
    p = state.params
    return self.images(visible_probs(p, hidden_probs(p, self.flat(x))))

  def sample(self, state: TrainState, rng: Array, n: int) -> Array:
    """Mean-field visibles after `model.sample_gibbs_steps` Gibbs sweeps from uniform random v."""
    start_key, chain_key = jax.random.split(rng)
    v = jax.random.bernoulli(start_key, 0.5, (n, self.num_visible)).astype(jnp.float32)
    _, v_mean = gibbs_chain(state.params, v, chain_key, self.sample_gibbs_steps)
    return self.images(v_mean)

  def filters(self, state: TrainState, n: int = PICTURE_FILTERS) -> Array:
    """The first n columns of W as images, each scaled to [0, 1]."""
    weights = normalise_filters(state.params["weights"][:, :n])
    return self.images(weights.T)

  def pictures(self, state: TrainState, batch: dict, rng: Array) -> dict[str, Any]:
    x = batch["x"][:max(GRID_COLUMNS, min(32, batch["x"].shape[0] // GRID_COLUMNS * GRID_COLUMNS))]
    pairs = jnp.stack([x, self.reconstruct(state, x)]).reshape((2, -1, GRID_COLUMNS) + x.shape[1:])
    return {"samples": self.sample(state, rng, PICTURE_SAMPLES), "filters": self.filters(state),
            "reconstructions": jnp.swapaxes(pairs, 0, 1).reshape((-1, GRID_COLUMNS) + x.shape[1:])}

  def resolved_method(self, method: str = "auto") -> str:
    """'exact' when the smaller layer can be enumerated (or asked for), else 'ais'."""
    if method == "auto":
      small = min(self.num_visible, self.num_hidden) <= partition.MAX_EXACT_UNITS
      return "exact" if small else "ais"
    return method

  @functools.cached_property
  def _ais(self):
    betas = jnp.asarray(self.betas)
    return xla_options.jit(lambda params, base, key, chains: partition.ais_log_partition(
        params, base, betas, key, chains), static_argnums=3)

  @functools.cached_property
  def _exact(self):
    return xla_options.jit(partition.exact_log_partition)

  def log_partition(self, state: TrainState, rng: Array, method: str = "auto",
                    num_chains: int | None = None) -> dict[str, Any]:
    """{'log_z', 'method'} and for AIS 'log_z_std', 'log_z_lower', 'log_z_upper' (+-3 std)."""
    method = self.resolved_method(method)
    if method == "exact":
      return {"log_z": float(self._exact(state.params)), "method": "exact"}
    if method != "ais":
      raise ValueError(f"method={method!r}; expected one of {LOG_Z_METHODS}")
    result = self._ais(state.params, state.extras["base_visible_bias"], rng,
                       int(num_chains or self.ais_num_chains))
    return {**{k: float(v) for k, v in result.items()}, "method": "ais",
            "ais_num_chains": int(num_chains or self.ais_num_chains), "ais_num_betas": len(self.betas) - 1}

  def log_likelihood(self, state: TrainState, x: Array, rng: Array,
                     num_samples: int | None = None) -> Array:
    """log p(x) = -F(x) - log Z per example (nats); log Z by `model.log_z_method`, AIS with
    `num_samples` runs when given (default `model.ais_num_chains`)."""
    log_z = self.log_partition(state, rng, self.log_z_method, num_samples)["log_z"]
    return -partition.free_energy(state.params, self.flat(jnp.asarray(x))) - log_z

  @functools.cached_property
  def _split_terms(self):
    """(params, x, key) -> per-example -F(v) and pseudo-log-likelihood, jitted once per objective."""
    return xla_options.jit(lambda params, x, key: {
        "negative_free_energy": -partition.free_energy(params, self.flat(x)),
        "pseudo_log_likelihood": pseudo_log_likelihood(params, self.flat(x), key)})

  def split_means(self, state: TrainState, x: np.ndarray, rng: Array) -> dict[str, float]:
    """Means over a split of -F(v) and the pseudo-log-likelihood, in batches padded to one shape."""
    return likelihood_bounds.dataset_means(
        lambda xb, i: self._split_terms(state.params, jnp.asarray(xb), jax.random.fold_in(rng, i)),
        eval_batches({"x": x}, self.eval_batch_size), pad_to=self.eval_batch_size, total=len(x))

  def evaluate(self, state: TrainState, arrays: dict, rng: Array) -> dict[str, Any]:
    """log Z (AIS, and exact when the smaller layer has <= 20 units) and mean log p(v) on the test and
    training splits; with dataset.binarize both are binarised once from a fixed seed."""
    ais_key, test_key, train_key = jax.random.split(rng, 3)
    ais = self.log_partition(state, ais_key, "ais")
    results = {"log_z_ais": ais["log_z"], "log_z_ais_std": ais["log_z_std"],
               "log_z_ais_lower": ais["log_z_lower"], "log_z_ais_upper": ais["log_z_upper"],
               "ais_num_chains": ais["ais_num_chains"], "ais_num_betas": ais["ais_num_betas"]}
    method = self.resolved_method(self.log_z_method)
    if method == "exact":
      results["log_z_exact"] = self.log_partition(state, ais_key, "exact")["log_z"]
    log_z = results["log_z_exact"] if method == "exact" else ais["log_z"]
    test = self.split_means(state, self.binary(arrays["x"]), test_key)
    train = self.split_means(state, self.binary(load_dataset(self.dataset, "train")["x"]), train_key)
    return {**results, "log_z": log_z, "log_z_std": 0.0 if method == "exact" else ais["log_z_std"],
            "log_z_method": method,
            "test_log_likelihood": test["negative_free_energy"] - log_z,
            "train_log_likelihood": train["negative_free_energy"] - log_z,
            "pseudo_log_likelihood": test["pseudo_log_likelihood"],
            "pseudo_log_likelihood_note": "scikit-learn's one-bit-flip estimate on the test set, not "
                                          "a log-likelihood",
            "num_test_examples": test["num_examples"], "num_train_examples": train["num_examples"],
            "binarized_test_set": bool(self.dataset.get("binarize", False)),
            "units": "nats per image"}

"""The lecture's GAN theory as pure functions: divergences by quadrature, and critics that estimate them.

A distribution is a vector of density values on a grid together with the grid's quadrature weights
(`trapezoid_weights`), so every integral of the lecture is a weighted sum; a discrete distribution is
the same with probability masses and unit weights. Then

  D*(x) = p_data / (p_data + p_G)                                  (Goodfellow et al. 2014, Prop. 1)
  V(G, D) = int p_data log D + p_G log(1 - D)                      (Goodfellow et al. 2014, eq. 1)
  V(G, D*) = -log 4 + 2 JSD(p_data || p_G)                         (Goodfellow et al. 2014, Thm. 1)

and the Wasserstein example of the lecture (Arjovsky et al. 2017, Example 1): p = (0, U[0, 1]) and
q = (theta, U[0, 1]) share their uniform second coordinate, so every divergence between them is the
divergence between their first coordinates, point masses at 0 and theta (`parallel_lines`):
KL = +inf and JSD = log 2 whenever theta != 0, while W(p, q) = |theta|.

The critics (`fit_critic`) are trained on samples with optax: a GAN discriminator's value estimates
-log 4 + 2 JSD, a Lipschitz critic's gap E_p f - E_q f estimates W (Kantorovich-Rubinstein duality).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax import losses
from genjax.layers.networks import MLP

Array = jax.Array
LOG4 = math.log(4.0)


# ----------------------------------------------------------------------------- densities on a grid

def trapezoid_weights(grid: np.ndarray) -> np.ndarray:
  """Weights w with sum(w * f(grid)) = the trapezoid rule for int f over [grid[0], grid[-1]]."""
  grid = np.asarray(grid, np.float64)
  gaps = np.diff(grid)
  return np.concatenate([gaps, [0.0]]) / 2 + np.concatenate([[0.0], gaps]) / 2


def gaussian_mixture_density(x: np.ndarray, means: Sequence[float], stds: Sequence[float],
                             weights: Sequence[float] | None = None) -> np.ndarray:
  """sum_k w_k N(x; mu_k, s_k^2) in 1-D; equal weights by default."""
  x = np.asarray(x, np.float64)[..., None]
  means, stds = np.asarray(means, np.float64), np.asarray(stds, np.float64)
  weights = np.full(len(means), 1.0 / len(means)) if weights is None else np.asarray(weights, np.float64)
  normal = np.exp(-0.5 * np.square((x - means) / stds)) / (stds * math.sqrt(2 * math.pi))
  return np.sum(weights * normal, axis=-1)


def cdf_table(density: np.ndarray, grid: np.ndarray) -> np.ndarray:
  """F on `grid` by the trapezoid rule, normalised to F(grid[-1]) = 1."""
  density, grid = np.asarray(density, np.float64), np.asarray(grid, np.float64)
  cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
  return cdf / cdf[-1]


def stratified_sample(cdf: Array, grid: Array, key: Array, n: int) -> Array:
  """[n, 1] draws F^{-1}((i + U_i) / n) (F^{-1} by linear interpolation of the table): unbiased
  for E_p, with far less variance than i.i.d. draws."""
  u = (jnp.arange(n) + jax.random.uniform(key, (n,))) / n
  return jnp.interp(u, cdf, grid)[:, None]


# ----------------------------------------------------------------------------- divergences

def _xlogy_ratio(p: np.ndarray, q: np.ndarray) -> np.ndarray:
  """p log(p / q) with 0 log(0 / q) = 0 and p log(p / 0) = +inf for p > 0."""
  p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
  with np.errstate(divide="ignore", invalid="ignore"):
    terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
  return terms


def kl_divergence(p: np.ndarray, q: np.ndarray, weights: np.ndarray | float = 1.0) -> float:
  """KL(p || q) = int p log(p / q); +inf when p puts mass where q has none."""
  return float(np.sum(np.asarray(weights) * _xlogy_ratio(p, q)))


def js_divergence(p: np.ndarray, q: np.ndarray, weights: np.ndarray | float = 1.0) -> float:
  """JSD(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2 (the lecture's definition); <= log 2."""
  m = (np.asarray(p, np.float64) + np.asarray(q, np.float64)) / 2
  return 0.5 * kl_divergence(p, m, weights) + 0.5 * kl_divergence(q, m, weights)


def optimal_discriminator(p_data: np.ndarray, p_g: np.ndarray) -> np.ndarray:
  """D*(x) = p_data / (p_data + p_G); 1/2 where both vanish (there every D is optimal)."""
  p_data, p_g = np.asarray(p_data, np.float64), np.asarray(p_g, np.float64)
  total = p_data + p_g
  return np.where(total > 0, p_data / np.where(total > 0, total, 1.0), 0.5)


def game_value(discriminator: np.ndarray, p_data: np.ndarray, p_g: np.ndarray,
               weights: np.ndarray | float = 1.0) -> float:
  """V(G, D) = int p_data log D + p_G log(1 - D), with 0 log 0 = 0."""
  d = np.asarray(discriminator, np.float64)
  p_data, p_g = np.asarray(p_data, np.float64), np.asarray(p_g, np.float64)
  with np.errstate(divide="ignore", invalid="ignore"):
    terms = (np.where(p_data > 0, p_data * np.log(d), 0.0)
             + np.where(p_g > 0, p_g * np.log1p(-d), 0.0))
  return float(np.sum(np.asarray(weights) * terms))


def wasserstein_1d(points_p: np.ndarray, masses_p: np.ndarray, points_q: np.ndarray,
                   masses_q: np.ndarray) -> float:
  """W_1 of two discrete distributions on the line: int |F_p(t) - F_q(t)| dt over the merged support."""
  points = np.concatenate([points_p, points_q]).astype(np.float64)
  masses = np.concatenate([masses_p, -np.asarray(masses_q)]).astype(np.float64)
  order = np.argsort(points, kind="stable")
  cdf_gap = np.cumsum(masses[order])[:-1]
  return float(np.sum(np.abs(cdf_gap) * np.diff(points[order])))


def parallel_lines(theta: float) -> dict[str, np.ndarray]:
  """First coordinates of p = (0, U) and q = (theta, U) as masses on the support {0, theta}."""
  if theta == 0:
    return {"points": np.zeros(1), "p": np.ones(1), "q": np.ones(1)}
  return {"points": np.array([0.0, theta]), "p": np.array([1.0, 0.0]), "q": np.array([0.0, 1.0])}


def parallel_lines_divergences(theta: float) -> dict[str, float]:
  """KL(p || q), JSD(p, q), V(G, D*) and W(p, q) of the lecture's example, from the functions above."""
  lines = parallel_lines(theta)
  p, q = lines["p"], lines["q"]
  return {"kl": kl_divergence(p, q), "jsd": js_divergence(p, q),
          "optimal_value": game_value(optimal_discriminator(p, q), p, q),
          "wasserstein": wasserstein_1d(lines["points"], p, lines["points"], q)}


def parallel_lines_sample(key: Array, theta: Array, n: int) -> Array:
  """[n, 2] draws of (theta, U[0, 1])."""
  return jnp.stack([jnp.full((n,), theta, jnp.float32), jax.random.uniform(key, (n,))], axis=1)


def penalised_linear_gap(distance: float, gp_weight: float) -> float:
  """Gap of the best critic f = k <u, x> under the gradient penalty, for two distributions W apart
  along u: max_k k W - lambda (k - 1)^2 at k = 1 + W / (2 lambda), so the gap is W + W^2 / (2 lambda)."""
  return distance + distance ** 2 / (2 * gp_weight)


# ----------------------------------------------------------------------------- critics trained on samples

def critic_scores(net: nn.Module, params, x: Array) -> Array:
  """f(x) [B] of a genjax network with one output (logits of D for a GAN discriminator)."""
  return net.apply({"params": params}, x, train=False)[:, 0]


def discriminator_loss(net: nn.Module) -> Callable:
  """(params, real, fake, key) -> -V estimated on the batch (Goodfellow et al. eq. 1, negated)."""
  return lambda params, real, fake, key: losses.gan_discriminator_loss(
      critic_scores(net, params, real), critic_scores(net, params, fake))


def wasserstein_loss(net: nn.Module, gp_weight: float = 0.0) -> Callable:
  """(params, real, fake, key) -> -(E f(real) - E f(fake)) + lambda GP (Gulrajani et al. eq. 3)."""
  def loss(params, real, fake, key):
    score = lambda x: critic_scores(net, params, x)
    value = losses.wasserstein_critic_loss(score(real), score(fake))
    if not gp_weight:
      return value
    return value + gp_weight * losses.gradient_penalty(score, real, fake, key)
  return loss


def fit_critic(net: nn.Module, loss_fn: Callable, draw: Callable[[Array], tuple[Array, Array]],
               key: Array, num_steps: int, tx: optax.GradientTransformation,
               project: Callable = lambda params: params):
  """Minimises loss_fn(params, real, fake, key) over `num_steps` fresh batches draw(key) -> (real, fake).

  `project` is applied after every update (weight clipping: Arjovsky et al. Alg. 1 line 7). Pure in
  its arguments, so it jits and vmaps over keys or over whatever `draw` closes over. Returns
  (params, the loss at every step).
  """
  init_key, train_key = jax.random.split(key)
  real, _ = draw(init_key)
  params = project(net.init(init_key, real[:1], train=False)["params"])

  def update(carry, step_key):
    params, opt_state = carry
    batch_key, loss_key = jax.random.split(step_key)
    real, fake = draw(batch_key)
    value, grads = jax.value_and_grad(loss_fn)(params, real, fake, loss_key)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (project(optax.apply_updates(params, updates)), opt_state), value

  (params, _), trace = jax.lax.scan(update, (params, tx.init(params)),
                                    jax.random.split(train_key, num_steps))
  return params, trace


def fit_discriminators_1d(pairs: Sequence[tuple[np.ndarray, np.ndarray]], grid: np.ndarray, key: Array,
                          num_steps: int, batch_size: int = 512, hidden: Sequence[int] = (32, 32),
                          learning_rate: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
  """Trains one GAN discriminator (tanh MLP, Adam with cosine decay) per (p_data, p_G) pair of 1-D
  densities on `grid`, all pairs in one vmap, on stratified draws of both.

  Returns (D on the grid [pairs, len(grid)], the loss at every step [pairs, num_steps]).
  """
  net = MLP(tuple(hidden), 1, activation="tanh")
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps))
  grid32 = jnp.asarray(grid, jnp.float32)

  def one(cdf_data, cdf_g, key):
    def draw(k):
      a, b = jax.random.split(k)
      return (stratified_sample(cdf_data, grid32, a, batch_size),
              stratified_sample(cdf_g, grid32, b, batch_size))
    params, trace = fit_critic(net, discriminator_loss(net), draw, key, num_steps, tx)
    return jax.nn.sigmoid(critic_scores(net, params, grid32[:, None])), trace

  tables = [jnp.asarray(np.stack([cdf_table(pair[i], grid) for pair in pairs]), jnp.float32)
            for i in (0, 1)]
  d, trace = jax.jit(jax.vmap(one))(*tables, jax.random.split(key, len(pairs)))
  return np.asarray(d, np.float64), np.asarray(trace)


def lipschitz_normalised_gap(net: nn.Module, params, real: Array, fake: Array, key: Array) -> Array:
  """(E f(real) - E f(fake)) / mean ||grad f|| on interpolates: the gap of f rescaled to unit slope,
  which removes the gradient penalty's overshoot (k = 1 + W / (2 lambda) > 1)."""
  score = lambda x: critic_scores(net, params, x)
  eps = jax.random.uniform(key, (real.shape[0], 1))
  grads = jax.grad(lambda x: jnp.sum(score(x)))(eps * real + (1 - eps) * fake)
  slope = jnp.mean(jnp.linalg.norm(grads, axis=1))
  return (jnp.mean(score(real)) - jnp.mean(score(fake))) / slope


# ----------------------------------------------------------------------------- the lecture's example, swept

# critic kind -> (loss builder(net, config), optimizer(config), projection(config)); config is a dict.
LINE_CRITICS: dict[str, tuple[Callable, Callable, Callable]] = {
    "gan": (lambda net, c: discriminator_loss(net),
            lambda c: optax.adam(c["learning_rate"]), lambda c: (lambda params: params)),
    "gradient_penalty": (lambda net, c: wasserstein_loss(net, c["gp_weight"]),
                         lambda c: optax.adam(c["learning_rate"], b1=0.5, b2=0.9),
                         lambda c: (lambda params: params)),
    "clip": (lambda net, c: wasserstein_loss(net),
             lambda c: optax.rmsprop(c["learning_rate"]),
             lambda c: (lambda params: losses.clip_weights(params, c["clip_value"]))),
}
LINE_CRITIC_DEFAULTS = {"gan": {"learning_rate": 1e-3},
                        "gradient_penalty": {"learning_rate": 1e-3, "gp_weight": 10.0},
                        "clip": {"learning_rate": 3e-4, "clip_value": 0.01}}


def _lines_critic(kind: str, net: nn.Module, batch_size: int, eval_size: int, num_steps: int,
                  config: dict) -> Callable[[Array, Array], dict[str, Array]]:
  """(theta, key) -> the estimates of one critic of `kind` trained on p = (0, U) vs q = (theta, U)."""
  build_loss, build_tx, build_project = LINE_CRITICS[kind]
  loss_fn, tx, project = build_loss(net, config), build_tx(config), build_project(config)

  def one(theta, key):
    def draw(k, n=batch_size):
      a, b = jax.random.split(k)
      return parallel_lines_sample(a, 0.0, n), parallel_lines_sample(b, theta, n)
    train_key, eval_key, slope_key = jax.random.split(key, 3)
    params, trace = fit_critic(net, loss_fn, draw, train_key, num_steps, tx, project)
    real, fake = draw(eval_key, eval_size)
    if kind == "gan":
      return {"loss": trace, "value": -discriminator_loss(net)(params, real, fake, None)}
    return {"loss": trace,
            "gap": -losses.wasserstein_critic_loss(critic_scores(net, params, real),
                                                   critic_scores(net, params, fake)),
            "normalised_gap": lipschitz_normalised_gap(net, params, real, fake, slope_key)}
  return one


def lines_sweep(thetas: Sequence[float], key: Array, num_steps: int,
                kinds: Sequence[str] = tuple(LINE_CRITICS), batch_size: int = 256,
                hidden: Sequence[int] = (64, 64), eval_size: int = 4096,
                settings: dict[str, dict] | None = None) -> dict[str, dict[str, np.ndarray]]:
  """Trains one critic per kind and theta on p = (0, U) vs q = (theta, U), as ONE compiled program.

  Returns {kind: estimates per theta}: 'value' (the discriminator's game value E_p log D +
  E_q log(1 - D), kind 'gan'), or 'gap' (E_p f - E_q f) and 'normalised_gap' (the gap at unit
  slope), on fresh samples, plus the training 'loss' [thetas, num_steps]. Every theta and kind uses
  the same initial weights and draws (common random numbers), so the critics differ only through
  theta and the objective. `settings` overrides LINE_CRITIC_DEFAULTS per kind.
  """
  net = MLP(tuple(hidden), 1, activation="relu")
  critics = {kind: _lines_critic(kind, net, batch_size, eval_size, num_steps,
                                 dict(LINE_CRITIC_DEFAULTS[kind], **(settings or {}).get(kind, {})))
             for kind in kinds}
  sweep = jax.jit(jax.vmap(lambda theta, key: {kind: fn(theta, key) for kind, fn in critics.items()},
                           in_axes=(0, None)))
  return jax.tree_util.tree_map(np.asarray, sweep(jnp.asarray(thetas, jnp.float32), key))

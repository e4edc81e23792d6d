"""Losses of the lecture as pure functions of arrays: no modules, no state.

Per-example functions return shape [batch] (sums over every non-batch axis); the adversarial
losses return the batch mean, as they appear in the minimax / Wasserstein objectives.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def _sum_per_example(values: Array) -> Array:
  return jnp.sum(values.reshape(values.shape[0], -1), axis=1)


# ----------------------------------------------------------------------------- autoencoders

def squared_error(reconstruction: Array, target: Array) -> Array:
  """Seed eq. L(x) = ||Phi_d(Phi_e(x)) - x||_2^2, per example."""
  return _sum_per_example(jnp.square(reconstruction - target))


def sigmoid_cross_entropy(logits: Array, target: Array) -> Array:
  """Bernoulli reconstruction loss -sum[x log s(l) + (1-x) log(1-s(l))] in logits, per example."""
  return -bernoulli_log_likelihood(logits, target)


def l1_sparsity(z: Array) -> Array:
  """Seed sparse AE term ||z||_1, per example (multiply by lambda in the objective)."""
  return _sum_per_example(jnp.abs(z))


def jacobian_frobenius_penalty(encode_fn: Callable[[Array], Array], x: Array,
                               mode: str = "fwd") -> Array:
  """Seed contractive AE term ||J_x E(x)||_F^2, per example.

  `encode_fn` maps ONE example (no batch axis) to its code. `mode='fwd'` uses `jax.jacfwd` (one
  tangent per input element, right when the code is wider than the input); 'rev' uses
  `jax.jacrev` (one cotangent per code element); 'auto' picks reverse mode when the code is
  smaller than the input, which is the usual bottleneck case and far cheaper there.
  """
  if mode == "auto":
    code_size = math.prod(jax.eval_shape(encode_fn, x[0]).shape)
    mode = "rev" if code_size < math.prod(x.shape[1:]) else "fwd"
  jacobian_fns = {"fwd": jax.jacfwd, "rev": jax.jacrev}
  if mode not in jacobian_fns:
    raise ValueError(f"jacobian mode must be 'fwd', 'rev' or 'auto', got {mode!r}")
  jacobian = jax.vmap(jacobian_fns[mode](encode_fn))(x)
  return _sum_per_example(jnp.square(jacobian))


def _chain_costs(kernels: list[Array]) -> dict[str, int]:
  """Multiply-adds per example of the two Gram chains: from the input side and from the code side."""
  widths = [k.shape[1] for k in kernels[:-1]]
  code = kernels[-1].shape[1]
  pairs = list(zip(widths[:-1], widths[1:]))
  return {"input": sum(a * a * b + a * b * b for a, b in pairs) + widths[-1] ** 2,
          "output": code * (sum(a * b for a, b in pairs) + widths[0] ** 2)}


def mlp_jacobian_frobenius(kernels: list[Array], slopes: list[Array], side: str = "auto") -> Array:
  """||J||_F^2 per example of an MLP z = act(...act(x K_1)...) K_L, without forming J.

  J = K_L^T D_{L-1} K_{L-1}^T ... D_1 K_1^T with D_l = diag(slopes[l-1]) (activation derivatives,
  [batch, width_l]); the input width only enters through G = K_1^T K_1, shared by the batch.
  side='input': Gram chain G_{l+1} = K_{l+1}^T (s_l s_l^T o G_l) K_{l+1}, ||J||_F^2 = tr(G_L)
  (width^2 per example for one hidden layer). side='output': M = K_L^T D_{L-1} ... D_1 [code, h_1]
  per example, ||J||_F^2 = tr(M G M^T) (cheaper for deep encoders with a narrow code).
  'auto' takes the side with fewer multiply-adds.
  """
  if len(kernels) < 2:
    raise ValueError("mlp_jacobian_frobenius needs at least one hidden layer")
  if side not in ("auto", "input", "output"):
    raise ValueError(f"side must be 'auto', 'input' or 'output', not {side!r}")
  if side == "auto":
    costs = _chain_costs(kernels)
    side = min(costs, key=costs.get)
  gram = kernels[0].T @ kernels[0]  # [h1, h1]
  if side == "output":
    m = kernels[-1].T[None] * slopes[-1][:, None, :]  # [batch, code, h_{L-1}]
    for kernel, s in zip(reversed(kernels[1:-1]), reversed(slopes[:-1])):
      m = jnp.einsum("bzo,io->bzi", m, kernel) * s[:, None, :]
    return jnp.einsum("bzi,ij,bzj->b", m, gram, m)
  for kernel, s in zip(kernels[1:-1], slopes[:-1]):
    gram = jnp.einsum("bij,bi,bj,io,jp->bop" if gram.ndim == 3 else "ij,bi,bj,io,jp->bop",
                      gram, s, s, kernel, kernel)
  s = slopes[-1]
  return jnp.einsum("bij,bi,bj,ij->b" if gram.ndim == 3 else "ij,bi,bj,ij->b",
                    gram, s, s, kernels[-1] @ kernels[-1].T)


# ----------------------------------------------------------------------------- VAEs

def gaussian_kl(mean: Array, logvar: Array) -> Array:
  """Kingma & Welling (2014) App. B: KL(N(mu, s^2) || N(0, I)) = -1/2 sum(1 + log s^2 - mu^2 - s^2)."""
  return -0.5 * _sum_per_example(1.0 + logvar - jnp.square(mean) - jnp.exp(logvar))


def bernoulli_log_likelihood(logits: Array, x: Array) -> Array:
  """log p(x | l) = sum[x l - softplus(l)] (= x log s(l) + (1-x) log(1-s(l)), no log of a sigmoid)."""
  return _sum_per_example(x * logits - jax.nn.softplus(logits))


def gaussian_log_likelihood(x: Array, mean: Array, logvar: Array) -> Array:
  """log N(x; mu, s^2) = -1/2 sum[log 2pi + log s^2 + (x - mu)^2 / s^2], per example."""
  logvar = jnp.broadcast_to(logvar, x.shape)
  return -0.5 * _sum_per_example(
      math.log(2 * math.pi) + logvar + jnp.square(x - mean) * jnp.exp(-logvar))


def standard_normal_log_density(z: Array) -> Array:
  """log N(z; 0, I), per example."""
  return gaussian_log_likelihood(z, jnp.zeros_like(z), jnp.zeros_like(z))


def elbo(log_likelihood: Array, kl: Array, beta: float | Array = 1.0) -> Array:
  """Kingma & Welling eq. 3 (with beta-VAE weight): L = E_q[log p(x|z)] - beta KL(q(z|x) || p(z))."""
  return log_likelihood - beta * kl


def iwae_bound(log_weights: Array) -> Array:
  """Burda et al. (2016) eq. 8: L_k = log (1/k) sum_i w_i, with log_weights of shape [k, batch]."""
  k = log_weights.shape[0]
  return jax.nn.logsumexp(log_weights, axis=0) - math.log(k)


# ----------------------------------------------------------------------------- GANs

def gan_discriminator_loss(real_logits: Array, fake_logits: Array) -> Array:
  """Goodfellow et al. (2014) eq. 1, negated: -E[log D(x)] - E[log(1 - D(G(z)))], in logits."""
  return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def gan_generator_loss(fake_logits: Array, non_saturating: bool = True) -> Array:
  """Goodfellow et al. (2014): minimise E[log(1 - D(G(z)))] (saturating) or -E[log D(G(z))]."""
  if non_saturating:
    return jnp.mean(jax.nn.softplus(-fake_logits))
  return -jnp.mean(jax.nn.softplus(fake_logits))


def wasserstein_critic_loss(real_scores: Array, fake_scores: Array) -> Array:
  """Arjovsky et al. (2017) Alg. 1: the critic maximises E[f(x)] - E[f(G(z))]; this is its negation."""
  return jnp.mean(fake_scores) - jnp.mean(real_scores)


def wasserstein_generator_loss(fake_scores: Array) -> Array:
  """Arjovsky et al. (2017) Alg. 1: the generator minimises -E[f(G(z))]."""
  return -jnp.mean(fake_scores)


def least_squares_critic_loss(real_scores: Array, fake_scores: Array) -> Array:
  """Mao et al. (2017) eq. 2 with a = 0, b = 1: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
  return 0.5 * jnp.mean(jnp.square(real_scores - 1.0)) + 0.5 * jnp.mean(jnp.square(fake_scores))


def least_squares_generator_loss(fake_scores: Array) -> Array:
  """Mao et al. (2017) eq. 2 with c = 1: 1/2 E[(D(G(z)) - 1)^2]."""
  return 0.5 * jnp.mean(jnp.square(fake_scores - 1.0))


def mean_absolute_error(output: Array, target: Array) -> Array:
  """Isola et al. (2017) eq. 3: L_L1 = E[||y - G(x, z)||_1], averaged over pixels."""
  return jnp.mean(jnp.abs(target - output))


def clip_weights(params, c: float):
  """Arjovsky et al. (2017) Alg. 1 line 7: w <- clip(w, -c, c), a projection applied to every leaf."""
  return jax.tree_util.tree_map(lambda w: jnp.clip(w, -c, c), params)


def gradient_penalty(critic_fn: Callable[[Array], Array], real: Array, fake: Array,
                     key: Array) -> Array:
  """Gulrajani et al. (2017) eq. 3: E[(||grad f(x_hat)||_2 - 1)^2], x_hat = e x + (1 - e) G(z)."""
  eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
  eps = jax.random.uniform(key, eps_shape, dtype=real.dtype)
  interpolates = eps * real + (1.0 - eps) * fake
  grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(interpolates)
  norms = jnp.sqrt(_sum_per_example(jnp.square(grads)) + 1e-12)
  return jnp.mean(jnp.square(norms - 1.0))


def r1_penalty(critic_fn: Callable[[Array], Array], real: Array) -> Array:
  """Mescheder et al. (2018) eq. 9 without gamma / 2: E_x[||grad_x D(x)||^2] on real data only."""
  grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(real)
  return jnp.mean(_sum_per_example(jnp.square(grads)))

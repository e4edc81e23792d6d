"""Real NVP (multi-scale, variational or uniform dequantization): a minimal JAX step and PyTorch eager.

Both compute the training objective of genjax/models/flow.py: bits/dim of the dequantized pixels,
-E[log p(z) + log|det| - log q(u|x)] / (D ln 2) + log2 L, with Adam after clipping the global
gradient norm. The minimal step reuses genjax's `Flow` modules; the PyTorch one is the same flow
(genjax's masks, squeeze order, factor-out, ResNet conditioners, bounded scales) written in NCHW.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from genjax import data as genjax_data
from genjax.layers.coupling import MASKS, Flow, plan

# ----------------------------------------------------------------------------- minimal JAX


def _flows(config: ConfigDict, image: tuple) -> tuple[Flow, Flow]:
  """(the flow, the dequantizer's conditional flow) as FlowObjective builds them."""
  m = config.model
  flow = Flow(tuple(m.layers), image, tuple(m.widths), int(m.blocks), bool(m.actnorm))
  dequant = Flow(tuple(m.dequant_layers), image, tuple(m.dequant_widths), int(m.dequant_blocks))
  return flow, dequant


def _per_example(values):
  return values.reshape(values.shape[0], -1).sum(1)


def minimal_flow(config: ConfigDict, x: jax.Array):
  from benchmarks.workloads import _jit_step
  m = config.model
  flow, dequant = _flows(config, x.shape[1:])
  levels, alpha, dims = genjax_data.levels(config.dataset), float(m.logit_alpha), math.prod(x.shape[1:])
  variational = m.dequantization == "variational"

  def dequantize(p, x, key):
    """(u, log q(u|x)): sigmoid of a conditional flow of logistic noise, or uniform noise."""
    if not variational:
      return jax.random.uniform(key, x.shape), jnp.zeros(x.shape[0])
    e = jax.random.logistic(key, x.shape)
    e_out, log_det = dequant.apply({"params": p["dequantizer"]}, e, context=2 * x - 1)
    e_out = e_out.reshape(x.shape)
    log_sigmoid_grad = _per_example(jax.nn.log_sigmoid(e_out) + jax.nn.log_sigmoid(-e_out))
    return jax.nn.sigmoid(e_out), _per_example(jax.nn.log_sigmoid(e) + jax.nn.log_sigmoid(-e)) - log_det - log_sigmoid_grad

  def logit(v):
    s = alpha + (1 - 2 * alpha) * v
    return jnp.log(s) - jnp.log1p(-s), _per_example(math.log1p(-2 * alpha) - jnp.log(s) - jnp.log1p(-s))

  def loss_fn(p, x, key):
    u, log_q = dequantize(p, x, key)
    y, logit_log_det = logit((jnp.round(x * (levels - 1)) + u) / levels)
    z, log_det = flow.apply({"params": p["flow"]}, y)
    log_w = -0.5 * jnp.sum(z * z + math.log(2 * math.pi), -1) + log_det + logit_log_det - log_q
    return -jnp.mean(log_w - dims * math.log(levels)) / (dims * math.log(2.0))

  k1, k2 = jax.random.split(jax.random.key(0))
  params = {"dequantizer": dequant.init(k1, x, context=2 * x - 1)["params"] if variational else {}}
  params["flow"] = flow.init(k2, logit(jnp.full_like(x, 0.5))[0])["params"]
  tx = optax.chain(optax.clip_by_global_norm(config.optimizer.grad_clip_norm),
                   optax.adam(config.optimizer.learning_rate))

  def update(p, opt, extras, x, key):
    loss, grads = jax.value_and_grad(loss_fn)(p, x, key)
    updates, opt = tx.update(grads, opt, p)
    return optax.apply_updates(p, updates), opt, extras, loss

  return _jit_step(update), (params, tx.init(params), {}, jax.random.key(1), jnp.zeros((), jnp.int32))


# ----------------------------------------------------------------------------- PyTorch


def torch_flow_modules(torch, ops: tuple, image: tuple, widths: tuple, blocks: int, context_channels: int = 0):
  """genjax.layers.coupling.Flow in NCHW; parameter names follow flax's (layers.N.ResNetConditioner_0.conv_in.weight)."""
  nn, F = torch.nn, torch.nn.functional

  class Conditioner(nn.Module):
    """ResNetConditioner: conv 3x3, `blocks` x (elu, conv 3x3, elu, conv 1x1, residual), elu, zero conv 3x3."""

    def __init__(self, cin, width, cout):
      super().__init__()
      self.conv_in = nn.Conv2d(cin, width, 3, padding=1)
      for i in range(blocks):
        self.add_module(f"block{i}_a", nn.Conv2d(width, width, 3, padding=1))
        self.add_module(f"block{i}_b", nn.Conv2d(width, width, 1))
      self.conv_out = nn.Conv2d(width, cout, 3, padding=1)
      nn.init.zeros_(self.conv_out.weight)
      nn.init.zeros_(self.conv_out.bias)

    def forward(self, x):
      h = self.conv_in(x)
      for i in range(blocks):
        r = getattr(self, f"block{i}_a")(F.elu(h))
        h = h + getattr(self, f"block{i}_b")(F.elu(r))
      return self.conv_out(F.elu(h))

  class Coupling(nn.Module):
    """AffineCoupling: y = b x + (1 - b)(x exp(s) + t), s bounded by c tanh(s_raw / c) per channel."""

    def __init__(self, mask: str, parity: int, shape: tuple, width: int):
      super().__init__()
      h, w, c = shape
      self.register_buffer("b", torch.from_numpy(np.moveaxis(MASKS[mask](shape, parity), -1, 0).copy())[None])
      self.ResNetConditioner_0 = Conditioner(c + context_channels, width, 2 * c)
      self.log_s_bound = nn.Parameter(torch.zeros(c))

    def forward(self, x, log_det, context=None):
      inputs = x * self.b if context is None else torch.cat([x * self.b, context], 1)
      s_raw, t = self.ResNetConditioner_0(inputs).chunk(2, 1)
      bound = self.log_s_bound.exp()[None, :, None, None]
      s = bound * torch.tanh(s_raw / bound) * (1 - self.b)
      return x * s.exp() + t * (1 - self.b), log_det + s.sum((1, 2, 3))

  class TorchFlow(nn.Module):
    def __init__(self):
      super().__init__()
      shapes, layers, parities, level = plan(ops, image), [], {k: 0 for k in MASKS}, 0
      for op, shape in zip(ops, shapes):
        level += op == "squeeze"
        if op in MASKS:
          layers.append(Coupling(op, parities[op] % 2, shape, widths[min(level, len(widths) - 1)]))
          parities[op] += 1
      self.layers = nn.ModuleList(layers)

    def forward(self, x, context=None):
      """x [B, C, H, W] -> (z flat [B, D], log|det dz/dx| [B])."""
      log_det, pieces, couplings = x.new_zeros(x.shape[0]), [], iter(self.layers)
      for op in ops:
        if op == "squeeze":
          x, context = squeeze(x), None if context is None else squeeze(context)
        elif op == "split":
          half, x = x.chunk(2, 1)
          pieces.append(half.flatten(1))
        else:
          x, log_det = next(couplings)(x, log_det, context)
      return torch.cat(pieces + [x.flatten(1)], 1), log_det

  return TorchFlow()


def squeeze(x):
  """genjax's space to depth in NCHW: output channel (2 dy + dx) C + c, as coupling.squeeze orders it."""
  b, c, h, w = x.shape
  return x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def torch_flow(config: ConfigDict, compile_: bool, image: tuple):
  import torch
  from benchmarks.workloads import _maybe_compile, _torch_step
  F = torch.nn.functional
  m = config.model
  levels, alpha, dims = genjax_data.levels(config.dataset), float(m.logit_alpha), math.prod(image)
  assert not m.actnorm, "the PyTorch flow has no ActNorm"
  flow = torch_flow_modules(torch, tuple(m.layers), image, tuple(m.widths), int(m.blocks))
  variational = m.dequantization == "variational"
  dequant = torch_flow_modules(torch, tuple(m.dequant_layers), image, tuple(m.dequant_widths),
                               int(m.dequant_blocks), context_channels=image[-1])
  params = [*flow.parameters(), *(dequant.parameters() if variational else [])]
  opt = torch.optim.Adam(params, lr=config.optimizer.learning_rate)

  def dequantize(x):
    if not variational:
      return torch.rand_like(x), x.new_zeros(x.shape[0])
    noise = torch.rand_like(x).clamp_(1e-6, 1 - 1e-6)
    e = noise.log() - (-noise).log1p()  # logistic
    e_out, log_det = dequant(e, context=2 * x - 1)
    e_out = e_out.reshape(x.shape)
    log_sigmoid_grad = (F.logsigmoid(e_out) + F.logsigmoid(-e_out)).flatten(1).sum(1)
    return torch.sigmoid(e_out), (F.logsigmoid(e) + F.logsigmoid(-e)).flatten(1).sum(1) - log_det - log_sigmoid_grad

  def loss_fn(x):
    u, log_q = dequantize(x)
    s = alpha + (1 - 2 * alpha) * ((torch.round(x * (levels - 1)) + u) / levels)
    y = s.log() - (-s).log1p()
    logit_log_det = (math.log1p(-2 * alpha) - s.log() - (-s).log1p()).flatten(1).sum(1)
    z, log_det = flow(y)
    log_w = -0.5 * (z * z + math.log(2 * math.pi)).sum(1) + log_det + logit_log_det - log_q
    return -(log_w - dims * math.log(levels)).mean() / (dims * math.log(2.0))

  clip = float(config.optimizer.grad_clip_norm)
  return _torch_step(torch, _maybe_compile(torch, loss_fn, compile_), opt,
                     before_step=lambda: torch.nn.utils.clip_grad_norm_(params, clip))

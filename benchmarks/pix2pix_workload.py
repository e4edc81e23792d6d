"""pix2pix's training step (genjax/models/pix2pix.py) in PyTorch eager, and a loader of genjax's weights.

The peer is built from genjax's own objective (its UNet and PatchGAN fields, loss scales, weights):
the same U-Net (centred zero padding to a multiple of 2^depth; 4x4 stride-2 convs, leaky ReLU 0.2,
no norm on the first and innermost; ReLU -> 4x4 stride-2 transposed conv -> norm -> dropout on the
`dropout_levels` innermost levels, skips concatenated; crop; sigmoid), the same conditional PatchGAN
(condition and image along channels), the non-saturating cGAN loss with genjax's LOSS_SCALES +
l1_weight * L1, Adam for both nets. One step in genjax's order: G(x) once; a critic update on (x, y)
vs (x, G(x) detached); a generator update through the updated critic, whose running batch
statistics that pass leaves alone. The step takes condition and target along channels of one NCHW
tensor (benchmarks.workloads.synthetic_batches). Layers carry flax's names (Conv_0, BatchNorm_1,
up_3), so `flax_state_dict` maps genjax's variables onto them. No minimal JAX step for this row.
"""
from __future__ import annotations

import collections
import contextlib

import numpy as np
from flax import traverse_util
from ml_collections import ConfigDict

from genjax.layers.patchgan import KERNEL, PatchGAN
from genjax.layers.unet import NORM_LAYERS, UNet, centre_pads, instance_norm
from genjax.models.pix2pix import Pix2PixObjective

LEAKY_SLOPE = 0.2  # genjax.layers.unet / patchgan: nn.leaky_relu(x, 0.2)
FLAX_NORM_NAMES = {"batch": "BatchNorm", "instance": "GroupNorm"}  # flax's auto-names of the norm layers
# (flax collection, leaf) -> torch attribute
TORCH_NAMES = {("params", "kernel"): "weight", ("params", "bias"): "bias", ("params", "scale"): "weight",
               ("batch_stats", "mean"): "running_mean", ("batch_stats", "var"): "running_var"}


def torch_norm(torch, kind: str, channels: int):
  """genjax's NORM_LAYERS[kind] in NCHW, with its epsilon and momentum (flax 0.9 = torch 0.1)."""
  if kind == "batch":
    flax_bn = NORM_LAYERS["batch"](True)
    return torch.nn.BatchNorm2d(channels, eps=flax_bn.epsilon, momentum=1 - flax_bn.momentum)
  assert kind == "instance", kind
  return torch.nn.GroupNorm(channels, channels, eps=instance_norm().epsilon)  # one channel a group


def pix2pix_modules(torch, generator: UNet, critic: PatchGAN, in_channels: int, out_channels: int):
  """(U-Net, PatchGAN) as torch modules, NCHW, of genjax's flax module fields; the U-Net returns logits."""
  nn, F = torch.nn, torch.nn.functional

  class Named(nn.Module):
    """Registers layers under flax's names: by class in call order (Conv_0, BatchNorm_2) or given."""

    def __init__(self, norm: str):
      super().__init__()
      self.norm_kind, self.counts = norm, collections.Counter()

    def layer(self, module, kind: str = "Conv", name: str | None = None):
      if name is None:  # an explicit name (up_3) does not count, as in flax
        name = f"{kind}_{self.counts[kind]}"
        self.counts[kind] += 1
      self.add_module(name, module)
      return module

    def norm(self, channels: int):
      if self.norm_kind == "none":
        return nn.Identity()
      return self.layer(torch_norm(torch, self.norm_kind, channels), FLAX_NORM_NAMES[self.norm_kind])

  class TorchUNet(Named):
    def __init__(self):
      super().__init__(generator.norm)
      g, widths = generator, generator.widths()
      self.depth, self.rate, self.test_dropout = g.depth, g.dropout_rate, g.test_dropout
      self.down, self.up = [], []  # (layers) per level; registered by `layer`
      for level, features in enumerate(widths):
        conv = self.layer(nn.Conv2d(widths[level - 1] if level else in_channels, features, 4, 2, 1))
        self.down.append((conv, self.norm(features) if 0 < level < g.depth - 1 else nn.Identity()))
      for level in reversed(range(g.depth)):
        cin = widths[level] * (1 if level == g.depth - 1 else 2)  # every level but the innermost gets a skip
        features = widths[level - 1] if level else out_channels
        up = self.layer(nn.ConvTranspose2d(cin, features, 4, 2, 1), name=f"up_{level}")
        norm = self.norm(features) if level else nn.Identity()
        self.up.append((level, up, norm, bool(level) and g.depth - 1 - level < g.dropout_levels))

    def forward(self, x):
      height, width = x.shape[2:]
      (top, bottom), (left, right) = (centre_pads(n, 2 ** self.depth) for n in (height, width))
      x = F.pad(x, (left, right, top, bottom))
      skips = []
      for conv, norm in self.down:
        x = F.leaky_relu(norm(conv(x)), LEAKY_SLOPE)
        skips.append(x)
      for level, up, norm, dropout in self.up:
        if level < self.depth - 1:
          x = torch.cat([x, skips[level]], 1)
        x = norm(up(F.relu(x)))
        if dropout:
          x = F.dropout(x, self.rate, self.training or self.test_dropout)
      return x[:, :, top:top + height, left:left + width]

  class TorchPatchGAN(Named):
    def __init__(self):
      super().__init__(critic.norm)
      c = critic
      width = lambda i: min(c.base_features * 2 ** i, c.max_features)  # PatchGAN's widths
      self.blocks, cin = [], in_channels + out_channels  # (conv, norm, leaky ReLU after) per layer
      for i in range(c.downsamplings):
        conv = self.layer(nn.Conv2d(cin, width(i), KERNEL, 2, 1))  # SAME on even sides: pads (1, 1)
        self.blocks.append((conv, self.norm(width(i)) if i else nn.Identity(), True))
        cin = width(i)
      # lax's SAME for a 4x4 stride-1 conv pads (1, 2), as torch's 'same' does
      conv = self.layer(nn.Conv2d(cin, width(c.downsamplings), KERNEL, padding="same"))
      self.blocks.append((conv, self.norm(width(c.downsamplings)) if c.downsamplings else nn.Identity(), True))
      conv = self.layer(nn.Conv2d(width(c.downsamplings), 1, KERNEL, padding="same"))
      self.blocks.append((conv, nn.Identity(), False))

    def forward(self, x):
      """condition and image along channels [B, C_in + C, H, W] -> patch logits [B, H', W']."""
      for conv, norm, activate in self.blocks:
        x = norm(conv(x))
        x = F.leaky_relu(x, LEAKY_SLOPE) if activate else x
      return x[:, 0]

  return TorchUNet(), TorchPatchGAN()


def flax_state_dict(module, variables: dict) -> dict:
  """genjax's {'params', 'batch_stats'} as `module`'s state dict: conv kernels HWIO -> OIHW; a
  transposed conv's kernel flipped to IOHW (flax's ConvTranspose correlates the dilated input)."""
  import torch
  state = {}
  for kind in ("params", "batch_stats"):
    for path, leaf in traverse_util.flatten_dict(dict(variables.get(kind, {}))).items():
      layer, leaf = module.get_submodule(".".join(path[:-1])), np.asarray(leaf)
      if path[-1] == "kernel" and isinstance(layer, torch.nn.ConvTranspose2d):
        leaf = leaf[::-1, ::-1].transpose(2, 3, 0, 1)
      elif path[-1] == "kernel":
        leaf = leaf.transpose(3, 2, 0, 1)
      state[".".join(path[:-1] + (TORCH_NAMES[kind, path[-1]],))] = torch.from_numpy(leaf.copy())
  return state


@contextlib.contextmanager
def frozen_batch_stats(torch, module):
  """Train-mode batch norm that leaves the running averages as they are (momentum 0 for the block)."""
  norms = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  momenta = [m.momentum for m in norms]
  for m in norms:
    m.momentum = 0.0
  try:
    yield
  finally:
    for m, momentum in zip(norms, momenta):
      m.momentum = momentum


def torch_pix2pix(config: ConfigDict, compile_: bool, image: tuple):
  """One pix2pix step on x = [condition, target] along channels (NCHW): critic update, then generator."""
  import torch
  from benchmarks.workloads import _counted, _maybe_compile
  F = torch.nn.functional
  objective, o = Pix2PixObjective(config), config.optimizer
  assert config.model.loss == "non_saturating" and objective.critic is not None and o.name == "adam"
  assert not o.get("grad_clip_norm", 0.0) and not config.get("critic_optimizer")
  assert all(side % 2 ** objective.critic.downsamplings == 0 for side in image[:2]), "PatchGAN pads (1, 1)"
  assert image[-1] == objective.generator.out_channels, "genjax sizes its output from the dataset"
  in_channels = objective.task.input_channels(image[-1])
  gen, critic = pix2pix_modules(torch, objective.generator, objective.critic, in_channels, image[-1])
  betas, eps = (o.get("b1", 0.9), o.get("b2", 0.999)), o.get("eps", 1e-8)
  g_opt, c_opt = (torch.optim.Adam(net.parameters(), lr=o.learning_rate, betas=betas, eps=eps)
                  for net in (gen, critic))
  critic_scale, generator_scale = objective.critic_scale, objective.generator_scale

  def critic_loss(condition, target, fake):
    real_scores, fake_scores = critic(torch.cat([condition, target], 1)), critic(torch.cat([condition, fake], 1))
    return critic_scale * (F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean())

  def generator_loss(condition, target, fake):
    adversarial = generator_scale * F.softplus(-critic(torch.cat([condition, fake], 1))).mean()
    return objective.adversarial_weight * adversarial + objective.l1_weight * (fake - target).abs().mean()

  critic_loss, generator_loss = (_maybe_compile(torch, f, compile_) for f in (critic_loss, generator_loss))

  def step(x):
    condition, target = x[:, :in_channels], x[:, in_channels:]
    fake = torch.sigmoid(gen(condition))  # once, reused by both updates as genjax's vjp does
    c_opt.zero_grad(set_to_none=True)
    critic_loss(condition, target, fake.detach()).backward()
    c_opt.step()
    critic.requires_grad_(False)  # the generator phase differentiates the generator only
    g_opt.zero_grad(set_to_none=True)
    with frozen_batch_stats(torch, critic):
      loss = generator_loss(condition, target, fake)
    loss.backward()
    g_opt.step()
    critic.requires_grad_(True)
    return loss

  return _counted(step, g_opt, c_opt)

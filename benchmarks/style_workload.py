"""StyleGAN2's training step (genjax/layers/style.py, the GAN family's 'style' path) in PyTorch eager.

The same generator (mapping MLP at lr x mapping_lr_mul, learned 4x4 constant, modulated +
demodulated 3x3 convs, as StyleGAN2's official code computes them: one grouped convolution of the
per-example modulated kernels, per-pixel noise, skip ToRGBs, equalised learning rate, style mixing),
the same critic (FromRGB, conv-conv-pool blocks, minibatch stddev, conv, dense, dense), the
non-saturating loss (with critic_regularizer='r1': lazy R1, gamma / 2 * r1_every every r1_every-th
step), generator EMA and w_avg; Adam. genjax computes modulation as conv(x * s) * d (StyleGAN2's non-fused form, same
function). No minimal JAX step is written for this row.
"""
from __future__ import annotations

import math

from ml_collections import ConfigDict

from genjax.layers.style import HE_GAIN, LEAKY_SLOPE, num_levels, runtime_scale

W_AVG_DECAY = 0.995  # genjax.models.gan.W_AVG_DECAY


def style_modules(torch, model: ConfigDict, channels: int):
  """(generator, critic) as torch modules, NCHW; `model` is the GAN config's model block."""
  nn, F = torch.nn, torch.nn.functional
  leaky = lambda x: F.leaky_relu(x, LEAKY_SLOPE)
  width, w_dim, levels = int(model.style_channels), int(model.w_dim or model.latent_dim), num_levels(int(model.resolution))

  class Dense(nn.Module):
    """EqualizedDense: y = x (W gain / sqrt(fan_in) lr_mul) + b lr_mul, W ~ N(0, 1 / lr_mul^2)."""

    def __init__(self, fan_in, features, gain=HE_GAIN, lr_mul=1.0, bias_init=0.0):
      super().__init__()
      self.weight = nn.Parameter(torch.randn(features, fan_in) / lr_mul)
      self.bias = nn.Parameter(torch.full((features,), bias_init / lr_mul))
      self.scale, self.lr_mul = runtime_scale(fan_in, gain, lr_mul), lr_mul

    def forward(self, x):
      return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)

  class Conv(nn.Module):
    """EqualizedConv: k x k 'same' convolution, kernel ~ N(0, 1) scaled by gain / sqrt(k k C_in)."""

    def __init__(self, cin, cout, k=3, gain=HE_GAIN):
      super().__init__()
      self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
      self.bias = nn.Parameter(torch.zeros(cout))
      self.scale = runtime_scale(k * k * cin, gain)

    def forward(self, x):
      return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)

  class ModulatedConv(nn.Module):
    """StyleGAN2 eq. 1-3, fused: per-example kernels s_i w_ijk (demodulated), one grouped conv."""

    def __init__(self, cin, cout, k, demodulate=True, gain=HE_GAIN):
      super().__init__()
      self.affine = Dense(w_dim, cin, gain=1.0, bias_init=1.0)
      self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
      self.scale, self.demodulate = runtime_scale(k * k * cin, gain), demodulate

    def forward(self, x, w):
      b, cin, h, wd = x.shape
      kernels = self.weight[None] * self.scale * self.affine(w)[:, None, :, None, None]  # [B, O, I, k, k]
      if self.demodulate:
        kernels = kernels * torch.rsqrt(kernels.square().sum((2, 3, 4), keepdim=True) + 1e-8)
      out = F.conv2d(x.reshape(1, b * cin, h, wd), kernels.reshape(-1, cin, *kernels.shape[3:]),
                     padding=kernels.shape[-1] // 2, groups=b)
      return out.reshape(b, -1, h, wd)

  class StyleLayer(nn.Module):
    """[2x nearest upsample], modulated conv, noise (learned per-channel scale), bias, leaky ReLU."""

    def __init__(self, upsample):
      super().__init__()
      self.upsample = upsample
      self.conv = ModulatedConv(width, width, 3)
      self.noise_scale = nn.Parameter(torch.zeros(width)) if model.noise_inputs else None
      self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, x, w):
      x = self.conv(F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x, w)
      if self.noise_scale is not None:
        x = x + self.noise_scale[None, :, None, None] * torch.randn(x.shape[0], 1, *x.shape[2:])
      return leaky(x + self.bias[None, :, None, None])

  class ToRGB(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv = ModulatedConv(width, channels, 1, demodulate=False, gain=1.0)
      self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x, w):
      return self.conv(x, w) + self.bias[None, :, None, None]

  class Generator(nn.Module):
    """ws [B, num_ws, D] -> images in [0, 1]; StyleGenerator's indexing of ws and its skip sum."""

    def __init__(self):
      super().__init__()
      dims = [int(model.latent_dim)] + [w_dim] * int(model.mapping_layers)
      self.mapping = nn.ModuleList(Dense(a, b, lr_mul=float(model.mapping_lr_mul)) for a, b in zip(dims, dims[1:]))
      self.const = nn.Parameter(torch.randn(width, 4, 4))
      self.layers = nn.ModuleList([StyleLayer(False)] + [StyleLayer(i % 2 == 0) for i in range(2 * (levels - 1))])
      self.to_rgb = nn.ModuleList(ToRGB() for _ in range(levels))
      self.num_ws = 2 * levels

    def map(self, z):
      x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)  # pixel norm
      for dense in self.mapping:
        x = leaky(dense(x))
      return x

    def synthesize(self, ws):
      x = self.layers[0](self.const[None].expand(ws.shape[0], -1, -1, -1), ws[:, 0])
      rgb = self.to_rgb[0](x, ws[:, 1])
      for b in range(1, levels):
        x = self.layers[2 * b](self.layers[2 * b - 1](x, ws[:, 2 * b - 1]), ws[:, 2 * b])
        rgb = F.interpolate(rgb, scale_factor=2, mode="nearest") + self.to_rgb[b](x, ws[:, 2 * b + 1])
      return torch.sigmoid(rgb)

  class Critic(nn.Module):
    def __init__(self):
      super().__init__()
      self.from_rgb = Conv(channels, width, 1)
      self.blocks = nn.ModuleList(nn.ModuleList([Conv(width, width), Conv(width, width)]) for _ in range(levels - 1))
      self.group = int(model.minibatch_std)
      self.final_conv = Conv(width + (1 if self.group else 0), width)
      self.final_dense = Dense(16 * width, width)
      self.output = Dense(width, 1, gain=1.0)

    def forward(self, x):
      h = leaky(self.from_rgb(x))
      for first, second in self.blocks:
        h = F.avg_pool2d(leaky(second(leaky(first(h)))), 2)
      if self.group:
        h = minibatch_stddev(torch, h, self.group)
      return self.output(leaky(self.final_dense(leaky(self.final_conv(h)).flatten(1))))[:, 0]

  return Generator(), Critic()


def minibatch_stddev(torch, x, group_size: int):
  """genjax.layers.style.minibatch_stddev in NCHW: groups are rows r, r + B/g, ...; one more channel."""
  group = math.gcd(group_size, x.shape[0])
  std = (x.reshape(group, -1, *x.shape[1:]).var(0, unbiased=False) + 1e-8).sqrt()
  stat = std.mean((1, 2, 3), keepdim=True).repeat(group, 1, 1, 1)
  return torch.cat([x, stat.expand(-1, 1, *x.shape[2:])], 1)


def ema_decay_at(step: int, decay: float, rampup: float) -> float:
  """genjax.optim.ema_decay_at for a Python step: StyleGAN2's warm-up of the EMA's half-life."""
  if not rampup:
    return decay
  half_life = min(math.log(0.5) / math.log(decay), rampup * step)
  return 0.5 ** (1.0 / half_life) if half_life > 0 else 0.0


def torch_style(config: ConfigDict, compile_: bool, image: tuple):
  """One StyleGAN2 step: critic update (lazy R1 if configured), generator update, EMA, w_avg."""
  import torch
  from benchmarks.workloads import _counted, _maybe_compile
  F = torch.nn.functional
  m, o = config.model, config.optimizer
  assert image[0] == image[1] == int(m.resolution) and m.modulation == "demod" and m.skip_rgb and m.const_input
  gen, critic = style_modules(torch, m, image[-1])
  betas, eps = (o.get("b1", 0.9), o.get("b2", 0.999)), o.get("eps", 1e-8)
  make_opt = lambda module: torch.optim.Adam(module.parameters(), lr=o.learning_rate, betas=betas, eps=eps)
  g_opt, c_opt = make_opt(gen), make_opt(critic)
  ema = [p.detach().clone() for p in gen.parameters()]
  w_avg = torch.zeros(gen.mapping[-1].weight.shape[0])
  rows, latent, mixing = config.batch_size, int(m.latent_dim), float(m.style_mixing)
  r1_weight, r1_every = float(m.r1_gamma) / 2 * int(m.r1_every), int(m.r1_every)
  lazy_r1 = m.critic_regularizer == "r1"
  rampup = float(m.get("ema_rampup", 0.0))
  count = [0]

  def fakes(n):
    """(images, w of the first z): with probability style_mixing a second z's w from a random crossover on."""
    w = gen.map(torch.randn(n, latent))
    ws = w[:, None].expand(-1, gen.num_ws, -1)
    if mixing:
      cut = torch.where(torch.rand(n) < mixing, torch.randint(1, gen.num_ws, (n,)), gen.num_ws)
      ws = torch.where(torch.arange(gen.num_ws)[None, :, None] < cut[:, None, None], ws, gen.map(torch.randn(n, latent))[:, None])
    return gen.synthesize(ws), w

  def critic_loss(real, fake, r1: bool):
    real.requires_grad_(r1)
    real_scores = critic(real)
    loss = F.softplus(-real_scores).mean() + F.softplus(critic(fake)).mean()
    if r1:
      grad, = torch.autograd.grad(real_scores.sum(), real, create_graph=True)
      loss = loss + r1_weight * grad.square().sum((1, 2, 3)).mean()
    return loss

  def generator_loss():
    fake, w = fakes(rows)
    return F.softplus(-critic(fake)).mean(), w.detach()

  critic_loss, generator_loss = (_maybe_compile(torch, f, compile_) for f in (critic_loss, generator_loss))

  def step(x):
    with torch.no_grad():
      fake = fakes(rows)[0]
    c_opt.zero_grad(set_to_none=True)
    critic_loss(x, fake, lazy_r1 and count[0] % r1_every == 0).backward()
    c_opt.step()
    critic.requires_grad_(False)  # the generator phase differentiates the generator only
    g_opt.zero_grad(set_to_none=True)
    loss, w = generator_loss()
    loss.backward()
    g_opt.step()
    critic.requires_grad_(True)
    with torch.no_grad():
      torch._foreach_lerp_(ema, list(gen.parameters()), 1.0 - ema_decay_at(count[0], float(m.ema_decay), rampup))
      w_avg.lerp_(w.mean(0), 1.0 - W_AVG_DECAY)
    count[0] += 1
    return loss

  return _counted(step, g_opt, c_opt)

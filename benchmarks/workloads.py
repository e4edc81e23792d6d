"""The benchmarked models, each three ways: a genjax config, a minimal hand-written JAX step, PyTorch.

The minimal JAX steps reuse genjax's network modules (the model is the same by construction) and
write the loss, update and loop by hand, so genjax / minimal measures what the trainer and the
family objectives add. The PyTorch versions are the same layers, written the usual PyTorch way.
Inputs are synthetic; shapes are the real ones (28x28x1 images; the style generator's 32x32x1).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from genjax import configs
from genjax.data import paired
from genjax.layers.networks import MLP, ConvDecoder, ConvEncoder, MLPDecoder

IMAGE = (28, 28, 1)


@dataclasses.dataclass(frozen=True)
class Sizes:
  """Layer widths and batches; GENJAX_BENCH_SMALL=1 shrinks them for a quick smoke run."""
  vae_hidden: int = 400
  vae_latent: int = 20
  vae_batch: int = 128
  dcgan_latent: int = 100
  dcgan_features: tuple = (64, 128)
  dcgan_batch: int = 64
  wgan_hidden: int = 256
  wgan_latent: int = 100
  wgan_chunk: int = 64
  cae_hidden: int = 256
  cae_latent: int = 32
  cae_batch: int = 128
  flow_widths: tuple = (32, 48, 64)  # experiments/realnvp.py (its default ':uva' size)
  flow_blocks: int = 7
  flow_dequant_width: int = 16
  flow_batch: int = 64
  flow_image: tuple = IMAGE
  style_channels: int = 64  # experiments/stylegan_fashion.py: latent, w and conv widths
  style_mapping_layers: int = 8
  style_batch: int = 32
  style_image: tuple = (32, 32, 1)
  pix2pix_batch: int = 16  # experiments/pix2pix_edges.py
  pix2pix_image: tuple = IMAGE  # the target's [H, W, C]; the condition is the edges task's
  encoder_features: tuple = (32, 64)  # experiments/gan_encoder.py; G is the dcgan rows' (dcgan_latent, dcgan_features)
  encoder_batch: int = 64


SMALL = Sizes(vae_hidden=32, vae_latent=4, vae_batch=16, dcgan_latent=8, dcgan_features=(4, 8),
              dcgan_batch=8, wgan_hidden=16, wgan_latent=8, wgan_chunk=8, cae_hidden=16, cae_latent=4,
              cae_batch=8, flow_widths=(4, 4, 4), flow_blocks=1, flow_dequant_width=4, flow_batch=4,
              flow_image=(8, 8, 1), style_channels=8, style_mapping_layers=2, style_batch=4, style_image=(8, 8, 1),
              pix2pix_batch=4, pix2pix_image=(8, 8, 1), encoder_features=(4, 8), encoder_batch=4)


def sizes() -> Sizes:
  return SMALL if os.environ.get("GENJAX_BENCH_SMALL") == "1" else Sizes()


@dataclasses.dataclass(frozen=True)
class Workload:
  name: str
  description: str
  config: ConfigDict  # genjax's; batch_size is the global batch
  minimal: Callable[[ConfigDict, jax.Array], tuple[Callable, Any]] | None  # -> (jitted step, state)
  torch: Callable[[ConfigDict, bool], Callable] | None  # (config, compile) -> step(x NCHW tensor)
  image: tuple = IMAGE  # [H, W, C] of the synthetic batches


def synthetic_batches(config: ConfigDict, count: int, seed: int = 0,
                      image: tuple = IMAGE) -> list[dict[str, np.ndarray]]:
  """{'x', 'label'}; a paired config (`dataset.task`, pix2pix) also gets its 'input' (condition)
  and 'target' (an `image`), and x is the two along channels: the one tensor a torch step receives."""
  rng = np.random.default_rng(seed)
  task = paired.option(config.get("dataset", {}), "task")
  conditions = paired.TASKS[task].input_channels(image[-1]) if task else 0
  shape = (config.batch_size,) + tuple(image[:-1]) + (conditions + image[-1],)
  batches = [{"x": rng.random(shape, dtype=np.float32),
              "label": rng.integers(0, 10, config.batch_size).astype(np.int32)} for _ in range(count)]
  if task:  # contiguous copies: genjax_feed transfers them every step, as from the paired view
    for b in batches:
      b.update(input=np.ascontiguousarray(b["x"][..., :conditions]),
               target=np.ascontiguousarray(b["x"][..., conditions:]))
  return batches


# ----------------------------------------------------------------------------- minimal JAX

def _jit_step(update: Callable) -> Callable:
  """state = (params, opt_state, extras, key, t): one donated jitted update, like any hand loop."""
  @functools.partial(jax.jit, donate_argnums=0)
  def step(state, x):
    params, opt_state, extras, key, t = state
    params, opt_state, extras, loss = update(params, opt_state, extras, x, jax.random.fold_in(key, t))
    return (params, opt_state, extras, key, t + 1), loss
  return step


def minimal_vae(config: ConfigDict, x: jax.Array):
  m = config.model
  encoder = MLP(tuple(m.hidden), 2 * m.latent_dim)
  decoder = MLPDecoder(tuple(m.hidden), IMAGE)
  k1, k2 = jax.random.split(jax.random.key(0))
  params = {"e": encoder.init(k1, x)["params"], "d": decoder.init(k2, jnp.zeros((1, m.latent_dim)))["params"]}
  tx = optax.adam(config.optimizer.learning_rate)

  def loss_fn(p, x, key):
    mean, logvar = jnp.split(encoder.apply({"params": p["e"]}, x), 2, axis=-1)
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
    logits = decoder.apply({"params": p["d"]}, z)
    log_lik = -jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=(1, 2, 3))
    kl = -0.5 * jnp.sum(1 + logvar - mean ** 2 - jnp.exp(logvar), axis=-1)
    return -jnp.mean(log_lik - kl)

  def update(p, opt, extras, x, key):
    loss, grads = jax.value_and_grad(loss_fn)(p, x, key)
    updates, opt = tx.update(grads, opt, p)
    return optax.apply_updates(p, updates), opt, extras, loss

  return _jit_step(update), (params, tx.init(params), {}, jax.random.key(1), jnp.zeros((), jnp.int32))


def _gan_nets(config: ConfigDict):
  m = config.model
  if m.architecture == "conv":
    gen = ConvDecoder(tuple(reversed(m.features)), IMAGE, upsample=m.upsample, norm=m.norm)
    critic = ConvEncoder(tuple(m.features), 1, activation="leaky_relu", norm=m.norm,
                         input_grad=m.conv_input_grad)
  else:
    gen = MLPDecoder(tuple(reversed(m.hidden)), IMAGE)
    critic = MLP(tuple(m.hidden), 1, activation="leaky_relu")
  return gen, critic


def minimal_gan(config: ConfigDict, x: jax.Array):
  """DCGAN (non-saturating, batch norm) or WGAN (clipping, n_critic chunks), one loop for both."""
  m = config.model
  gen, critic = _gan_nets(config)
  wasserstein, n_critic, clip = m.loss == "wasserstein", m.n_critic, m.clip_value
  rows = config.batch_size // n_critic
  k1, k2 = jax.random.split(jax.random.key(0))
  g_vars = gen.init(k1, jnp.zeros((1, m.latent_dim)), train=False)
  c_vars = critic.init(k2, x[:1], train=False)
  params = {"g": g_vars["params"], "c": c_vars["params"]}
  stats = {"g": g_vars.get("batch_stats", {}), "c": c_vars.get("batch_stats", {})}
  opt = {"adam": lambda: optax.adam(config.optimizer.learning_rate, b1=0.5),
         "rmsprop": lambda: optax.rmsprop(config.optimizer.learning_rate, decay=0.99, eps=1e-8)}
  tx = opt[config.optimizer.name]()

  def apply(net, p, s, inputs):
    if not s:
      return net.apply({"params": p}, inputs, train=True), s
    out, new = net.apply({"params": p, "batch_stats": s}, inputs, train=True, mutable=["batch_stats"])
    return out, new["batch_stats"]

  def critic_loss(cp, cs, real, fake):
    real_s, cs = apply(critic, cp, cs, real)
    fake_s, cs = apply(critic, cp, cs, fake)
    if wasserstein:
      return jnp.mean(fake_s) - jnp.mean(real_s), cs
    return jnp.mean(jax.nn.softplus(-real_s) + jax.nn.softplus(fake_s)), cs

  def gen_loss(gp, gs, cp, cs, z):
    fake, gs = apply(gen, gp, gs, z)
    scores, _ = apply(critic, cp, cs, jax.nn.sigmoid(fake))
    return (-jnp.mean(scores) if wasserstein else jnp.mean(jax.nn.softplus(-scores))), gs

  def update(p, opt_state, s, x, key):
    for i in range(n_critic):  # unrolled: the chunks are static slices
      fake, s_g = apply(gen, p["g"], s["g"], jax.random.normal(jax.random.fold_in(key, i), (rows, m.latent_dim)))
      grads, s_c = jax.grad(critic_loss, has_aux=True)(p["c"], s["c"], x[i * rows:(i + 1) * rows],
                                                       jax.lax.stop_gradient(jax.nn.sigmoid(fake)))
      u, c_opt = tx.update(grads, opt_state["c"], p["c"])
      c = optax.apply_updates(p["c"], u)
      c = jax.tree_util.tree_map(lambda w: jnp.clip(w, -clip, clip), c) if wasserstein else c
      p, opt_state, s = {**p, "c": c}, {**opt_state, "c": c_opt}, {"g": s_g, "c": s_c}
    z = jax.random.normal(jax.random.fold_in(key, n_critic), (rows, m.latent_dim))
    (loss, s_g), grads = jax.value_and_grad(gen_loss, has_aux=True)(p["g"], s["g"], p["c"], s["c"], z)
    u, g_opt = tx.update(grads, opt_state["g"], p["g"])
    return ({"g": optax.apply_updates(p["g"], u), "c": p["c"]}, {"g": g_opt, "c": opt_state["c"]},
            {**s, "g": s_g}, loss)

  opt_state = {"g": tx.init(params["g"]), "c": tx.init(params["c"])}
  return _jit_step(update), (params, opt_state, stats, jax.random.key(1), jnp.zeros((), jnp.int32))


def minimal_cae(config: ConfigDict, x: jax.Array):
  m = config.model
  encoder = MLP(tuple(m.hidden), m.latent_dim, activation=m.activation)
  decoder = MLPDecoder(tuple(m.hidden), IMAGE, activation=m.activation)
  k1, k2 = jax.random.split(jax.random.key(0))
  params = {"e": encoder.init(k1, x)["params"], "d": decoder.init(k2, jnp.zeros((1, m.latent_dim)))["params"]}
  tx = optax.adam(config.optimizer.learning_rate)
  # 'auto' (= genjax's closed form for MLPs) is compared with the usual vmap(jacrev) way.
  jacobian = {"fwd": jax.jacfwd, "rev": jax.jacrev, "auto": jax.jacrev}[m.jacobian_mode]

  def loss_fn(p, x):
    z = encoder.apply({"params": p["e"]}, x)
    error = jnp.sum((jax.nn.sigmoid(decoder.apply({"params": p["d"]}, z)) - x) ** 2, axis=(1, 2, 3))
    encode_one = lambda xi: encoder.apply({"params": p["e"]}, xi[None])[0]
    penalty = jnp.sum(jax.vmap(jacobian(encode_one))(x) ** 2, axis=tuple(range(1, 5)))
    return jnp.mean(error + m.contractive_weight * penalty)

  def update(p, opt, extras, x, key):
    loss, grads = jax.value_and_grad(loss_fn)(p, x)
    updates, opt = tx.update(grads, opt, p)
    return optax.apply_updates(p, updates), opt, extras, loss

  return _jit_step(update), (params, tx.init(params), {}, jax.random.key(1), jnp.zeros((), jnp.int32))


# ----------------------------------------------------------------------------- PyTorch

def _torch_mlp(torch, sizes, activation, last_activation=False):
  layers = []
  for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
    layers.append(torch.nn.Linear(a, b))
    if i < len(sizes) - 2 or last_activation:
      layers.append(activation())
  return torch.nn.Sequential(*layers)


def _maybe_compile(torch, fn, compile_: bool):
  return torch.compile(fn) if compile_ else fn


def torch_vae(config: ConfigDict, compile_: bool):
  import torch
  m, d = config.model, int(np.prod(IMAGE))
  encoder = _torch_mlp(torch, [d, *m.hidden, 2 * m.latent_dim], torch.nn.ReLU)
  decoder = _torch_mlp(torch, [m.latent_dim, *reversed(m.hidden), d], torch.nn.ReLU)
  opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=config.optimizer.learning_rate)
  bce = torch.nn.functional.binary_cross_entropy_with_logits

  def loss_fn(x):
    x = x.reshape(x.shape[0], -1)
    mean, logvar = encoder(x).chunk(2, dim=-1)
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    log_lik = -bce(decoder(z), x, reduction="none").sum(-1)
    kl = -0.5 * (1 + logvar - mean ** 2 - logvar.exp()).sum(-1)
    return -(log_lik - kl).mean()

  return _torch_step(torch, _maybe_compile(torch, loss_fn, compile_), opt)


def _torch_step(torch, loss_fn, opt, before_step: Callable | None = None):
  """zero_grad, backward, `before_step` (e.g. gradient clipping), opt.step."""
  def step(x):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(x)
    loss.backward()
    if before_step is not None:
      before_step()
    opt.step()
    return loss
  return _counted(step, opt)


def _counted(step: Callable, *opts) -> Callable:
  """Tags a torch step with the number of parameters its optimizers update, for the report."""
  step.num_params = sum(p.numel() for opt in opts for group in opt.param_groups for p in group["params"])
  return step


def torch_gan(config: ConfigDict, compile_: bool):
  import torch
  nn = torch.nn
  m, d = config.model, int(np.prod(IMAGE))
  wasserstein, n_critic, clip = m.loss == "wasserstein", m.n_critic, m.clip_value
  rows = config.batch_size // n_critic
  if m.architecture == "conv":
    from benchmarks.encoder_workload import torch_generator_net
    f1, f2 = m.features
    s = IMAGE[0] // 4
    bn2 = nn.BatchNorm2d if m.norm == "batch" else (lambda n: nn.Identity())
    gen = torch_generator_net(torch, _gan_nets(config)[0], m.latent_dim)  # genjax's ConvDecoder in NCHW
    critic = nn.Sequential(nn.Conv2d(1, f1, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(f1, f2, 4, 2, 1),
                           bn2(f2), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(s * s * f2, 1))
    shape = (1,) + IMAGE[:2]  # NCHW
  else:
    gen = nn.Sequential(_torch_mlp(torch, [m.latent_dim, *reversed(m.hidden), d], nn.ReLU), nn.Sigmoid())
    critic = _torch_mlp(torch, [d, *m.hidden, 1], lambda: nn.LeakyReLU(0.2))
    shape = (d,)
  make_opt = {"adam": lambda ps: torch.optim.Adam(ps, lr=config.optimizer.learning_rate, betas=(0.5, 0.999)),
              "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=config.optimizer.learning_rate, alpha=0.99,
                                                        eps=1e-8)}[config.optimizer.name]
  g_opt, c_opt = make_opt(gen.parameters()), make_opt(critic.parameters())
  softplus = torch.nn.functional.softplus

  def critic_loss(real, z):
    with torch.no_grad():
      fake = gen(z)
    real_s, fake_s = critic(real), critic(fake)
    if wasserstein:
      return fake_s.mean() - real_s.mean()
    return (softplus(-real_s) + softplus(fake_s)).mean()

  def gen_loss(z):
    scores = critic(gen(z))
    return -scores.mean() if wasserstein else softplus(-scores).mean()

  critic_loss, gen_loss = (_maybe_compile(torch, f, compile_) for f in (critic_loss, gen_loss))

  def step(x):
    x = x.reshape((x.shape[0],) + shape)
    for i in range(n_critic):
      c_opt.zero_grad(set_to_none=True)
      critic_loss(x[i * rows:(i + 1) * rows], torch.randn(rows, m.latent_dim)).backward()
      c_opt.step()
      if wasserstein:
        with torch.no_grad():
          for p in critic.parameters():
            p.clamp_(-clip, clip)
    g_opt.zero_grad(set_to_none=True)
    loss = gen_loss(torch.randn(rows, m.latent_dim))
    loss.backward()
    g_opt.step()
    return loss

  return _counted(step, g_opt, c_opt)


def torch_cae(config: ConfigDict, compile_: bool):
  import torch
  from torch.func import functional_call, jacfwd, jacrev, vmap
  m, d = config.model, int(np.prod(IMAGE))
  act = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[m.activation]
  encoder = _torch_mlp(torch, [d, *m.hidden, m.latent_dim], act)
  decoder = _torch_mlp(torch, [m.latent_dim, *reversed(m.hidden), d], act)
  opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=config.optimizer.learning_rate)
  jacobian = {"fwd": jacfwd, "rev": jacrev, "auto": jacrev}[m.jacobian_mode]

  def loss_fn(x):
    x = x.reshape(x.shape[0], -1)
    error = ((torch.sigmoid(decoder(encoder(x))) - x) ** 2).sum(-1)
    params = dict(encoder.named_parameters())
    encode_one = lambda xi: functional_call(encoder, params, (xi,))
    penalty = (vmap(jacobian(encode_one))(x) ** 2).sum((1, 2))
    return (error + m.contractive_weight * penalty).mean()

  return _torch_step(torch, _maybe_compile(torch, loss_fn, compile_), opt)


# ----------------------------------------------------------------------------- the list

JACOBIAN_NAMES = {"fwd": "jacfwd", "rev": "jacrev", "auto": "closed form (auto)"}
EXPERIMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments")


def experiment_config(name: str) -> ConfigDict:
  """experiments/NAME.py's config, as `--config` loads it."""
  from genjax.api import get_config
  return get_config(os.path.join(EXPERIMENTS, f"{name}.py"))


def flow_workload(s: Sizes) -> Workload:
  """experiments/realnvp.py (multi-scale Real NVP, variational dequantization) at batch flow_batch."""
  from benchmarks.flow_workload import minimal_flow, torch_flow
  config = experiment_config("realnvp")
  config.batch_size = s.flow_batch
  config.model.widths, config.model.dequant_widths = s.flow_widths, (s.flow_dequant_width,)
  config.model.blocks = config.model.dequant_blocks = s.flow_blocks
  m, (h, w, c) = config.model, s.flow_image
  couplings = sum(op in ("checkerboard", "channel") for op in m.layers)
  description = (f"Real NVP multi-scale {h}x{w}x{c}, {couplings} couplings, widths {tuple(m.widths)}, "
                 f"{m.blocks} residual blocks, "
                 f"{m.dequantization} dequantization ({len(m.dequant_layers)} couplings, width "
                 f"{s.flow_dequant_width}), batch {config.batch_size}")
  return Workload("flow_realnvp", description, config, minimal_flow,
                  functools.partial(torch_flow, image=s.flow_image), image=s.flow_image)


def style_workload(s: Sizes) -> Workload:
  """experiments/stylegan_fashion.py (StyleGAN2) at batch style_batch on style_image, lazy R1 off in
  both: with R1 every 16th step a fair timed call would have to span 16 steps (minutes per contender)."""
  from benchmarks.style_workload import torch_style
  config = experiment_config("stylegan_fashion")
  config.batch_size = s.style_batch  # n_critic 1: every critic update sees the whole batch
  config.model.critic_regularizer = "none"
  m, (h, w, c) = config.model, s.style_image
  m.latent_dim = m.w_dim = m.style_channels = s.style_channels
  m.mapping_layers, m.resolution = s.style_mapping_layers, h
  description = (f"StyleGAN2 {h}x{w}x{c}, z/w/conv width {s.style_channels}, mapping {m.mapping_layers} "
                 f"layers, non-saturating, no R1, mixing {m.style_mixing}, EMA, "
                 f"batch {config.batch_size}")
  return Workload("style_gan", description, config, None, functools.partial(torch_style, image=s.style_image),
                  image=s.style_image)


def pix2pix_workload(s: Sizes) -> Workload:
  """experiments/pix2pix_edges.py (U-Net + conditional PatchGAN, batch norm, dropout, L1 100) at batch
  pix2pix_batch; synthetic (edge map, image) pairs of pix2pix_image in both (no Canny per step)."""
  from benchmarks.pix2pix_workload import torch_pix2pix
  from genjax.layers.patchgan import receptive_field
  from genjax.layers.unet import auto_depth
  from genjax.models.pix2pix import Pix2PixObjective
  config = experiment_config("pix2pix_edges")
  config.batch_size = s.pix2pix_batch
  m, (h, w, c) = config.model, s.pix2pix_image
  m.unet_depth = auto_depth(h, w)  # the experiment's depth 0 (auto) of the dataset's 28 px, of this size
  unet, patch = Pix2PixObjective(config).generator, receptive_field(m.critic_downsamplings)
  description = (f"pix2pix {h}x{w}x{c} edges -> image: U-Net depth {unet.depth} widths {tuple(unet.widths())}, "
                 f"{m.norm} norm, dropout {m.dropout} x {m.dropout_levels} levels; PatchGAN {patch}x{patch} "
                 f"patches, width {m.critic_features}; {m.loss} + {m.l1_weight:g} L1, batch {config.batch_size}")
  return Workload("pix2pix", description, config, None, functools.partial(torch_pix2pix, image=s.pix2pix_image),
                  image=s.pix2pix_image)


def encoder_workload(s: Sizes) -> Workload:
  """experiments/gan_encoder.py at batch encoder_batch for the frozen G of experiments/dcgan.py at the dcgan
  rows' sizes on Fashion-MNIST (28x28x1; the experiment's digits are 8x8), an untrained run written once."""
  from benchmarks.encoder_workload import generator_workdir, torch_encoder
  gan = experiment_config("dcgan")
  gan.dataset.name = "fashion_mnist"
  gan.model.latent_dim, gan.model.features = s.dcgan_latent, s.dcgan_features
  config = experiment_config("gan_encoder")
  config.dataset.name = gan.dataset.name  # the family requires the generator's dataset
  config.batch_size, config.model.features = s.encoder_batch, s.encoder_features
  config.model.generator_workdir = generator_workdir(gan)
  m = config.model
  description = (f"GAN encoder 28x28x1: E {m.architecture} {tuple(m.features)} {m.activation}, dense to "
                 f"z{s.dcgan_latent}; frozen DCGAN G {s.dcgan_features} BN (running stats); "
                 f"{m.image_weight:g} ||G(E(x)) - x||^2 + {m.latent_weight:g} ||E(G(z)) - z||^2, Adam "
                 f"{config.optimizer.learning_rate:g}, batch {config.batch_size}")
  return Workload("gan_encoder", description, config, None, torch_encoder)


def workloads() -> list[Workload]:
  s = sizes()
  vae = configs.vae_config("mlp", hidden=(s.vae_hidden,), latent_dim=s.vae_latent)
  vae.batch_size = s.vae_batch
  # issue 9: 'transpose' = flax's own layers and gradients; 'phase' = phase-decomposed upsampling and
  # critic input gradients everywhere; 'auto' = what genjax picks per layer (phase where it wins).
  dcgan = {kind: configs.gan_config("dcgan", critic_batch_size=s.dcgan_batch, latent_dim=s.dcgan_latent,
                                    features=s.dcgan_features, upsample=kind,
                                    conv_input_grad={"transpose": "xla"}.get(kind, kind))
           for kind in ("auto", "transpose", "phase")}
  dcgan_no_bn = configs.gan_config("dcgan", critic_batch_size=s.dcgan_batch, latent_dim=s.dcgan_latent,
                                   features=s.dcgan_features, norm="none")
  wgan = configs.gan_config("wgan", critic_batch_size=s.wgan_chunk, latent_dim=s.wgan_latent,
                            hidden=(s.wgan_hidden, s.wgan_hidden))
  cae = {mode: configs.autoencoder_config("mlp", hidden=(s.cae_hidden,), latent_dim=s.cae_latent,
                                          activation="sigmoid", contractive_weight=0.1, jacobian_mode=mode)
         for mode in ("fwd", "rev", "auto")}
  for c in cae.values():
    c.batch_size = s.cae_batch
  d = int(np.prod(IMAGE))
  return [
      Workload("vae_mlp", f"VAE MLP {d}-{s.vae_hidden}-{s.vae_latent}, batch {vae.batch_size}", vae,
               minimal_vae, torch_vae),
      *(Workload("dcgan" if kind == "auto" else f"dcgan_{kind}",
                 f"DCGAN 28x28 z{s.dcgan_latent} {s.dcgan_features}, BN, upsample {kind}, critic input "
                 f"grad {c.model.conv_input_grad}, batch {c.batch_size}",
                 c, minimal_gan, torch_gan) for kind, c in dcgan.items()),
      Workload("dcgan_no_bn", f"DCGAN 28x28 z{s.dcgan_latent} {s.dcgan_features}, no batch norm, upsample "
               f"auto, batch {dcgan_no_bn.batch_size}", dcgan_no_bn, minimal_gan, torch_gan),
      Workload("wgan_mlp", f"WGAN clip MLP {s.wgan_hidden}x2, n_critic 5, 5x{s.wgan_chunk} rows", wgan,
               minimal_gan, torch_gan),
      *(Workload(f"cae_{mode}", f"CAE MLP {d}-{s.cae_hidden}-{s.cae_latent} sigmoid, J by "
                 f"{JACOBIAN_NAMES[mode]}, batch {c.batch_size}", c, minimal_cae,
                 torch_cae) for mode, c in cae.items()),
      flow_workload(s),
      style_workload(s),
      *(w for w in (_if_data(pix2pix_workload, s), _if_data(encoder_workload, s)) if w is not None),
  ]


def _if_data(build: Callable[[Sizes], Workload], s: Sizes) -> Workload | None:
  """build(s), or None (said on stdout) where its dataset is not on this machine: the pix2pix and
  encoder rows read Fashion-MNIST's shape; the other rows need no data."""
  from genjax.data.idx import DatasetError
  try:
    return build(s)
  except DatasetError as e:
    print(f"# {build.__name__} skipped: {str(e).splitlines()[0][:200]}")
    return None

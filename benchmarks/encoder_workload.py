"""The GAN-inversion encoder's training step (genjax/models/gan_encoder.py) in PyTorch eager, the
frozen generator run it needs, and a loader of genjax's weights.

genjax's `gan_encoder` family reads a trained GAN run (`model.generator_workdir`); `generator_workdir`
writes one once per config: the DCGAN's initial state as its only checkpoint (step 0), by genjax's
own `Run.init_state` and `Run.save`. It is untrained: the row times E's step, whose cost G's weights
do not change. The peer is built from genjax's own objective: E = its ConvEncoder (4x4 stride-2
convs, leaky ReLU 0.2, no norm, one dense layer to z); G = the GAN's ConvDecoder (dense -> batch
norm -> ReLU -> 4x4 stride-2 transposed convs with batch norm and ReLU between, sigmoid), the
layers of benchmarks.workloads.torch_gan's generator, in evaluation mode (running statistics) with
the checkpoint's weights, frozen: no gradient to G's parameters, gradients through G to E.
loss = image_weight * mean_b ||G(E(x)) - x||^2 + latent_weight * mean_b ||E(G(z)) - z||^2 with
z ~ N(0, I) of the batch size; Adam on E only. Layers carry flax's names (Conv_0, Dense_0,
Upsample2x_0.conv, BatchNorm_1), so `flax_state_dict` maps genjax's variables onto them. No minimal
JAX step for this row.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import os
import shutil
import tempfile

import jax
import numpy as np
from flax import traverse_util
from ml_collections import ConfigDict

from benchmarks import pix2pix_workload
from genjax.layers.conv_transpose import UPSAMPLE_KINDS
from genjax.layers.networks import _norm
from genjax.models.gan_encoder import GANEncoderObjective, latest_checkpoint
from genjax.state import TrainState

# genjax.layers.networks.ACTIVATIONS, as torch modules (the ones these nets use)
TORCH_ACTIVATIONS = {"relu": lambda torch: torch.nn.ReLU(), "leaky_relu": lambda torch: torch.nn.LeakyReLU(0.2)}


# ----------------------------------------------------------------------------- the frozen generator's run

def generator_workdir(gan_config: ConfigDict) -> str:
  """A run of `gan_config` whose one checkpoint is its initial state, written once per config under
  $GENJAX_BENCH_DIR (default: the temp dir's genjax-bench-generators); the encoder's generator_workdir."""
  key = hashlib.sha256(gan_config.to_json_best_effort(sort_keys=True).encode()).hexdigest()[:12]
  base = os.environ.get("GENJAX_BENCH_DIR") or os.path.join(tempfile.gettempdir(), "genjax-bench-generators")
  workdir = os.path.join(base, f"generator-{key}")
  if latest_checkpoint(workdir) is None:
    _write_initial_run(gan_config, workdir)
  return workdir


def _write_initial_run(config: ConfigDict, workdir: str) -> None:
  """config.json and checkpoint 0, staged beside `workdir` and renamed: a killed write leaves no half run."""
  from benchmarks.workloads import synthetic_batches
  from genjax import trainer
  os.makedirs(os.path.dirname(workdir), exist_ok=True)
  staging = tempfile.mkdtemp(prefix=os.path.basename(workdir) + ".", dir=os.path.dirname(workdir))
  run = trainer.Run(config, staging)
  try:
    batch = synthetic_batches(run.config, 1, image=run.objective.data_shape)[0]
    run.save(run.init_state(trainer.shard_batch(batch, run.mesh)), force=True)
  finally:
    run.close()
  trainer.write_config(run.config, staging)
  try:
    os.rename(staging, workdir)
  except OSError:  # another process renamed its copy first
    shutil.rmtree(staging)


# ----------------------------------------------------------------------------- the torch nets

def torch_encoder_net(torch, encoder, image: tuple):
  """genjax's ConvEncoder (stride-2 downsampling, no norm) in NCHW: [Conv_i, activation] * n, Flatten, Dense_0."""
  nn = torch.nn
  n = len(encoder.features)
  assert encoder.downsample == "stride" and encoder.norm == "none" and not encoder.minibatch_std, encoder
  assert all(side % 2 ** n == 0 for side in image[:2]), "SAME pads (1, 1) only on even sides"
  layers, channels = collections.OrderedDict(), image[-1]
  for i, width in enumerate(encoder.features):
    layers[f"Conv_{i}"] = nn.Conv2d(channels, width, 4, 2, 1)
    layers[f"act_{i}"] = TORCH_ACTIVATIONS[encoder.activation](torch)
    channels = width
  layers["flatten"] = nn.Flatten()  # channel-major: flax's NHWC flattening is permuted by the loader
  layers["Dense_0"] = nn.Linear(image[0] * image[1] // 4 ** n * channels, encoder.out_features)
  return nn.Sequential(layers)


def torch_generator_net(torch, generator, latent_dim: int):
  """genjax's ConvDecoder (batch norm or none), then the GAN's sigmoid (OUTPUTS['image']), in NCHW;
  also the DCGAN rows' PyTorch generator (benchmarks/workloads.py's torch_gan)."""
  nn = torch.nn
  (height, width, channels), n = generator.output_shape, len(generator.features)
  assert generator.norm in ("batch", "none") and generator.upsample in UPSAMPLE_KINDS, generator
  assert height % 2 ** n == 0 and width % 2 ** n == 0, "genjax's crop would cut the output"
  eps, act = _norm("batch", False).epsilon, functools.partial(TORCH_ACTIVATIONS[generator.activation], torch)
  norm = generator.norm == "batch"
  h0, w0, f0 = height // 2 ** n, width // 2 ** n, generator.features[0]
  layers = [("Dense_0", nn.Linear(latent_dim, h0 * w0 * f0)),
            *([("BatchNorm_0", nn.BatchNorm1d(h0 * w0 * f0, eps))] if norm else []),
            ("act_0", act()), ("unflatten", nn.Unflatten(1, (f0, h0, w0)))]
  widths = [*generator.features[1:], channels]
  for i, (cin, cout) in enumerate(zip([f0, *widths[:-1]], widths)):
    conv = nn.Sequential(collections.OrderedDict(conv=nn.ConvTranspose2d(cin, cout, 4, 2, 1)))
    layers.append((f"Upsample2x_{i}", conv))  # flax's Upsample2x_i/conv
    if i < len(widths) - 1:
      layers += [*([(f"BatchNorm_{i + 1}", nn.BatchNorm2d(cout, eps))] if norm else []), (f"act_{i + 1}", act())]
  layers.append(("sigmoid", nn.Sigmoid()))
  return nn.Sequential(collections.OrderedDict(layers))


def channel_major(height: int, width: int, channels: int) -> np.ndarray:
  """torch_flat = flax_flat[order]: NCHW flattening of what flax flattens in NHWC order."""
  return np.arange(height * width * channels).reshape(height, width, channels).transpose(2, 0, 1).ravel()


def flax_state_dict(module, variables: dict, inputs: dict | None = None, outputs: dict | None = None) -> dict:
  """pix2pix's loader (convs, transposed convs, norms) plus dense kernels [in, out] -> [out, in];
  `inputs` / `outputs` {layer: order} put a layer's flat inputs (kernel rows) / outputs (every leaf's
  last axis) in torch's channel-major order."""
  import torch
  inputs, outputs, flat = inputs or {}, outputs or {}, {}
  for path, leaf in traverse_util.flatten_dict({k: dict(v) for k, v in variables.items()}).items():
    leaf, layer = np.asarray(leaf), path[1]
    if layer in inputs and path[-1] == "kernel":
      leaf = leaf[inputs[layer]]
    if layer in outputs:
      leaf = leaf[..., outputs[layer]]
    flat[path] = leaf
  is_dense = lambda path: isinstance(module.get_submodule(".".join(path[1:-1])), torch.nn.Linear)
  dense = {path: flat.pop(path) for path in list(flat) if path[-1] == "kernel" and is_dense(path)}
  state = pix2pix_workload.flax_state_dict(module, traverse_util.unflatten_dict(flat))
  state.update({".".join(path[1:-1]) + ".weight": torch.from_numpy(kernel.T.copy())
                for path, kernel in dense.items()})
  return state


def genjax_variables(objective: GANEncoderObjective, state: TrainState) -> tuple[dict, dict]:
  """(E's, G's) flax variables in `state`: E's params; the frozen G's sampling weights and running statistics."""
  gan, gan_state = objective.frozen_gan(state)
  return ({"params": state.params["encoder"]},
          {"params": gan.sampling_params(gan_state), "batch_stats": gan.batch_stats(gan_state)["generator"]})


def flat_orders(objective: GANEncoderObjective) -> tuple[np.ndarray, np.ndarray]:
  """channel_major orders of E's flattened last conv output and of G's dense output (its first image)."""
  (height, width, _), encoder, generator = objective.data_shape, objective.encoder, objective.gan.generator
  side = lambda n: (height // 2 ** n, width // 2 ** n)
  return (channel_major(*side(len(encoder.features)), encoder.features[-1]),
          channel_major(*side(len(generator.features)), generator.features[0]))


def _load(net, state_dict: dict) -> None:
  missing = net.load_state_dict(state_dict, strict=False)
  assert not missing.unexpected_keys and all(k.endswith("num_batches_tracked") for k in missing.missing_keys), missing


def torch_peer(torch, objective: GANEncoderObjective, state: TrainState):
  """(E, G) as torch modules holding `state`'s weights; G in evaluation mode without parameter gradients."""
  gan = objective.gan
  assert gan.kind == "image" and not gan.style and not gan.num_classes, "an unconditional conv DCGAN"
  encoder = torch_encoder_net(torch, objective.encoder, objective.data_shape)
  generator = torch_generator_net(torch, gan.generator, gan.latent_dim)
  encoder_vars, generator_vars = genjax_variables(objective, state)
  encoder_order, generator_order = flat_orders(objective)
  _load(encoder, flax_state_dict(encoder, encoder_vars, inputs={"Dense_0": encoder_order}))
  _load(generator, flax_state_dict(generator, generator_vars,
                                   outputs={"Dense_0": generator_order, "BatchNorm_0": generator_order}))
  generator.eval().requires_grad_(False)
  return encoder, generator


# ----------------------------------------------------------------------------- the step

def squared_error(reconstruction, target):
  """genjax's mean over the batch of losses.squared_error (a sum over each example's values)."""
  return (reconstruction - target).square().flatten(1).sum(1).mean()


def encoder_loss(encoder, generator, x, z, image_weight: float, latent_weight: float):
  """GANEncoderObjective.loss on NCHW x and the step's z; G(z) builds no graph (frozen G, z a constant)."""
  image = squared_error(generator(encoder(x)), x)
  latent = squared_error(encoder(generator(z)), z)
  return image_weight * image + latent_weight * latent


def torch_encoder(config: ConfigDict, compile_: bool):
  """One encoder step on x (NCHW): E and G from genjax's initial state (G: the generator run's), Adam on E."""
  import torch
  from benchmarks.workloads import _maybe_compile, _torch_step
  objective, o = GANEncoderObjective(config), config.optimizer
  assert o.name == "adam" and not o.get("grad_clip_norm", 0.0) and o.get("schedule", "constant") == "constant", o
  batch = {"x": np.zeros((1,) + objective.data_shape, np.float32)}
  encoder, generator = torch_peer(torch, objective, objective.init(jax.random.key(config.seed), batch))
  opt = torch.optim.Adam(encoder.parameters(), lr=o.learning_rate, betas=(o.get("b1", 0.9), o.get("b2", 0.999)),
                         eps=o.get("eps", 1e-8))
  loss = _maybe_compile(torch, functools.partial(encoder_loss, encoder, generator, image_weight=objective.image_weight,
                                                 latent_weight=objective.latent_weight), compile_)
  latent_dim = objective.latent_dim
  return _torch_step(torch, lambda x: loss(x, torch.randn(x.shape[0], latent_dim)), opt)

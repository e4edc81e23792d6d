"""make bench flags runs measured on a loaded machine (issue 23), in the JSON and the table."""
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import run


def test_load_above_a_quarter_per_core_is_flagged(monkeypatch):
  monkeypatch.setattr(os, "cpu_count", lambda: 2)
  assert not run.loaded(0.3, 0.5, None)
  assert run.loaded(0.3, 0.51)
  assert run.loaded(1.9)


def test_foreign_load_subtracts_own_cpu(monkeypatch):
  """10 s of wall, 15 CPU-s busy of which 12 are ours: the others used 0.3 cores."""
  clock, busy, own = iter([100.0, 110.0]), iter([50.0, 65.0]), iter([3.0, 15.0])
  monkeypatch.setattr(run.time, "perf_counter", lambda: next(clock))
  monkeypatch.setattr(run, "busy_cpu_seconds", lambda: next(busy))
  monkeypatch.setattr(run, "own_cpu_seconds", lambda: next(own))
  with run.ForeignLoad() as foreign:
    pass
  assert foreign.cores == 0.3


def test_foreign_load_sees_another_process_spin():
  spinner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 3: pass"])
  try:
    time.sleep(0.3)  # let it start
    with run.ForeignLoad() as foreign:
      time.sleep(1.5)
  finally:
    spinner.kill()
    spinner.wait()
  assert foreign.cores >= 0.4  # one spinning process is most of a core, whatever else runs


def test_table_marks_loaded_rows():
  lines = [{"workload": "vae_mlp", "steps_per_s": {"genjax": 300.0, "minimal": 250.0},
            "genjax/minimal": 1.2, "genjax/torch_eager": None, "other_processes_cores": 0.02, "loaded": False},
           {"workload": "dcgan", "steps_per_s": {"genjax": 10.0, "minimal": 9.0},
            "genjax/minimal": 1.11, "genjax/torch_eager": None, "other_processes_cores": 1.4, "loaded": True}]
  table = run.table(lines, ["genjax", "minimal"]).splitlines()
  assert table[0] == ("| workload | genjax | minimal | genjax/minimal | genjax/torch_eager | "
                      "other processes (cores) |")
  assert table[2] == "| vae_mlp | 300.0 | 250.0 | 1.20x | n/a | 0.02 |"
  assert table[3].endswith("| 1.40 LOADED |")


def test_table_marks_contenders_not_written():
  line = {"workload": "style_gan", "steps_per_s": {"genjax": 3.0}, "not_written": ["minimal"],
          "genjax/minimal": None, "genjax/torch_eager": None, "other_processes_cores": 0.0, "loaded": False}
  assert run.table([line], ["genjax", "minimal"]).splitlines()[2] == "| style_gan | 3.0 | - | n/a | n/a | 0.00 |"
  assert run.parameter_report({"workload": "w", "params": {"genjax": 5, "torch_eager": 5}}).endswith("(same)")
  assert run.parameter_report({"workload": "w", "params": {"genjax": 5, "torch_eager": 6}}).endswith("(DIFFERENT)")


# ----------------------------------------------------------------------------- the new families' peers

def _small_workloads(monkeypatch) -> dict:
  monkeypatch.setenv("GENJAX_BENCH_SMALL", "1")
  from benchmarks import workloads
  return {w.name: w for w in workloads.workloads()}


def _genjax_param_count(workload) -> int:
  """genjax's parameter count from the abstract initial state (nothing compiled)."""
  from benchmarks.workloads import synthetic_batches
  from genjax import trainer
  trial = trainer.Run(workload.config, "/tmp/genjax-bench-test")
  run._set_image_shape(trial.objective, workload.image)
  batch = synthetic_batches(workload.config, 1, image=workload.image)[0]
  return run.num_params(trial.abstract_state(trainer.shard_batch(batch, trial.mesh)).params)


def test_torch_style_peer_warms_its_ema_up_as_genjax_does():
  from benchmarks.style_workload import ema_decay_at as peer
  from genjax.optim import ema_decay_at
  steps = [0, 1, 7, 100, 5_000, 100_000]
  for decay, rampup in ((0.999, 0.05), (0.99, 0.5), (0.999, 0.0)):
    np.testing.assert_allclose([peer(s, decay, rampup) for s in steps],
                               ema_decay_at(jnp.asarray(steps), decay, rampup), rtol=1e-6)


def test_new_rows_train_as_many_parameters_in_torch_as_in_genjax(monkeypatch):
  pytest.importorskip("torch")
  chosen = _small_workloads(monkeypatch)
  for name in ("flow_realnvp", "style_gan", "pix2pix"):
    workload = chosen[name]
    assert workload.torch(workload.config, False).num_params == _genjax_param_count(workload), name


def _flax_to_torch(params: dict) -> dict:
  """flax {layers_3: {ResNetConditioner_0: {conv_in: {kernel, bias}}}} -> torch state-dict names and layouts."""
  import torch
  flat = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    keys = [p.key for p in path]
    name = ".".join(k.replace("layers_", "layers.") for k in keys[:-1])
    leaf = np.asarray(leaf)
    if keys[-1] == "kernel":
      flat[f"{name}.weight"] = torch.from_numpy(leaf.transpose(3, 2, 0, 1).copy())
    else:
      flat[f"{name}.{'bias' if keys[-1] == 'bias' else keys[-1]}"] = torch.from_numpy(leaf.copy())
  return flat


def test_torch_flow_is_genjax_flow():
  """With flax's (randomised) weights the NCHW flow gives the same log-det and latent norm per example."""
  torch = pytest.importorskip("torch")
  from benchmarks.flow_workload import torch_flow_modules
  from genjax.layers.coupling import Flow
  # every op kind, both parities of both masks, three conditioner widths (multiscale, fewer couplings)
  ops, shape = ("checkerboard", "checkerboard", "squeeze", "channel", "split", "squeeze", "channel"), (8, 8, 1)
  rng = np.random.default_rng(0)
  x = rng.standard_normal((3,) + shape, np.float32)
  flow = Flow(ops, shape, (4, 6, 8), 1)
  shapes = jax.eval_shape(flow.init, jax.random.key(1), x)["params"]  # random weights: every coupling acts
  params = jax.tree_util.tree_map(lambda p: 0.3 * rng.standard_normal(p.shape, np.float32), shapes)
  z, log_det = jax.jit(flow.apply)({"params": params}, x)
  peer = torch_flow_modules(torch, ops, shape, (4, 6, 8), 1)
  missing = peer.load_state_dict(_flax_to_torch(params), strict=False)
  assert not missing.unexpected_keys and all(k.endswith(".b") for k in missing.missing_keys)  # masks are buffers
  with torch.no_grad():
    z_torch, log_det_torch = peer(torch.from_numpy(np.moveaxis(x, -1, 1).copy()))
  np.testing.assert_allclose(log_det_torch.numpy(), np.asarray(log_det), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose((z_torch ** 2).sum(1).numpy(), np.asarray(jnp.sum(z ** 2, 1)), rtol=1e-4)


def _randomised(variables: dict, rng) -> dict:
  """Every bias, norm scale and running average away from its initial value, so each one counts."""
  def leaf(path, value):
    name = path[-1].key
    if name in ("bias", "mean"):
      return 0.1 * rng.standard_normal(value.shape, np.float32)
    if name in ("scale", "var"):
      return rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    return np.asarray(value)
  return jax.tree_util.tree_map_with_path(leaf, {k: variables[k] for k in ("params", "batch_stats")})


@pytest.mark.parametrize("train", [False, True])
def test_torch_pix2pix_is_genjax_pix2pix(train):
  """With genjax's variables the NCHW U-Net and PatchGAN give genjax's logits: running averages
  (eval) or batch statistics (train, dropout off); padding 28 -> 32, capped widths, 2 condition channels."""
  torch = pytest.importorskip("torch")
  from benchmarks.pix2pix_workload import flax_state_dict, pix2pix_modules
  from genjax.layers.patchgan import PatchGAN
  from genjax.layers.unet import UNet
  rng = np.random.default_rng(0)
  condition, image = rng.random((3, 28, 28, 2), np.float32), rng.random((3, 28, 28, 1), np.float32)
  unet = UNet(1, 5, 4, 16, dropout_rate=0.0 if train else 0.5)  # widths 4, 8, 16, 16, 16
  critic = PatchGAN(downsamplings=2, base_features=4, max_features=8)  # widths 4, 8, 8
  nets = {"unet": (unet, condition), "critic": (critic, np.concatenate([condition, image], -1))}
  peers = dict(zip(nets, pix2pix_modules(torch, unet, critic, 2, 1)))
  for name, (net, x) in nets.items():
    variables = _randomised(net.init({"params": jax.random.key(1), "dropout": jax.random.key(2)}, x, train=False),
                            rng)
    expected = net.apply(variables, x, train=train, mutable=["batch_stats"] if train else False)
    expected = np.asarray(expected[0] if train else expected)
    missing = peers[name].load_state_dict(flax_state_dict(peers[name], variables), strict=False)
    assert not missing.unexpected_keys and all(k.endswith("num_batches_tracked") for k in missing.missing_keys)
    peers[name].train(train)
    with torch.no_grad():
      out = peers[name](torch.from_numpy(np.moveaxis(x, -1, 1).copy())).numpy()
    out = np.moveaxis(out, 1, -1) if name == "unet" else out
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4, err_msg=name)


def test_torch_gram_loss_is_genjax_gram_loss():
  """The texture bench's PyTorch loss with genjax's filters (odd and even sizes, circular padding)."""
  pytest.importorskip("torch")
  from benchmarks.texture_bench import TorchSynthesis
  from genjax.layers.random_features import gram_loss, grams, random_multiscale_net
  net = random_multiscale_net(1, (3, 4), 4, seed=0)
  rng = np.random.default_rng(0)
  exemplar, u = rng.random((1, 16, 16, 1), np.float32), rng.standard_normal((2, 12, 12, 1), np.float32)
  expected = jnp.sum(gram_loss(grams(net, jax.nn.sigmoid(u), True), grams(net, exemplar, False)))
  peer = TorchSynthesis(net.weights, exemplar, u, periodic=True, memory=10, learning_rate=1.0)
  np.testing.assert_allclose(float(peer.loss(peer.u0)), float(expected), rtol=1e-5)
  from genjax.models.texture import mean_loss  # and with the family's mean term
  flat = exemplar.reshape(-1, 1)
  term = jnp.sum(mean_loss(jax.nn.sigmoid(u), flat.mean(0), flat.var(0)))
  assert float(term) > 0.01 * float(expected)  # the term is not negligible here
  peer = TorchSynthesis(net.weights, exemplar, u, periodic=True, memory=10, learning_rate=1.0, mean_weight=2.0)
  np.testing.assert_allclose(float(peer.loss(peer.u0)), float(expected + 2.0 * term), rtol=1e-5)


def test_conv_profile_counts_a_layers_flops_as_xla_does():
  """nominal_flops is 2 x the multiply-adds of every kernel tap (padding included): XLA's count of
  the same conv without padding, whose output side is the layer's low-resolution side."""
  from benchmarks.conv_profile import FLOW_LAYERS, GEOMETRY, LAYERS, nominal_flops
  for _, kind, cin, cout, side in LAYERS + FLOW_LAYERS:
    k, stride, _, _ = GEOMETRY[kind](side)
    n = (side - 1) * stride + k
    x, w = jnp.zeros((2, n, n, cin)), jnp.zeros((k, k, cin, cout))
    conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (stride, stride), "VALID",
                                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    cost = jax.jit(conv).lower(x, w).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    assert cost["flops"] == nominal_flops(2, cin, cout, side, k)


# ----------------------------------------------------------------------------- the GAN encoder row

def test_gan_encoder_trains_as_many_parameters_in_torch_as_in_genjax(monkeypatch):
  """Only E is trained: genjax's state.params and torch's optimizer both hold E's weights alone."""
  pytest.importorskip("torch")
  from genjax.models.gan_encoder import GANEncoderObjective
  workload = _small_workloads(monkeypatch)["gan_encoder"]
  encoder = GANEncoderObjective(workload.config).encoder
  encoder_params = run.num_params(jax.eval_shape(encoder.init, jax.random.key(0), jnp.zeros((1,) + workload.image)))
  assert workload.torch(workload.config, False).num_params == _genjax_param_count(workload) == encoder_params


def test_torch_encoder_is_genjax_encoder(monkeypatch):
  """With genjax's variables (biases, norm scales and running averages randomised) the NCHW E(x), G(z),
  the loss on the same x and z (unequal weights) and E's gradients are genjax's; G gets no gradient."""
  torch = pytest.importorskip("torch")
  from benchmarks.encoder_workload import encoder_loss, flat_orders, flax_state_dict, torch_peer
  from genjax.models.gan_encoder import GANEncoderObjective
  config = _small_workloads(monkeypatch)["gan_encoder"].config.copy_and_resolve_references()
  config.model.image_weight, config.model.latent_weight = 0.7, 2.0
  objective, rng = GANEncoderObjective(config), np.random.default_rng(0)
  x = rng.random((3,) + objective.data_shape, np.float32)
  state = objective.init(jax.random.key(1), {"x": x})
  # every leaf of E's params and of the frozen GAN's params and batch statistics, by its name
  randomised = _randomised({"params": state.params, "batch_stats": state.extras}, rng)
  state = state.replace(params=randomised["params"], extras=randomised["batch_stats"])
  key = jax.random.key(2)
  z = np.array(objective.gan.noise(key, len(x)))  # the z GANEncoderObjective.loss draws from `key`
  grads, metrics = jax.grad(objective.loss, has_aux=True)(state.params["encoder"], state, jnp.asarray(x), key)
  encoder, generator = torch_peer(torch, objective, state)
  nchw = lambda a: torch.from_numpy(np.moveaxis(np.asarray(a), -1, 1).copy())
  with torch.no_grad():
    np.testing.assert_allclose(encoder(nchw(x)).numpy(), objective.encode(state, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(generator(torch.from_numpy(z)).numpy(), np.moveaxis(objective.decode(state, z), -1, 1),
                               rtol=1e-4, atol=1e-4)
  loss = encoder_loss(encoder, generator, nchw(x), torch.from_numpy(z), 0.7, 2.0)
  np.testing.assert_allclose(loss.item(), float(metrics["loss"]), rtol=1e-4)
  loss.backward()
  expected = flax_state_dict(encoder, {"params": grads}, inputs={"Dense_0": flat_orders(objective)[0]})  # linear
  for name, p in encoder.named_parameters():
    np.testing.assert_allclose(p.grad.numpy(), expected[name].numpy(), rtol=1e-3, atol=1e-4, err_msg=name)
  assert all(p.grad is None and not p.requires_grad for p in generator.parameters())

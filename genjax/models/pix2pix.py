"""pix2pix (Isola et al. 2017): a conditional GAN from a paired input to its target image.

G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G)                         (Isola et al. 2017, eq. 4)
L_cGAN = E_{x,y}[log D(x, y)] + E_{x,z}[log(1 - D(x, G(x, z)))]              (eq. 1)

G is a U-Net (genjax/layers/unet.py) whose dropout is the noise z; D is a PatchGAN
(genjax/layers/patchgan.py) that scores (input, image) pairs per patch. The adversarial losses are
the GAN family's (`ADVERSARIAL_LOSSES`: 'non_saturating', or 'least_squares' as in the official
code's LSGAN option), scaled as the official code does: the critic's loss halved. Official defaults:
lambda = `model.l1_weight` = 100, Adam 2e-4 with beta1 0.5. `model.adversarial_weight = 0` drops the
critic: the L1-only U-Net ablation. Batches come from the paired view of a dataset
(`dataset.task`, genjax/data/paired.py): {'input', 'target'}.

One step: G(x) once; a critic update on (x, y) vs (x, stop_grad(G(x))); then the generator update
through the updated critic, pulled back through the same forward pass (jax.vjp), as the official
code reuses its fake batch.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from genjax import losses
from genjax import xla_options
from genjax.config import is_int, is_number, require
from genjax.data import eval_batches, example_shape, paired
from genjax.evaluate import paired_metrics
from genjax.layers.conv_transpose import CONV_INPUT_GRADS
from genjax.layers.networks import UPSAMPLE, run_net
from genjax.layers.patchgan import PatchGAN, receptive_field
from genjax.layers.unet import NORM_LAYERS, UNet, auto_depth
from genjax.models.gan import ADVERSARIAL_LOSSES
from genjax.optim import make_optimizer
from genjax.registry import MODELS
from genjax.state import TrainState

# loss -> (critic scale, generator scale) turning the shared losses into the official GANLoss
# (BCE or MSE means, critic halved); Mao et al.'s least-squares losses already carry the 1/2.
LOSS_SCALES = {"non_saturating": (0.5, 1.0), "least_squares": (1.0, 2.0)}
PICTURE_COLUMNS = 10
EVAL_BATCH = 250


def critic_norm(model: ConfigDict) -> str:
  """`model.critic_norm`, or `model.norm` when it is ''."""
  return model.get("critic_norm") or model.get("norm", "batch")


def image_shape(config: ConfigDict) -> tuple[int, ...]:
  """[H, W, C] of the plain dataset's examples (no paired view needed)."""
  return example_shape(paired.without_task(config.dataset))


def unet_depth(model: ConfigDict, shape) -> int:
  """`model.unet_depth`, or (0) as many halvings as take the padded image to 1x1."""
  return int(model.get("unet_depth", 0)) or auto_depth(*shape[:2])


@MODELS.register("pix2pix")
class Pix2PixObjective:
  """U-Net generator + PatchGAN critic on a paired dataset; `model.*` keys below."""

  def __init__(self, config: ConfigDict):
    model = config.model
    self.dataset = config.dataset
    self.task = paired.paired_task(config.dataset)
    self.shape = image_shape(config)
    self.adversarial_weight = float(model.get("adversarial_weight", 1.0))
    self.l1_weight = float(model.get("l1_weight", 100.0))
    loss = model.get("loss", "non_saturating")
    self.critic_loss_fn, self.generator_loss_fn, self.sigmoid_critic = ADVERSARIAL_LOSSES[loss]
    self.critic_scale, self.generator_scale = LOSS_SCALES[loss]
    self.eval_examples = int(config.get("eval_num_samples", 1000))
    self.test_dropout = bool(model.get("test_dropout", False))
    self.generator = UNet(
        out_channels=self.shape[-1], depth=unet_depth(model, self.shape),
        base_features=int(model.get("unet_features", 64)), max_features=int(model.get("unet_max_features", 512)),
        norm=model.get("norm", "batch"), dropout_rate=float(model.get("dropout", 0.5)),
        dropout_levels=int(model.get("dropout_levels", 3)), test_dropout=self.test_dropout,
        upsample=model.get("upsample", "auto"), input_grad=model.get("conv_input_grad", "auto"))
    self.critic = None
    if self.adversarial_weight:
      self.critic = PatchGAN(
          downsamplings=int(model.get("critic_downsamplings", 1)),
          base_features=int(model.get("critic_features", 64)),
          max_features=int(model.get("critic_max_features", 512)), norm=critic_norm(model),
          input_grad=model.get("conv_input_grad", "auto"))
    self.tx = {"generator": make_optimizer(config.optimizer),
               "critic": make_optimizer(config.get("critic_optimizer") or config.optimizer)}

  @staticmethod
  def validate(config: ConfigDict) -> None:
    model, dataset = config.model, config.dataset
    task = dataset.get("task", "")
    require(task in paired.TASKS, "dataset.task", task, f"one of {sorted(paired.TASKS)} (pix2pix needs pairs)")
    paired.validate_options(dataset)
    shape = image_shape(config)
    paired.validate_options(dataset, shape)
    loss = model.get("loss", "non_saturating")
    require(loss in LOSS_SCALES, "model.loss", loss, f"one of {sorted(LOSS_SCALES)}")
    for key, default in (("norm", "batch"), ("critic_norm", "")):
      value = model.get(key, default)
      require(value in NORM_LAYERS or (key == "critic_norm" and value == ""), f"model.{key}", value,
              f"one of {sorted(NORM_LAYERS)}" + (" or '' (= model.norm)" if key == "critic_norm" else ""))
    for key, default, ok, allowed in (
        ("adversarial_weight", 1.0, lambda v: v >= 0, "a number >= 0 (0: the L1-only U-Net)"),
        ("l1_weight", 100.0, lambda v: v >= 0, "a number >= 0"),
        ("dropout", 0.5, lambda v: 0 <= v < 1, "a number in [0, 1)")):
      value = model.get(key, default)
      require(is_number(value) and ok(value),
              f"model.{key}", value, allowed)
    max_depth = auto_depth(*shape[:2])
    for key, default, ok, allowed in (
        ("unet_depth", 0, lambda v: 0 <= v <= max_depth, f"an integer in [0, {max_depth}] (0: {max_depth}, "
                                                          f"the padded {shape[0]}x{shape[1]} image down to 1x1)"),
        ("unet_features", 64, lambda v: v >= 1, "an integer >= 1"),
        ("unet_max_features", 512, lambda v: v >= 1, "an integer >= 1"),
        ("dropout_levels", 3, lambda v: v >= 0, "an integer >= 0"),
        ("critic_features", 64, lambda v: v >= 1, "an integer >= 1"),
        ("critic_max_features", 512, lambda v: v >= 1, "an integer >= 1")):
      value = model.get(key, default)
      require(is_int(value) and ok(value), f"model.{key}", value, allowed)
    depth = model.get("critic_downsamplings", 1)
    side = min(shape[:2])
    fits = isinstance(depth, int) and depth >= 0 and receptive_field(depth) <= side
    require(fits, "model.critic_downsamplings", depth,
            f"an integer >= 0 whose patch fits the {shape[0]}x{shape[1]} image (receptive field "
            + ", ".join(f"{n}: {receptive_field(n)} px" for n in range(4)) + ")")
    require(model.get("upsample", "auto") in UPSAMPLE[:3], "model.upsample", model.get("upsample"),
            f"one of {UPSAMPLE[:3]}")
    require(model.get("conv_input_grad", "auto") in CONV_INPUT_GRADS, "model.conv_input_grad",
            model.get("conv_input_grad"), f"one of {CONV_INPUT_GRADS}")

  # -- pieces
  def batch_stats(self, state: TrainState) -> dict:
    return state.extras.get("batch_stats", {"generator": {}, "critic": {}})

  def generate(self, params, stats, inputs, rng, train: bool):
    """G(x) in [0, 1] (sigmoid of the U-Net's logits) and its updated batch statistics."""
    logits, stats = run_net(self.generator, params, stats, inputs, train, rngs={"dropout": rng})
    return jax.nn.sigmoid(logits), stats

  def scores(self, params, stats, inputs, images, train: bool):
    """Patch logits [B, H', W'] of D(x, y) on (input, image) channels together."""
    return run_net(self.critic, params, stats, jnp.concatenate([inputs, images], axis=-1), train)

  def critic_objective(self, params, stats, inputs, target, fake):
    real_scores, stats = self.scores(params, stats, inputs, target, True)
    fake_scores, stats = self.scores(params, stats, inputs, fake, True)
    loss = self.critic_scale * self.critic_loss_fn(real_scores, fake_scores)
    aux = {"critic_loss": loss, "critic_real": jnp.mean(real_scores), "critic_fake": jnp.mean(fake_scores)}
    if self.sigmoid_critic:
      aux.update(d_real=jnp.mean(jax.nn.sigmoid(real_scores)), d_fake=jnp.mean(jax.nn.sigmoid(fake_scores)))
    return loss, (aux, stats)

  def generator_objective(self, fake, critic_params, critic_stats, inputs, target):
    """lambda_adv * L_cGAN(G) + lambda * L1 as a function of the fake batch G(x)."""
    l1 = losses.mean_absolute_error(fake, target)
    adversarial = jnp.zeros(())
    if self.critic is not None:
      # The critic's batch statistics belong to the critic phase: this pass does not update them.
      fake_scores, _ = self.scores(critic_params, critic_stats, inputs, fake, True)
      adversarial = self.generator_scale * self.generator_loss_fn(fake_scores)
    total = self.adversarial_weight * adversarial + self.l1_weight * l1
    return total, {"generator_loss": adversarial, "l1": l1, "loss": total}

  # -- protocol
  def init(self, rng: jax.Array, batch: dict) -> TrainState:
    inputs, target = batch["input"][:1], batch["target"][:1]
    gen_key, critic_key, dropout_key = jax.random.split(rng, 3)
    variables = {"generator": self.generator.init({"params": gen_key, "dropout": dropout_key}, inputs, train=False)}
    if self.critic is not None:
      variables["critic"] = self.critic.init(critic_key, jnp.concatenate([inputs, target], -1), train=False)
    params = {name: v["params"] for name, v in variables.items()}  # 'perturbations' are for tests only
    opt_state = {name: self.tx[name].init(params[name]) for name in params}
    stats = {name: variables.get(name, {}).get("batch_stats", {}) for name in ("generator", "critic")}
    extras = {"batch_stats": stats} if stats["generator"] or stats["critic"] else {}
    return TrainState.create(rng, params, opt_state, extras)

  def step(self, state: TrainState, batch: dict, rng: jax.Array):
    inputs, target = batch["input"], batch["target"]
    stats = self.batch_stats(state)
    fake, pullback, gen_stats = jax.vjp(
        lambda p: self.generate(p, stats["generator"], inputs, rng, True), state.params["generator"], has_aux=True)
    params, opt_state, metrics = dict(state.params), dict(state.opt_state), {}
    critic_stats = stats["critic"]
    if self.critic is not None:
      grads, (metrics, critic_stats) = jax.grad(self.critic_objective, has_aux=True)(
          params["critic"], critic_stats, inputs, target, jax.lax.stop_gradient(fake))
      updates, opt_state["critic"] = self.tx["critic"].update(grads, opt_state["critic"], params["critic"])
      params["critic"] = optax.apply_updates(params["critic"], updates)
    fake_grad, gen_metrics = jax.grad(self.generator_objective, has_aux=True)(
        fake, params.get("critic"), critic_stats, inputs, target)
    grads, = pullback(fake_grad)
    updates, opt_state["generator"] = self.tx["generator"].update(grads, opt_state["generator"], params["generator"])
    params["generator"] = optax.apply_updates(params["generator"], updates)
    extras = dict(state.extras)
    if "batch_stats" in extras:
      extras["batch_stats"] = {"generator": gen_stats, "critic": critic_stats}
    return state.replace(params=params, opt_state=opt_state, extras=extras), {**metrics, **gen_metrics}

  # -- abilities
  def translate(self, state: TrainState, inputs: jax.Array) -> jax.Array:
    """The translated image of each input (inpainting keeps the known pixels); dropout per
    `model.test_dropout`, with a fixed key so the same input gives the same output."""
    outputs, _ = self.generate(state.params["generator"], self.batch_stats(state)["generator"], inputs,
                               jax.random.key(0), False)
    return self.task.complete(inputs, outputs)

  def pictures(self, state: TrainState, batch: dict, rng: jax.Array) -> dict[str, Any]:
    """Rows input | output | target of the first test examples."""
    del rng
    inputs, target = batch["input"][:PICTURE_COLUMNS], batch["target"][:PICTURE_COLUMNS]
    shown = inputs[..., :target.shape[-1]]  # the image channels (edges: the edge map)
    shown = jnp.broadcast_to(shown, target.shape) if shown.shape[-1] != target.shape[-1] else shown
    return {"translation": jnp.stack([shown, self.translate(state, inputs), target])}

  def evaluate(self, state: TrainState, arrays: dict, rng: jax.Array) -> dict[str, float]:
    """Image scores, feature-space scores and classifier accuracy of the outputs and baselines."""
    del rng
    from genjax.evaluate.classifier import FeatureExtractor
    from genjax.evaluate.sample_quality import sample_quality_metrics
    n = min(self.eval_examples, len(arrays["input"]) // 2)
    inputs, target, labels = arrays["input"][:n], arrays["target"][:n], arrays["label"][:n]
    translate = xla_options.jit(self.translate)
    outputs = np.concatenate([np.asarray(translate(state, jnp.asarray(b["input"])))
                              for b in eval_batches({"input": inputs}, EVAL_BATCH)])
    candidates = {"": outputs}
    if self.task.image_input:
      candidates["input_"] = inputs[..., :target.shape[-1]]
    region = None if self.task.hole is None else np.asarray(self.task.hole(inputs))
    if region is not None:
      candidates["biharmonic_"] = paired_metrics.biharmonic_inpaint(candidates["input_"], region)
    extractor = FeatureExtractor(paired.without_task(self.dataset))
    # Real images other than the targets, so a perfect output is not trivially at distance 0.
    real = extractor.embed(arrays["target"][n:2 * n])
    results = {"num_examples": n, "test_dropout": self.test_dropout, "feature_extractor": extractor.name,
               "target_classifier_accuracy": float(np.mean(extractor.predict(target) == labels)),
               "reference_fid": sample_quality_metrics(real, extractor.embed(target))["fid"]}
    for prefix, images in candidates.items():
      scores = paired_metrics.image_scores(target, images, region)
      quality = sample_quality_metrics(real, extractor.embed(images))
      scores.update({k: quality[k] for k in ("fid", "kid_mean", "kid_std", "precision", "recall")})
      scores["classifier_accuracy"] = float(np.mean(extractor.predict(images) == labels))
      results.update({prefix + k: v for k, v in scores.items()})
    return results

"""GAN inversion: find z with G(z) close to a given image x (Zhu, Kraehenbuehl, Shechtman & Efros 2016).

    python -m genjax.invert --workdir RUN --method hybrid --split test --num 64

Three methods (Zhu et al. sec. 3.1), all batched under one jit (every restart of every image):
- `opt`: minimise loss(z) = ||M * (G(z) - x)||^2 + lambda ||F(M * G(z)) - F(M * x)||^2 over z with Adam
  or L-BFGS from `restarts` draws of the prior, keeping the best restart per image;
- `encoder`: z = E(x), with E trained for the frozen G (`model.name='gan_encoder'`, its own run);
- `hybrid`: `opt` whose restart 0 starts at E(x) (the other restarts are the prior draws of `opt`).
M is a 0/1 mask of the known pixels (inpainting: the unknown ones never enter the loss); F is the
penultimate layer of genjax's own domain classifier (genjax/evaluate/classifier.py) or of the GAN's
critic; lambda = `feature_weight` (0: pixels only). `projection='shell'` keeps every iterate on the
sqrt(d) sphere where N(0, I) puts its mass in high dimension.

RUN is a trained GAN run (then `encoder`/`hybrid` need --encoder_workdir) or a `gan_encoder` run
(which knows its generator). Writes RUN/inversion/: METHOD_SPLIT.png (rows of target | G(z)),
METHOD_SPLIT_z.npy, METHOD_SPLIT.json (PSNR, MSE, feature distance, seconds per image, settings) and
METHOD_SPLIT_interpolation.png (real-to-real interpolations through G). `--split samples` inverts
the generator's own samples, whose true z is known (the JSON then holds the latent error too).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax import xla_options
from genjax.config import ConfigError
from genjax.models.autoencoder import interpolate_codes
from genjax.objective import has_ability

INTERPOLATION_STEPS = 10


class InversionError(ConfigError):
  """Bad input to inversion; one line naming the argument and what is expected."""


def _expect(condition: bool, name: str, value: Any, expected: str) -> None:
  if not condition:
    raise InversionError(f"{name}={value!r} is not allowed; expected {expected}")


# ----------------------------------------------------------------------------- pure pieces

def project_shell(z: jax.Array) -> jax.Array:
  """z * sqrt(d) / ||z||: the sphere where N(0, I_d) concentrates (||z|| = sqrt(d) +- O(1))."""
  return z * jnp.sqrt(z.shape[-1]) / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)


PROJECTIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"none": lambda z: z, "shell": project_shell}

# name -> optax transformation from the learning rate (L-BFGS picks its step by a zoom line search).
OPTIMIZERS: dict[str, Callable[[float], optax.GradientTransformationExtraArgs]] = {
    "adam": lambda lr: optax.with_extra_args_support(optax.adam(lr)),
    "lbfgs": lambda lr: optax.lbfgs(),
}


def _center_mask(h: int, w: int) -> np.ndarray:
  mask = np.ones((h, w), np.float32)
  mask[h // 4:h - h // 4, w // 4:w - w // 4] = 0.0
  return mask


def _bottom_mask(h: int, w: int) -> np.ndarray:
  mask = np.ones((h, w), np.float32)
  mask[h // 2:] = 0.0
  return mask


# name -> (H, W) -> 0/1 mask of the KNOWN pixels.
MASKS: dict[str, Callable[[int, int], np.ndarray]] = {
    "none": lambda h, w: np.ones((h, w), np.float32), "center": _center_mask, "bottom": _bottom_mask}


def make_mask(name: str, shape: tuple[int, ...]) -> np.ndarray:
  """[H, W, 1] known-pixel mask for images shaped `shape` = (H, W, C)."""
  return MASKS[name](shape[0], shape[1])[..., None]


def inversion_loss(x_hat: jax.Array, x: jax.Array, mask: jax.Array, features: Callable, weight: float) -> jax.Array:
  """Zhu et al. (2016) eq. 2 with a known-pixel mask M: ||M (G(z) - x)||^2 + lambda ||F(M G(z)) - F(M x)||^2, per example."""
  pixels = jnp.sum(jnp.square(mask * (x_hat - x)).reshape(x.shape[0], -1), axis=1)
  if not weight:
    return pixels
  distance = jnp.sum(jnp.square(features(mask * x_hat) - features(mask * x)), axis=1)
  return pixels + weight * distance


def psnr(mse: np.ndarray) -> np.ndarray:
  """Peak signal-to-noise ratio in dB of images in [0, 1] from their mean squared error."""
  return 10.0 * np.log10(1.0 / np.maximum(mse, 1e-12))


# ----------------------------------------------------------------------------- what a run offers

@dataclasses.dataclass(eq=False)  # hashed by identity: compiled inversions are cached per generator
class Generator:
  """A trained run seen by inversion: G, optional E, the prior's size and feature extractors."""
  generate: Callable[[jax.Array], jax.Array]  # z [B, d] -> images [B, H, W, C]
  encode: Callable[[jax.Array], jax.Array] | None  # images -> z, or None without an encoder
  latent_dim: int
  data_shape: tuple[int, ...]
  dataset: Any  # the dataset config (for the classifier's features)
  critic_features: Callable[[jax.Array], jax.Array]
  workdir: str = ""

  def noise(self, rng: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.normal(rng, shape + (self.latent_dim,))


def _critic_features(gan, gan_state) -> Callable[[jax.Array], jax.Array]:
  """The critic's penultimate layer: outputs of its last convolution / hidden dense, flattened."""
  stats = gan.batch_stats(gan_state)["critic"]
  variables = {"params": gan_state.params["critic"], **({"batch_stats": stats} if stats else {})}

  def features(x):
    _, captured = gan.critic.apply(variables, x, train=False, mutable=["intermediates"],
                                   capture_intermediates=lambda m, _: isinstance(m, (nn.Conv, nn.Dense)))
    layers = [v["__call__"][0] for k, v in captured["intermediates"].items() if k != "__call__"]
    return layers[-2].reshape(x.shape[0], -1)  # layers[-1] is the score
  return features


def _frozen_gan(objective, state):
  """(GAN objective, GAN state) of a GAN run or of a gan_encoder run; None for other runs."""
  if has_ability(objective, "frozen_gan"):
    return objective.frozen_gan(state)
  if has_ability(objective, "generate_eval"):
    return objective, state
  return None


@functools.lru_cache(maxsize=8)  # one Generator per (run, encoder), so its compiled inversions are reused
def generator_of(model, encoder=None) -> Generator:
  """The Generator of a loaded run (genjax.api.Model); `encoder` a gan_encoder Model for its E."""
  found = _frozen_gan(model.objective, model.state)
  if found is None:
    raise InversionError(f"--workdir={model.workdir!r} holds a {model.config.model.name!r} model, which is "
                         f"not a trained generator; expected a GAN run or a gan_encoder run")
  gan, gan_state = found
  if gan.kind != "image" or gan.num_classes:
    raise InversionError(f"--workdir={model.workdir!r} holds a GAN of {gan.kind} data with "
                         f"{gan.num_classes} classes; expected an unconditional image GAN")
  encoder = encoder if encoder is not None else (model if has_ability(model.objective, "encode") else None)
  encode = None
  if encoder is not None:
    _expect(has_ability(encoder.objective, "frozen_gan") and encoder.objective.latent_dim == gan.latent_dim,
            "--encoder_workdir", encoder.workdir, f"a gan_encoder run trained for this generator "
            f"(latent size {gan.latent_dim})")
    trained_for = os.path.abspath(encoder.config.model.generator_workdir)
    _expect(encoder is model or trained_for == model.workdir, "--encoder_workdir", encoder.workdir,
            f"a gan_encoder run for {model.workdir} (this one was trained for {trained_for})")
    encode = functools.partial(encoder.objective.encode, encoder.state)
  return Generator(generate=lambda z: gan.generate_eval(gan_state, z), encode=encode,
                   latent_dim=gan.latent_dim, data_shape=tuple(gan.data_shape), dataset=gan.dataset,
                   critic_features=_critic_features(gan, gan_state), workdir=model.workdir)


def classifier_features(dataset) -> Callable[[jax.Array], jax.Array]:
  """Penultimate layer of genjax's domain classifier for `dataset` (trained and cached on first use)."""
  from genjax.evaluate.classifier import FeatureExtractor
  key = json.dumps(dataset.to_dict(), sort_keys=True, default=repr)
  if key not in _EXTRACTORS:  # building one scores the whole test set: once per process
    _EXTRACTORS[key] = FeatureExtractor(dataset)
  extractor = _EXTRACTORS[key]
  return lambda x: extractor.model.apply({"params": extractor.params}, x)[0]


_EXTRACTORS: dict[str, Any] = {}


# name -> Generator -> F(x) [B, features]
FEATURES: dict[str, Callable[[Generator], Callable]] = {
    "classifier": lambda g: classifier_features(g.dataset),
    "critic": lambda g: g.critic_features,
}


# ----------------------------------------------------------------------------- methods

def _prior_starts(g: Generator, rng: jax.Array, x: jax.Array, restarts: int) -> jax.Array:
  return g.noise(rng, (restarts, x.shape[0]))


def _encoder_start(g: Generator, rng: jax.Array, x: jax.Array, restarts: int) -> jax.Array:
  return g.encode(x)[None]


def _hybrid_starts(g: Generator, rng: jax.Array, x: jax.Array, restarts: int) -> jax.Array:
  return _prior_starts(g, rng, x, restarts).at[0].set(g.encode(x))


@dataclasses.dataclass(frozen=True)
class Method:
  start: Callable  # (generator, rng, x, restarts) -> z0 [restarts, N, d]
  optimises: bool  # False: the start is the answer (one restart, no steps)
  needs_encoder: bool


METHODS: dict[str, Method] = {
    "opt": Method(_prior_starts, True, False),
    "encoder": Method(_encoder_start, False, True),
    "hybrid": Method(_hybrid_starts, True, True),
}


@dataclasses.dataclass(frozen=True)
class Settings:
  """Everything that shapes one inversion; validated by `check`."""
  method: str = "opt"
  steps: int = 200
  restarts: int = 4
  optimizer: str = "adam"
  learning_rate: float = 0.05
  feature_weight: float = 0.0
  features: str = "classifier"
  projection: str = "none"
  mask: str = "none"

  def check(self) -> "Settings":
    _expect(self.method in METHODS, "method", self.method, f"one of {sorted(METHODS)}")
    _expect(isinstance(self.steps, int) and self.steps >= 0, "steps", self.steps, "an integer >= 0")
    _expect(isinstance(self.restarts, int) and self.restarts >= 1, "restarts", self.restarts, "an integer >= 1")
    _expect(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, f"one of {sorted(OPTIMIZERS)}")
    _expect(self.learning_rate > 0, "learning_rate", self.learning_rate, "a number > 0")
    _expect(self.feature_weight >= 0, "feature_weight", self.feature_weight, "a number >= 0 (0: pixels only)")
    _expect(self.features in FEATURES, "features", self.features, f"one of {sorted(FEATURES)}")
    _expect(self.projection in PROJECTIONS, "projection", self.projection, f"one of {sorted(PROJECTIONS)}")
    _expect(self.mask in MASKS, "mask", self.mask, f"one of {sorted(MASKS)}")
    if not METHODS[self.method].optimises:  # the encoder's answer is its start
      return dataclasses.replace(self, steps=0, restarts=1)
    return self


def check_images(x, data_shape: tuple[int, ...]) -> np.ndarray:
  """float32 [N, H, W, C] in [0, 1] for this generator, else one-line InversionError."""
  x = np.asarray(x, np.float32)
  if x.ndim == len(data_shape):
    x = x[None]
  _expect(x.ndim == len(data_shape) + 1 and x.shape[1:] == tuple(data_shape) and len(x) >= 1, "images shape",
          x.shape, f"[N, {', '.join(map(str, data_shape))}] (the generator's image shape)")
  _expect(bool(np.all(np.isfinite(x))) and x.min() >= 0.0 and x.max() <= 1.0, "images range",
          (float(np.nanmin(x)), float(np.nanmax(x))), "pixel values in [0, 1]")
  return x


def build_inversion(g: Generator, settings: Settings) -> Callable:
  """jit-able (x [N,...], mask [H,W,1], rng) -> dict(z, x_hat, loss, start, trace): every restart of
  every image descends its own loss (vmapped), then the restart with the lowest loss is kept."""
  method = METHODS[settings.method]
  if method.needs_encoder and g.encode is None:
    raise InversionError(f"method={settings.method!r} needs an encoder; expected --encoder_workdir (a "
                         f"gan_encoder run for this generator) or --workdir pointing at a gan_encoder run")
  project = PROJECTIONS[settings.projection]
  features = FEATURES[settings.features](g) if settings.feature_weight else None
  tx = OPTIMIZERS[settings.optimizer](settings.learning_rate)

  def loss_one(z, x, mask):
    return inversion_loss(g.generate(z[None]), x[None], mask, features, settings.feature_weight)[0]

  def descend_one(z0, x, mask):
    objective = lambda z: loss_one(z, x, mask)

    def step(carry, _):
      z, opt_state = carry
      value, grad = jax.value_and_grad(objective)(z)
      updates, opt_state = tx.update(grad, opt_state, z, value=value, grad=grad, value_fn=objective)
      return (project(optax.apply_updates(z, updates)), opt_state), value

    (z, _), trace = jax.lax.scan(step, (z0, tx.init(z0)), None, length=settings.steps)
    return z, objective(z), trace

  def invert(x, mask, rng):
    z0 = project(method.start(g, rng, x, settings.restarts))  # [R, N, d]
    r, n = z0.shape[:2]
    flat = lambda a: a.reshape((r * n,) + a.shape[2:])
    xs = jnp.broadcast_to(x[None], (r,) + x.shape)
    z, loss, trace = jax.vmap(descend_one, in_axes=(0, 0, None))(flat(z0), flat(xs), mask)
    z, loss, trace = z.reshape(r, n, -1), loss.reshape(r, n), trace.reshape(r, n, -1)
    best = jnp.argmin(loss, axis=0)  # [N]
    pick = lambda a: jnp.take_along_axis(a, best.reshape((1, n) + (1,) * (a.ndim - 2)), axis=0)[0]
    z = pick(z)
    return {"z": z, "x_hat": g.generate(z), "loss": pick(loss), "start": pick(z0), "trace": pick(trace)}
  return invert


@functools.lru_cache(maxsize=16)
def _compiled(g: Generator, settings: Settings, shape: tuple[int, ...]):
  """The compiled inversion for these settings and image batch shape (compiled once, timed apart)."""
  args = (jax.ShapeDtypeStruct(shape, jnp.float32), jax.ShapeDtypeStruct(g.data_shape[:2] + (1,), jnp.float32),
          jax.random.key(0))
  return xla_options.jit(build_inversion(g, settings)).lower(*args).compile()


def invert_images(g: Generator, x, settings: Settings = Settings(), seed: int = 0) -> dict[str, np.ndarray]:
  """Inverts images x [N, H, W, C] in [0, 1] -> numpy dict: z, x_hat = G(z), loss, start (the best
  restart's first iterate), trace ([N, steps] loss per step) and seconds (run time after compiling)."""
  settings = settings.check()
  x = check_images(x, g.data_shape)
  mask = jnp.asarray(make_mask(settings.mask, g.data_shape))
  args = (jnp.asarray(x), mask, jax.random.key(seed))
  compiled = _compiled(g, settings, x.shape)
  start = time.perf_counter()
  result = jax.block_until_ready(compiled(*args))
  seconds = time.perf_counter() - start
  return {**{k: np.asarray(v) for k, v in result.items()}, "seconds": seconds}


def interpolate(g: Generator, z_a: np.ndarray, z_b: np.ndarray, steps: int = INTERPOLATION_STEPS,
                projection: str = "none") -> np.ndarray:
  """G along straight lines z_a -> z_b (each point projected like the iterates): [N, steps, H, W, C]."""
  path = PROJECTIONS[projection](interpolate_codes(jnp.asarray(z_a), jnp.asarray(z_b), steps))
  images = xla_options.jit(g.generate)(path.reshape(-1, path.shape[-1]))
  return np.asarray(images).reshape(path.shape[:2] + images.shape[1:])


def invert_model(model, x, encoder=None, seed: int = 0, **settings) -> dict[str, np.ndarray]:
  """`invert_images` for a loaded run (genjax.api.Model); `encoder` a gan_encoder Model or workdir."""
  if isinstance(encoder, str):
    from genjax import api
    encoder = api.load(encoder)
  return invert_images(generator_of(model, encoder), x, Settings(**settings), seed)


# ----------------------------------------------------------------------------- metrics

def feature_distance(g: Generator, x_hat: np.ndarray, x: np.ndarray) -> dict[str, Any]:
  """Mean squared L2 distance of genjax's classifier features (penultimate layer) of G(z) and x."""
  embed = xla_options.jit(classifier_features(g.dataset))
  distance = np.sum(np.square(np.asarray(embed(x_hat)) - np.asarray(embed(x))), axis=1)
  return {"feature_distance": float(np.mean(distance)),
          "feature_extractor": f"genjax-cnn-{g.dataset.name}-seed0 (penultimate layer, squared L2)"}


def reconstruction_metrics(g: Generator, x: np.ndarray, result: dict, settings: Settings,
                           z_true: np.ndarray | None = None, features: bool = True) -> dict[str, Any]:
  """PSNR / MSE on the known pixels, classifier feature distance (unless `features` is False), seconds per image."""
  mask = make_mask(settings.mask, g.data_shape)
  mse = np.sum(mask * np.square(result["x_hat"] - x), axis=(1, 2, 3)) / (mask.sum() * x.shape[-1])
  metrics = {"psnr_db": float(np.mean(psnr(mse))), "mse": float(np.mean(mse)),
             "seconds_per_image": result["seconds"] / len(x),
             "num_images": int(len(x)), "final_loss": float(np.mean(result["loss"])),
             **(feature_distance(g, result["x_hat"], x) if features else {}),
             **dataclasses.asdict(settings.check())}
  if settings.mask != "none":  # inpainting: how well G(z) guesses the pixels it never saw
    unknown = 1.0 - mask
    metrics["mse_unknown"] = float(np.mean(np.sum(unknown * np.square(result["x_hat"] - x), axis=(1, 2, 3))
                                           / (unknown.sum() * x.shape[-1])))
  if z_true is not None:
    metrics["latent_mse"] = float(np.mean(np.square(result["z"] - z_true)))
  return metrics


# ----------------------------------------------------------------------------- command line

def _targets(model, g: Generator, split: str, num: int, images: str, seed: int):
  """(images [N,...], true z or None, name) from --images FILE.npy, --split samples, or a data split."""
  if images:
    return check_images(np.load(images), g.data_shape)[:num], None, os.path.splitext(os.path.basename(images))[0]
  if split == "samples":
    z = np.asarray(g.noise(jax.random.key(seed + 1), (num,)))
    return np.asarray(xla_options.jit(g.generate)(jnp.asarray(z))), z, "samples"
  _expect(split in ("train", "test"), "--split", split, "'train', 'test' or 'samples'")
  arrays = model.test_data() if split == "test" else model._run.train_arrays
  return check_images(arrays["x"][:num], g.data_shape), None, split


def write_outputs(directory: str, name: str, x: np.ndarray, result: dict, metrics: dict,
                  interpolation: np.ndarray, mask: np.ndarray) -> list[str]:
  from genjax import images
  os.makedirs(directory, exist_ok=True)
  rows = np.stack([x * mask, result["x_hat"]], axis=1)  # target (unknown pixels black) | G(z)
  paths = [images.save_png(os.path.join(directory, f"{name}.png"),
                           images.image_grid(rows.reshape((-1,) + x.shape[1:]), ncol=2 * min(4, len(x)))),
           images.save_png(os.path.join(directory, f"{name}_interpolation.png"), images.to_picture(interpolation))]
  np.save(os.path.join(directory, f"{name}_z.npy"), result["z"])
  paths.append(os.path.join(directory, f"{name}_z.npy"))
  with open(os.path.join(directory, f"{name}.json"), "w") as f:
    json.dump(metrics, f, indent=2, sort_keys=True)
  paths.append(os.path.join(directory, f"{name}.json"))
  return paths


def main(argv) -> None:
  from absl import flags
  del argv
  import genjax  # noqa: F401  registers families and datasets
  from genjax import api, trainer
  from genjax.data import DatasetError
  f = flags.FLAGS
  try:
    trainer.enable_compilation_cache()
    settings = Settings(method=f.method, steps=f.steps, restarts=f.restarts, optimizer=f.optimizer,
                        learning_rate=f.learning_rate, feature_weight=f.feature_weight,
                        features=f.features, projection=f.projection, mask=f.mask).check()
    _expect(f.num >= 1, "--num", f.num, "an integer >= 1")
    model = api.load(f.workdir)
    g = generator_of(model, api.load(f.encoder_workdir) if f.encoder_workdir else None)
    x, z_true, split = _targets(model, g, f.split, f.num, f.images, f.seed)
    result = invert_images(g, x, settings, f.seed)
    metrics = reconstruction_metrics(g, x, result, settings, z_true, f.feature_distance)
    half = len(x) // 2  # real-to-real: image i to image half + i
    interpolation = interpolate(g, result["z"][:min(half, 8)], result["z"][half:half + min(half, 8)],
                                projection=settings.projection) if half else result["x_hat"][:1, None]
  except (ConfigError, DatasetError, trainer.TrainingError, KeyError, OSError, ValueError) as e:
    print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}".splitlines()[0], file=sys.stderr)
    sys.exit(2)
  name = f"{settings.method}_{split}" + ("" if settings.mask == "none" else f"_{settings.mask}")
  paths = write_outputs(os.path.join(model.workdir, "inversion"), name, x, result, metrics, interpolation,
                        make_mask(settings.mask, g.data_shape))
  print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}))
  print("\n".join(paths))


def define_flags() -> None:
  from absl import flags
  defaults = Settings()
  flags.DEFINE_string("workdir", None, "A trained GAN run or gan_encoder run.")
  flags.DEFINE_string("encoder_workdir", "", "A gan_encoder run for --workdir's generator (encoder, hybrid).")
  flags.DEFINE_string("method", defaults.method, f"One of {sorted(METHODS)}.")
  flags.DEFINE_string("split", "test", "'train', 'test' or 'samples' (the generator's own, known z).")
  flags.DEFINE_string("images", "", "A .npy file of images [N, H, W, C] in [0, 1] instead of --split.")
  flags.DEFINE_integer("num", 64, "How many images to invert.")
  flags.DEFINE_integer("steps", defaults.steps, "Optimisation steps (opt, hybrid).")
  flags.DEFINE_integer("restarts", defaults.restarts, "Restarts per image; the best is kept.")
  flags.DEFINE_string("optimizer", defaults.optimizer, f"One of {sorted(OPTIMIZERS)}.")
  flags.DEFINE_float("learning_rate", defaults.learning_rate, "Adam's step size (L-BFGS: line search).")
  flags.DEFINE_float("feature_weight", defaults.feature_weight, "lambda of the feature loss (0: pixels only).")
  flags.DEFINE_string("features", defaults.features, f"One of {sorted(FEATURES)}.")
  flags.DEFINE_string("projection", defaults.projection, f"One of {sorted(PROJECTIONS)}.")
  flags.DEFINE_string("mask", defaults.mask, f"Known pixels, one of {sorted(MASKS)} (inpainting).")
  flags.DEFINE_integer("seed", 0, "Restarts' and samples' seed.")
  flags.DEFINE_bool("feature_distance", True, "Report the classifier feature distance (trains the "
                    "dataset's classifier on first use).")
  flags.mark_flag_as_required("workdir")


def _parse(argv: list[str]) -> list[str]:
  from absl import flags
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  from absl import app
  define_flags()
  app.run(main, flags_parser=_parse)

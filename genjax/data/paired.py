"""Paired views of image datasets for image-to-image translation (pix2pix, Isola et al. 2017).

`dataset.task` ('' = off) turns any image dataset's split into `{'input', 'target', 'x', 'label'}`
with `target = x` (the clean image) and an input made from it:

- 'inpaint': the image with a hole (`dataset.mask`: 'centre' square, random 'rectangles', free-form
  'strokes'; `dataset.mask_size`: the side of the square, or the side of the square of equal area),
  zeroed, plus the mask (1 = missing) as a last channel;
- 'edges': Canny edges (`skimage.feature.canny`, `dataset.edges_sigma`) of the grey image;
- 'superres': `dataset.superres_factor`-times block-averaged, then repeated back to full size;
- 'denoise': the image plus N(0, `dataset.denoise_std`^2) noise, clipped to [0, 1].

Masks and noise are a pure function of (`dataset.pair_seed`, split, example index), so the test
inputs are fixed and a resumed run sees the same pairs.
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any, Callable

import numpy as np

from genjax.config import is_int, is_number, require

# Options of the paired view, carried by every experiment (typed defaults: no None on the CLI).
OPTIONS = {"task": "", "mask": "centre", "mask_size": 14, "pair_seed": 0, "edges_sigma": 1.0,
           "superres_factor": 4, "denoise_std": 0.2}
Config = Any


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """The generator of one example's mask or noise: a pure function of (seed, split, index)."""
  return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


# ----------------------------------------------------------------------------- masks (1 = missing)

def centre_mask(rng: np.random.Generator, height: int, width: int, size: int) -> np.ndarray:
  """A size x size square in the middle (the same for every example)."""
  del rng
  mask = np.zeros((height, width), np.float32)
  top, left = (height - size) // 2, (width - size) // 2
  mask[top:top + size, left:left + size] = 1.0
  return mask


def rectangle_mask(rng: np.random.Generator, height: int, width: int, size: int) -> np.ndarray:
  """One rectangle of area ~size^2 (sides within sqrt(2) of size, clipped to the image) at a random place."""
  low = max(1, math.ceil(size / math.sqrt(2)))
  h = int(rng.integers(low, max(low, min(height, math.floor(size * math.sqrt(2)))) + 1))
  w = int(min(width, max(1, round(size * size / h))))
  mask = np.zeros((height, width), np.float32)
  top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
  mask[top:top + h, left:left + w] = 1.0
  return mask


def stroke_mask(rng: np.random.Generator, height: int, width: int, size: int) -> np.ndarray:
  """Free-form brush strokes (random walks of a round brush) until size^2 pixels are covered."""
  mask = np.zeros((height, width), np.float32)
  radius = max(1.0, min(height, width) / 14)
  rows, cols = np.mgrid[:height, :width]
  target = size * size
  while mask.sum() < target:
    y, x = rng.uniform(0, height), rng.uniform(0, width)
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(rng.integers(4, 12)):
      brush = (rows - y) ** 2 + (cols - x) ** 2 <= radius ** 2
      if mask.sum() + np.count_nonzero(brush & (mask == 0)) > target and mask.sum() > 0:
        # The last dab would overshoot: add only enough of its pixels to reach the target area.
        new = np.flatnonzero(brush & (mask == 0))[: int(target - mask.sum())]
        mask.flat[new] = 1.0
        break
      mask[brush] = 1.0
      angle += rng.normal(0, 0.6)
      y = np.clip(y + 1.5 * radius * np.sin(angle), 0, height - 1)
      x = np.clip(x + 1.5 * radius * np.cos(angle), 0, width - 1)
      if mask.sum() >= target:
        break
  return mask


MASKS: dict[str, Callable[[np.random.Generator, int, int, int], np.ndarray]] = {
    "centre": centre_mask, "rectangles": rectangle_mask, "strokes": stroke_mask}


def masks(config: Config, split: str, count: int, height: int, width: int) -> np.ndarray:
  """float32 [count, H, W] masks of `dataset.mask` kind, example i's from example_rng(seed, split, i)."""
  kind, size, seed = option(config, "mask"), int(option(config, "mask_size")), int(option(config, "pair_seed"))
  if kind == "centre":  # the same square for everyone: no per-example generators needed
    return np.broadcast_to(centre_mask(None, height, width, size), (count, height, width)).copy()
  return np.stack([MASKS[kind](example_rng(seed, split, i), height, width, size) for i in range(count)])


# ----------------------------------------------------------------------------- tasks

def grey(x: np.ndarray) -> np.ndarray:
  """[N, H, W, C] -> [N, H, W]: the channel mean."""
  return x.mean(axis=-1)


def inpaint_input(config: Config, split: str, x: np.ndarray) -> np.ndarray:
  """[masked image (holes zeroed), mask] along channels."""
  hole = masks(config, split, len(x), x.shape[1], x.shape[2])[..., None]
  return np.concatenate([x * (1.0 - hole), hole], axis=-1).astype(np.float32)


def edges_input(config: Config, split: str, x: np.ndarray) -> np.ndarray:
  """Canny edge maps of the grey images, [N, H, W, 1] in {0, 1}."""
  from skimage.feature import canny
  sigma = float(option(config, "edges_sigma"))
  return np.stack([canny(image, sigma=sigma) for image in grey(x)])[..., None].astype(np.float32)


def superres_input(config: Config, split: str, x: np.ndarray) -> np.ndarray:
  """Block means over factor x factor cells (edge-padded), repeated back to H x W."""
  f = int(option(config, "superres_factor"))
  n, h, w, c = x.shape
  padded = np.pad(x, ((0, 0), (0, -h % f), (0, -w % f), (0, 0)), mode="edge")
  low = padded.reshape(n, padded.shape[1] // f, f, padded.shape[2] // f, f, c).mean(axis=(2, 4))
  return np.repeat(np.repeat(low, f, axis=1), f, axis=2)[:, :h, :w].astype(np.float32)


def denoise_input(config: Config, split: str, x: np.ndarray) -> np.ndarray:
  """x + N(0, std^2), clipped to [0, 1]; example i's noise from example_rng(seed, split, i)."""
  std, seed = float(option(config, "denoise_std")), int(option(config, "pair_seed"))
  noise = np.stack([example_rng(seed, split, i).standard_normal(x.shape[1:]) for i in range(len(x))])
  return np.clip(x + std * noise, 0.0, 1.0).astype(np.float32)


def inpaint_hole(inputs):
  """The mask channel (1 = missing) of an inpainting input, [N, H, W]."""
  return inputs[..., -1]


def inpaint_complete(inputs, outputs):
  """Known pixels from the input, the hole from the output (numpy or jax arrays)."""
  hole = inputs[..., -1:]
  return outputs * hole + inputs[..., :-1] * (1 - hole)


@dataclasses.dataclass(frozen=True)
class PairedTask:
  make_input: Callable[[Config, str, np.ndarray], np.ndarray]
  input_channels: Callable[[int], int]  # image channels -> input channels
  image_input: bool  # the input's first channels are a corrupted copy of the target (a baseline)
  hole: Callable | None = None  # inputs -> [N, H, W] region to score separately (masked_* metrics)
  complete: Callable = lambda inputs, outputs: outputs  # the translated image from (input, output)


TASKS: dict[str, PairedTask] = {
    "inpaint": PairedTask(inpaint_input, lambda c: c + 1, True, inpaint_hole, inpaint_complete),
    "edges": PairedTask(edges_input, lambda c: 1, False),
    "superres": PairedTask(superres_input, lambda c: c, True),
    "denoise": PairedTask(denoise_input, lambda c: c, True),
}


def option(config: Config, key: str):
  value = config.get(key, OPTIONS[key])
  return OPTIONS[key] if value is None else value


def paired_task(config: Config) -> PairedTask:
  """The PairedTask of `dataset.task`."""
  return TASKS[option(config, "task")]


def validate_options(config: Config, image_shape: tuple[int, ...] | None = None) -> None:
  """One-line ConfigError for a bad paired-view option; sizes are checked when the shape is known."""
  task = option(config, "task")
  require(task in TASKS or task == "", "dataset.task", task, f"'' (off) or one of {sorted(TASKS)}")
  mask = option(config, "mask")
  require(mask in MASKS, "dataset.mask", mask, f"one of {sorted(MASKS)}")
  for key, ok, allowed in (("mask_size", lambda v: v >= 1, "an integer >= 1"),
                           ("pair_seed", lambda v: v >= 0, "an integer >= 0"),
                           ("superres_factor", lambda v: v >= 2, "an integer >= 2")):
    value = option(config, key)
    require(is_int(value) and ok(value), f"dataset.{key}", value, allowed)
  for key in ("edges_sigma", "denoise_std"):
    value = option(config, key)
    require(is_number(value) and value > 0, f"dataset.{key}", value, "a number > 0")
  if image_shape is not None and task:
    require(len(image_shape) == 3, "dataset.task", task, "a task on an image dataset ([H, W, C] examples)")
    side = min(image_shape[:2])
    if TASKS[task].hole is not None:  # a masked task: the hole must fit in the image
      size = option(config, "mask_size")
      require(size <= side, "dataset.mask_size", size,
              f"at most the image side {side} (images are {image_shape[0]}x{image_shape[1]})")


def without_task(config: Config):
  """A copy of a dataset config with every paired option at its default: the plain dataset."""
  plain = config.copy_and_resolve_references() if hasattr(config, "copy_and_resolve_references") else dict(config)
  for key, default in OPTIONS.items():
    if key in plain:
      plain[key] = default
  return plain


def paired_view(config: Config, split: str, arrays: dict) -> dict:
  """`arrays` unchanged when `dataset.task` is '', else with the task's 'input' and 'target' = x."""
  task = option(config, "task")
  if not task:
    return arrays
  validate_options(config, arrays["x"].shape[1:])
  return {**arrays, "input": TASKS[task].make_input(config, split, arrays["x"]), "target": arrays["x"]}

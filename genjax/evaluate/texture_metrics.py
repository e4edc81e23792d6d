"""How good is a synthesised texture, measured against baselines drawn in the same run.

- Patch SWD: the sliced Wasserstein-1 distance between the distributions of 7x7 patches of a
  synthesis and of the exemplar (random unit directions, sorted projections; Rabin et al. 2011).
- Baselines of the synthesis's size: white noise with the exemplar's mean and std per channel (the
  floor), the pixels of a random crop shuffled (same histogram, no structure), a random crop (the
  ceiling: real texture). Normalised score = (noise - synthesis) / (noise - crop): 0 is noise, 1 is
  as close as a real crop; for the patch SWD and the held-out Gram loss; null where a metric scores
  the noise floor at or below the crop (it cannot rank them).
- Copy check: the largest normalised cross-correlation of synthesis patches with any exemplar window
  (1.0 = a verbatim copy), next to the exemplar's own self-similarity (its left half's patches
  against its right half) and shuffled pixels; and the RMS distance between two syntheses next to
  that between two crops.
Everything is numpy / eager jax on host; seeds make every number reproducible.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

PATCH = 7
NUM_PATCHES = 4096
NUM_PROJECTIONS = 128
COPY_PATCH = 16
COPY_PATCHES = 32


def random_patches(image: np.ndarray, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
  """[count, size * size * C] patches at uniform random positions (with replacement)."""
  h, w, _ = image.shape
  ys = rng.integers(0, h - size + 1, count)
  xs = rng.integers(0, w - size + 1, count)
  offsets = np.arange(size)
  rows = (ys[:, None] + offsets)[:, :, None]
  cols = (xs[:, None] + offsets)[:, None, :]
  return image[rows, cols].reshape(count, -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, num_projections: int,
                       rng: np.random.Generator) -> float:
  """Mean over random unit directions of W1 between the projected samples (equal counts)."""
  directions = rng.standard_normal((a.shape[1], num_projections))
  directions /= np.linalg.norm(directions, axis=0, keepdims=True)
  pa, pb = np.sort(a @ directions, axis=0), np.sort(b @ directions, axis=0)
  return float(np.mean(np.abs(pa - pb)))


def patch_swd(image: np.ndarray, exemplar: np.ndarray, seed: int = 0, patch: int = PATCH,
              num_patches: int = NUM_PATCHES, num_projections: int = NUM_PROJECTIONS) -> float:
  """Patch SWD between one image [H, W, C] and the exemplar [E, E', C]; same seed, same directions."""
  rng = np.random.default_rng(seed)
  a = random_patches(np.asarray(image, np.float64), patch, num_patches, rng)
  b = random_patches(np.asarray(exemplar, np.float64), patch, num_patches, rng)
  return sliced_wasserstein(a, b, num_projections, np.random.default_rng([seed, 1]))


def random_crop(exemplar: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
  h, w, _ = exemplar.shape
  top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
  return exemplar[top:top + size, left:left + size]


def baselines(exemplar: np.ndarray, size: int, count: int, seed: int) -> dict[str, np.ndarray]:
  """{'noise', 'shuffle', 'crop'}: [count, size, size, C] each (see the module docstring)."""
  rng = np.random.default_rng(seed)
  channels = exemplar.shape[-1]
  mean, std = exemplar.reshape(-1, channels).mean(0), exemplar.reshape(-1, channels).std(0)
  noise = np.clip(mean + std * rng.standard_normal((count, size, size, channels)), 0.0, 1.0)
  crops = np.stack([random_crop(exemplar, size, rng) for _ in range(count)])
  shuffled = np.stack([c.reshape(-1, channels)[rng.permutation(size * size)].reshape(c.shape)
                       for c in crops])
  crops = np.stack([random_crop(exemplar, size, rng) for _ in range(count)])  # fresh, unshuffled
  return {"noise": noise.astype(np.float32), "shuffle": shuffled, "crop": crops}


def copy_ncc(image: np.ndarray, exemplar: np.ndarray, seed: int = 0, patch: int = COPY_PATCH,
             num_patches: int = COPY_PATCHES) -> tuple[float, float]:
  """(mean, max) over random patches of `image` of their best normalised cross-correlation with
  any exemplar window: 1.0 means the patch occurs verbatim (up to brightness and contrast)."""
  rng = np.random.default_rng(seed)
  channels = image.shape[-1]
  patches = random_patches(np.asarray(image, np.float32), patch, num_patches, rng)
  patches = patches - patches.mean(1, keepdims=True)
  patches /= np.maximum(np.linalg.norm(patches, axis=1, keepdims=True), 1e-6)
  kernel = jnp.asarray(patches.reshape(num_patches, patch, patch, channels).transpose(1, 2, 3, 0))
  x = jnp.asarray(exemplar, jnp.float32)[None]
  dims = ("NHWC", "HWIO", "NHWC")
  dots = lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=dims)[0]
  box = jnp.ones((patch, patch, channels, 1), jnp.float32)
  sums = lax.conv_general_dilated(x, box, (1, 1), "VALID", dimension_numbers=dims)[0]
  squares = lax.conv_general_dilated(x ** 2, box, (1, 1), "VALID", dimension_numbers=dims)[0]
  n = patch * patch * channels
  window_norm = jnp.sqrt(jnp.maximum(squares - sums ** 2 / n, 0.0))  # ||window - its mean||
  ncc = np.asarray(dots / jnp.maximum(window_norm, 1e-3))
  best = ncc.reshape(-1, num_patches).max(0)
  return float(best.mean()), float(best.max())


def rms_distance(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def normalised_score(noise: float, synthesis: float, crop: float) -> float | None:
  """(noise - synthesis) / (noise - crop): 0 at the noise floor, 1 as close as a real crop. None
  where the metric does not rank the crop above noise (then it cannot tell texture from noise)."""
  return (noise - synthesis) / (noise - crop) if noise > crop else None


def texture_report(syntheses: np.ndarray, exemplar: np.ndarray,
                   heldout_gram_loss: Callable[[np.ndarray], np.ndarray], seed: int = 0) -> dict:
  """eval.json numbers for syntheses [N, S, S, C] of `exemplar` [E, E', C] (N >= 2 for diversity);
  `heldout_gram_loss(images) -> [N]` is the Gram loss in a net other than the optimised one."""
  syntheses = np.asarray(syntheses, np.float32)
  exemplar = np.asarray(exemplar, np.float32)
  n, size = len(syntheses), syntheses.shape[1]
  if min(exemplar.shape[:2]) < size:
    raise ValueError(f"the exemplar {exemplar.shape[:2]} is smaller than the syntheses ({size}): "
                     f"no crop baseline; use a larger dataset.image_size or a smaller model.output_size")
  groups = {"": syntheses, **baselines(exemplar, size, n, seed)}
  report = {}
  for name, images in groups.items():
    prefix = f"{name}_" if name else ""
    report[f"{prefix}patch_swd"] = float(np.mean([patch_swd(x, exemplar, seed + i) for i, x in enumerate(images)]))
    report[f"{prefix}heldout_gram_loss"] = float(np.mean(np.asarray(heldout_gram_loss(images))))
  for metric in ("patch_swd", "heldout_gram_loss"):
    report[f"{metric}_score"] = normalised_score(
        report[f"noise_{metric}"], report[metric], report[f"crop_{metric}"])
  nccs = [copy_ncc(x, exemplar, seed + i) for i, x in enumerate(syntheses)]
  report["copy_ncc_mean"] = float(np.mean([m for m, _ in nccs]))
  report["copy_ncc_max"] = float(np.max([m for _, m in nccs]))
  report["shuffle_copy_ncc_mean"] = float(np.mean([copy_ncc(x, exemplar, seed + i)[0]
                                                    for i, x in enumerate(groups["shuffle"])]))
  # The texture's own self-similarity: left-half patches against the right half (no copy possible).
  half = exemplar.shape[1] // 2
  report["self_ncc_mean"] = copy_ncc(exemplar[:, :half], exemplar[:, half:], seed)[0]
  if n >= 2:
    report["seed_distance"] = rms_distance(syntheses[0], syntheses[1])
    report["crop_pair_distance"] = rms_distance(groups["crop"][0], groups["crop"][1])
  report["num_syntheses"] = n
  report["synthesis_size"] = size
  report["exemplar_size"] = int(exemplar.shape[0])
  return report

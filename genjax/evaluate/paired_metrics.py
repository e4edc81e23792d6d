"""Scores of image-to-image outputs against their targets: PSNR, SSIM and L1, on the whole image
and on a region (an inpainting hole), plus the biharmonic inpainting baseline. numpy, per image.

PSNR = 10 log10(1 / MSE) (data range 1) and SSIM (Wang et al. 2004) as `skimage.metrics`; on a
region, PSNR uses the region's MSE and SSIM averages skimage's SSIM map (windows over the whole
image, so they see the context) over the region's pixels.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def psnr(target: np.ndarray, output: np.ndarray, region: np.ndarray | None = None) -> float:
  """Mean over images of 10 log10(1 / MSE) on [N, H, W, C] in [0, 1]; MSE over `region` [N, H, W] if given."""
  err = np.square(np.asarray(target, np.float64) - np.asarray(output, np.float64))
  weight = np.ones(err.shape[:3]) if region is None else np.asarray(region, np.float64)
  mse = (err * weight[..., None]).sum(axis=(1, 2, 3)) / (weight.sum(axis=(1, 2)) * err.shape[-1])
  return float(np.mean(10.0 * np.log10(1.0 / mse)))


def _ssim_map(target: np.ndarray, output: np.ndarray) -> tuple[float, np.ndarray]:
  """skimage's (mean SSIM, SSIM map [H, W]) of one [H, W, C] pair, data range 1."""
  value, ssim_map = structural_similarity(target, output, data_range=1.0, channel_axis=-1, full=True)
  return value, ssim_map.mean(axis=-1)


def ssim(target: np.ndarray, output: np.ndarray, region: np.ndarray | None = None) -> float:
  """Mean over images of skimage's SSIM, or of its SSIM map averaged over `region` [N, H, W]."""
  values = []
  for i in range(len(target)):
    value, ssim_map = _ssim_map(np.asarray(target[i], np.float64), np.asarray(output[i], np.float64))
    values.append(value if region is None else (ssim_map * region[i]).sum() / region[i].sum())
  return float(np.mean(values))


def l1(target: np.ndarray, output: np.ndarray, region: np.ndarray | None = None) -> float:
  """Mean absolute error per pixel (over `region` if given), averaged over images."""
  err = np.abs(np.asarray(target, np.float64) - np.asarray(output, np.float64)).mean(axis=-1)
  weight = np.ones(err.shape) if region is None else np.asarray(region, np.float64)
  return float(np.mean((err * weight).sum(axis=(1, 2)) / weight.sum(axis=(1, 2))))


def image_scores(target: np.ndarray, output: np.ndarray, region: np.ndarray | None = None) -> dict:
  """psnr, ssim, l1 on the whole image, and masked_* on `region` when given."""
  scores = {name: fn(target, output) for name, fn in (("psnr", psnr), ("ssim", ssim), ("l1", l1))}
  if region is not None:
    scores.update({f"masked_{name}": fn(target, output, region)
                   for name, fn in (("psnr", psnr), ("ssim", ssim), ("l1", l1))})
  return scores


def biharmonic_inpaint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
  """`skimage.restoration.inpaint_biharmonic` of [N, H, W, C] images with holes [N, H, W], clipped to [0, 1]."""
  from skimage.restoration import inpaint_biharmonic
  filled = [inpaint_biharmonic(np.asarray(x, np.float64), np.asarray(m, bool), channel_axis=-1)
            for x, m in zip(image, hole)]
  return np.clip(np.stack(filled), 0.0, 1.0).astype(np.float32)

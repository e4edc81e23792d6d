"""Pictures a researcher looks at: image grids and 2-D scatter plots, written as PNG with Pillow."""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image


def image_grid(images: np.ndarray, ncol: int | None = None, pad: int = 1, scale: int = 0) -> np.ndarray:
  """Tiles [N, H, W, C] images in [0, 1] into one uint8 picture; small images are upscaled to read."""
  images = np.clip(np.nan_to_num(np.asarray(images, np.float32), nan=0.0), 0.0, 1.0)  # NaN: black
  if images.ndim == 3:
    images = images[..., None]
  n, h, w, c = images.shape
  ncol = ncol or int(math.ceil(math.sqrt(n)))
  nrow = int(math.ceil(n / ncol))
  grid = np.ones((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), np.float32)
  for i in range(n):
    r, q = divmod(i, ncol)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = images[i]
  scale = scale or max(1, 96 // max(h, w))  # 8x8 digits are unreadable at 1:1
  grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
  grid = (grid * 255 + 0.5).astype(np.uint8)
  return grid[..., 0] if c == 1 else grid


# Ten distinguishable colours (tab10) for points coloured by label.
PALETTE = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)],
                   np.uint8)


def scatter_plot(points: np.ndarray, reference: np.ndarray | None = None, size: int = 384,
                 extent: float | None = None, labels: np.ndarray | None = None) -> np.ndarray:
  """Rasterises 2-D points over optional reference points (light grey) into a uint8 RGB image;
  points are black, or coloured by integer `labels`."""
  points = np.asarray(points, np.float32)
  everything = points if reference is None else np.concatenate([points, reference])
  extent = extent or float(np.max(np.abs(everything[np.isfinite(everything)]), initial=1.0)) * 1.1
  canvas = np.full((size, size, 3), 255, np.uint8)

  def draw(pts, colours):
    ij = ((pts / extent + 1.0) * 0.5 * (size - 1)).round().astype(np.int64)
    keep = np.all((ij >= 1) & (ij < size - 1), axis=1) & np.all(np.isfinite(pts), axis=1)
    for di in (-1, 0, 1):  # 3x3 dots so sparse samples stay visible
      for dj in (-1, 0, 1):
        canvas[size - 1 - (ij[keep, 1] + dj), ij[keep, 0] + di] = colours[keep]

  if reference is not None:
    reference = np.asarray(reference, np.float32)
    draw(reference, np.full((len(reference), 3), 200, np.uint8))
  colours = (PALETTE[np.asarray(labels) % len(PALETTE)] if labels is not None
             else np.zeros((len(points), 3), np.uint8))
  draw(points, colours)
  return canvas


def to_picture(array: np.ndarray, reference: np.ndarray | None = None, ncol: int | None = None) -> np.ndarray:
  """[N, 2] points become a scatter plot, [N, H, W, C] images a grid, [rows, cols, H, W, C] a grid
  with that layout (interpolation strips, one row per class)."""
  array = np.asarray(array)
  if array.ndim == 5:
    return image_grid(array.reshape((-1,) + array.shape[2:]), ncol=array.shape[1])
  if array.ndim == 2 and array.shape[1] == 2:
    return scatter_plot(array, reference)
  return image_grid(array, ncol=ncol)


def save_png(path: str, picture: np.ndarray) -> str:
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  Image.fromarray(picture).save(path)
  return path

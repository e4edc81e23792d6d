"""Pictures a researcher looks at: image grids (Pillow) and 2-D scatter plots (genjax.plots), as PNG."""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from genjax.plots import scatter_plot


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

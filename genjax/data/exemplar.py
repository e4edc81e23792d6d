"""One exemplar image (and optionally a content image) for texture synthesis and style transfer.

`dataset.name='exemplar'`: `dataset.exemplar` names a scikit-image picture (all bundled, no
download) or `dataset.image_path` a PNG/JPEG file read through Pillow; `dataset.content` (a name or
a path, '' for none) is the content image of style transfer. Each image is centre-cropped to a
square and downscaled (never upscaled) to at most `dataset.image_size` pixels a side (0: native),
so the exemplar carries the texture's own scale. Both splits hold the same single row:
{'x': [1, S, S, C], 'label': [0], 'content': [1, S', S', C]} in [0, 1]; the content takes the
exemplar's channel count (grey <-> RGB), so style and content live in one colour space.
"""
from __future__ import annotations

import os

import numpy as np

from genjax.data.builders import GREY_MODES
from genjax.data.idx import DatasetError
from genjax.registry import DATASETS

# scikit-image's bundled pictures usable as exemplars or content images.
EXEMPLARS = ("brick", "grass", "gravel", "coffee", "astronaut", "chelsea", "hubble_deep_field",
             "immunohistochemistry")
EXEMPLAR_OPTIONS = {"exemplar": "brick", "image_path": "", "content": "", "image_size": 256}


def read_image_file(path: str) -> np.ndarray:
  """float32 [H, W, C] in [0, 1] (C = 1 or 3) from a PNG/JPEG; DatasetError naming the file otherwise."""
  from PIL import Image, UnidentifiedImageError
  full = os.path.abspath(os.path.expanduser(path))
  if not os.path.isfile(full):
    raise DatasetError(f"image file {full} does not exist")
  try:
    with Image.open(full) as image:
      image.load()
      grey = image.mode in GREY_MODES
      array = np.asarray(image.convert("L" if grey else "RGB"), np.float32) / 255.0
  except (UnidentifiedImageError, OSError, ValueError) as e:
    raise DatasetError(f"image file {full} is not a readable PNG/JPEG image ({type(e).__name__})") from e
  return array[..., None] if array.ndim == 2 else array


def check_image_file(path: str) -> None:
  """Cheap readability check for config validation (header only)."""
  from PIL import Image, UnidentifiedImageError
  full = os.path.abspath(os.path.expanduser(path))
  if not os.path.isfile(full):
    raise DatasetError(f"image file {full} does not exist (dataset.image_path / dataset.content)")
  try:
    with Image.open(full) as image:
      image.verify()
  except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
    raise DatasetError(f"image file {full} is not a readable PNG/JPEG image ({type(e).__name__})") from e


def named_image(name: str) -> np.ndarray:
  """A scikit-image picture as float32 [H, W, C] in [0, 1]."""
  from skimage import data
  array = np.asarray(getattr(data, name)())
  array = array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0)
  return array[..., None] if array.ndim == 2 else array[..., :3]


def image_source(name_or_path: str) -> np.ndarray:
  """A bundled picture by name, else an image file by path."""
  return named_image(name_or_path) if name_or_path in EXEMPLARS else read_image_file(name_or_path)


def square(image: np.ndarray, max_size: int) -> np.ndarray:
  """Centre square crop, then an area-averaging downscale to at most `max_size` (0: keep)."""
  h, w = image.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  image = image[top:top + side, left:left + side]
  if not max_size or side <= max_size:
    return image
  from PIL import Image
  channels = [Image.fromarray(image[..., c]).resize((max_size, max_size), Image.Resampling.BOX)
              for c in range(image.shape[-1])]
  return np.stack([np.asarray(c, np.float32) for c in channels], axis=-1)


def match_channels(image: np.ndarray, channels: int) -> np.ndarray:
  """Grey -> RGB by repetition, RGB -> grey by the channel mean."""
  if image.shape[-1] == channels:
    return image
  return np.repeat(image, channels, -1) if channels == 3 else image.mean(-1, keepdims=True)


def exemplar_arrays(config) -> dict[str, np.ndarray]:
  """The served rows (see the module docstring)."""
  size = int(config.get("image_size", EXEMPLAR_OPTIONS["image_size"]))
  path = config.get("image_path", "")
  exemplar = square(image_source(path) if path else named_image(config.get("exemplar", "brick")), size)
  arrays = {"x": exemplar[None], "label": np.zeros((1,), np.int32)}
  content = config.get("content", "")
  if content:
    arrays["content"] = match_channels(square(image_source(content), size), exemplar.shape[-1])[None]
  return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def validate_options(config) -> None:
  """DatasetError (one line, naming the option) for a bad exemplar option, before anything is read."""
  name, path = config.get("exemplar", "brick"), config.get("image_path", "")
  if not path and name not in EXEMPLARS:
    raise DatasetError(f"dataset.exemplar={name!r} is unknown; known: {', '.join(EXEMPLARS)} "
                       f"(or set dataset.image_path to a PNG/JPEG file)")
  for source in (path, config.get("content", "")):
    if source and source not in EXEMPLARS:
      check_image_file(source)
  size = config.get("image_size", EXEMPLAR_OPTIONS["image_size"])
  if isinstance(size, bool) or not isinstance(size, int) or size < 0:
    raise DatasetError(f"dataset.image_size={size!r} is not allowed; expected an integer >= 0 (0: native)")


def _load_exemplar(config, split: str) -> dict:
  from genjax.data.builders import check_split
  check_split(split)
  validate_options(config)
  return exemplar_arrays(config)


# Imported at the end of genjax/data/__init__.py, so DatasetSpec is defined by then.
from genjax.data import DatasetSpec  # noqa: E402

DATASETS.register("exemplar")(DatasetSpec("exemplar", "image", 1, _load_exemplar, EXEMPLAR_OPTIONS))

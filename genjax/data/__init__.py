"""Datasets as TFDS builders (no TensorFlow) plus a step-indexed, resumable batch pipeline.

`load_dataset(config, split)` prepares a dataset once into `data_dir` (array_record) and then only
reads it; arrays are memoised per process. Configs name the dataset (`dataset.name`) and carry its
options; each spec declares its options with defaults, and `dataset_options()` is their union, which
every experiment's `dataset` sub-config carries, so any dataset's option can be set from the command
line on any experiment (`--config.dataset.name=fashion_mnist --config.dataset.manual_dir=DIR`).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

import numpy as np

from genjax.data import builders
from genjax.data.builders import check_split
from genjax.data.idx import DatasetError
from genjax.data.pipeline import Batches, dynamic_binarize, eval_batches
from genjax.registry import DATASETS

__all__ = [
    "Batches", "DatasetError", "DatasetSpec", "data_dir", "dataset_options", "dataset_spec", "dynamic_binarize", "example_shape",
    "eval_batches", "levels", "load_dataset", "num_classes", "toy2d_mode_centres", "toy2d_std",
]

DEFAULT_DATA_DIR = os.path.join("~", ".cache", "genjax", "tensorflow_datasets")
Config = Any  # ml_collections.ConfigDict or a plain dict: only `.get` is used


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  name: str
  kind: str  # 'image' or 'points'
  num_classes: int
  load: Callable[[Config, str], dict]  # (dataset_config, split) -> {'x', 'label'} arrays
  # option -> default, typed so the command line can override it
  options: dict = dataclasses.field(default_factory=dict)
  # Grey levels of the stored pixels (x = k / (levels - 1)); 0: continuous values (points, resized faces).
  levels: int = 256


# Options every dataset understands.
COMMON_OPTIONS = {"data_dir": "", "binarize": False}


def dataset_options() -> dict:
  """Every registered dataset's options with their defaults (one default per option name)."""
  merged = dict(COMMON_OPTIONS, **paired.OPTIONS)  # the paired view (dataset.task) applies to any image set
  for name in DATASETS.names():
    for key, default in DATASETS.lookup(name).options.items():
      if key in merged and merged[key] != default:
        raise ValueError(f"dataset option {key!r} has two defaults: {merged[key]!r} and {default!r} ({name})")
      merged[key] = default
  return merged


def _get(config: Config, key: str, default: Any = None) -> Any:
  """`config.get` where an explicit None also means "use the default"."""
  value = config.get(key, default)
  return default if value is None else value


def data_dir(config: Config) -> str:
  """Where TFDS prepares data: config `data_dir`, else $GENJAX_DATA_DIR, else ~/.cache/genjax/..."""
  path = _get(config, "data_dir") or os.environ.get("GENJAX_DATA_DIR") or DEFAULT_DATA_DIR
  return os.path.abspath(os.path.expanduser(path))


def dataset_spec(config: Config) -> DatasetSpec:
  """The registered spec for `config.name` (KeyError listing the known names otherwise)."""
  return DATASETS.lookup(config.get("name"))


def levels(config: Config) -> int:
  """How many grey levels the dataset's pixels take (digits 17, 8-bit images 256); 0: continuous."""
  return dataset_spec(config).levels


def num_classes(config: Config) -> int:
  """Label count for these options: the spec's, except toy2d whose count follows `mixture`."""
  spec = dataset_spec(config)
  return len(toy2d_mode_centres(config)) if spec.name == "toy2d" else spec.num_classes


def _to_plain(config: Config) -> dict:
  """A JSON-able view of the config for memo keys."""
  return config.to_dict() if hasattr(config, "to_dict") else dict(config)


_CACHE: dict = {}


def load_dataset(config: Config, split: str) -> dict[str, np.ndarray]:
  """{'x': float32 images [N,H,W,C] in [0,1] or points [N,2], 'label': int32 [N]}, memoised."""
  spec = dataset_spec(config)
  check_split(split)
  key = (json.dumps(_to_plain(config), sort_keys=True, default=repr), data_dir(config), split)
  if key not in _CACHE:
    arrays = paired.paired_view(config, split, spec.load(config, split))  # unchanged unless dataset.task
    for array in arrays.values():
      array.flags.writeable = False  # shared between callers: mutation would poison the memo
    _CACHE[key] = arrays
  return _CACHE[key]


def example_shape(config: Config) -> tuple[int, ...]:
  """The shape of one x ([H, W, C] or [2]): models size their decoders and samplers from it."""
  return tuple(load_dataset(config, "test")["x"].shape[1:])


def _read(builder_cls, config: Config, split: str, builder_config=None,
          manual_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Prepare (once) and read one split of a builder under this config's data_dir."""
  kwargs = {"config": builder_config} if builder_config is not None else {}
  builder = builder_cls(data_dir=data_dir(config), file_format="array_record", **kwargs)
  return builders.read_split(builders.prepare(builder, manual_dir), check_split(split))


def _arrays(x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> dict[str, np.ndarray]:
  """The served form: float32 x divided by `scale`, int32 labels."""
  return {"x": x.astype(np.float32) / np.float32(scale), "label": y.astype(np.int32)}


# ----------------------------------------------------------------------------- digits / faces

def _load_digits(config: Config, split: str) -> dict:
  """sklearn 8x8 digits stored as 0..16, served in [0, 1]."""
  return _arrays(*_read(builders.GenjaxDigits, config, split), scale=16.0)


def _load_faces(config: Config, split: str) -> dict:
  """LFW subset: 100 faces (label 1) and 100 non-face background patches (label 0), all kept."""
  return _arrays(*_read(builders.GenjaxFaces, config, split))


DATASETS.register("digits")(DatasetSpec("digits", "image", 10, _load_digits, levels=17))
DATASETS.register("faces")(DatasetSpec("faces", "image", 2, _load_faces, levels=0))


# ----------------------------------------------------------------------------- textures

TEXTURE_OPTIONS = {"crop_size": 32, "crops_per_texture": 600}


def textures_builder_config(config: Config) -> builders.TexturesConfig:
  """One prepared directory per (crop_size, crops_per_texture)."""
  crop = int(_get(config, "crop_size", TEXTURE_OPTIONS["crop_size"]))
  count = int(_get(config, "crops_per_texture", TEXTURE_OPTIONS["crops_per_texture"]))
  if not 1 <= crop <= 128 or count < 1:
    raise ValueError(f"textures needs 1 <= crop_size <= 128 and crops_per_texture >= 1, "
                     f"got {crop}, {count}")
  name = f"crop{crop}-n{count}"
  # TFDS refuses a new config object named like a predefined one: reuse the predefined default.
  predefined = {c.name: c for c in builders.GenjaxTextures.BUILDER_CONFIGS}
  return predefined.get(name) or builders.TexturesConfig(name=name, crop_size=crop, crops_per_texture=count)


def _load_textures(config: Config, split: str) -> dict:
  """brick / grass / gravel crops (labels 0/1/2): n per texture train, n // 4 test, in [0, 1]."""
  x, y = _read(builders.GenjaxTextures, config, split, textures_builder_config(config))
  return _arrays(x, y, scale=255.0)


DATASETS.register("textures")(DatasetSpec("textures", "image", len(builders.TEXTURES),
                                          _load_textures, TEXTURE_OPTIONS))


# ----------------------------------------------------------------------------- toy2d

# std 0: the mixture's customary std (a float default, so the CLI can override it).
TOY2D_OPTIONS = {"mixture": "ring", "radius": 2.0, "spacing": 2.0, "std": 0.0,
                 "num_train": 50000, "num_test": 5000}


def _toy2d_options(config: Config) -> dict:
  """Resolved toy2d options (std 0 or unset: 0.02 for 'ring', 0.05 for 'grid')."""
  options = {key: _get(config, key, default) for key, default in TOY2D_OPTIONS.items()}
  std = options["std"]
  return {
      "mixture": options["mixture"],
      "radius": float(options["radius"]),
      "spacing": float(options["spacing"]),
      "std": float(std or builders.toy2d_default_std(options["mixture"])),
      "num_train": int(options["num_train"]),
      "num_test": int(options["num_test"]),
  }


def toy2d_mode_centres(config: Config) -> np.ndarray:
  """float32 [M, 2] mode centres of the configured mixture (for mode-coverage metrics)."""
  options = _toy2d_options(config)
  return builders.toy2d_centres(options["mixture"], options["radius"], options["spacing"])


def toy2d_std(config: Config) -> float:
  """The per-mode standard deviation of the configured mixture."""
  return _toy2d_options(config)["std"]


def toy2d_builder_config(config: Config) -> builders.Toy2dConfig:
  """Float options are hashed into the config name so each option set has its own directory."""
  options = _toy2d_options(config)
  builders.toy2d_centres(options["mixture"], 1.0, 1.0)  # validates the mixture name early
  return builders.Toy2dConfig(name=builders.options_name(options["mixture"], options), **options)


def _load_toy2d(config: Config, split: str) -> dict:
  """Mixture samples, float32 [N, 2], label = mode index."""
  return _arrays(*_read(builders.GenjaxToy2d, config, split, toy2d_builder_config(config)))


# The spec says 8 (the default ring); the grid has 25 modes: use `num_classes(config)`.
DATASETS.register("toy2d")(DatasetSpec("toy2d", "points", 8, _load_toy2d, TOY2D_OPTIONS, levels=0))


# ----------------------------------------------------------------------------- mnist-format

def idx_manual_dir(config: Config) -> str | None:
  """config `manual_dir`, else (fashion_mnist only) Debian's dataset-fashion-mnist folder."""
  manual = _get(config, "manual_dir")
  if manual:
    return os.path.abspath(os.path.expanduser(manual))
  if config.get("name") == "fashion_mnist" and os.path.isdir(builders.DEBIAN_FASHION_MNIST_DIR):
    return builders.DEBIAN_FASHION_MNIST_DIR
  return None


def _idx_loader(name: str, builder_cls) -> Callable[[Config, str], dict]:
  """A loader that checks the four idx files before TFDS sees them (only until prepared)."""
  def load(config: Config, split: str) -> dict:
    builder = builder_cls(data_dir=data_dir(config), file_format="array_record")
    manual = idx_manual_dir(config)
    if not builder.is_prepared():
      message = builders.missing_idx_message(name, manual)
      if message:
        raise DatasetError(message)
    x, y = builders.read_split(builders.prepare(builder, manual), check_split(split))
    return _arrays(x, y, scale=255.0)
  return load


IDX_OPTIONS = {"manual_dir": ""}  # '' for fashion_mnist: Debian's dataset-fashion-mnist folder
DATASETS.register("mnist")(DatasetSpec("mnist", "image", 10,
                                       _idx_loader("mnist", builders.GenjaxMnist), IDX_OPTIONS))
DATASETS.register("fashion_mnist")(DatasetSpec("fashion_mnist", "image", 10,
                                               _idx_loader("fashion_mnist",
                                                           builders.GenjaxFashionMnist), IDX_OPTIONS))
from genjax.data import paired  # noqa: E402  paired views (dataset.task) for image-to-image models
from genjax.data import exemplar  # noqa: E402,F401  one exemplar image (texture synthesis, style transfer)

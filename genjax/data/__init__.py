"""Datasets as TFDS builders (no TensorFlow) plus a step-indexed, resumable batch pipeline.

`load_dataset(config, split)` prepares a dataset once into `data_dir` (array_record) and then only
reads it; arrays are memoised per process. Configs name the dataset (`dataset.name`) and carry its
options; each spec declares its options with defaults, and `dataset_options()` is their union, which
every experiment's `dataset` sub-config carries, so any dataset's option can be set from the command
line on any experiment (`--config.dataset.name=fashion_mnist --config.dataset.manual_dir=DIR`).

Training reads `train_source(config)`: the train split held in memory when it is small
(`dataset.in_memory='auto'`: at most IN_MEMORY_LIMIT_BYTES stored), else row by row from its
array_record files, in the served form (8-bit pixels as uint8, see genjax/data/pipeline.py).
`dataset.name='folder'` is any directory of PNG/JPEG files (`dataset.path`), prepared once at
`dataset.image_size`.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Callable

import numpy as np

from genjax.data import builders
from genjax.data.builders import check_split
from genjax.data.idx import DatasetError
from genjax.data.pipeline import (ArraySource, Batches, RecordSource, as_float, batch_stream, dynamic_binarize,
                                  eval_batches, served, to_float)
from genjax.registry import DATASETS

__all__ = [
    "ArraySource", "Batches", "DatasetError", "DatasetSpec", "RecordSource", "as_float", "batch_stream", "data_dir",
    "dataset_options", "dataset_spec", "dynamic_binarize", "example_shape", "eval_batches", "levels",
    "load_dataset", "num_classes", "read_options", "served_arrays", "to_float", "toy2d_mode_centres",
    "toy2d_std", "train_source", "validate_options",
]

DEFAULT_DATA_DIR = os.path.join("~", ".cache", "genjax", "tensorflow_datasets")
Config = Any  # ml_collections.ConfigDict or a plain dict: only `.get` is used


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  name: str
  kind: str  # 'image' or 'points'
  num_classes: int
  # (dataset_config, split) -> {'x', 'label', ...} float arrays; None: the split is read from `builder`
  load: Callable[[Config, str], dict] | None
  # option -> default, typed so the command line can override it
  options: dict = dataclasses.field(default_factory=dict)
  # Grey levels of the stored pixels (x = k / (levels - 1)); 0: continuous values (points, resized faces).
  levels: int = 256
  # dataset_config -> its prepared TFDS builder, whose array_record files can be read row by row
  builder: Callable[[Config], Any] | None = None
  # stored x / scale is the float x; 255: 8-bit pixels, which the pipeline serves as uint8
  scale: float = 1.0
  # dataset_config -> None, or a one-line ConfigError for a bad option (see `validate_options`)
  validate: Callable[[Config], None] | None = None


# Options every dataset understands: where data is prepared, binarisation, and how training reads
# it (in memory or from array_record; grain reader threads and worker processes).
COMMON_OPTIONS = {"data_dir": "", "binarize": False, "in_memory": "auto", "read_threads": 2,
                  "read_workers": 0}
IN_MEMORY = ("auto", "yes", "no")
IN_MEMORY_LIMIT_BYTES = 1 << 30  # 'auto' holds a train split of up to 1 GiB (stored form) in memory


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
  """Label count for these options: the spec's, except toy2d's (`mixture`) and a folder's (its classes)."""
  spec = dataset_spec(config)
  if spec.name == "toy2d":
    return len(toy2d_mode_centres(config))
  return folder_builder_config(config).num_classes if spec.name == "folder" else spec.num_classes


def _to_plain(config: Config) -> dict:
  """A JSON-able view of the config for memo keys."""
  return config.to_dict() if hasattr(config, "to_dict") else dict(config)


_CACHE: dict = {}


def _memo(kind: str, config: Config, split: str, make: Callable[[], dict]) -> dict:
  """make() once per (kind, options, data_dir, split) and process, frozen for sharing."""
  key = (kind, json.dumps(_to_plain(config), sort_keys=True, default=repr), data_dir(config), split)
  if key not in _CACHE:
    arrays = make()
    for array in arrays.values():
      array.flags.writeable = False  # shared between callers: mutation would poison the memo
    _CACHE[key] = arrays
  return _CACHE[key]


def served_arrays(config: Config, split: str) -> dict[str, np.ndarray]:
  """A split as the pipeline serves it (8-bit pixels uint8, other x float32, int32 labels), memoised."""
  spec = dataset_spec(config)
  check_split(split)

  def make() -> dict:
    if spec.builder is None:
      return spec.load(config, split)
    return served(*builders.read_split(spec.builder(config), split), spec.scale)
  return _memo("served", config, split, make)


def load_dataset(config: Config, split: str) -> dict[str, np.ndarray]:
  """{'x': float32 images [N,H,W,C] in [0,1] or points [N,2], 'label': int32 [N]}, memoised."""
  served_arrays(config, split)  # unknown names and splits fail here first
  return _memo("float", config, split,  # the paired view is a no-op unless dataset.task is set
               lambda: paired.paired_view(config, split, as_float(served_arrays(config, split))))


def example_shape(config: Config) -> tuple[int, ...]:
  """The shape of one x ([H, W, C] or [2]): models size their decoders and samplers from it."""
  spec = dataset_spec(config)
  if spec.builder is None:
    return tuple(load_dataset(config, "test")["x"].shape[1:])
  return tuple(spec.builder(config).info.features["x"].shape)  # no split decoded


# ----------------------------------------------------------------------------- training reads

def _in_memory(config: Config) -> bool:
  """Whether training holds the train split in memory: `dataset.in_memory`, 'auto' by stored size."""
  spec, choice = dataset_spec(config), _get(config, "in_memory", "auto")
  if spec.builder is None or paired.option(config, "task") or choice == "yes":
    return True  # no records to read, or paired inputs made for the whole split
  if choice == "no":
    return False
  info = spec.builder(config).info
  x = info.features["x"]
  stored = info.splits["train"].num_examples * int(np.prod(x.shape)) * np.dtype(x.np_dtype).itemsize
  return stored <= IN_MEMORY_LIMIT_BYTES


def train_source(config: Config) -> ArraySource | RecordSource:
  """The train split's rows for `Batches`: in memory, or read on demand from its array_record files."""
  if _in_memory(config):
    task = paired.option(config, "task")
    return ArraySource(load_dataset(config, "train") if task else served_arrays(config, "train"))
  spec = dataset_spec(config)
  return RecordSource(spec.builder(config).as_data_source()["train"], spec.scale)


def read_options(config: Config) -> dict:
  """`batch_stream`'s reader settings from `dataset.read_threads` and `dataset.read_workers`."""
  return {"threads": int(_get(config, "read_threads", COMMON_OPTIONS["read_threads"])),
          "workers": int(_get(config, "read_workers", COMMON_OPTIONS["read_workers"]))}


def validate_options(config: Config) -> None:
  """A one-line ConfigError for a bad reading option or dataset option, before anything is written."""
  from genjax.config import is_int, require
  spec = dataset_spec(config)
  choice = _get(config, "in_memory", "auto")
  require(choice in IN_MEMORY, "dataset.in_memory", choice, "'auto' (by size), 'yes' or 'no'")
  task = paired.option(config, "task")
  if choice == "no":
    require(spec.builder is not None and not task, "dataset.in_memory", choice,
            f"'auto' or 'yes' for dataset.name={spec.name!r} with dataset.task={task!r} (held in memory)")
  for key, low in (("read_threads", 1), ("read_workers", 0)):
    value = _get(config, key, COMMON_OPTIONS[key])
    require(is_int(value) and value >= low, f"dataset.{key}", value,
            f"an integer >= {low}")
  if spec.validate is not None:
    spec.validate(config)


def _prepared(builder_cls, builder_config: Callable[[Config], Any] | None = None) -> Callable[[Config], Any]:
  """config -> the builder prepared (once) under the config's data_dir, with its options' BuilderConfig."""
  def builder(config: Config):
    kwargs = {"config": builder_config(config)} if builder_config is not None else {}
    return builders.prepare(builder_cls(data_dir=data_dir(config), file_format="array_record", **kwargs))
  return builder


# ----------------------------------------------------------------------------- digits / faces

# sklearn 8x8 digits stored as 0..16, served in [0, 1].
DATASETS.register("digits")(DatasetSpec("digits", "image", 10, None, levels=17,
                                        builder=_prepared(builders.GenjaxDigits), scale=16.0))
# LFW subset: 100 faces (label 1) and 100 non-face background patches (label 0), stored as floats.
DATASETS.register("faces")(DatasetSpec("faces", "image", 2, None, levels=0,
                                       builder=_prepared(builders.GenjaxFaces)))


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


# brick / grass / gravel crops (labels 0/1/2): n per texture train, n // 4 test, 8-bit.
DATASETS.register("textures")(DatasetSpec(
    "textures", "image", len(builders.TEXTURES), None, TEXTURE_OPTIONS,
    builder=_prepared(builders.GenjaxTextures, textures_builder_config), scale=255.0))


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


# Mixture samples, float32 [N, 2], label = mode index. The spec says 8 classes (the default ring);
# the grid has 25 modes: use `num_classes(config)`.
DATASETS.register("toy2d")(DatasetSpec("toy2d", "points", 8, None, TOY2D_OPTIONS, levels=0,
                                       builder=_prepared(builders.GenjaxToy2d, toy2d_builder_config)))


# ----------------------------------------------------------------------------- mnist-format

def idx_manual_dir(config: Config) -> str | None:
  """config `manual_dir`, else (fashion_mnist only) Debian's dataset-fashion-mnist folder."""
  manual = _get(config, "manual_dir")
  if manual:
    return os.path.abspath(os.path.expanduser(manual))
  if config.get("name") == "fashion_mnist" and os.path.isdir(builders.DEBIAN_FASHION_MNIST_DIR):
    return builders.DEBIAN_FASHION_MNIST_DIR
  return None


def _idx_builder(name: str, builder_cls) -> Callable[[Config], Any]:
  """A prepared builder that checks the four idx files before TFDS sees them (only until prepared)."""
  def builder(config: Config):
    builder = builder_cls(data_dir=data_dir(config), file_format="array_record")
    manual = idx_manual_dir(config)
    if not builder.is_prepared():
      message = builders.missing_idx_message(name, manual)
      if message:
        raise DatasetError(message)
    return builders.prepare(builder, manual)
  return builder


IDX_OPTIONS = {"manual_dir": ""}  # '' for fashion_mnist: Debian's dataset-fashion-mnist folder
for _name, _builder_cls in (("mnist", builders.GenjaxMnist), ("fashion_mnist", builders.GenjaxFashionMnist)):
  DATASETS.register(_name)(DatasetSpec(_name, "image", 10, None, IDX_OPTIONS,
                                       builder=_idx_builder(_name, _builder_cls), scale=255.0))


# ----------------------------------------------------------------------------- folder

# image_size is also the exemplar's option (the side its images are brought to), so the same default.
FOLDER_OPTIONS = {"path": "", "image_size": 256, "channels": 0, "on_corrupt": "skip"}


def _folder_options(config: Config) -> tuple:
  """(absolute path or '', image_size, channels (0: as the files are), on_corrupt)."""
  path = _get(config, "path", FOLDER_OPTIONS["path"])
  full = os.path.abspath(os.path.expanduser(path)) if path else ""
  return (full, *(_get(config, key, FOLDER_OPTIONS[key]) for key in ("image_size", "channels", "on_corrupt")))


def _holds_images(path: str, count: int) -> bool:
  """Whether at least `count` PNG/JPEG files lie below `path` (stops there)."""
  return sum(1 for _ in zip(range(count), builders.image_files(path))) == count


def validate_folder(config: Config) -> None:
  """A one-line ConfigError for a missing or empty folder or a bad folder option (nothing read yet)."""
  from genjax.config import is_int, require
  path, size, channels, on_corrupt = _folder_options(config)
  require(bool(path) and os.path.isdir(path) and _holds_images(path, builders.FOLDER_TEST_EVERY), "dataset.path",
          config.get("path"), f"a directory holding at least {builders.FOLDER_TEST_EVERY} PNG/JPEG files (every "
          f"{builders.FOLDER_TEST_EVERY}th is a test image), optionally one subdirectory per class")
  require(is_int(size) and size >= 1, "dataset.image_size", size,
          "an integer >= 1 (the side of the square images)")
  require(channels in (0, 1, 3) and not isinstance(channels, bool), "dataset.channels", channels,
          "0 (as the first file is), 1 (grey) or 3 (RGB)")
  require(on_corrupt in builders.ON_CORRUPT, "dataset.on_corrupt", on_corrupt,
          "'skip' (leave unreadable files out, counted in a log line) or 'error' (stop, naming the file)")


def folder_builder_config(config: Config) -> builders.FolderConfig:
  """One prepared directory per (folder contents, image_size, channels, on_corrupt)."""
  return _folder_config(*_folder_options(config))


@functools.lru_cache(maxsize=64)  # a folder is listed once per process and option set
def _folder_config(path: str, size: int, channels: int, on_corrupt: str) -> builders.FolderConfig:
  files = builders.folder_files(path) if path else []
  if not files:
    raise DatasetError(f"dataset.path {path!r} holds no PNG/JPEG files; set it to a directory of images "
                       f"(optionally one subdirectory per class)")
  channels = channels or _first_channels(path, files)
  options = {"path": path, "image_size": size, "channels": channels, "on_corrupt": on_corrupt,
             "files": builders.folder_fingerprint(path, files)}
  return builders.FolderConfig(name=builders.options_name("folder", options), path=path, image_size=size,
                               channels=channels, on_corrupt=on_corrupt,
                               num_classes=len({label for _, label in files}))


def _folder_builder(config: Config):
  """The folder's prepared records (written once, streamed: builders.prepare_folder)."""
  return builders.prepare_folder(data_dir(config), folder_builder_config(config))


def _first_channels(path: str, files: list) -> int:
  """The channel count of the first readable file (1: grey, 3: colour); every image is read so."""
  for name, _ in files:
    try:
      return builders.image_channels(os.path.join(path, name))
    except DatasetError:
      continue
  raise DatasetError(f"dataset.path {path}: none of its {len(files)} PNG/JPEG files can be read")


# A directory of PNG/JPEG files as 8-bit squares; label = the file's subdirectory (see builders.py).
DATASETS.register("folder")(DatasetSpec(
    "folder", "image", 1, None, FOLDER_OPTIONS, scale=255.0,
    builder=_folder_builder, validate=validate_folder))
from genjax.data import paired  # noqa: E402  paired views (dataset.task) for image-to-image models
from genjax.data import exemplar  # noqa: E402,F401  one exemplar image (texture synthesis, style transfer)

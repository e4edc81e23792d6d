"""TFDS `GeneratorBasedBuilder`s for every dataset, written to run without TensorFlow installed.

Every builder stores `{'x': Tensor, 'label': int64}` records in array_record files (no
`tfds.features.Image`, which needs TF to encode PNGs), with shuffling disabled so the stored
order is the generation order. Options that change the data (crop size, mixture, ...) live in a
`BuilderConfig` whose name is derived from them, so each option set gets its own prepared dir.
The pure `*_splits` functions produce the raw arrays; the builders only serialise them.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from typing import Iterable, Iterator

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from genjax.data import idx

SPLITS = ("train", "test")
VERSION = tfds.core.Version("1.0.0")
READ_CHUNK = 4096
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # Pillow modes read as one grey channel
FOLDER_TEST_EVERY = 10  # every 10th file (sorted order) is a test image
ON_CORRUPT = ("skip", "error")

Splits = dict  # split name -> (x, label) arrays


# ----------------------------------------------------------------------------- pure generators

def check_split(split: str) -> str:
  """Every loader accepts exactly 'train' and 'test': fail early on typos like 'val'."""
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
  return split


def _permuted_split(x: np.ndarray, y: np.ndarray, num_train: int) -> Splits:
  """Fixed (seed 0) permutation then a head/tail cut: the same split on every machine."""
  order = np.random.default_rng(0).permutation(len(x))
  x, y = x[order], y[order]
  return {"train": (x[:num_train], y[:num_train]), "test": (x[num_train:], y[num_train:])}


def digits_splits() -> Splits:
  """scikit-learn's 8x8 digits as uint8 0..16, 1500 train / 297 test."""
  from sklearn.datasets import load_digits
  digits = load_digits()
  x = digits.images.astype(np.uint8)[..., None]
  return _permuted_split(x, digits.target.astype(np.int64), 1500)


def faces_splits() -> Splits:
  """scikit-image's LFW subset, 180 train / 20 test, label 1 = face (first 100), 0 = non-face."""
  from skimage import data
  images = np.asarray(data.lfw_subset())  # documented uint8, but 0.26 returns float64 in [0, 1]
  scale = 255.0 if images.dtype == np.uint8 else 1.0
  x = np.clip(images.astype(np.float32) / scale, 0.0, 1.0)[..., None]
  y = np.array([1] * 100 + [0] * (len(images) - 100), np.int64)
  return _permuted_split(x, y, 180)


TEXTURES = ("brick", "grass", "gravel")


def _texture_image(name: str) -> np.ndarray:
  """A 2-D uint8 texture from scikit-image's bundled data."""
  from skimage import data
  image = np.asarray(getattr(data, name)())
  if image.ndim == 3:  # never true for these three, but be safe: average colour channels
    image = image.mean(axis=-1).astype(np.uint8)
  return image


def random_crops(image: np.ndarray, rows: tuple[int, int], crop: int, count: int,
                 rng: np.random.Generator) -> np.ndarray:
  """`count` crop x crop windows whose rows lie wholly in [rows[0], rows[1])."""
  top_max, left_max = rows[1] - crop, image.shape[1] - crop
  if top_max < rows[0] or left_max < 0:
    raise ValueError(f"crop_size {crop} does not fit rows {rows} of a {image.shape} image")
  tops = rng.integers(rows[0], top_max + 1, size=count)
  lefts = rng.integers(0, left_max + 1, size=count)
  return np.stack([image[t:t + crop, l:l + crop] for t, l in zip(tops, lefts)])


def textures_splits(crop_size: int, crops_per_texture: int) -> Splits:
  """Seeded crops: train from the top 3/4 of each texture, test (count/4) from the bottom 1/4."""
  out = {}
  for split_id, split in enumerate(SPLITS):
    xs, ys = [], []
    count = crops_per_texture if split == "train" else max(1, crops_per_texture // 4)
    for label, name in enumerate(TEXTURES):
      image = _texture_image(name)
      cut = image.shape[0] * 3 // 4
      rows = (0, cut) if split == "train" else (cut, image.shape[0])
      rng = np.random.default_rng([0, label, split_id])
      xs.append(random_crops(image, rows, crop_size, count, rng))
      ys.append(np.full(count, label, np.int64))
    out[split] = (np.concatenate(xs)[..., None].astype(np.uint8), np.concatenate(ys))
  return out


def toy2d_centres(mixture: str, radius: float, spacing: float) -> np.ndarray:
  """Mode centres: 8 on a circle ('ring') or a 5x5 grid at spacing*{-2..2} ('grid'), row-major."""
  if mixture == "ring":
    angles = 2 * np.pi * np.arange(8) / 8
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)
  if mixture == "grid":
    ticks = spacing * np.arange(-2, 3, dtype=np.float64)
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
  raise ValueError(f"unknown toy2d mixture {mixture!r}; expected 'ring' or 'grid'")


def toy2d_default_std(mixture: str) -> float:
  """The customary per-mode std: 0.02 for the ring, 0.05 for the grid."""
  return 0.05 if mixture == "grid" else 0.02


def toy2d_sample(centres: np.ndarray, std: float, count: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Uniform mode choice plus isotropic Gaussian noise: (x float32 [count, 2], mode int64)."""
  modes = rng.integers(0, len(centres), size=count)
  x = centres[modes] + std * rng.standard_normal((count, 2))
  return x.astype(np.float32), modes.astype(np.int64)


def toy2d_splits(mixture: str, radius: float, spacing: float, std: float,
                 num_train: int, num_test: int) -> Splits:
  """Independent seeded samples for train and test from the same mixture."""
  centres = toy2d_centres(mixture, radius, spacing)
  return {split: toy2d_sample(centres, std, n, np.random.default_rng([0, i]))
          for i, (split, n) in enumerate(zip(SPLITS, (num_train, num_test)))}


def idx_splits(manual_dir: str) -> Splits:
  """Both splits from the four standard idx .gz files (strictly checked by genjax.data.idx)."""
  out = {}
  for split, (images, labels) in IDX_FILES.items():
    x, y = idx.read_pair(os.path.join(manual_dir, images), os.path.join(manual_dir, labels))
    out[split] = (x[..., None], y.astype(np.int64))
  return out


def missing_idx_message(name: str, manual_dir: str | None) -> str | None:
  """None if all four idx files are present, else the one message saying what to put where."""
  files = [f for pair in IDX_FILES.values() for f in pair]
  if manual_dir and all(os.path.isfile(os.path.join(manual_dir, f)) for f in files):
    return None
  where = f"manual_dir {manual_dir!r} lacks some of" if manual_dir else "no manual_dir set; need"
  missing = [f for f in files if not (manual_dir and os.path.isfile(os.path.join(manual_dir, f)))]
  msg = (f"{name}: {where} the idx files {', '.join(files)} (missing: {', '.join(missing)}); "
         f"set dataset.manual_dir to a folder holding them.")
  if name == "fashion_mnist":
    msg += (" On Debian/Ubuntu `apt-get install dataset-fashion-mnist` installs them in "
            f"{DEBIAN_FASHION_MNIST_DIR}.")
  return msg


def folder_files(path: str) -> list[tuple[str, int]]:
  """(path relative to `path`, label) of every PNG/JPEG below `path`, sorted; the label is the index
  of the file's top-level subdirectory among the sorted ones (files directly in `path` come first)."""
  found = sorted(image_files(path))
  classes = sorted({_class_name(f) for f in found})
  return [(f, classes.index(_class_name(f))) for f in found]


def image_files(path: str) -> Iterator[str]:
  """Paths relative to `path` of the PNG/JPEG files below it (hidden ones left out), in walk order."""
  for root, _, files in os.walk(path):
    yield from (os.path.relpath(os.path.join(root, f), path) for f in files
                if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))


def _class_name(relative: str) -> str:
  """The top-level subdirectory of a file ('' for a file directly in the folder)."""
  head, _, rest = relative.partition(os.sep)
  return head if rest else ""


def folder_fingerprint(path: str, files: list[tuple[str, int]]) -> str:
  """A digest of every file's name, size and mtime: editing the folder prepares it anew."""
  stats = [(f, os.stat(os.path.join(path, f))) for f, _ in files]
  listing = [(f, s.st_size, s.st_mtime_ns) for f, s in stats]
  return hashlib.sha1(json.dumps(listing).encode()).hexdigest()[:16]


def folder_split(files: list, split: str) -> list:
  """Every FOLDER_TEST_EVERY-th file (by sorted position, corrupt ones included) is test, the rest train."""
  test = check_split(split) == "test"
  return [f for i, f in enumerate(files) if (i % FOLDER_TEST_EVERY == FOLDER_TEST_EVERY - 1) == test]


def image_channels(path: str) -> int:
  """1 for a grey image file, 3 otherwise; DatasetError if it cannot be read."""
  from PIL import Image
  with _image_errors(path):
    with Image.open(path) as image:
      return 1 if image.mode in GREY_MODES else 3


def folder_image(path: str, size: int, channels: int) -> np.ndarray:
  """uint8 [size, size, channels]: the centre square of the image file, resized to `size`."""
  from PIL import Image, ImageOps
  with _image_errors(path):
    with Image.open(path) as image:
      image = ImageOps.fit(image.convert("L" if channels == 1 else "RGB"), (size, size),
                           Image.Resampling.BICUBIC)
  return np.asarray(image, np.uint8).reshape(size, size, channels)


@contextlib.contextmanager
def _image_errors(path: str):
  """Pillow's many failures on a bad file, as one DatasetError naming it."""
  from PIL import Image, UnidentifiedImageError
  try:
    yield
  except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    raise idx.DatasetError(f"image file {path} is not a readable PNG/JPEG image "
                           f"({type(e).__name__}: {str(e)[:100]})") from e


def ordered_map(function, items: list, chunk: int = 256):
  """function(item) for each item, in order, on a thread pool (Pillow decodes without the GIL);
  chunked, so at most `chunk` results wait in memory."""
  with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
    for start in range(0, len(items), chunk):
      yield from pool.map(_outcome(function), items[start:start + chunk])


def _outcome(function):
  """function -> a function returning (result, None) or (None, the DatasetError it raised)."""
  def call(item):
    try:
      return function(item), None
    except idx.DatasetError as e:
      return None, e
  return call


# ----------------------------------------------------------------------------- TFDS builders

def options_name(prefix: str, options: dict) -> str:
  """A readable, collision-free config name: prefix plus a short hash of the sorted options."""
  digest = hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()[:10]
  return f"{prefix}-{digest}"


class _ArrayBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Serialises `self._splits(dl_manager)` arrays record by record, in order."""

  VERSION = VERSION
  # TFDS derives a checksums path from the module's resource path, which for a module inside a
  # package needs the `importlib_resources` backport (not installed); we download nothing anyway.
  code_path = None
  X_SHAPE: tuple = ()
  X_DTYPE = np.uint8

  def _info(self) -> tfds.core.DatasetInfo:
    features = tfds.features.FeaturesDict({
        "x": tfds.features.Tensor(shape=self.X_SHAPE or self._x_shape(), dtype=self.X_DTYPE),
        "label": tfds.features.Tensor(shape=(), dtype=np.int64),
    })
    return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("x", "label"),
                                 disable_shuffling=True)

  def _x_shape(self) -> tuple:
    raise NotImplementedError

  def _splits(self, dl_manager) -> Splits:
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    splits = self._splits(dl_manager)
    return {split: self._generate_examples(x, y) for split, (x, y) in splits.items()}

  def _generate_examples(self, x, y):
    for i in range(len(x)):
      yield i, {"x": x[i], "label": int(y[i])}


class GenjaxDigits(_ArrayBuilder, skip_registration=True):
  """sklearn digits, uint8 0..16."""
  X_SHAPE = (8, 8, 1)

  def _splits(self, dl_manager):
    return digits_splits()


class GenjaxFaces(_ArrayBuilder, skip_registration=True):
  """LFW subset faces/non-faces, float32 in [0, 1]."""
  X_SHAPE = (25, 25, 1)
  X_DTYPE = np.float32

  def _splits(self, dl_manager):
    return faces_splits()


@dataclasses.dataclass(eq=False)
class TexturesConfig(tfds.core.BuilderConfig):
  crop_size: int = 32
  crops_per_texture: int = 600


class GenjaxTextures(_ArrayBuilder, skip_registration=True):
  """Seeded texture crops; the config carries crop size and count."""
  BUILDER_CONFIGS = [TexturesConfig(name="crop32-n600")]

  def _x_shape(self):
    return (self.builder_config.crop_size, self.builder_config.crop_size, 1)

  def _splits(self, dl_manager):
    return textures_splits(self.builder_config.crop_size, self.builder_config.crops_per_texture)


@dataclasses.dataclass(eq=False)
class Toy2dConfig(tfds.core.BuilderConfig):
  mixture: str = "ring"
  radius: float = 2.0
  spacing: float = 2.0
  std: float = 0.02
  num_train: int = 50000
  num_test: int = 5000


class GenjaxToy2d(_ArrayBuilder, skip_registration=True):
  """2-D Gaussian mixture samples, float32 points, label = mode index."""
  X_SHAPE = (2,)
  X_DTYPE = np.float32

  def _splits(self, dl_manager):
    c = self.builder_config
    return toy2d_splits(c.mixture, c.radius, c.spacing, c.std, c.num_train, c.num_test)


class _IdxBuilder(_ArrayBuilder, skip_registration=True):
  """MNIST-format data read from `manual_dir` (TFDS refuses manual_dir without instructions)."""
  X_SHAPE = (28, 28, 1)
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
      "t10k-labels-idx1-ubyte.gz in manual_dir.")

  def _splits(self, dl_manager):
    return idx_splits(os.fspath(dl_manager.manual_dir))


class GenjaxMnist(_IdxBuilder, skip_registration=True):
  """MNIST from local idx files."""


class GenjaxFashionMnist(_IdxBuilder, skip_registration=True):
  """Fashion-MNIST from local idx files."""


# ----------------------------------------------------------------------------- large sets: streamed

def image_features(shape: tuple[int, ...]) -> tfds.features.FeaturesDict:
  """{'x': uint8 `shape` stored as raw bytes, 'label': int64}: 8x smaller and ~20x faster to write and
  decode than TFDS's default tensor encoding (one int64 per pixel), which the small builders keep."""
  return tfds.features.FeaturesDict({
      "x": tfds.features.Tensor(shape=shape, dtype=np.uint8, encoding=tfds.features.Encoding.BYTES),
      "label": tfds.features.Tensor(shape=(), dtype=np.int64),
  })


def records_ready(directory: str) -> bool:
  return os.path.isfile(os.path.join(directory, "dataset_info.json"))


def write_records(directory: str, name: str, features: tfds.features.FeaturesDict,
                  splits: dict[str, Iterable[dict]]) -> tfds.core.DatasetBuilder:
  """Streams each split's examples into one array_record file (`name`-SPLIT.array_record-...), plus
  TFDS's metadata, in `directory`; returns its builder (`as_data_source`, `read_split` as usual).

  Not TFDS's own writer: it holds a split in memory and spills past 1 GB through tf.io.gfile, i.e.
  TensorFlow. Written aside and renamed into place, so a failure (or a kill) leaves nothing half-made.
  """
  partial = f"{directory}.incomplete-{os.getpid()}"
  shutil.rmtree(partial, ignore_errors=True)
  os.makedirs(partial)
  try:
    infos = [_write_split(partial, name, features, split, examples) for split, examples in splits.items()]
    tfds.folder_dataset.write_metadata(data_dir=partial, features=features, split_infos=infos, check_data=False,
                                       supervised_keys=("x", "label"), disable_shuffling=True)
    os.replace(partial, directory)
  except OSError:
    if not records_ready(directory):  # else another process finished first: theirs is the same
      raise
  finally:
    shutil.rmtree(partial, ignore_errors=True)
  return tfds.builder_from_directory(directory)


def _write_split(directory: str, name: str, features, split: str, examples: Iterable[dict]) -> tfds.core.SplitInfo:
  from array_record.python import array_record_module
  from tensorflow_datasets.core import naming
  template = naming.ShardedFileTemplate(data_dir=epath.Path(directory), dataset_name=name, split=split,
                                        filetype_suffix="array_record")
  path = template.sharded_filepath(shard_index=0, num_shards=1)
  writer = array_record_module.ArrayRecordWriter(os.fspath(path), "group_size:1")  # as TFDS writes it
  count = size = 0
  try:
    for example in examples:
      record = features.serialize_example(example)
      writer.write(record)
      count, size = count + 1, size + len(record)
  finally:
    writer.close()
  return tfds.core.SplitInfo(name=split, shard_lengths=[count], num_bytes=size, filename_template=template)


@dataclasses.dataclass(frozen=True)
class FolderConfig:
  name: str  # digests every field below and the folder's listing: one prepared directory each
  path: str
  image_size: int
  channels: int
  on_corrupt: str
  num_classes: int


def prepare_folder(data_dir: str, config: FolderConfig) -> tfds.core.DatasetBuilder:
  """A directory of PNG/JPEG files as uint8 squares in array_record, written once per FolderConfig."""
  directory = os.path.join(data_dir, "genjax_folder", config.name, str(VERSION))
  if not records_ready(directory):
    files = folder_files(config.path)
    features = image_features((config.image_size, config.image_size, config.channels))
    write_records(directory, "genjax_folder", features,
                  {split: folder_examples(config, folder_split(files, split)) for split in SPLITS})
  return tfds.builder_from_directory(directory)


def folder_examples(config: FolderConfig, files: list[tuple[str, int]]) -> Iterator[dict]:
  """Examples in file order; an unreadable file is skipped (and counted) or stops preparing."""
  read = lambda file: folder_image(os.path.join(config.path, file[0]), config.image_size, config.channels)
  skipped, count = [], 0
  for (name, label), (x, error) in zip(files, ordered_map(read, files)):
    if error is not None:
      if config.on_corrupt == "error":
        raise idx.DatasetError(f"{error} (dataset.on_corrupt='error'; 'skip' leaves such files out)")
      skipped.append(name)
      continue
    yield {"x": x, "label": label}
    count += 1
  if not count:
    raise idx.DatasetError(f"dataset.path {config.path}: no readable image for one split (every "
                           f"{FOLDER_TEST_EVERY}th file is a test image); add images")
  if skipped:
    logging.warning("dataset.path %s: skipped %d unreadable image file(s) of %d in this split "
                    "(first: %s); dataset.on_corrupt='error' stops on them instead",
                    config.path, len(skipped), len(files), skipped[0])


# ----------------------------------------------------------------------------- prepare + read

def prepare(builder: tfds.core.DatasetBuilder,
            manual_dir: str | None = None) -> tfds.core.DatasetBuilder:
  """download_and_prepare into array_record once; a prepared builder is returned untouched."""
  if not builder.is_prepared():
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(file_format="array_record", download_config=config)
  return builder


def _decode_split(builder: tfds.core.DatasetBuilder, split: str) -> tuple[np.ndarray, np.ndarray]:
  """The whole split as (x, label) numpy arrays, decoded record by record via `__getitems__`."""
  source = builder.as_data_source()[split]
  features = builder.info.features
  n = len(source)
  xs = [np.zeros((0, *features["x"].shape), features["x"].np_dtype)]
  ys = [np.zeros((0,), np.int64)]
  for start in range(0, n, READ_CHUNK):
    records = source.__getitems__(list(range(start, min(n, start + READ_CHUNK))))
    xs.append(np.stack([np.asarray(r["x"]) for r in records]))
    ys.append(np.array([r["label"] for r in records], np.int64))
  return np.concatenate(xs), np.concatenate(ys)


def read_split(builder: tfds.core.DatasetBuilder, split: str,
               use_cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """(x, label) of a prepared split, via a .npz snapshot kept beside the array_record files.

  TFDS decodes each record's proto in Python (~20 s for MNIST train), so the first read saves the
  decoded arrays in the prepared directory; deleting that directory removes both together.
  """
  check_split(split)
  cache = os.path.join(os.fspath(builder.data_path), f"genjax-arrays-{split}.npz")
  if use_cache and os.path.isfile(cache):
    with np.load(cache) as saved:
      return saved["x"], saved["label"]
  x, y = _decode_split(builder, split)
  if use_cache:
    tmp = f"{cache}.tmp-{os.getpid()}.npz"
    np.savez(tmp, x=x, label=y)
    os.replace(tmp, cache)  # atomic: a concurrent reader sees the whole file or none
  return x, y

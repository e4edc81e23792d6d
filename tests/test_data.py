"""genjax.data: TFDS builders without TensorFlow, the strict idx reader, step-indexed batches."""
from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ml_collections import ConfigDict

import genjax.data as gd
from genjax.data import builders, idx
from genjax.registry import DATASETS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
  """One prepared-data folder per test module, never the user's home."""
  return str(tmp_path_factory.mktemp("tfds"))


def cfg(data_dir: str, **fields) -> ConfigDict:
  return ConfigDict({"data_dir": data_dir, **fields})


# ----------------------------------------------------------------------------- registry / specs

def test_all_datasets_registered():
  for name in ("digits", "faces", "textures", "toy2d", "mnist", "fashion_mnist"):
    assert name in DATASETS
    spec = DATASETS.lookup(name)
    assert isinstance(spec, gd.DatasetSpec) and spec.name == name
  assert gd.dataset_spec(ConfigDict({"name": "toy2d"})).kind == "points"
  assert gd.dataset_spec(ConfigDict({"name": "digits"})).kind == "image"


def test_unknown_dataset_and_split_fail_clearly(data_dir):
  with pytest.raises(KeyError, match="digits"):
    gd.load_dataset(cfg(data_dir, name="cifar"), "train")
  with pytest.raises(ValueError, match="'val'.*train, test"):
    gd.load_dataset(cfg(data_dir, name="digits"), "val")


# ----------------------------------------------------------------------------- image builders

IMAGE_CASES = {
    # name: (extra config, x shape, train size, test size, labels expected)
    "digits": ({}, (8, 8, 1), 1500, 297, set(range(10))),
    "faces": ({}, (25, 25, 1), 180, 20, {0, 1}),
    "textures": ({"crop_size": 16, "crops_per_texture": 8}, (16, 16, 1), 24, 6, {0, 1, 2}),
}


@pytest.mark.parametrize("name", sorted(IMAGE_CASES))
def test_image_dataset_shapes_ranges_splits(data_dir, name):
  extra, shape, n_train, n_test, labels = IMAGE_CASES[name]
  config = cfg(data_dir, name=name, unused_trainer_field=123, **extra)
  spec = gd.dataset_spec(config)
  for split, n in (("train", n_train), ("test", n_test)):
    arrays = gd.load_dataset(config, split)
    assert set(arrays) == {"x", "label"}
    x, y = arrays["x"], arrays["label"]
    assert x.shape == (n, *shape) and x.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5 and x.std() > 0.05
    assert set(y.tolist()) <= labels and y.min() >= 0 and y.max() < spec.num_classes
  assert set(gd.load_dataset(config, "train")["label"].tolist()) == labels


def test_digits_values_and_fixed_split(data_dir):
  from sklearn.datasets import load_digits
  train = gd.load_dataset(cfg(data_dir, name="digits"), "train")
  test = gd.load_dataset(cfg(data_dir, name="digits"), "test")
  levels = train["x"] * 16
  np.testing.assert_allclose(levels, np.round(levels), atol=1e-5)  # 0..16 served as k/16
  order = np.random.default_rng(0).permutation(1797)
  raw = load_digits()
  np.testing.assert_allclose(train["x"][..., 0], raw.images[order[:1500]] / 16, atol=1e-6)
  np.testing.assert_array_equal(test["label"], raw.target[order[1500:]])
  assert "tensorflow" not in sys.modules  # building + loading never touched TF


def test_faces_labels_follow_lfw_order(data_dir):
  from skimage import data
  images = data.lfw_subset()
  arrays = gd.load_dataset(cfg(data_dir, name="faces"), "test")
  order = np.random.default_rng(0).permutation(200)[180:]
  np.testing.assert_allclose(arrays["x"][..., 0], images[order], atol=1e-6)
  np.testing.assert_array_equal(arrays["label"], (order < 100).astype(np.int32))


def test_random_crops_stay_in_their_rows():
  image = np.repeat(np.arange(100, dtype=np.uint8)[:, None], 60, axis=1)  # pixel = row index
  crops = builders.random_crops(image, (75, 100), 10, 50, np.random.default_rng(0))
  assert crops.shape == (50, 10, 10) and crops.min() >= 75 and crops.max() <= 99
  crops = builders.random_crops(image, (0, 75), 10, 50, np.random.default_rng(0))
  assert crops.max() <= 74
  with pytest.raises(ValueError, match="does not fit"):
    builders.random_crops(image, (75, 100), 30, 1, np.random.default_rng(0))


def test_textures_options_get_distinct_configs(data_dir):
  a = gd.textures_builder_config(ConfigDict({"crop_size": 16, "crops_per_texture": 8}))
  b = gd.textures_builder_config(ConfigDict({"crop_size": 8, "crops_per_texture": 8}))
  assert a.name != b.name
  assert gd.textures_builder_config(ConfigDict({})).name == "crop32-n600"
  small = gd.load_dataset(cfg(data_dir, name="textures", crop_size=8, crops_per_texture=4), "train")
  assert small["x"].shape == (12, 8, 8, 1)


# ----------------------------------------------------------------------------- folder

def colour(i: int) -> tuple[int, int, int]:
  """File i's solid colour, so every served image says which file it came from."""
  return (8 * i, 255 - 8 * i, 100)


def write_folder(root, count: int = 30) -> list[str]:
  """`count` solid-colour PNGs of assorted shapes, alternately in cats/ and dogs/, plus one truncated
  PNG (a valid header, then cut off); returns the sorted relative names."""
  from PIL import Image
  for i in range(count):
    folder = root / ("cats" if i % 2 == 0 else "dogs")
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (10 + i, 40 - i), colour(i)).save(folder / f"{i:02d}.png")
  png = (root / "cats" / "00.png").read_bytes()
  (root / "dogs" / "broken.png").write_bytes(png[:len(png) // 2])
  return sorted(f"{'cats' if i % 2 == 0 else 'dogs'}/{i:02d}.png" for i in range(count)) + ["dogs/broken.png"]


def folder_cfg(data_dir: str, path, **fields) -> ConfigDict:
  return ConfigDict({**gd.dataset_options(), "name": "folder", "image_size": 8, "data_dir": data_dir,
                     **fields, "path": str(path)})


def test_folder_builder_skips_a_corrupt_file_with_a_count(data_dir, tmp_path, caplog):
  names = write_folder(tmp_path / "images")
  config = folder_cfg(data_dir, tmp_path / "images")
  gd.validate_options(config)
  with caplog.at_level("WARNING"):
    splits = {split: gd.load_dataset(config, split) for split in ("train", "test")}
  assert "skipped 1 unreadable image file(s)" in caplog.text and "dogs/broken.png" in caplog.text
  test_names = names[9::10]  # every 10th file in sorted order, whether readable or not
  for split, arrays in splits.items():
    want = [n for n in names if (n in test_names) == (split == "test") and n != "dogs/broken.png"]
    files = [int(n[5:7]) for n in want]
    assert arrays["x"].shape == (len(want), 8, 8, 3)
    expected = np.broadcast_to(np.array([colour(i) for i in files], np.float32)[:, None, None] / 255,
                               arrays["x"].shape)
    np.testing.assert_allclose(arrays["x"], expected, atol=1 / 255)  # one colour per file, in order
    np.testing.assert_array_equal(arrays["label"], [i % 2 for i in files])  # cats 0, dogs 1
  assert len(splits["train"]["x"]) + len(splits["test"]["x"]) == 30
  assert gd.served_arrays(config, "train")["x"].dtype == np.uint8
  assert gd.num_classes(config) == 2 and gd.example_shape(config) == (8, 8, 3) and gd.levels(config) == 256


def test_folder_builder_in_error_mode_names_the_file(data_dir, tmp_path):
  write_folder(tmp_path / "images", count=12)
  config = folder_cfg(data_dir, tmp_path / "images", on_corrupt="error")
  with pytest.raises(gd.DatasetError) as info:
    gd.load_dataset(config, "train")
  message = str(info.value)
  assert "\n" not in message and str(tmp_path / "images" / "dogs" / "broken.png") in message
  assert "on_corrupt='error'" in message
  (tmp_path / "images" / "dogs" / "broken.png").unlink()  # fixed: the folder's listing changed
  gd._folder_config.cache_clear()  # (listed once per process)
  assert gd.load_dataset(config, "train")["x"].shape == (11, 8, 8, 3)


def test_folder_centre_crops_and_follows_the_files_channels(data_dir, tmp_path):
  from PIL import Image
  wide = np.zeros((16, 64, 3), np.uint8)
  wide[..., 2] = 255  # blue margins around a red centre square
  wide[:, 24:40] = (255, 0, 0)
  (tmp_path / "rgb").mkdir()
  for i in range(10):  # a folder needs 10 files: the 10th is its test image
    Image.fromarray(wide).save(tmp_path / "rgb" / f"wide{i}.png")
  x = gd.load_dataset(folder_cfg(data_dir, tmp_path / "rgb"), "train")["x"][0]
  np.testing.assert_array_equal(x[:, 1:7], np.broadcast_to([1.0, 0.0, 0.0], (8, 6, 3)))
  assert (x[..., 0] > 0.8).all() and (x[..., 2] < 0.2).all()  # only resampling blurs the crop's edge
  (tmp_path / "grey").mkdir()
  Image.new("L", (20, 20), 51).save(tmp_path / "grey" / "a.png")
  for i in range(9):
    Image.new("RGB", (20, 20), (51, 51, 51)).save(tmp_path / "grey" / f"b{i}.jpg")
  grey = gd.load_dataset(folder_cfg(data_dir, tmp_path / "grey"), "train")["x"]
  assert grey.shape == (9, 8, 8, 1)  # the first file is grey: every image is read grey
  np.testing.assert_allclose(grey, 51 / 255, atol=1 / 255)
  assert gd.example_shape(folder_cfg(data_dir, tmp_path / "grey", channels=3)) == (8, 8, 3)


def test_folder_records_stream_past_tfds_memory_buffer(data_dir, tmp_path, monkeypatch):
  """TFDS's writer spills a split over 1 GB to disk through TensorFlow; the folder's writer streams."""
  from tensorflow_datasets.core import shuffle
  monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 0)  # as if the folder held more than 1 GB
  write_folder(tmp_path / "images", count=10)
  assert gd.load_dataset(folder_cfg(data_dir, tmp_path / "images"), "train")["x"].shape == (9, 8, 8, 3)
  assert "tensorflow" not in sys.modules


def test_folder_options_fail_in_one_line(tmp_path):
  from genjax.config import ConfigError
  (tmp_path / "empty").mkdir()
  for fields, match in (({"path": ""}, r"dataset.path=''.*directory holding at least 10 PNG/JPEG"),
                        ({"path": str(tmp_path / "empty")}, "dataset.path="),
                        ({"path": str(tmp_path / "few")}, "at least 10 PNG/JPEG files"),
                        ({"path": str(tmp_path / "missing")}, "dataset.path="),
                        ({"image_size": 0}, r"dataset.image_size=0.*>= 1"),
                        ({"channels": 2}, r"dataset.channels=2"),
                        ({"on_corrupt": "ignore"}, r"dataset.on_corrupt='ignore'.*'skip'.*'error'")):
    write_folder(tmp_path / "ok", count=10)
    write_folder(tmp_path / "few", count=8)  # 9 files with the broken one
    with pytest.raises(ConfigError, match=match) as info:
      gd.validate_options(folder_cfg(str(tmp_path), fields.pop("path", tmp_path / "ok"), **fields))
    assert "\n" not in str(info.value)


def test_cli_refuses_a_missing_folder_in_one_line(tmp_path):
  from tests.helpers import run_cli
  workdir = tmp_path / "run"
  result = run_cli("--config", "experiments/vae_mlp.py", "--workdir", str(workdir),
                   "--config.dataset.name=folder", f"--config.dataset.path={tmp_path / 'nowhere'}", timeout=120)
  assert result.returncode == 2, result.stderr[-2000:]
  assert result.stderr.strip().splitlines()[-1].startswith("error: config.dataset.path=")
  assert not workdir.exists()


# ----------------------------------------------------------------------------- toy2d

def test_toy2d_ring_and_grid(data_dir):
  ring = cfg(data_dir, name="toy2d", num_train=400, num_test=40)
  grid = cfg(data_dir, name="toy2d", mixture="grid", num_train=500, num_test=50)
  centres = gd.toy2d_mode_centres(ring)
  assert centres.shape == (8, 2) and gd.toy2d_std(ring) == 0.02
  np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0, rtol=1e-6)
  gcentres = gd.toy2d_mode_centres(grid)
  assert gcentres.shape == (25, 2) and gd.toy2d_std(grid) == 0.05
  assert sorted(set(gcentres[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
  assert gd.num_classes(grid) == 25 and gd.num_classes(ring) == 8
  for config, n_train, n_test in ((ring, 400, 40), (grid, 500, 50)):
    modes, std = gd.toy2d_mode_centres(config), gd.toy2d_std(config)
    for split, n in (("train", n_train), ("test", n_test)):
      arrays = gd.load_dataset(config, split)
      x, y = arrays["x"], arrays["label"]
      assert x.shape == (n, 2) and x.dtype == np.float32 and y.dtype == np.int32
      assert 0 <= y.min() and y.max() < len(modes)
      assert np.linalg.norm(x - modes[y], axis=1).max() < 6 * std
    assert len(set(gd.load_dataset(config, "train")["label"].tolist())) == len(modes)


def test_toy2d_options_map_to_distinct_prepared_data(data_dir):
  base = {"name": "toy2d", "num_train": 300, "num_test": 30}
  names = {gd.toy2d_builder_config(ConfigDict(dict(base, **extra))).name
           for extra in ({}, {"std": 0.1}, {"radius": 3.0}, {"mixture": "grid"})}
  assert len(names) == 4
  wide = gd.load_dataset(cfg(data_dir, std=0.3, **base), "train")["x"]
  narrow = gd.load_dataset(cfg(data_dir, **base), "train")["x"]
  assert not np.allclose(wide, narrow)
  with pytest.raises(ValueError, match="mixture"):
    gd.toy2d_mode_centres(ConfigDict({"mixture": "spiral"}))


# ----------------------------------------------------------------------------- memo, TF absence

def test_load_is_memoised_and_prepared_once(data_dir, monkeypatch):
  config = cfg(data_dir, name="digits")
  first = gd.load_dataset(config, "train")
  assert gd.load_dataset(cfg(data_dir, name="digits"), "train") is first
  assert not first["x"].flags.writeable
  # A fresh process (empty memo, no snapshot) reads the prepared files and never regenerates.
  monkeypatch.setattr(gd, "_CACHE", {})
  monkeypatch.setattr(builders, "digits_splits", lambda: pytest.fail("regenerated digits"))
  builder = builders.GenjaxDigits(data_dir=data_dir, file_format="array_record")
  x, y = builders.read_split(builder, "train", use_cache=False)
  np.testing.assert_array_equal(x.astype(np.float32) / 16, first["x"])
  np.testing.assert_array_equal(gd.load_dataset(config, "train")["label"], first["label"])


def test_tensorflow_is_never_imported(tmp_path):
  # A finder that answers "no such module" for TensorFlow even if it were installed alongside:
  # etils probes with importlib.util.find_spec and tfds checks `'tensorflow' in sys.modules`, so
  # both must see plain absence (a raising finder or a `sys.modules[...] = None` block breaks them).
  script = textwrap.dedent(f"""
      import importlib.abc, importlib.machinery, sys
      class NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
          if name == "tensorflow" or name.startswith("tensorflow."):
            return importlib.machinery.ModuleSpec(name, Refuse())  # only if someone imports it
          return None
      class Refuse(importlib.abc.Loader):
        def create_module(self, spec):
          raise ImportError("test blocks tensorflow: " + spec.name)
        def exec_module(self, module):
          raise ImportError("test blocks tensorflow")
      import importlib.util
      _real = importlib.util.find_spec
      importlib.util.find_spec = lambda name, package=None: (
          None if name.split(".")[0] == "tensorflow" else _real(name, package))
      sys.meta_path.insert(0, NoTensorFlow())
      from ml_collections import ConfigDict
      import genjax.data as gd
      config = ConfigDict({{"name": "digits", "data_dir": {str(tmp_path)!r}}})
      arrays = gd.load_dataset(config, "test")
      assert arrays["x"].shape == (297, 8, 8, 1), arrays["x"].shape
      print("OK", sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow"))
  """)
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "OK []" in result.stdout


# ----------------------------------------------------------------------------- idx / mnist

def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
  """Hand-written idx encoder, independent of genjax.data.idx."""
  array = np.asarray(array, np.uint8)
  magic = (0x0800 + array.ndim) if magic is None else magic
  return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_gz(path, payload: bytes) -> None:
  with gzip.open(path, "wb") as f:
    f.write(payload)


def write_mnist(folder, n_train=5, n_test=3, seed=0):
  """Tiny idx files; returns the arrays written so tests can compare."""
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  out = {}
  for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    write_gz(folder / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(images))
    write_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(labels))
    out[split] = (images, labels)
  return out


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_round_trip(tmp_path, name):
  written = write_mnist(tmp_path / "manual", seed=len(name))
  config = cfg(str(tmp_path / "tfds"), name=name, manual_dir=str(tmp_path / "manual"))
  for split, (images, labels) in written.items():
    arrays = gd.load_dataset(config, split)
    assert arrays["x"].shape == (len(images), 28, 28, 1) and arrays["x"].dtype == np.float32
    np.testing.assert_allclose(arrays["x"][..., 0], images / 255.0, atol=1e-6)
    np.testing.assert_array_equal(arrays["label"], labels)
    assert arrays["label"].dtype == np.int32


def test_idx_encode_matches_reader(tmp_path):
  images = np.random.default_rng(1).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
  write_gz(tmp_path / "a.gz", idx.encode(images))
  np.testing.assert_array_equal(idx.read_images(str(tmp_path / "a.gz")), images)


def _corrupt(kind: str, folder) -> tuple[str, str]:
  """Writes valid tiny files then breaks one; returns (broken file name, expected message)."""
  write_mnist(folder)
  images = np.zeros((5, 28, 28), np.uint8)
  name = "train-images-idx3-ubyte.gz"
  if kind == "magic":
    write_gz(folder / name, idx_bytes(images, magic=1234))
    return name, "expected magic 2051 for idx3 images, got 1234"
  if kind == "truncated":
    write_gz(folder / name, idx_bytes(images)[:-10])
    return name, "expected 3920 payload bytes"
  if kind == "size":
    write_gz(folder / name, idx_bytes(np.zeros((5, 27, 28), np.uint8)))
    return name, "expected 28x28 images, got 27x28"
  if kind == "labels_magic":
    name = "t10k-labels-idx1-ubyte.gz"
    write_gz(folder / name, idx_bytes(np.zeros(3, np.uint8), magic=2051))
    return name, "expected magic 2049 for idx1 labels, got 2051"
  if kind == "count":
    name = "t10k-images-idx3-ubyte.gz"
    write_gz(folder / name, idx_bytes(np.zeros((4, 28, 28), np.uint8)))
    return name, "expected as many images as labels"
  if kind == "not_gzip":
    (folder / name).write_bytes(b"definitely not gzip")
    return name, "not a readable gzip file"
  raise AssertionError(kind)


@pytest.mark.parametrize("kind",
                         ["magic", "truncated", "size", "labels_magic", "count", "not_gzip"])
def test_malformed_idx_gives_one_clear_error(tmp_path, kind):
  name, expected = _corrupt(kind, tmp_path / "manual")
  config = cfg(str(tmp_path / "tfds"), name="mnist", manual_dir=str(tmp_path / "manual"))
  with pytest.raises(gd.DatasetError) as info:
    gd.load_dataset(config, "train")
  assert str(tmp_path / "manual" / name) in str(info.value)
  assert expected in str(info.value)
  assert isinstance(info.value, ValueError)
  # Nothing half-prepared is left behind: fixing the files makes the next load work.
  write_mnist(tmp_path / "manual")
  assert gd.load_dataset(config, "test")["x"].shape == (3, 28, 28, 1)


def test_missing_idx_file_is_named(tmp_path):
  write_mnist(tmp_path / "manual")
  os.remove(tmp_path / "manual" / "t10k-labels-idx1-ubyte.gz")
  with pytest.raises(gd.DatasetError, match="missing: t10k-labels-idx1-ubyte.gz"):
    gd.load_dataset(cfg(str(tmp_path), name="mnist", manual_dir=str(tmp_path / "manual")), "train")
  with pytest.raises(gd.DatasetError, match="file not found"):
    idx.read_labels(str(tmp_path / "manual" / "t10k-labels-idx1-ubyte.gz"))


def test_missing_manual_dir_lists_files_and_debian_hint(tmp_path):
  with pytest.raises(gd.DatasetError) as info:
    gd.load_dataset(cfg(str(tmp_path), name="mnist"), "train")
  message = str(info.value)
  for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
    assert f in message
  assert "manual_dir" in message and "dataset-fashion-mnist" not in message
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(gd.DatasetError, match="apt-get install dataset-fashion-mnist"):
    gd.load_dataset(cfg(str(tmp_path), name="fashion_mnist", manual_dir=str(empty)), "train")


def test_fashion_mnist_defaults_to_debian_folder():
  expected = (builders.DEBIAN_FASHION_MNIST_DIR
              if os.path.isdir(builders.DEBIAN_FASHION_MNIST_DIR) else None)
  assert gd.idx_manual_dir(ConfigDict({"name": "fashion_mnist"})) == expected
  assert gd.idx_manual_dir(ConfigDict({"name": "mnist"})) is None


# ----------------------------------------------------------------------------- Batches

def toy_arrays(n: int) -> dict:
  """x encodes the example id so batches can be traced back to rows."""
  ids = np.arange(n)
  return {"x": np.repeat(ids[:, None].astype(np.float32), 3, axis=1), "label": ids.astype(np.int32)}


def test_batches_are_a_pure_function_of_seed_and_step():
  arrays = toy_arrays(37)
  a, b = gd.Batches(arrays, 8, seed=3), gd.Batches(arrays, 8, seed=3)
  sequence = [a(t) for t in range(12)]
  for t in (11, 0, 7, 7, 3):  # any order, a fresh instance: resuming needs no state
    for key in ("x", "label"):
      np.testing.assert_array_equal(b(t)[key], sequence[t][key])
  assert not np.array_equal(gd.Batches(arrays, 8, seed=4)(0)["label"], sequence[0]["label"])
  assert sequence[0]["x"].shape == (8, 3) and sequence[0]["label"].dtype == np.int32


def test_batches_cover_every_example_once_per_epoch_across_wraparound():
  n, batch = 10, 4  # batches straddle epoch boundaries (positions 8..11, 16..19, ...)
  batches = gd.Batches(toy_arrays(n), batch, seed=0)
  stream = np.concatenate([batches(t)["label"] for t in range(15)])  # 60 positions = 6 epochs
  epochs = stream.reshape(6, n)
  for e, order in enumerate(epochs):
    assert sorted(order.tolist()) == list(range(n))
    np.testing.assert_array_equal(order, np.random.default_rng([0, e]).permutation(n))
  assert len({tuple(o) for o in epochs.tolist()}) > 1  # a new order each epoch


@pytest.mark.parametrize("binarize", [False, True])
def test_process_slices_concatenate_to_the_global_batch(binarize):
  arrays = {"x": np.random.default_rng(0).uniform(size=(23, 4, 4, 1)).astype(np.float32),
            "label": np.arange(23, dtype=np.int32)}
  whole = gd.Batches(arrays, 12, seed=5, binarize=binarize)
  for count in (2, 3, 4):
    parts = [gd.Batches(arrays, 12, seed=5, binarize=binarize, process_index=i, process_count=count)
             for i in range(count)]
    for t in (0, 1, 5):
      local = [p(t) for p in parts]
      assert all(len(l["label"]) == 12 // count for l in local)
      for key in ("x", "label"):
        np.testing.assert_array_equal(np.concatenate([l[key] for l in local]), whole(t)[key])


def test_indivisible_batch_names_both_numbers():
  with pytest.raises(ValueError, match="10.*3"):
    gd.Batches(toy_arrays(5), 10, seed=0, process_count=3)


def test_dynamic_binarisation():
  x = np.random.default_rng(1).uniform(size=(4000, 8)).astype(np.float32)
  arrays = {"x": x, "label": np.zeros(4000, np.int32)}
  batches = gd.Batches(arrays, 2000, seed=2, binarize=True)
  plain = gd.Batches(arrays, 2000, seed=2)
  b0 = batches(0)
  assert set(np.unique(b0["x"]).tolist()) <= {0.0, 1.0} and b0["x"].dtype == np.float32
  assert abs(b0["x"].mean() - plain(0)["x"].mean()) < 0.01
  # Per-pixel expectation: the binary value is 1 more often where x is larger.
  src = plain(0)["x"]
  assert b0["x"][src > 0.9].mean() > 0.85 and b0["x"][src < 0.1].mean() < 0.15
  np.testing.assert_array_equal(batches(0)["x"], b0["x"])
  # The same examples at another step get fresh noise.
  np.testing.assert_array_equal(gd.dynamic_binarize(src, 2, 0), b0["x"])
  assert not np.array_equal(gd.dynamic_binarize(src, 2, 1), b0["x"])
  again = gd.Batches(arrays, 2000, seed=3, binarize=True)(0)["x"]
  assert not np.array_equal(again, b0["x"])


def test_eval_batches_in_order_with_short_last_batch():
  arrays = toy_arrays(10)
  batches = list(gd.eval_batches(arrays, 4))
  assert [len(b["label"]) for b in batches] == [4, 4, 2]
  np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches]), np.arange(10))
  np.testing.assert_array_equal(np.concatenate([b["x"] for b in batches]), arrays["x"])

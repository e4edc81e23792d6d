"""The input pipeline (genjax/data/pipeline.py): rows of step t are a pure function of (seed, t) and the
process index whatever the source (memory or array_record) or reader (grain threads or workers), and
uint8 batches become exactly the float batches of the float path."""
from __future__ import annotations

import jax
import numpy as np
import pytest
from ml_collections import ConfigDict

import genjax.data as gd
from genjax import xla_options, trainer
from genjax.config import ConfigError, validate
from tests.helpers import leaves, load_experiment, tiny
from tests.test_data import write_mnist

N, BATCH, STEPS = 64, 24, 6  # 6 x 24 positions: 2.25 epochs; steps 2 and 5 straddle an epoch's end


@pytest.fixture(scope="module")
def fashion(tmp_path_factory) -> ConfigDict:
  """A 64-image Fashion-MNIST-format set (uint8 pixels 0..255), prepared once for the module."""
  tmp = tmp_path_factory.mktemp("pipeline")
  write_mnist(tmp / "manual", n_train=N, n_test=8)
  config = ConfigDict({**gd.dataset_options(), "name": "fashion_mnist", "manual_dir": str(tmp / "manual"),
                       "data_dir": str(tmp / "tfds")})
  gd.load_dataset(config, "train")
  return config


def with_options(config: ConfigDict, **options) -> ConfigDict:
  copy = ConfigDict(config.to_dict())
  copy.update(options)
  return copy


def assert_same_batches(a: dict, b: dict) -> None:
  assert a.keys() == b.keys()
  for key in a:
    assert a[key].dtype == b[key].dtype, key
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("binarize", [False, True])
def test_memory_and_array_record_sources_give_identical_batches(fashion, binarize):
  memory, records = (gd.train_source(with_options(fashion, in_memory=choice)) for choice in ("yes", "no"))
  assert isinstance(memory, gd.ArraySource) and isinstance(records, gd.RecordSource)
  a, b = (gd.Batches(source, BATCH, seed=3, binarize=binarize) for source in (memory, records))
  for step in (0, 2, 5, 3, 2):  # across epoch boundaries, in any order
    assert_same_batches(a(step), b(step))
  assert a(0)["x"].dtype == (np.bool_ if binarize else np.uint8)


def test_in_memory_auto_chooses_by_stored_size(fashion, monkeypatch):
  assert isinstance(gd.train_source(fashion), gd.ArraySource)  # N x 784 bytes
  monkeypatch.setattr(gd, "IN_MEMORY_LIMIT_BYTES", N * 784 - 1)
  assert isinstance(gd.train_source(fashion), gd.RecordSource)
  with pytest.raises(ConfigError, match=r"dataset.in_memory='maybe'.*'auto'.*'yes'.*'no'"):
    gd.validate_options(with_options(fashion, in_memory="maybe"))
  with pytest.raises(ConfigError, match=r"dataset.in_memory='no'.*dataset.task='inpaint'"):
    gd.validate_options(with_options(fashion, in_memory="no", task="inpaint"))
  with pytest.raises(ConfigError, match=r"dataset.read_threads=0.*>= 1"):
    gd.validate_options(with_options(fashion, read_threads=0))


@pytest.mark.parametrize("binarize", [False, True])
def test_uint8_batches_are_the_float_batches_of_before(fashion, binarize):
  """The float path: `Batches` over load_dataset's float32 arrays, binarised from the float pixels."""
  before = gd.Batches(gd.load_dataset(fashion, "train"), BATCH, seed=1, binarize=binarize)
  now = gd.Batches(gd.train_source(with_options(fashion, in_memory="no")), BATCH, seed=1, binarize=binarize)
  to_float = jax.jit(gd.to_float)
  for step in (0, 2):
    assert_same_batches(gd.as_float(now(step)), before(step))  # on the host
    assert_same_batches(jax.device_get(to_float(now(step))), before(step))  # in a jitted step


def test_jitted_conversion_is_exact_for_every_grey_level():
  levels = np.arange(256, dtype=np.uint8)
  expected = levels.astype(np.float32) / np.float32(255)  # how load_dataset computes the float pixels
  np.testing.assert_array_equal(np.asarray(jax.jit(gd.to_float)({"x": levels})["x"]), expected)
  binary = jax.jit(gd.to_float)({"x": np.array([True, False])})["x"]
  assert binary.dtype == np.float32 and binary.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("in_memory", ["yes", "no"])
def test_two_processes_read_disjoint_rows_that_make_the_global_batch(fashion, in_memory):
  source = gd.train_source(with_options(fashion, in_memory=in_memory))
  whole = gd.Batches(source, BATCH, seed=5, binarize=True)
  halves = [gd.Batches(source, BATCH, seed=5, binarize=True, process_index=i, process_count=2) for i in range(2)]
  for step in range(STEPS):
    rows = [half.rows(step) for half in halves]
    if step * BATCH // N == ((step + 1) * BATCH - 1) // N:  # within one epoch no row comes back
      assert not set(rows[0].tolist()) & set(rows[1].tolist())
    np.testing.assert_array_equal(np.concatenate(rows), whole.rows(step))
    parts = [half(step) for half in halves]
    assert_same_batches({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, whole(step))


@pytest.mark.parametrize("threads,workers", [(1, 0), (3, 0), (1, 2)])
def test_stream_serves_steps_in_order_from_any_start(fashion, threads, workers):
  """What a resumed run reads: the stream from step 2 is batches(2), batches(3), ...; grain threads and
  worker processes change nothing."""
  batches = gd.Batches(gd.train_source(with_options(fashion, in_memory="no")), BATCH, seed=2)
  stream = gd.batch_stream(batches, 2, STEPS, threads=threads, workers=workers, prefetch=2)
  try:
    for step in range(2, STEPS):
      assert_same_batches(dict(next(stream)), batches(step))
    with pytest.raises(StopIteration):
      next(stream)
  finally:
    stream.close()


def test_trainer_on_uint8_data_trains_what_float_batches_train(fashion, tmp_path):
  config = tiny(load_experiment("ae_mlp"), num_steps=4, batch_size=16, **{"model.hidden": (32,)})
  config.dataset = with_options(fashion, binarize=True, in_memory="no")
  validate(config)
  trained = trainer.train(config, str(tmp_path / "run"))
  run = trainer.Run(config, str(tmp_path / "reference"))  # writes nothing
  before = gd.Batches(gd.load_dataset(config.dataset, "train"), 16, config.seed, binarize=True)
  state = run.init_state(trainer.shard_batch(before(0), run.mesh))
  step = trainer.make_train_step(run.objective, run.mesh, trainer.replicated(run.mesh),
                                 fast_compile=xla_options.fast_compile(config))  # as the trainer compiles it
  for t in range(config.num_steps):
    state, _ = step(state, trainer.shard_batch(before(t), run.mesh))
  for got, want in zip(leaves(trained.params), leaves(state.params)):
    np.testing.assert_array_equal(got, want)

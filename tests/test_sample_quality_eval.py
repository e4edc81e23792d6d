"""The domain-classifier features behind --mode eval's sample-quality numbers, calibrated on digits."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from ml_collections import ConfigDict

from genjax import data as genjax_data
from genjax.evaluate import compare
from genjax.evaluate.classifier import FeatureExtractor, sample_quality_report
from tests.helpers import ROOT

DIGITS = ConfigDict({"name": "digits"})


@pytest.fixture(scope="module")
def extractor():
  return FeatureExtractor(DIGITS, 0)


def test_digits_classifier_is_accurate_and_cached(extractor):
  assert extractor.accuracy > 0.97
  again = FeatureExtractor(DIGITS, 0)  # loads the cached weights instead of retraining
  test = genjax_data.load_dataset(DIGITS, "test")["x"][:50]
  np.testing.assert_array_equal(again.embed(test), extractor.embed(test))
  assert extractor.embed(test).shape == (50, 128)


def test_train_split_against_test_split_is_near_the_best_values(extractor):
  train = genjax_data.load_dataset(DIGITS, "train")["x"]
  test = genjax_data.load_dataset(DIGITS, "test")["x"]
  report = sample_quality_report(DIGITS, train[:len(test)], test)
  assert report["precision"] > 0.85 and report["recall"] > 0.85 and report["coverage"] > 0.9
  assert report["feature_extractor"] == "genjax-cnn-digits-seed0" and report["num_fake"] == len(test)
  noisy = sample_quality_report(DIGITS, np.clip(train[:len(test)] + 0.3 * np.random.default_rng(0).normal(
      size=test.shape), 0, 1).astype(np.float32), test)
  assert noisy["fid"] > 1.5 * report["fid"]


def test_fid_and_kid_rise_with_noise_and_recall_falls_with_missing_classes(extractor):
  data = genjax_data.load_dataset(DIGITS, "train")
  test = genjax_data.load_dataset(DIGITS, "test")["x"]
  rng = np.random.default_rng(1)
  fids, kids = [], []
  for sigma in (0.0, 0.1, 0.2, 0.4):
    fake = np.clip(data["x"][:300] + sigma * rng.normal(size=data["x"][:300].shape), 0, 1).astype(np.float32)
    report = sample_quality_report(DIGITS, fake, test)
    fids.append(report["fid"])
    kids.append(report["kid_mean"])
  assert fids == sorted(fids) and kids == sorted(kids), (fids, kids)
  recalls = []
  for classes in (10, 6, 2):
    keep = data["x"][data["label"] < classes][:297]
    recalls.append(sample_quality_report(DIGITS, np.resize(keep, test.shape), test)["recall"])
  assert recalls == sorted(recalls, reverse=True) and recalls[-1] < 0.5, recalls


def test_compare_prints_a_table_and_writes_a_chart(tmp_path):
  for name, fid in (("run_a", 12.5), ("run_b", 40.0)):
    os.makedirs(tmp_path / name)
    with open(tmp_path / name / "eval.json", "w") as f:
      json.dump({"fid": fid, "precision": 0.9, "recall": 0.5}, f)
  rows = compare.load_rows([str(tmp_path / "run_a"), str(tmp_path / "run_b")])
  table = compare.markdown_table(rows)
  assert table.splitlines()[0] == "| run | fid | precision | recall |"
  assert "| run_b | 40 | 0.9 | 0.5 |" in table
  path = compare.bar_chart(rows, str(tmp_path / "chart.png"))
  from PIL import Image
  assert Image.open(path).size[0] > 3 * 200
  with pytest.raises(FileNotFoundError, match="run --mode eval"):
    compare.load_rows([str(tmp_path)])
  # From the command line: one error line naming the workdir, exit 2, no chart.
  result = subprocess.run([sys.executable, "-m", "genjax.evaluate.compare", str(tmp_path / "run_a"), str(tmp_path),
                           "--output", str(tmp_path / "never.png")], capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path}/eval.json is missing")
  assert not os.path.exists(tmp_path / "never.png")


def test_classifier_trains_at_least_ten_epochs_and_600_steps():
  from genjax.evaluate.classifier import training_steps
  assert training_steps(1500) == 600  # digits: unchanged (51 epochs)
  assert training_steps(60000) == 4688  # Fashion-MNIST: 10 epochs of 128

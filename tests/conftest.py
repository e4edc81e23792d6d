"""Shared fixtures: one prepared-data directory per test session, never the user's cache."""
import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def genjax_data_dir(tmp_path_factory):
  """Datasets are prepared once per session under a temporary directory (GENJAX_DATA_DIR)."""
  path = os.environ.get("GENJAX_TEST_DATA_DIR") or str(tmp_path_factory.mktemp("tfds"))
  previous = os.environ.get("GENJAX_DATA_DIR")
  os.environ["GENJAX_DATA_DIR"] = path
  yield path
  if previous is None:
    os.environ.pop("GENJAX_DATA_DIR", None)
  else:
    os.environ["GENJAX_DATA_DIR"] = previous

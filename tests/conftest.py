"""Shared fixtures: one prepared-data directory per test session, never the user's cache."""
import os

import jax
import pytest

# Tests train many tiny models whose steps recompile per Run: a per-session persistent cache turns
# repeated compilations (resume tests, CLI subprocesses) into loads.


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


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
  # One cache for all xdist workers of this session (their basetemps share a parent): a program
  # compiled by one worker is a load for the other. JAX writes cache entries atomically.
  shared = tmp_path_factory.getbasetemp()
  shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared
  path = os.environ.get("GENJAX_COMPILATION_CACHE") or str(shared / "xla-cache")
  os.makedirs(path, exist_ok=True)
  os.environ["GENJAX_COMPILATION_CACHE"] = path  # CLI subprocesses share it
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  yield path

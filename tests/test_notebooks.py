"""Every notebook runs top to bottom (tiny step counts via GENJAX_NOTEBOOK_STEPS / _STAGES) without a cell error."""
import glob
import os

import pytest

from tests.helpers import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))


def test_there_are_notebooks():
  assert {os.path.basename(p) for p in NOTEBOOKS} >= {"autoencoders.ipynb", "gan_mode_collapse.ipynb", "vae_manifold.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_executes(path, tmp_path, monkeypatch):
  monkeypatch.setenv("GENJAX_NOTEBOOK_STEPS", "30")
  monkeypatch.setenv("GENJAX_NOTEBOOK_STAGES", "2")  # gan_mode_collapse: 2 resumed stages, not 4
  monkeypatch.setenv("GENJAX_NOTEBOOK_RUNS", str(tmp_path))
  notebook = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": os.path.dirname(path)}})
  client.execute()  # raises CellExecutionError naming the failing cell
  errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]
  assert not errors

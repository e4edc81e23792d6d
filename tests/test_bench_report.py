"""make bench flags runs measured on a loaded machine (issue 23), in the JSON and the table."""
import os

from benchmarks import run


def test_load_above_a_quarter_per_core_is_flagged(monkeypatch):
  monkeypatch.setattr(os, "cpu_count", lambda: 2)
  assert not run.loaded(0.3, 0.5, None)
  assert run.loaded(0.3, 0.51)
  assert run.loaded(1.9)


def test_table_marks_loaded_rows():
  lines = [{"workload": "vae_mlp", "steps_per_s": {"genjax": 300.0, "minimal": 250.0},
            "genjax/minimal": 1.2, "genjax/torch_eager": None, "load_avg_1m": [0.1, 0.2], "loaded": False},
           {"workload": "dcgan", "steps_per_s": {"genjax": 10.0, "minimal": 9.0},
            "genjax/minimal": 1.11, "genjax/torch_eager": None, "load_avg_1m": [1.8, 1.9], "loaded": True}]
  table = run.table(lines, ["genjax", "minimal"]).splitlines()
  assert table[0] == "| workload | genjax | minimal | genjax/minimal | genjax/torch_eager | load (1 min) |"
  assert table[2] == "| vae_mlp | 300.0 | 250.0 | 1.20x | n/a | 0.1-0.2 |"
  assert table[3].endswith("| 1.8-1.9 LOADED |")

"""make bench flags runs measured on a loaded machine (issue 23), in the JSON and the table."""
import os
import subprocess
import sys
import time

from benchmarks import run


def test_load_above_a_quarter_per_core_is_flagged(monkeypatch):
  monkeypatch.setattr(os, "cpu_count", lambda: 2)
  assert not run.loaded(0.3, 0.5, None)
  assert run.loaded(0.3, 0.51)
  assert run.loaded(1.9)


def test_foreign_load_subtracts_own_cpu(monkeypatch):
  """10 s of wall, 15 CPU-s busy of which 12 are ours: the others used 0.3 cores."""
  clock, busy, own = iter([100.0, 110.0]), iter([50.0, 65.0]), iter([3.0, 15.0])
  monkeypatch.setattr(run.time, "perf_counter", lambda: next(clock))
  monkeypatch.setattr(run, "busy_cpu_seconds", lambda: next(busy))
  monkeypatch.setattr(run, "own_cpu_seconds", lambda: next(own))
  with run.ForeignLoad() as foreign:
    pass
  assert foreign.cores == 0.3


def test_foreign_load_sees_another_process_spin():
  spinner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 3: pass"])
  try:
    time.sleep(0.3)  # let it start
    with run.ForeignLoad() as foreign:
      time.sleep(1.5)
  finally:
    spinner.kill()
    spinner.wait()
  assert foreign.cores >= 0.4  # one spinning process is most of a core, whatever else runs


def test_table_marks_loaded_rows():
  lines = [{"workload": "vae_mlp", "steps_per_s": {"genjax": 300.0, "minimal": 250.0},
            "genjax/minimal": 1.2, "genjax/torch_eager": None, "other_processes_cores": 0.02, "loaded": False},
           {"workload": "dcgan", "steps_per_s": {"genjax": 10.0, "minimal": 9.0},
            "genjax/minimal": 1.11, "genjax/torch_eager": None, "other_processes_cores": 1.4, "loaded": True}]
  table = run.table(lines, ["genjax", "minimal"]).splitlines()
  assert table[0] == ("| workload | genjax | minimal | genjax/minimal | genjax/torch_eager | "
                      "other processes (cores) |")
  assert table[2] == "| vae_mlp | 300.0 | 250.0 | 1.20x | n/a | 0.02 |"
  assert table[3].endswith("| 1.40 LOADED |")

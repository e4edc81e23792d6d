"""python -m genjax.evaluate.compare WORKDIR... [--reference] [--output chart.png]

Prints a markdown table of the eval.json numbers of several runs and writes a bar chart PNG.
`--reference` adds the row every generator is judged against: the train split scored as if it
were samples, against the same test split, with the same feature extractor.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
from absl import app, flags

COLUMNS = ("fid", "kid_mean", "precision", "recall", "density", "coverage",
           "test_elbo", "test_nll", "modes_covered", "high_quality_percent", "reverse_kl")

_OUTPUT = flags.DEFINE_string("output", "compare.png", "Where the bar chart goes.")
_REFERENCE = flags.DEFINE_bool("reference", False, "Add the train-split reference row.")


def load_rows(workdirs: list[str]) -> list[tuple[str, dict]]:
  rows = []
  for workdir in workdirs:
    path = os.path.join(workdir, "eval.json")
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path} is missing: run --mode eval on {workdir} first")
    with open(path) as f:
      rows.append((os.path.basename(os.path.normpath(workdir)), json.load(f)))
  return rows


def reference_row(dataset_config, n: int) -> dict:
  """The train split as 'samples' against the test split: the best a generator can hope for."""
  from genjax import data as genjax_data
  from genjax.evaluate.classifier import sample_quality_report
  train = genjax_data.load_dataset(dataset_config, "train")["x"]
  test = genjax_data.load_dataset(dataset_config, "test")["x"]
  perm = np.random.default_rng(0).permutation(len(train))[:min(n, len(test))]
  return sample_quality_report(dataset_config, train[perm], test)


def markdown_table(rows: list[tuple[str, dict]]) -> str:
  columns = [c for c in COLUMNS if any(c in r for _, r in rows)]
  lines = ["| run | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
  for name, r in rows:
    cells = [f"{r[c]:.4g}" if isinstance(r.get(c), (int, float)) else "" for c in columns]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def bar_chart(rows: list[tuple[str, dict]], path: str) -> str:
  """One panel per metric, one bar per run (matplotlib, genjax.plots)."""
  from genjax.plots import bar_chart as draw
  columns = [c for c in COLUMNS if any(isinstance(r.get(c), (int, float)) for _, r in rows)]
  values = [[float(r[c]) if isinstance(r.get(c), (int, float)) else np.nan for c in columns] for _, r in rows]
  return draw([name for name, _ in rows], columns, np.asarray(values).reshape(len(rows), len(columns)), path)


def main(argv: list[str]) -> None:
  workdirs = argv[1:]
  if not workdirs:
    print("usage: python -m genjax.evaluate.compare WORKDIR... [--reference] [--output chart.png]",
          file=sys.stderr)
    sys.exit(2)
  try:
    rows = load_rows(workdirs)
  except FileNotFoundError as e:  # a workdir without eval.json: one line, as the CLI does
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  if _REFERENCE.value:
    from ml_collections import ConfigDict
    with open(os.path.join(workdirs[0], "config.json")) as f:
      dataset = ConfigDict(json.load(f)["dataset"])
    rows.append(("train split (reference)", reference_row(dataset, int(rows[0][1].get("num_real", 1000)))))
  print(markdown_table(rows))
  print(f"\nchart: {bar_chart(rows, _OUTPUT.value)}")


if __name__ == "__main__":
  app.run(main)

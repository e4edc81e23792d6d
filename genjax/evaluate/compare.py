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
from PIL import Image, ImageDraw

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
  """One panel per metric, one bar per run, drawn with Pillow (no plotting dependency)."""
  columns = [c for c in COLUMNS if any(isinstance(r.get(c), (int, float)) for _, r in rows)]
  panel_w, panel_h, pad = 220, 160, 24
  image = Image.new("RGB", (max(1, len(columns)) * (panel_w + pad) + pad, panel_h + 3 * pad + 12 * len(rows)),
                    "white")
  draw = ImageDraw.Draw(image)
  colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
  for i, column in enumerate(columns):
    x0 = pad + i * (panel_w + pad)
    values = [float(r.get(column, 0.0) or 0.0) for _, r in rows]
    top = max(max(abs(v) for v in values), 1e-12)
    draw.text((x0, 4), column, fill="black")
    bar_w = panel_w / max(len(values), 1)
    for j, v in enumerate(values):
      h = (panel_h - 10) * abs(v) / top
      draw.rectangle([x0 + j * bar_w + 2, pad + panel_h - h, x0 + (j + 1) * bar_w - 2, pad + panel_h],
                     fill=colours[j % len(colours)])
      draw.text((x0 + j * bar_w + 2, pad + panel_h - h - 11), f"{v:.3g}", fill="black")
  for j, (name, _) in enumerate(rows):  # legend
    y = 2 * pad + panel_h + 12 * j
    draw.rectangle([pad, y, pad + 10, y + 10], fill=colours[j % len(colours)])
    draw.text((pad + 14, y), name, fill="black")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  image.save(path)
  return path


def main(argv: list[str]) -> None:
  workdirs = argv[1:]
  if not workdirs:
    print("usage: python -m genjax.evaluate.compare WORKDIR... [--reference] [--output chart.png]",
          file=sys.stderr)
    sys.exit(2)
  rows = load_rows(workdirs)
  if _REFERENCE.value:
    from ml_collections import ConfigDict
    with open(os.path.join(workdirs[0], "config.json")) as f:
      dataset = ConfigDict(json.load(f)["dataset"])
    rows.append(("train split (reference)", reference_row(dataset, int(rows[0][1].get("num_real", 1000)))))
  print(markdown_table(rows))
  print(f"\nchart: {bar_chart(rows, _OUTPUT.value)}")


if __name__ == "__main__":
  app.run(main)

"""Plots with axes, legends and units (matplotlib, headless Agg), returned as uint8 RGB arrays.

Image grids stay in genjax/images.py (pixels, no axes); anything with coordinates is drawn here.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

# tab10 in hex: the same colour per label in every plot.
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
         "#bcbd22", "#17becf")


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")  # no display: render to memory
  import matplotlib.pyplot as plt
  return plt


def figure_array(fig) -> np.ndarray:
  """Renders a matplotlib figure to uint8 RGB [H, W, 3] and closes it."""
  plt = _pyplot()
  fig.canvas.draw()
  rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  return rgb


def scatter_plot(points: np.ndarray, reference: np.ndarray | None = None, size: int = 384,
                 extent: float | None = None, labels: np.ndarray | None = None,
                 title: str = "", axis_labels: tuple[str, str] = ("x₁", "x₂"),
                 label_names: Sequence[str] | None = None) -> np.ndarray:
  """2-D points (black, or coloured by integer `labels` with a legend, `label_names[label]` if given)
  over optional reference points (light grey), on square axes of half-width `extent`; uint8 RGB,
  about size x size px."""
  plt = _pyplot()
  points = np.asarray(points, np.float32)
  finite = points[np.all(np.isfinite(points), axis=1)]
  everything = finite if reference is None else np.concatenate([finite, np.asarray(reference, np.float32)])
  extent = extent or float(np.max(np.abs(everything), initial=1.0)) * 1.1
  dpi = 100
  fig, ax = plt.subplots(figsize=(size / dpi, size / dpi), dpi=dpi)
  if reference is not None:
    ax.scatter(*np.asarray(reference, np.float32).T, s=2, c="#c8c8c8", label="data", linewidths=0)
  if labels is None:
    ax.scatter(*finite.T, s=2, c="black", label="samples" if reference is not None else None,
               linewidths=0)
  else:
    labels = np.asarray(labels)[np.all(np.isfinite(points), axis=1)]
    for label in np.unique(labels):
      ax.scatter(*finite[labels == label].T, s=3, c=TAB10[int(label) % len(TAB10)],
                 label=label_names[int(label)] if label_names else str(label),
                 linewidths=0)
  ax.set(xlim=(-extent, extent), ylim=(-extent, extent), aspect="equal", xlabel=axis_labels[0],
         ylabel=axis_labels[1])
  if title:
    ax.set_title(title, fontsize=9)
  if labels is not None or reference is not None:
    ax.legend(fontsize=6, markerscale=3, loc="upper right", ncol=2 if labels is not None else 1)
  ax.tick_params(labelsize=7)
  fig.tight_layout()
  return figure_array(fig)


def bar_chart(names: Sequence[str], columns: Sequence[str], values: np.ndarray, path: str) -> str:
  """One panel per metric (column), one bar per run (row of `values`, NaN = absent), with a legend."""
  plt = _pyplot()
  values = np.asarray(values, np.float64)
  fig, axes = plt.subplots(1, max(1, len(columns)), figsize=(2.6 * max(1, len(columns)), 3.2),
                           squeeze=False)
  for ax, column, column_values in zip(axes[0], columns, values.T):
    bars = ax.bar(range(len(names)), np.nan_to_num(column_values), color=TAB10[:len(names)] * 2)
    for bar, v in zip(bars, column_values):
      if np.isfinite(v):
        ax.annotate(f"{v:.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=7)
    ax.set_title(column, fontsize=9)
    ax.set_xticks([])
    ax.tick_params(labelsize=7)
  handles = [plt.Rectangle((0, 0), 1, 1, color=TAB10[i % len(TAB10)]) for i in range(len(names))]
  fig.legend(handles, names, loc="lower center", ncol=min(len(names), 4), fontsize=8)
  fig.tight_layout(rect=(0, 0.08 + 0.04 * ((len(names) - 1) // 4), 1, 1))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path

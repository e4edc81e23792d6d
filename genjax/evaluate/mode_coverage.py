"""Mode collapse, measured on 2-D mixtures (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018).

Pure numpy functions of samples [N, 2] and mode centres [M, 2]. A sample is *high quality* when it
lies within `num_std` standard deviations of its nearest centre; a mode is *covered* when it receives
at least one high-quality sample. The reverse KL compares the histogram of nearest-mode assignments
of the HIGH-QUALITY samples with the uniform histogram over modes: KL(p_hq || uniform) = log M - H(p_hq),
0 when every mode gets the same share, log M when every sample falls to one mode (or none is high
quality). That is PacGAN's definition (Lin et al. 2018; their MetricLogger histograms only the samples
within 3 std of a mode); `reverse_kl_all_samples` is the same KL over every sample's nearest mode.
"""
from __future__ import annotations

import math

import numpy as np

NUM_SAMPLES = 2500  # VEEGAN / PacGAN draw 2,500 samples per evaluation


def nearest_modes(samples: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(index of the nearest centre [N], distance to it [N])."""
  samples, centres = np.asarray(samples, np.float64), np.asarray(centres, np.float64)
  distances = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=-1)
  nearest = np.argmin(distances, axis=1)
  return nearest, distances[np.arange(len(samples)), nearest]


def mode_histogram(nearest: np.ndarray, num_modes: int) -> np.ndarray:
  """Fraction of samples assigned to each mode [M]."""
  counts = np.bincount(nearest, minlength=num_modes).astype(np.float64)
  return counts / max(counts.sum(), 1.0)


def reverse_kl_to_uniform(histogram: np.ndarray) -> float:
  """KL(p || uniform) = sum_k p_k log(M p_k), with 0 log 0 = 0."""
  p = np.asarray(histogram, np.float64)
  nonzero = p > 0
  return float(np.sum(p[nonzero] * np.log(len(p) * p[nonzero])))


def mode_coverage(samples: np.ndarray, centres: np.ndarray, std: float,
                  num_std: float = 3.0) -> dict[str, float]:
  """modes_covered (count), high_quality_percent, reverse_kl (nats, high-quality samples;
  reverse_kl_all_samples: all finite samples), the number of modes, and the
  mean distance to the nearest centre (a continuous signal before any sample is high quality)."""
  samples = np.asarray(samples, np.float64)
  finite = np.all(np.isfinite(samples), axis=1)
  nearest, distance = nearest_modes(np.where(finite[:, None], samples, 1e30), centres)
  high_quality = finite & (distance <= num_std * std)
  num_modes = len(centres)
  covered = np.unique(nearest[high_quality])
  return {"modes_covered": int(len(covered)), "num_modes": int(num_modes),
          "mean_mode_distance": float(np.mean(distance[finite])) if finite.any() else float("inf"),
          "high_quality_percent": float(100.0 * np.mean(high_quality)),
          "reverse_kl": (reverse_kl_to_uniform(mode_histogram(nearest[high_quality], num_modes))
                         if high_quality.any() else math.log(num_modes)),
          "reverse_kl_all_samples": reverse_kl_to_uniform(mode_histogram(nearest[finite], num_modes)),
          "max_reverse_kl": math.log(num_modes)}

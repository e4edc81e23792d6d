"""Sample-quality metrics as pure functions of feature arrays: no models, no global state.

Every function takes `real_features [N, D]` and `fake_features [M, D]` (any source: a domain
classifier's penultimate layer, PCA of pixels, ...) and works in float64 numpy. Distances are
computed in row batches, so N = M = 10000 with D = 64 stays within a few hundred MiB.
"""
from __future__ import annotations

import numpy as np

# Rows per distance block: a [rows, N] float64 block is rows * N * 8 bytes (1024 x 10000 = 80 MiB).
_ROW_BATCH = 1024


# ----------------------------------------------------------------------------- helpers

def _as_features(features, name: str) -> np.ndarray:
  x = np.asarray(features, dtype=np.float64)
  if x.ndim != 2:
    raise ValueError(f"{name} must be [num, dim], got shape {x.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{name} contains non-finite values")
  return x


def _as_pair(real_features, fake_features) -> tuple[np.ndarray, np.ndarray]:
  real = _as_features(real_features, "real_features")
  fake = _as_features(fake_features, "fake_features")
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f"feature dims differ: real {real.shape[1]} vs fake {fake.shape[1]}")
  return real, fake


def _sq_dists(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
  """Squared Euclidean distances [len(a), len(b)] via the Gram expansion, clipped at 0."""
  dists = a @ b.T
  # In place: one [len(a), len(b)] block alive instead of four temporaries.
  dists *= -2.0
  dists += np.einsum("ij,ij->i", a, a)[:, None]
  dists += b_sq[None, :]
  # Rounding can push ||a||^2 + ||b||^2 - 2 a.b slightly below zero for near-identical rows.
  return np.maximum(dists, 0.0, out=dists)


def _knn_sq_radii(x: np.ndarray, k: int) -> np.ndarray:
  """Squared distance from each row of x to its k-th nearest other row of x."""
  if not 1 <= k < x.shape[0]:
    raise ValueError(f"k must be in [1, {x.shape[0] - 1}], got {k}")
  x_sq = np.einsum("ij,ij->i", x, x)
  radii = np.empty(x.shape[0])
  for start in range(0, x.shape[0], _ROW_BATCH):
    block = _sq_dists(x[start:start + _ROW_BATCH], x, x_sq)
    # Index k of the sorted row skips the self-distance 0 at index 0 (the prdc convention).
    radii[start:start + _ROW_BATCH] = np.partition(block, k, axis=1)[:, k]
  return radii


def _ball_membership(points: np.ndarray, centres: np.ndarray,
                     centre_sq_radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(#centre balls holding each point [len(points)], ball holds some point [len(centres)])."""
  centre_sq = np.einsum("ij,ij->i", centres, centres)
  counts = np.empty(points.shape[0], dtype=np.int64)
  covered = np.zeros(centres.shape[0], dtype=bool)
  for start in range(0, points.shape[0], _ROW_BATCH):
    block = _sq_dists(points[start:start + _ROW_BATCH], centres, centre_sq)
    inside = block <= centre_sq_radii[None, :]
    counts[start:start + _ROW_BATCH] = inside.sum(axis=1)
    covered |= inside.any(axis=0)
  return counts, covered


# ----------------------------------------------------------------------------- Frechet distance

def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
  """Mean and unbiased covariance of features [N, D]: the Gaussian fit of FID (Heusel et al. 2017)."""
  x = _as_features(features, "features")
  if x.shape[0] < 2:
    raise ValueError("need at least 2 samples for a covariance")
  return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
  """Symmetric PSD square root via eigh; tiny negative eigenvalues (round-off) are clipped to 0."""
  eigvals, eigvecs = np.linalg.eigh(0.5 * (sigma + sigma.T))
  return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """FID (Heusel et al. 2017; Dowson & Landau 1982): ||mu1-mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})."""
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise ValueError(f"shape mismatch: {mu1.shape} {sigma1.shape} {mu2.shape} {sigma2.shape}")
  # (S1 S2)^{1/2} is similar to (sqrt(S1) S2 sqrt(S1))^{1/2}, which is symmetric PSD: same trace,
  # no complex sqrtm, no failure when S1 S2 is singular.
  root1 = _psd_sqrt(sigma1)
  middle = root1 @ sigma2 @ root1
  eigvals = np.linalg.eigvalsh(0.5 * (middle + middle.T))
  tr_sqrt = np.sum(np.sqrt(np.clip(eigvals, 0.0, None)))
  diff = mu1 - mu2
  value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_sqrt
  # The true distance is >= 0; only round-off can make it negative.
  return float(max(value, 0.0))


def frechet_feature_distance(real_features, fake_features) -> float:
  """FID (Heusel et al. 2017) between the Gaussians fitted to the two feature sets."""
  real, fake = _as_pair(real_features, fake_features)
  return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(fake))


# ----------------------------------------------------------------------------- kernel distance

def _cubic_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  base = x @ y.T / x.shape[1] + 1.0
  # Two multiplies instead of `** 3`, which goes through the much slower generic pow.
  return base * base * base


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2_u (Gretton et al. 2012, Lemma 6): diagonal k(x_i, x_i) terms are dropped."""
  m, n = x.shape[0], y.shape[0]
  k_xx, k_yy, k_xy = _cubic_kernel(x, x), _cubic_kernel(y, y), _cubic_kernel(x, y)
  sum_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
  sum_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
  return float(sum_xx + sum_yy - 2.0 * k_xy.mean())


def kernel_inception_distance(real_features, fake_features, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """KID (Binkowski et al. 2018, "Demystifying MMD GANs"): unbiased MMD^2, k(x,y) = (x.y/D + 1)^3.

  Returns (mean, std) over `num_subsets` random subsets drawn without replacement; the estimator is
  unbiased, so the mean can be slightly negative when both sets come from one distribution.
  """
  real, fake = _as_pair(real_features, fake_features)
  size = min(subset_size, real.shape[0], fake.shape[0])
  if size < 2 or num_subsets < 1:
    raise ValueError(f"need subset_size >= 2 and num_subsets >= 1, got {size}, {num_subsets}")
  rng = np.random.default_rng(seed)
  values = np.array([
      _unbiased_mmd2(real[rng.choice(real.shape[0], size, replace=False)],
                     fake[rng.choice(fake.shape[0], size, replace=False)])
      for _ in range(num_subsets)])
  return float(values.mean()), float(values.std())


# ----------------------------------------------------------------------------- manifold metrics

def precision_recall(real_features, fake_features, k: int = 3) -> tuple[float, float]:
  """Improved precision/recall (Kynkäänniemi et al. 2019, Sec. 2) on k-NN-ball manifolds."""
  real, fake = _as_pair(real_features, fake_features)
  real_in_fake, _ = _ball_membership(real, fake, _knn_sq_radii(fake, k))
  fake_in_real, _ = _ball_membership(fake, real, _knn_sq_radii(real, k))
  return float(np.mean(fake_in_real > 0)), float(np.mean(real_in_fake > 0))


def density_coverage(real_features, fake_features, k: int = 5) -> tuple[float, float]:
  """Density and coverage (Naeem et al. 2020, Sec. 3.2), both on the real k-NN balls only."""
  real, fake = _as_pair(real_features, fake_features)
  counts, covered = _ball_membership(fake, real, _knn_sq_radii(real, k))
  # Density counts every real ball holding each fake (can exceed 1); coverage asks per real ball.
  return float(counts.sum() / (k * fake.shape[0])), float(covered.mean())


# ----------------------------------------------------------------------------- summary

def sample_quality_metrics(real_features, fake_features, *, seed: int = 0) -> dict:
  """All metrics above with their papers' default settings, as JSON-serialisable Python scalars."""
  real, fake = _as_pair(real_features, fake_features)
  # Subsets of 1000 (Binkowski et al.), or half the smaller set so the spread over subsets means something.
  subset_size = min(1000, max(2, min(len(real), len(fake)) // 2))
  kid_mean, kid_std = kernel_inception_distance(real, fake, subset_size=subset_size, seed=seed)
  precision, recall = precision_recall(real, fake)
  density, coverage = density_coverage(real, fake)
  return {
      "fid": frechet_feature_distance(real, fake),
      "kid_mean": kid_mean,
      "kid_std": kid_std,
      "precision": precision,
      "recall": recall,
      "density": density,
      "coverage": coverage,
      "num_real": int(real.shape[0]),
      "num_fake": int(fake.shape[0]),
  }

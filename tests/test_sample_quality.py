"""Calibration of genjax.evaluate.sample_quality on closed forms, synthetic and real features."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from genjax.evaluate import sample_quality as sq


def _rotation(dim: int, seed: int) -> np.ndarray:
  return np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))[0]


def _random_spd(dim: int, seed: int, rank: int | None = None) -> np.ndarray:
  a = np.random.default_rng(seed).normal(size=(dim, rank or dim))
  return a @ a.T / dim


def _is_strictly_increasing(values) -> bool:
  return all(b > a for a, b in zip(values, values[1:]))


def _is_strictly_decreasing(values) -> bool:
  return _is_strictly_increasing([-v for v in values])


# ----------------------------------------------------------------------------- Frechet distance

def test_frechet_diagonal_closed_form():
  a, b = np.array([1.0, 4.0, 0.25, 9.0]), np.array([2.0, 1.0, 0.25, 16.0])
  mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  got = sq.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
  assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_commuting_covariances_closed_form():
  # Shared eigenvectors: Tr term reduces to sum (sqrt(a_i) - sqrt(b_i))^2 as in the diagonal case.
  rot = _rotation(5, seed=1)
  a, b = np.array([0.5, 1.0, 2.0, 3.0, 0.1]), np.array([1.5, 0.2, 2.0, 5.0, 0.1])
  s1, s2 = rot @ np.diag(a) @ rot.T, rot @ np.diag(b) @ rot.T
  expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  assert sq.frechet_distance(np.zeros(5), s1, np.zeros(5), s2) == pytest.approx(expected, rel=1e-10)


def test_frechet_non_diagonal_2x2_by_hand():
  # S1 = I: (S1 S2)^{1/2} = S2^{1/2}; S2 = [[2,1],[1,2]] has eigenvalues 3, 1 -> Tr = sqrt3 + 1.
  s2 = np.array([[2.0, 1.0], [1.0, 2.0]])
  expected = 1.0 + (2.0 + 4.0 - 2.0 * (np.sqrt(3.0) + 1.0))
  got = sq.frechet_distance(np.zeros(2), np.eye(2), np.array([1.0, 0.0]), s2)
  assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_general_matches_scipy_sqrtm():
  s1, s2 = _random_spd(10, seed=2), _random_spd(10, seed=3)
  mu1, mu2 = np.random.default_rng(4).normal(size=(2, 10))
  tr_sqrt = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real  # independent reference, test-only
  expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt
  assert sq.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
  assert sq.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-9)


def test_frechet_singular_covariances_are_stable():
  # Rank-deficient S1 S2 is where complex sqrtm breaks; eig(S1 S2) is real >= 0 for PSD pairs.
  s1, s2 = _random_spd(6, seed=5, rank=2), _random_spd(6, seed=6, rank=3)
  tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0.0, None)))
  expected = np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt
  got = sq.frechet_distance(np.zeros(6), s1, np.zeros(6), s2)
  assert got == pytest.approx(expected, rel=1e-7, abs=1e-10)


def test_frechet_zero_for_identical_statistics():
  sigma = _random_spd(8, seed=7, rank=3)  # singular on purpose
  mu = np.arange(8.0)
  assert sq.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-10)
  feats = np.random.default_rng(8).normal(size=(50, 100))  # D > N: singular sample covariance
  assert sq.frechet_feature_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_frechet_feature_distance_converges_to_closed_form():
  rng = np.random.default_rng(9)
  s1, s2 = _random_spd(4, seed=10), _random_spd(4, seed=11)
  mu1, mu2 = np.zeros(4), np.array([0.5, -0.5, 0.0, 1.0])
  exact = sq.frechet_distance(mu1, s1, mu2, s2)
  real = rng.multivariate_normal(mu1, s1, size=50_000)
  fake = rng.multivariate_normal(mu2, s2, size=50_000)
  assert sq.frechet_feature_distance(real, fake) == pytest.approx(exact, rel=0.03)


def test_gaussian_statistics_is_unbiased_mean_and_cov():
  feats = np.random.default_rng(12).normal(size=(30, 3))
  mean, cov = sq.gaussian_statistics(feats)
  np.testing.assert_allclose(mean, feats.mean(0))
  np.testing.assert_allclose(cov, np.cov(feats.T, ddof=1))
  assert sq.gaussian_statistics(feats[:, :1])[1].shape == (1, 1)


# ----------------------------------------------------------------------------- KID

def _brute_force_mmd2(x, y):
  kern = lambda a, b: (a @ b / x.shape[1] + 1.0) ** 3
  m, n = len(x), len(y)
  xx = sum(kern(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(kern(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(kern(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2.0 * xy


def test_kid_full_subset_matches_brute_force_unbiased_mmd():
  rng = np.random.default_rng(13)
  x, y = rng.normal(size=(9, 3)), rng.normal(0.3, 1.0, size=(9, 3))
  mean, std = sq.kernel_inception_distance(x, y, num_subsets=3, subset_size=100)  # capped at 9
  assert mean == pytest.approx(_brute_force_mmd2(x, y), rel=1e-10)
  assert std == pytest.approx(0.0, abs=1e-10)  # full sets each time: only the order changes


def test_kid_unbiased_for_one_distribution():
  # 30 independent pairs: their mean is ~0 within 3 standard errors, and some draws are negative.
  draws = [sq.kernel_inception_distance(*np.random.default_rng(s).normal(size=(2, 200, 8)),
                                        num_subsets=1, subset_size=200)[0] for s in range(30)]
  std_err = np.std(draws, ddof=1) / np.sqrt(len(draws))
  assert abs(np.mean(draws)) < 3.0 * std_err
  assert min(draws) < 0.0 < max(draws)


def test_kid_positive_and_growing_with_shift():
  rng = np.random.default_rng(14)
  real = rng.normal(size=(1000, 8))
  same_mean, same_std = sq.kernel_inception_distance(real, rng.normal(size=(1000, 8)),
                                                     num_subsets=10, subset_size=300)
  assert abs(same_mean) < 2.0 * same_std
  kids = [sq.kernel_inception_distance(real, rng.normal(size=(1000, 8)) + shift,
                                       num_subsets=10, subset_size=300)
          for shift in (0.25, 0.5, 1.0, 2.0)]
  assert all(mean > 5.0 * std for mean, std in kids)
  assert _is_strictly_increasing([mean for mean, _ in kids])


# ----------------------------------------------------------------------------- k-NN metrics

def _brute_force_prdc(real, fake, k):
  dist = lambda a, b: np.linalg.norm(a[:, None] - b[None], axis=-1)
  real_radii = np.sort(dist(real, real), axis=1)[:, k]
  fake_radii = np.sort(dist(fake, fake), axis=1)[:, k]
  inside_real = dist(fake, real) <= real_radii[None]  # [M, N]: fake j in real ball i
  inside_fake = dist(real, fake) <= fake_radii[None]
  return (inside_real.any(1).mean(), inside_fake.any(1).mean(),
          inside_real.sum() / (k * len(fake)), inside_real.any(0).mean())


def test_knn_metrics_match_brute_force_across_batch_boundaries(monkeypatch):
  rng = np.random.default_rng(15)
  real, fake = rng.normal(size=(40, 3)), rng.normal(0.5, 1.2, size=(33, 3))
  expected = _brute_force_prdc(real, fake, k=3)
  for batch in (1024, 7):  # 7 splits both sets into ragged row blocks
    monkeypatch.setattr(sq, "_ROW_BATCH", batch)
    got = sq.precision_recall(real, fake, k=3) + sq.density_coverage(real, fake, k=3)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# Ten 3-D "class manifolds" in 16-D with a little off-manifold noise: k-NN metrics behave like the
# paper's image features. Full-rank 16-D clusters give precision/recall ~0.78 at k=3 even for
# identical distributions (a known property of the metric, Naeem et al. 2020 Sec. 3.1).
_DIM, _CLASSES, _INTRINSIC = 16, 10, 3


def _class_mixture(num: int, classes, seed: int) -> np.ndarray:
  layout = np.random.default_rng(0)  # same centres and planes for every draw
  centres = 3.0 * layout.normal(size=(_CLASSES, _DIM))
  planes = np.linalg.qr(layout.normal(size=(_CLASSES, _DIM, _INTRINSIC)))[0]
  rng = np.random.default_rng(seed)
  labels = rng.choice(np.asarray(classes), num)
  on_plane = np.einsum("ndk,nk->nd", planes[labels], rng.normal(size=(num, _INTRINSIC)))
  return centres[labels] + on_plane + 0.05 * rng.normal(size=(num, _DIM))


@pytest.fixture(scope="module")
def mixture_real():
  return _class_mixture(2000, range(_CLASSES), seed=1)


def test_same_distribution_scores_near_best(mixture_real):
  fake = _class_mixture(2000, range(_CLASSES), seed=2)
  precision, recall = sq.precision_recall(mixture_real, fake)
  density, coverage = sq.density_coverage(mixture_real, fake)
  assert precision > 0.9 and recall > 0.9 and coverage > 0.9
  assert density == pytest.approx(1.0, abs=0.1)


def test_dropping_classes_lowers_recall_and_coverage(mixture_real):
  fakes = [_class_mixture(2000, range(kept), seed=3) for kept in (10, 8, 6, 4, 2)]
  results = [sq.precision_recall(mixture_real, fake) + sq.density_coverage(mixture_real, fake)
             for fake in fakes]
  precision, recall, _, coverage = np.array(results).T
  assert np.all(precision > 0.9)
  assert _is_strictly_decreasing(recall) and _is_strictly_decreasing(coverage)
  assert recall[-1] < 0.3 and coverage[-1] < 0.3  # 2 of 10 classes kept


def test_off_manifold_points_lower_precision(mixture_real):
  fake = _class_mixture(2000, range(_CLASSES), seed=4)
  far = np.random.default_rng(5).uniform(-30.0, 30.0, size=fake.shape)
  results = []
  for fraction in (0.0, 0.1, 0.25, 0.5):
    mixed = fake.copy()
    mixed[:int(fraction * len(fake))] = far[:int(fraction * len(fake))]
    results.append(sq.precision_recall(mixture_real, mixed)
                   + sq.density_coverage(mixture_real, mixed))
  precision, _, density, _ = np.array(results).T
  assert _is_strictly_decreasing(precision) and _is_strictly_decreasing(density)
  assert precision[-1] < 0.6


def test_fid_and_kid_rise_with_noise(mixture_real):
  fake = _class_mixture(2000, range(_CLASSES), seed=6)
  noise = np.random.default_rng(7).normal(size=fake.shape)
  fids, kids = [], []
  for sigma in (0.0, 0.25, 0.5, 1.0, 2.0):
    fids.append(sq.frechet_feature_distance(mixture_real, fake + sigma * noise))
    kids.append(sq.kernel_inception_distance(mixture_real, fake + sigma * noise,
                                             num_subsets=5, subset_size=500)[0])
  assert _is_strictly_increasing(fids) and _is_strictly_increasing(kids)


# ----------------------------------------------------------------------------- real data: digits

@pytest.fixture(scope="module")
def digits():
  """Raw 8x8 digit pixels (0..16) split in half; features = PCA-20 fitted on the train half."""
  images, labels = load_digits(return_X_y=True)
  train, test, _, test_labels = train_test_split(images, labels, test_size=0.5, stratify=labels,
                                                 random_state=0)
  pca = PCA(n_components=20, random_state=0).fit(train)
  return pca, pca.transform(train), test, test_labels


def test_digits_held_out_split_scores_near_best(digits):
  pca, real, test, _ = digits
  fake = pca.transform(test)
  precision, recall = sq.precision_recall(real, fake)
  density, coverage = sq.density_coverage(real, fake)
  assert precision > 0.85 and recall > 0.85 and coverage > 0.9
  assert density == pytest.approx(1.0, abs=0.1)
  kid_mean, kid_std = sq.kernel_inception_distance(real, fake, num_subsets=10, subset_size=400)
  assert abs(kid_mean) < 2.0 * kid_std


def test_digits_pixel_noise_raises_fid_and_kid(digits):
  pca, real, test, _ = digits
  noise = np.random.default_rng(0).normal(size=test.shape)
  fids, kids = [], []
  for sigma in (0.0, 2.0, 4.0, 8.0):  # pixel units; the pixel range is 0..16
    fake = pca.transform(np.clip(test + sigma * noise, 0.0, 16.0))
    fids.append(sq.frechet_feature_distance(real, fake))
    kids.append(sq.kernel_inception_distance(real, fake, num_subsets=10, subset_size=400)[0])
  assert _is_strictly_increasing(fids) and _is_strictly_increasing(kids)


def test_digits_dropping_classes_lowers_recall_and_coverage(digits):
  pca, real, test, test_labels = digits
  fakes = [pca.transform(test[test_labels < kept]) for kept in (10, 8, 6, 4, 2)]
  results = [sq.precision_recall(real, fake) + sq.density_coverage(real, fake) for fake in fakes]
  precision, recall, _, coverage = np.array(results).T
  assert np.all(precision > 0.85)
  assert _is_strictly_decreasing(recall) and _is_strictly_decreasing(coverage)


# ----------------------------------------------------------------------------- API

def test_sample_quality_metrics_is_json_serialisable():
  rng = np.random.default_rng(16)
  metrics = sq.sample_quality_metrics(rng.normal(size=(300, 6)), rng.normal(size=(200, 6)), seed=1)
  assert set(metrics) == {"fid", "kid_mean", "kid_std", "precision", "recall", "density",
                          "coverage", "num_real", "num_fake"}
  assert json.loads(json.dumps(metrics)) == metrics
  assert metrics["num_real"] == 300 and metrics["num_fake"] == 200
  assert all(type(v) is float for k, v in metrics.items() if not k.startswith("num_"))


def test_invalid_inputs_raise():
  x = np.zeros((10, 3))
  with pytest.raises(ValueError):
    sq.frechet_feature_distance(x, np.zeros((10, 4)))
  with pytest.raises(ValueError):
    sq.precision_recall(x, x, k=10)
  with pytest.raises(ValueError):
    sq.density_coverage(np.zeros(10), x)
  with pytest.raises(ValueError):
    sq.kernel_inception_distance(x, np.full((10, 3), np.nan))

"""genjax.plots: scatter plots put each class's colour where its points are."""
import numpy as np

from genjax import plots


def _has_colour(region: np.ndarray, hex_colour: str) -> bool:
  rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
  return bool(np.any(np.all(np.abs(region.astype(int) - rgb) <= 12, axis=-1)))


def test_scatter_colours_follow_labels_and_positions():
  rng = np.random.default_rng(0)
  upper_right = rng.uniform(0.3, 0.7, size=(200, 2))
  lower_left = -rng.uniform(0.3, 0.7, size=(200, 2))
  picture = plots.scatter_plot(np.concatenate([upper_right, lower_left]),
                               labels=np.repeat([2, 3], 200), extent=1.0, size=300)
  assert picture.shape[2] == 3 and picture.dtype == np.uint8
  h, w, _ = picture.shape
  top_right, bottom_left = picture[: h // 2, w // 2:], picture[h // 2:, : w // 2]
  green, red = plots.TAB10[2], plots.TAB10[3]
  assert _has_colour(top_right, green) and _has_colour(bottom_left, red)
  # The legend sits top right; below it, the lower-left quadrant has no green points.
  assert not _has_colour(bottom_left, green)


def test_scatter_ignores_non_finite_points():
  picture = plots.scatter_plot(np.array([[0.0, 0.0], [np.nan, 1.0], [np.inf, 0.0]]))
  assert picture.ndim == 3

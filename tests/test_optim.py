"""Optimizers and learning-rate schedules built from config data."""
import numpy as np
from ml_collections import ConfigDict

from genjax.optim import learning_rate


def test_iwae_learning_rate_stages():
  """Burda et al.: 3^i epochs at 1e-3 * 10^(-i/7); after all 3280 epochs the rate is 1e-4."""
  schedule = learning_rate(ConfigDict({"learning_rate": 1e-3, "schedule": "iwae_stages", "steps_per_epoch": 10}))
  np.testing.assert_allclose(schedule(0), 1e-3, rtol=1e-6)
  np.testing.assert_allclose(schedule(9), 1e-3, rtol=1e-6)       # epoch 0 (stage 0: 1 epoch)
  np.testing.assert_allclose(schedule(10), 1e-3 * 10 ** (-1 / 7), rtol=1e-5)  # stage 1 (3 epochs)
  np.testing.assert_allclose(schedule(39), 1e-3 * 10 ** (-1 / 7), rtol=1e-5)
  np.testing.assert_allclose(schedule(40), 1e-3 * 10 ** (-2 / 7), rtol=1e-5)
  np.testing.assert_allclose(schedule(10 * 3280 - 1), 1e-3 * 10 ** (-7 / 7), rtol=1e-5)

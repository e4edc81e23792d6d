"""scikit-learn's BernoulliRBM on genjax's data stream, scored by genjax's AIS.

    .venv/bin/python scripts/rbm_sklearn.py --config experiments/rbm_fashion.py:pcd --out runs/rbm_fashion_sklearn

It trains `BernoulliRBM` (PCD-1, Tieleman 2008, plain SGD) with `partial_fit` on exactly the batches
genjax's trainer draws for that config (same rows, same dynamic binarisation, same batch size and
number of steps, so the same epochs and hidden units), loads `components_`, `intercept_visible_` and
`intercept_hidden_` into genjax's RBM and writes the same eval.json genjax's `--mode eval` writes
(AIS log Z, test / train log-likelihood on the fixed seeded binarisation), plus scikit-learn's own
pseudo-log-likelihood (`score_samples`). Its learning rate defaults to genjax's effective step,
learning_rate / (1 - momentum).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.neural_network import BernoulliRBM

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import genjax  # noqa: E402,F401  registers the families
from genjax.api import get_config  # noqa: E402
from genjax.config import validate  # noqa: E402
from genjax.data import Batches, load_dataset  # noqa: E402
from genjax.models.rbm import RBMObjective  # noqa: E402
from genjax.state import TrainState  # noqa: E402


def sklearn_params(model: BernoulliRBM) -> dict:
  """scikit-learn's fitted attributes as genjax RBM params (components_ is W transposed)."""
  return {"weights": jnp.asarray(model.components_.T, jnp.float32),
          "visible_bias": jnp.asarray(model.intercept_visible_, jnp.float32),
          "hidden_bias": jnp.asarray(model.intercept_hidden_, jnp.float32)}


def train_sklearn(config, learning_rate: float) -> tuple[BernoulliRBM, float]:
  """partial_fit on genjax's batches for config.num_steps steps; (model, wall seconds)."""
  batches = Batches(load_dataset(config.dataset, "train"), config.batch_size, config.seed,
                    binarize=bool(config.dataset.binarize))
  model = BernoulliRBM(n_components=int(config.model.num_hidden), learning_rate=learning_rate,
                       batch_size=config.batch_size, n_iter=1, random_state=config.seed)
  start = time.perf_counter()
  for step in range(config.num_steps):
    x = batches(step)["x"]
    model.partial_fit(x.reshape(len(x), -1))
  return model, time.perf_counter() - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="experiments/rbm_fashion.py:pcd")
  parser.add_argument("--out", default="runs/rbm_fashion_sklearn")
  parser.add_argument("--learning_rate", type=float, default=0.0,
                      help="0: genjax's optimizer.learning_rate / (1 - momentum)")
  parser.add_argument("--num_steps", type=int, default=0, help="0: the config's num_steps")
  args = parser.parse_args()
  config = get_config(args.config)
  if args.num_steps:
    config.num_steps = args.num_steps
  validate(config)
  momentum = float(config.optimizer.get("momentum", 0.0) or 0.0)
  learning_rate = args.learning_rate or float(config.optimizer.learning_rate) / (1.0 - momentum)
  model, seconds = train_sklearn(config, learning_rate)
  objective = RBMObjective(config)
  state = TrainState.create(jax.random.key(config.seed), sklearn_params(model), None,
                            {"base_visible_bias": jnp.asarray(objective.base_rate)})
  state = state.replace(step=jnp.asarray(config.num_steps, jnp.int32))
  # The key genjax's --mode eval uses for a checkpoint at this step, so AIS draws alike.
  key = jax.random.fold_in(jax.random.key(config.seed), config.num_steps)
  test = load_dataset(config.dataset, "test")
  results = {k: (v.item() if hasattr(v, "item") else v)
             for k, v in objective.evaluate(state, test, key).items()}
  x_test = objective.binary(test["x"]).reshape(len(test["x"]), -1)
  results.update({
      "model": "sklearn.neural_network.BernoulliRBM", "dataset": config.dataset.name,
      "step": config.num_steps, "batch_size": config.batch_size,
      "sklearn_learning_rate": learning_rate, "sklearn_train_seconds": seconds,
      "sklearn_pseudo_log_likelihood": float(np.mean(model.score_samples(x_test)))})
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "eval.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)
  np.savez(os.path.join(args.out, "sklearn_params.npz"), **{k: np.asarray(v) for k, v in state.params.items()})
  print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
  main()

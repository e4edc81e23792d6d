"""Scores trained genjax RBM runs as `--mode eval` does, without the sample-quality classifier.

    .venv/bin/python scripts/rbm_score.py runs/rbm_fashion_cd1 runs/rbm_fashion_pcd

Writes WORKDIR/eval_likelihood.json: the family's evaluate() (AIS log Z with +-3 std, test / train
log-likelihood, pseudo-log-likelihood) with the key `--mode eval` would use, so numbers match it.
`--mode eval` also trains and caches a Fashion-MNIST feature classifier for sample quality, which
the likelihood table does not need.
"""
from __future__ import annotations

import json
import os
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import genjax  # noqa: E402
from genjax.objective import as_numpy  # noqa: E402


def score(workdir: str) -> dict:
  model = genjax.load(workdir)
  key = jax.random.fold_in(jax.random.key(model.config.seed), model.step)  # as modes.evaluation
  start = time.perf_counter()
  results = as_numpy(model.objective.evaluate(model.state, model.test_data(), key))
  results = {k: v.item() if hasattr(v, "item") else v for k, v in results.items()}
  results.update({"step": model.step, "dataset": model.config.dataset.name, "model": "genjax rbm",
                  "cd_k": model.config.model.cd_k, "persistent": model.config.model.persistent,
                  "eval_seconds": time.perf_counter() - start})
  with open(os.path.join(workdir, "eval_likelihood.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)
  return results


if __name__ == "__main__":
  for path in sys.argv[1:]:
    print(path, json.dumps(score(path), indent=2, sort_keys=True), flush=True)

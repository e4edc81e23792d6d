"""RBM training throughput: genjax's trainer step (CD-1 and PCD) vs scikit-learn's BernoulliRBM.

  python -m benchmarks.rbm_bench [--repeats 7] [--seconds 1.0]
  GENJAX_BENCH_SMALL=1 python -m benchmarks.rbm_bench --repeats 1   # tiny shapes: a smoke run

Both train a 784-500 RBM on batches of 100 synthetic binary images: genjax's step is built as the
trainer builds it (`Run`, `init_state`, `make_train_step`, batches sharded by `shard_batch`);
scikit-learn's is `BernoulliRBM.partial_fit` on one batch (PCD-1, one Gibbs step, numpy). Contenders
are interleaved, a different order each repeat; each number is the median steps/s. Speed claims come
only from an idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Callable

import jax
import numpy as np
from sklearn.neural_network import BernoulliRBM

from benchmarks.run import ForeignLoad, loaded
from genjax import configs
from genjax import trainer

SMALL = os.environ.get("GENJAX_BENCH_SMALL") == "1"
VISIBLE, HIDDEN, BATCH = (64, 16, 10) if SMALL else (784, 500, 100)
NUM_BATCHES = 4


def synthetic_batches(seed: int = 0) -> list[np.ndarray]:
  rng = np.random.default_rng(seed)
  return [(rng.uniform(size=(BATCH, VISIBLE)) < 0.15).astype(np.float32) for _ in range(NUM_BATCHES)]


def genjax_contender(persistent: bool, batches: list[np.ndarray]) -> Callable[[int], float]:
  """n -> seconds for n genjax trainer steps."""
  config = configs.rbm_config("digits", HIDDEN, persistent=persistent, num_chains=BATCH)
  config.batch_size = BATCH
  run = trainer.Run(config, os.path.join(tempfile.gettempdir(), "genjax-rbm-bench"))  # writes nothing
  run.objective.__dict__["data_shape"] = (VISIBLE,)  # synthetic images, not the config's dataset
  run.objective.__dict__["base_rate"] = np.zeros(VISIBLE, np.float32)
  sharded = [trainer.shard_batch({"x": x, "label": np.zeros(BATCH, np.int32)}, run.mesh) for x in batches]
  state = run.init_state(sharded[0])
  step = trainer.make_train_step(run.objective, run.mesh, trainer.replicated(run.mesh))
  holder = {"state": step(state, sharded[0])[0]}  # compile

  def timed(n: int) -> float:
    state = holder["state"]
    start = time.perf_counter()
    for i in range(n):
      state, _ = step(state, sharded[i % NUM_BATCHES])
    jax.block_until_ready(state)
    holder["state"] = state
    return time.perf_counter() - start
  return timed


def sklearn_contender(batches: list[np.ndarray]) -> Callable[[int], float]:
  model = BernoulliRBM(n_components=HIDDEN, learning_rate=0.1, batch_size=BATCH, random_state=0)
  model.partial_fit(batches[0])

  def timed(n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
      model.partial_fit(batches[i % NUM_BATCHES])
    return time.perf_counter() - start
  return timed


def steps_per_second(timed: Callable[[int], float], seconds: float) -> float:
  n = 1
  while (elapsed := timed(n)) < seconds / 4:  # grow n until a call takes a fair share of the budget
    n *= 2
  return n / elapsed


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--seconds", type=float, default=1.0)
  args = parser.parse_args()
  batches = synthetic_batches()
  contenders = {"genjax_cd1": genjax_contender(False, batches),
                "genjax_pcd": genjax_contender(True, batches), "sklearn_pcd1": sklearn_contender(batches)}
  rates = {name: [] for name in contenders}
  with ForeignLoad() as foreign:
    for repeat in range(args.repeats):
      order = list(contenders)[repeat % len(contenders):] + list(contenders)[:repeat % len(contenders)]
      for name in order:
        rates[name].append(steps_per_second(contenders[name], args.seconds))
  medians = {name: statistics.median(r) for name, r in rates.items()}
  print(f"RBM {VISIBLE}-{HIDDEN}, batch {BATCH}, {jax.devices()[0].platform}, {os.cpu_count()} CPUs")
  for name, rate in medians.items():
    print(f"  {name:14s} {rate:10.1f} steps/s")
  print(f"  other processes used {foreign.cores} cores" + (" LOADED: not an idle machine's ratio" if loaded(foreign.cores) else ""))
  print(json.dumps({"workload": f"rbm_{VISIBLE}_{HIDDEN}", "steps_per_second": medians,
                    "genjax_pcd_over_sklearn": round(medians["genjax_pcd"] / medians["sklearn_pcd1"], 3),
                    "genjax_cd1_over_sklearn": round(medians["genjax_cd1"] / medians["sklearn_pcd1"], 3),
                    "other_processes_cores": foreign.cores, "loaded": loaded(foreign.cores)}))


if __name__ == "__main__":
  main()

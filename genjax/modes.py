"""`--mode eval` and `--mode sample`: read a trained workdir, write eval.json / samples."""
from __future__ import annotations

import json
import os

import jax
import numpy as np
from absl import logging
from ml_collections import ConfigDict

from genjax import images as genjax_images
from genjax import xla_options
from genjax.evaluate.classifier import sample_quality_report
from genjax.objective import as_numpy, has_ability
from genjax.trainer import Run, objective_at


def _require(run: Run, ability: str, mode: str) -> None:
  if not has_ability(run.objective, ability):
    raise NotImplementedError(f"model {run.config.model.name!r} has no {ability}(); "
                              f"--mode {mode} is not available for it")


def evaluation(run: Run, state) -> dict:
  """The family's test-set numbers for `state`, keyed by step, dataset and model; JSON-ready."""
  key = jax.random.fold_in(jax.random.key(run.config.seed), int(state.step))
  test = run.test_arrays()
  objective = objective_at(run.objective, int(state.step))
  results = {"step": int(state.step), "dataset": run.config.dataset.name, "model": run.config.model.name,
             **as_numpy(objective.evaluate(state, test, key))}
  # Image generators get classifier-feature sample quality, unless the family scores its own samples
  # (a texture network has one exemplar: no classes to train a classifier on).
  if (has_ability(run.objective, "sample") and test["x"].ndim == 4
      and not getattr(run.objective, "measures_own_samples", False)):
    n = min(len(test["x"]), int(run.config.get("eval_num_samples", 10000)))
    samples = xla_options.jit(objective.sample, static_argnums=2)(state, jax.random.fold_in(key, 7), n)
    results.update(sample_quality_report(run.config.dataset, np.asarray(samples), test["x"][:n]))
  return {k: v.item() if isinstance(v, np.ndarray) and v.size == 1 else v for k, v in results.items()}


def evaluate(config: ConfigDict, workdir: str) -> dict:
  """Test-set numbers of the latest checkpoint -> WORKDIR/eval.json."""
  run = Run(config, workdir)
  try:
    _require(run, "evaluate", "eval")
    results = evaluation(run, run.restore(run.first_batch()))
    if run.is_chief:
      with open(os.path.join(run.workdir, "eval.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True, default=lambda v: np.asarray(v).tolist())
    logging.info("eval: %s", results)
    return results
  finally:
    run.close()


def sample(config: ConfigDict, workdir: str, num_samples: int = 64) -> np.ndarray:
  """Draws from the latest checkpoint -> samples.npy + images/samples.png and every picture."""
  run = Run(config, workdir)
  try:
    state = run.restore(run.first_batch())
    key = jax.random.fold_in(jax.random.key(config.seed), 2 ** 20 + int(state.step))
    paths = run.write_pictures(state, "sample")
    if has_ability(run.objective, "sample"):
      samples = np.asarray(objective_at(run.objective, int(state.step)).sample(state, key, num_samples))
    else:
      # Families without a prior (plain autoencoders) have pictures only: keep the first as the array.
      _require(run, "pictures", "sample")
      samples = np.asarray(next(iter(run.objective.pictures(state, run.picture_batch(), key).values())))
    if run.is_chief:
      np.save(os.path.join(run.workdir, "samples.npy"), samples)
      reference = run.train_arrays["x"][:2000] if samples.ndim == 2 else None
      paths.append(genjax_images.save_png(os.path.join(run.workdir, "images", "samples.png"),
                                          genjax_images.to_picture(samples, reference)))
    logging.info("wrote %s and %s", os.path.join(run.workdir, "samples.npy"), ", ".join(paths))
    return samples
  finally:
    run.close()

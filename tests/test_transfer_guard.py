"""The jitted step makes no implicit host<->device transfer (big_vision runs under this guard):
an implicit transfer inside the loop is a hidden per-step slowdown."""
import jax
import pytest

from genjax import trainer
from tests.helpers import load_experiment, tiny


@pytest.mark.parametrize("name", ["ae_mlp", "vae_mlp", "wgan"])
def test_train_steps_run_under_a_disallowing_transfer_guard(tmp_path, name):
  config = tiny(load_experiment(name), num_steps=3)
  config.batch_size = 40  # small, and a multiple of WGAN's n_critic = 5
  run = trainer.Run(config, str(tmp_path))
  try:
    batches = run.batches()
    state = run.init_state(trainer.shard_batch(batches(0), run.mesh))
    step = trainer.make_train_step(run.objective, run.mesh, trainer.replicated(run.mesh))
    sharded = [trainer.shard_batch(batches(t), run.mesh) for t in range(3)]  # explicit transfers
    state, _ = step(state, sharded[0])  # compile outside the guard: tracing may place constants
    with jax.transfer_guard("disallow"):
      for batch in sharded[1:]:
        state, metrics = step(state, batch)
    assert int(state.step) == 3 and set(metrics)
    with jax.transfer_guard("disallow"), pytest.raises(Exception, match="[Dd]isallowed"):
      step(state, batches(3))  # the guard is live: a host (numpy) batch is refused
  finally:
    run.close()

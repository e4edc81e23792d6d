"""Burda et al. (2016) MNIST, 1 stochastic layer: 784-200-200-50 tanh, batch 20, Adam(1e-3, eps 1e-4),
dynamic binarisation. `:vae` (default, k=1 ELBO) or `:iwae` (k=50). Set dataset.manual_dir to the idx files.
The learning rate decays by 10^(-1/7) after each stage of 3^i epochs, i = 0..7 (3280 epochs in all)."""
from genjax.configs import vae_config

_OBJECTIVES = {"vae": dict(objective="elbo", num_importance_samples=1),
               "iwae": dict(objective="iwae", num_importance_samples=50)}


def get_config(arg=None):
  config = vae_config("mlp", 50, hidden=(200, 200), activation="tanh", **_OBJECTIVES[arg or "vae"])
  steps_per_epoch = 60_000 // 20
  config.update(dict(batch_size=20, num_steps=3280 * steps_per_epoch, log_every=1000,
                     checkpoint_every=50_000, sample_every=50_000))
  config.dataset.update(dict(name="mnist", binarize=True, manual_dir=""))
  config.optimizer.update(dict(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-4,
                               schedule="iwae_stages", steps_per_epoch=steps_per_epoch))
  return config

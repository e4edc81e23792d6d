"""Burda et al. (2016) MNIST, 1 stochastic layer: 784-200-200-50 tanh, batch 20, Adam(1e-3, eps 1e-4),
dynamic binarisation. `:vae` (default, k=1 ELBO) or `:iwae` (k=50). Set dataset.manual_dir to the idx files.
The paper decays the learning rate by 10^(-1/7) over 3^i-epoch stages (3280 epochs); this keeps 1e-3."""
from genjax.configs import vae_config

_OBJECTIVES = {"vae": dict(objective="elbo", num_importance_samples=1),
               "iwae": dict(objective="iwae", num_importance_samples=50)}


def get_config(arg=None):
  config = vae_config("mlp", 50, hidden=(200, 200), activation="tanh", **_OBJECTIVES[arg or "vae"])
  config.update(dict(batch_size=20, num_steps=3_000_000, log_every=1000, checkpoint_every=50_000,
                     sample_every=50_000))
  config.dataset.update(dict(name="mnist", binarize=True, manual_dir=""))
  config.optimizer.update(dict(learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-4))
  return config

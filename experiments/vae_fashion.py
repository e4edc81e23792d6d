"""The pytorch/examples VAE protocol on Fashion-MNIST: MLP 784-400-20 ReLU, Adam 1e-3, batch 128,
dynamically binarised training images, 10 epochs (4,690 steps); `benchmarks/torch_vae_reference.py`
trains the same model in PyTorch and scores it with genjax's evaluation (same test binarisation)."""
from genjax.configs import vae_config

STEPS_PER_EPOCH = -(-60_000 // 128)


def get_config(arg=None):
  config = vae_config("mlp", arg or 20, hidden=(400,), activation="relu")
  config.update(dict(batch_size=128, num_steps=10 * STEPS_PER_EPOCH, log_every=STEPS_PER_EPOCH,
                     checkpoint_every=STEPS_PER_EPOCH, sample_every=5 * STEPS_PER_EPOCH))
  config.dataset.update(dict(name="fashion_mnist", binarize=True))
  config.optimizer.update(dict(name="adam", learning_rate=1e-3))
  return config

"""RBM, 500 hidden units, on binarised MNIST as in Salakhutdinov & Murray (2008), for users with the
MNIST idx files: `--config.dataset.manual_dir=DIR` (train-images-idx3-ubyte.gz etc.).

`rbm_mnist.py:cd1` (default), `:cd3`, `:cd25`, `:pcd`. The paper's AIS test log-likelihoods for
500 hidden units: CD-1 -125.53, CD-3 -105.50, CD-25 -86.34 nats (Table 2).
"""
from genjax.configs import rbm_config

VARIANTS = {"cd1": {"cd_k": 1}, "cd3": {"cd_k": 3}, "cd25": {"cd_k": 25}, "pcd": {"persistent": True}}
EPOCHS, TRAIN_EXAMPLES = 20, 60_000


def get_config(arg="cd1"):
  config = rbm_config("mnist", 500, **VARIANTS[arg or "cd1"])
  config.num_steps = EPOCHS * TRAIN_EXAMPLES // config.batch_size
  config.checkpoint_every = 2000
  config.sample_every = 4000
  return config

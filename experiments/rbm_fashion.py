"""RBM, 500 hidden units, on dynamically binarised Fashion-MNIST (784-500, batch 100, 5 epochs).

`rbm_fashion.py:cd1` (default), `:cd10`, `:pcd`, `:pcd_cosine` (PCD, learning rate cosine-decayed
to 0): equal epochs, scored by AIS (14,500 betas, 100 runs)
on a fixed seeded binarisation of the test set.
"""
from genjax.configs import rbm_config

VARIANTS = {"cd1": {"cd_k": 1}, "cd10": {"cd_k": 10}, "pcd": {"persistent": True},
            "pcd_cosine": {"persistent": True}}
# PCD's chains mix only while the weights move slowly (Tieleman 2008): the learning rate decays to 0.
SCHEDULES = {"pcd_cosine": "cosine"}
EPOCHS, TRAIN_EXAMPLES = 5, 60_000  # 15-minute runs on 2 shared CPU cores (CD-10: ~6 steps/s)


def get_config(arg="cd1"):
  config = rbm_config("fashion_mnist", 500, **VARIANTS[arg or "cd1"])
  config.num_steps = EPOCHS * TRAIN_EXAMPLES // config.batch_size
  config.checkpoint_every = 2000
  config.sample_every = 4000
  if arg in SCHEDULES:
    config.optimizer.update({"schedule": SCHEDULES[arg], "decay_steps": config.num_steps})
  return config

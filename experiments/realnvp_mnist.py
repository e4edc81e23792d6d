"""experiments/realnvp.py on MNIST: set --config.dataset.manual_dir to the folder holding the four
idx files (train-images-idx3-ubyte.gz, ...). The UvA tutorial 11 reaches 1.021 bits/dim with its
1.7M-parameter multi-scale flow (`:uva`, the default size here too); Dinh et al. (2016) report 1.06."""
from genjax.configs import flow_config, flow_size


def get_config(arg=None):
  config = flow_config("multiscale", "variational", widths=(32, 48, 64), **flow_size(arg))
  config.dataset.update(dict(name="mnist", manual_dir=""))
  return config

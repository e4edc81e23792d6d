"""Flow with uniform dequantization: 8 alternating checkerboard affine couplings at full resolution
(the UvA tutorial 11 simple flow). `:uva` (default) has its size, 7 residual blocks of width 32 per
conditioner; `:small` 1 block. Fashion-MNIST by default, `--config.dataset.name=digits` works."""
from genjax.configs import flow_config, flow_size


def get_config(arg=None):
  return flow_config("simple", "uniform", **flow_size(arg))

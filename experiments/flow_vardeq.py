"""The simple flow with variational dequantization (Ho et al. 2019): q(u|x) is 4 checkerboard
couplings (width 16) conditioned on the image. `:uva` (default) is the UvA tutorial 11 size,
`:small` 1 residual block per conditioner. Fashion-MNIST by default."""
from genjax.configs import flow_config, flow_size


def get_config(arg=None):
  return flow_config("simple", "variational", **flow_size(arg))

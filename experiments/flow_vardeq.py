"""The simple flow with variational dequantization (Ho et al. 2019): q(u|x) is 4 checkerboard
couplings conditioned on the image; Fashion-MNIST by default."""
from genjax.configs import flow_config


def get_config(arg=None):
  return flow_config("simple", "variational")

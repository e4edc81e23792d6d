"""Flow with uniform dequantization: 8 alternating checkerboard affine couplings at full resolution
(the UvA tutorial 11 simple flow, narrower); Fashion-MNIST by default, `--config.dataset.name=digits` works."""
from genjax.configs import flow_config


def get_config(arg=None):
  return flow_config("simple", "uniform")

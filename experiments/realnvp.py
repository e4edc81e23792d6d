"""Real NVP multi-scale flow (Dinh et al. 2016 sec. 3.6) with variational dequantization:
2 checkerboard couplings, squeeze, 2 channel couplings, factor out half, squeeze, 4 channel couplings;
conditioner widths grow per scale. Fashion-MNIST by default (digits' 8x8 fits too)."""
from genjax.configs import flow_config


def get_config(arg=None):
  return flow_config("multiscale", "variational", widths=(32, 48, 64))

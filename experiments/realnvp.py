"""Real NVP multi-scale flow (Dinh et al. 2016 sec. 3.6) with variational dequantization:
2 checkerboard couplings, squeeze, 2 channel couplings, factor out half, squeeze, 4 channel couplings;
conditioner widths 32 / 48 / 64 per scale. `:uva` (default) is the UvA tutorial 11 size (1.7M
parameters), `:small` 1 residual block per conditioner. Fashion-MNIST by default (digits' 8x8 fits too)."""
from genjax.configs import flow_config, flow_size


def get_config(arg=None):
  return flow_config("multiscale", "variational", widths=(32, 48, 64), **flow_size(arg))

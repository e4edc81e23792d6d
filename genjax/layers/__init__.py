"""Reusable network pieces, one file per kind of layer; families in genjax/models/ build from them.

- networks.py: MLP and conv encoders/decoders (critics, generators), activations, norms,
  `make_encoder` / `make_decoder` from `model.*` keys, `join_label`, `run_net`.
- conv_transpose.py: the exact phase-decomposed transposed convolution and strided-conv input
  gradient (fast on XLA:CPU).
- batch_norm.py: flax's BatchNorm with column sums as dots (fast on XLA:CPU).
- maxout.py: maxout units (PacGAN's critics).
- unet.py, patchgan.py: pix2pix's generator and critic.
- coupling.py: Real NVP's affine couplings, squeeze, factor-out, ActNorm and conditioners.
- random_features.py: seeded random multi-scale CNNs and Gram matrices (texture synthesis).
"""

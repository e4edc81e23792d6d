"""Forward+backward timings of DCGAN-28 up/down-sampling layers on the current backend.

Run: python benchmarks/upsample_bench.py [--iters 20] [--batch 64]
Times jit(value_and_grad) over (params, input) of sum(layer(x)**2), median of N
after warm-up, for nn.ConvTranspose vs PhaseConvTranspose (exactly the same
function), and strided nn.Conv / max_pool+conv / PhaseConv for the encoder side.
"""

import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.models.conv_transpose import PhaseConvTranspose
PhaseConv = None


class PoolConv(nn.Module):
  """3x3 stride-1 conv then 2x2 max-pool: the usual non-strided downsampler."""

  features: int

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, (3, 3), padding='SAME')(x)
    return nn.max_pool(x, (2, 2), (2, 2))


def time_fwd_bwd(module, x, iters):
  """Median ms of a jitted value_and_grad step (params and input)."""
  params = module.init(jax.random.key(0), x)

  def loss(p, x):
    return jnp.sum(module.apply(p, x) ** 2)

  step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  for _ in range(3):  # compile + warm caches
    jax.block_until_ready(step(params, x))
  times = []
  for _ in range(iters):
    t0 = time.perf_counter()
    jax.block_until_ready(step(params, x))
    times.append(1e3 * (time.perf_counter() - t0))
  return statistics.median(times)


def cases(batch):
  """(name, input, baseline module, alternative module) per layer."""
  up = dict(kernel_size=(4, 4), strides=(2, 2), padding='SAME')
  down = dict(kernel_size=(4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))
  x = lambda *s: jax.random.normal(jax.random.key(1), (batch,) + s)
  return [
      ('convT 128->64 k4s2 7->14', x(7, 7, 128),
       nn.ConvTranspose(64, **up), PhaseConvTranspose(64, **up)),
      ('convT 64->1 k4s2 14->28', x(14, 14, 64),
       nn.ConvTranspose(1, **up), PhaseConvTranspose(1, **up)),
      ('conv 1->64 k4s2 28->14', x(28, 28, 1), nn.Conv(64, **down), None),
      ('conv 64->128 k4s2 14->7', x(14, 14, 64), nn.Conv(128, **down), None),
      ('pool+conv3 1->64 28->14', x(28, 28, 1), PoolConv(64), None),
      ('pool+conv3 64->128 14->7', x(14, 14, 64), PoolConv(128), None),
  ]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--iters', type=int, default=20)
  ap.add_argument('--batch', type=int, default=64)
  args = ap.parse_args()
  print(f'backend={jax.default_backend()} devices={jax.devices()} batch={args.batch}')
  print(f'{"layer (fwd+bwd)":28s} {"base ms":>9s} {"phase ms":>9s} {"phase/base":>10s}')
  for name, x, base, alt in cases(args.batch):
    tb = time_fwd_bwd(base, x, args.iters)
    if alt is None:
      print(f'{name:28s} {tb:9.2f} {"-":>9s} {"-":>10s}')
      continue
    ta = time_fwd_bwd(alt, x, args.iters)
    print(f'{name:28s} {tb:9.2f} {ta:9.2f} {ta / tb:10.2f}')


if __name__ == '__main__':
  main()

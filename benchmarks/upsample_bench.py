"""Forward+backward timings of DCGAN-28 up/down-sampling layers on the current backend.

Run: python benchmarks/upsample_bench.py [--iters 30] [--batch 64]
Times jit(value_and_grad) over (params, input) of sum(layer(x)**2): warm-up, then
median and min of N runs. 'transpose' (nn.ConvTranspose) and 'phase'
(PhaseConvTranspose) compute the same function; the strided nn.Conv and
max_pool+conv rows are the encoder-side reference points. Runs alternate between
variants so background load hits both alike.
"""

import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genjax.layers.conv_transpose import PhaseConvTranspose


class PoolConv(nn.Module):
  """3x3 stride-1 conv then 2x2 max-pool: the non-strided downsampler."""

  features: int

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, (3, 3), padding='SAME')(x)
    return nn.max_pool(x, (2, 2), (2, 2))


def make_step(module, x):
  """Jitted value_and_grad over (params, input), warmed up, plus its args."""
  params = module.init(jax.random.key(0), x)
  loss = lambda p, x: jnp.sum(module.apply(p, x) ** 2)
  step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  for _ in range(3):  # compile + warm caches
    jax.block_until_ready(step(params, x))
  return lambda: jax.block_until_ready(step(params, x))


def time_interleaved(steps, iters):
  """ms per call for each step, runs interleaved; returns [(median, min)]."""
  times = [[] for _ in steps]
  for _ in range(iters):
    for t, step in zip(times, steps):
      t0 = time.perf_counter()
      step()
      t.append(1e3 * (time.perf_counter() - t0))
  return [(statistics.median(t), min(t)) for t in times]


def cases(batch):
  """(name, input, modules...) per layer; first module is the baseline."""
  up = dict(kernel_size=(4, 4), strides=(2, 2), padding='SAME')
  down = dict(kernel_size=(4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))
  rng = np.random.default_rng(0)
  x = lambda *s: jnp.asarray(rng.standard_normal((batch,) + s), jnp.float32)
  return [
      ('convT 128->64 k4s2 7->14', x(7, 7, 128),
       nn.ConvTranspose(64, **up), PhaseConvTranspose(64, **up)),
      ('convT 64->1 k4s2 14->28', x(14, 14, 64),
       nn.ConvTranspose(1, **up), PhaseConvTranspose(1, **up)),
      ('conv 1->64 k4s2 28->14', x(28, 28, 1), nn.Conv(64, **down)),
      ('conv 64->128 k4s2 14->7', x(14, 14, 64), nn.Conv(128, **down)),
      ('pool+conv3 1->64 28->14', x(28, 28, 1), PoolConv(64)),
      ('pool+conv3 64->128 14->7', x(14, 14, 64), PoolConv(128)),
  ]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument('--iters', type=int, default=30)
  ap.add_argument('--batch', type=int, default=64)
  args = ap.parse_args()
  print(f'backend={jax.default_backend()} devices={jax.devices()} batch={args.batch} '
        f'iters={args.iters}; fwd+bwd ms as median (min)')
  print(f'{"layer":26s} {"transpose/base":>16s} {"phase":>16s} {"phase/transpose":>16s}')
  for name, x, *modules in cases(args.batch):
    res = time_interleaved([make_step(m, x) for m in modules], args.iters)
    cells = [f'{med:8.2f} ({mn:6.2f})' for med, mn in res]
    if len(res) == 2:
      ratio = f'{res[1][0] / res[0][0]:.2f} ({res[1][1] / res[0][1]:.2f})'
      print(f'{name:26s} {cells[0]:>16s} {cells[1]:>16s} {ratio:>16s}')
    else:
      print(f'{name:26s} {cells[0]:>16s} {"-":>16s} {"-":>16s}')


if __name__ == '__main__':
  main()

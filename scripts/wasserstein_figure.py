"""The lecture's Wasserstein example as a figure: p = (0, U[0, 1]), q = (theta, U[0, 1]) in 2-D.

Left: the GAN discriminator's value (trained per theta) against -log 4 + 2 JSD, flat at 0 for every
theta != 0. Right: W = |theta| against the WGAN critics' estimates E_p f - E_q f (gradient penalty;
weight clipping on its own axis, since clipping fixes the critic's scale, not its slope).

  .venv/bin/python scripts/wasserstein_figure.py --out docs/images/wasserstein_vs_jsd.png
"""
from __future__ import annotations

import argparse
import time

import jax
import matplotlib.pyplot as plt
import numpy as np

from genjax.evaluate import divergences as dv

THETAS = np.round(np.linspace(-2.0, 2.0, 17), 3)


def sweep(thetas=THETAS, num_steps: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
  """Every critic of the figure, trained per theta (one vmap per kind), with the closed forms."""
  out = dv.lines_sweep(thetas, jax.random.PRNGKey(seed), num_steps)
  gan, gp, clip = out["gan"], out["gradient_penalty"], out["clip"]
  closed = [dv.parallel_lines_divergences(float(t)) for t in thetas]
  return {"theta": np.asarray(thetas), "gan_value": gan["value"], "gp_gap": gp["gap"],
          "gp_normalised_gap": gp["normalised_gap"], "clip_gap": clip["gap"],
          "optimal_value": np.array([c["optimal_value"] for c in closed]),
          "jsd": np.array([c["jsd"] for c in closed]),
          "wasserstein": np.array([c["wasserstein"] for c in closed])}


def plot(results: dict[str, np.ndarray], path: str | None = None):
  """Two panels sharing theta; returns the figure (saved to `path` when given)."""
  theta = results["theta"]
  fine = np.linspace(theta.min(), theta.max(), 401)
  fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6), dpi=100)
  left.plot(fine, np.where(fine == 0, -dv.LOG4, 0.0), color="0.6", lw=2,
            label=r"$-\log 4 + 2\,\mathrm{JSD}$ (closed form)")
  left.plot(theta, results["gan_value"], "o", color="C3", label="trained GAN discriminator")
  left.plot([0], [-dv.LOG4], "s", mfc="none", color="k", label=r"$\theta = 0$: $-\log 4$")
  left.set(xlabel=r"$\theta$ (shift of $q$ along $x$)", ylabel="value of the game (nats)",
           title=r"GAN: $V(D^*)$ is flat, no gradient in $\theta$", ylim=(-1.5, 0.2))
  left.legend(loc="lower right", fontsize=8)
  right.plot(fine, np.abs(fine), color="0.6", lw=2, label=r"$W(p, q) = |\theta|$")
  right.plot(theta, results["gp_gap"], "o", color="C0", label=r"WGAN-GP critic, $\lambda = 10$")
  right.plot(theta, results["gp_normalised_gap"], "x", color="C0",
             label="WGAN-GP critic at unit slope")
  right.set(xlabel=r"$\theta$ (shift of $q$ along $x$)",
            ylabel=r"$\mathbb{E}_p f - \mathbb{E}_q f$ (units of $x$)",
            title=r"WGAN: the critic's estimate grows with $|\theta|$")
  clip_axis = right.twinx()
  clip_axis.plot(theta, 1e3 * results["clip_gap"], "^", color="C2", label="WGAN critic, clip 0.01")
  clip_axis.set_ylabel(r"clipped critic's gap ($\times 10^{-3}$)", color="C2")
  lines = right.get_legend_handles_labels()
  clip_lines = clip_axis.get_legend_handles_labels()
  right.legend(lines[0] + clip_lines[0], lines[1] + clip_lines[1], loc="upper center", fontsize=8)
  fig.tight_layout()
  if path:
    fig.savefig(path)
  return fig


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="docs/images/wasserstein_vs_jsd.png")
  parser.add_argument("--steps", type=int, default=1000)
  args = parser.parse_args()
  start = time.time()
  results = sweep(num_steps=args.steps)
  plot(results, args.out)
  print(f"wrote {args.out} in {time.time() - start:.0f} s")
  for name, values in results.items():
    print(name, np.array2string(np.asarray(values), precision=4, max_line_width=200))


if __name__ == "__main__":
  main()

"""Reruns the README's Fashion-MNIST rows end to end and gathers their eval.json into one JSON file.

  .venv/bin/python scripts/reproduce_fashion.py [--only vae_fashion,torch_vae] [--out docs/fashion_results.json]

Each row is an experiment file as committed plus the overrides the README states; it trains into
runs/fashion/NAME (resuming if present), runs --mode eval, and records the wall time of both on
this machine. Not part of `make test`: the full set takes hours on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = ("--config.dataset.name=fashion_mnist",)

# name -> (command after `python -m`, arguments); {workdir} is runs/fashion/NAME.
ROWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "vae_fashion": ("genjax.main", ("--config", "experiments/vae_fashion.py")),
    "torch_vae": ("benchmarks.torch_vae_reference", ("--out", "{workdir}/eval.json")),
    "rbm_cd1": ("genjax.main", ("--config", "experiments/rbm_fashion.py:cd1")),
    "rbm_cd10": ("genjax.main", ("--config", "experiments/rbm_fashion.py:cd10")),
    "rbm_pcd": ("genjax.main", ("--config", "experiments/rbm_fashion.py:pcd")),
    # Issue 15's flows: the UvA-sized experiments for 600 steps, the `:small` ones for 2000; test bits/dim
    # importance-weighted over K = 8 on the first 2000 test images (docs/flow_results.md).
    **{f"{name}{tag}": ("genjax.main", (
        "--config", f"experiments/{name}.py{size}", f"--config.num_steps={steps}", "--config.sample_every=0",
        "--config.model.eval_importance_samples=8", "--config.model.eval_num_examples=2000"))
       for name in ("flow_simple", "flow_vardeq", "realnvp")
       for tag, size, steps in (("", "", 600), ("_small_2000", ":small", 2000))},
    "pix2pix_inpaint": ("genjax.main", ("--config", "experiments/pix2pix_inpaint.py")),
    "vae_best_elbo": ("genjax.main", ("--config", "experiments/vae_fashion_best.py")),
    "vae_best_iwae": ("genjax.main", ("--config", "experiments/vae_fashion_best.py:iwae")),
    "vae_fashion_2d": ("genjax.main", ("--config", "experiments/vae_fashion.py:2")),
    # Autoencoders and GANs: the digits experiments as committed, on Fashion-MNIST, default steps.
    **{name: ("genjax.main", ("--config", f"experiments/{name}.py", *FASHION))
       for name in ("ae_mlp", "ae_conv", "dae", "sparse_ae", "cae", "gan_mlp", "cgan", "dcgan", "wgan", "wgan_gp")},
    # The contractive penalty's effect: the same tanh MLP with lambda = 0 (its ||J||_F^2 is still scored).
    "cae_no_penalty": ("genjax.main", ("--config", "experiments/cae.py", *FASHION, "--config.model.contractive_weight=0.0")),
    "dcgan_ema": ("genjax.main", ("--config", "experiments/dcgan.py", *FASHION, "--config.model.ema_decay=0.999")),
    # Issue 19: the style generator against DCGAN at equal generator steps. As committed (CIFAR-10 preset
    # for small images, EMA with warm-up); the 2000 row resumed the 1000 row's checkpoint (exact resume).
    **{f"stylegan_{n}": ("genjax.main", ("--config", "experiments/stylegan_fashion.py", f"--config.num_steps={n}"))
       for n in (1000, 2000)},
    **{f"dcgan_{n}": ("genjax.main", ("--config", "experiments/dcgan.py", *FASHION, f"--config.num_steps={n}"))
       for n in (1000, 2000)},
    # ... and with StyleGAN2's [1, 3, 3, 1] resampling instead of nearest / box.
    "stylegan_bilinear_1000": ("genjax.main", ("--config", "experiments/stylegan_fashion.py", "--config.num_steps=1000",
                                               "--config.model.resample_filter=bilinear")),
    # Earlier tries, without the EMA warm-up: the FFHQ values (8 mapping layers, R1 gamma 10), and the
    # CIFAR-10 preset (whose 1000-step checkpoint scored FID 68.5 with the live weights: stylegan_cifar_r1_1000_live).
    "stylegan_gamma10_2000": ("genjax.main", ("--config", "experiments/stylegan_fashion.py", "--config.num_steps=2000",
                                              "--config.model.r1_gamma=10.0", "--config.model.mapping_layers=8",
                                              "--config.model.ema_rampup=0.0")),
    "stylegan_cifar_r1_1000": ("genjax.main", ("--config", "experiments/stylegan_fashion.py", "--config.num_steps=1000",
                                               "--config.model.ema_rampup=0.0")),
}


def run_row(name: str, python: str) -> dict:
  module, args = ROWS[name]
  workdir = os.path.join("runs", "fashion", name)
  args = [a.format(workdir=workdir) for a in args]
  started = time.perf_counter()
  if module == "genjax.main":
    steps = [[*args, "--workdir", workdir], [*args, "--workdir", workdir, "--mode", "eval"]]
  else:
    steps = [args]
  for step in steps:
    subprocess.run([python, "-m", module, *step], cwd=ROOT, check=True)
  with open(os.path.join(ROOT, workdir, "eval.json")) as f:
    return {**json.load(f), "wall_seconds": time.perf_counter() - started, "command": [module, *args]}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--only", default="", help=f"comma-separated rows of {', '.join(ROWS)}")
  parser.add_argument("--out", default="docs/fashion_results.json")
  args = parser.parse_args()
  names = [n for n in args.only.split(",") if n] or list(ROWS)
  unknown = sorted(set(names) - set(ROWS))
  if unknown:
    print(f"error: --only names unknown rows {unknown}; known: {', '.join(ROWS)}", file=sys.stderr)
    sys.exit(2)
  out = os.path.join(ROOT, args.out)
  results = json.load(open(out)) if os.path.exists(out) else {}
  for name in names:
    results[name] = run_row(name, sys.executable)
    with open(out, "w") as f:  # after every row: a long run keeps what it finished
      json.dump(results, f, indent=2, sort_keys=True)
  print(out)


if __name__ == "__main__":
  main()

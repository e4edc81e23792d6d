"""The PyTorch reference VAE (pytorch/examples `vae/main.py`), trained here and scored by genjax.

  python -m benchmarks.torch_vae_reference [--config experiments/vae_fashion.py] [--out FILE]

Same model and protocol as the genjax experiment: MLP 784-400-20 ReLU (fc1, fc21 / fc22, fc3, fc4),
Adam 1e-3, batch 128, each training batch binarised afresh (torch.bernoulli), the summed BCE + KL
loss of pytorch/examples, one shuffle per epoch. The trained weights are copied into a genjax VAE
state and scored by `genjax.modes.evaluation`, so both rows use the same test binarisation, the
same ELBO and k = 5000 importance-sampled NLL and the same sample-quality features. Needs the
`bench` extra (torch).
"""
from __future__ import annotations

import argparse
import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np


def torch_vae(torch, image_dims: int, hidden: int, latent: int):
  nn = torch.nn

  class VAE(nn.Module):
    def __init__(self):
      super().__init__()
      self.fc1, self.fc21, self.fc22 = nn.Linear(image_dims, hidden), nn.Linear(hidden, latent), nn.Linear(hidden, latent)
      self.fc3, self.fc4 = nn.Linear(latent, hidden), nn.Linear(hidden, image_dims)

    def forward(self, x):
      h = torch.relu(self.fc1(x))
      mu, logvar = self.fc21(h), self.fc22(h)
      z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
      return self.fc4(torch.relu(self.fc3(z))), mu, logvar  # logits; BCE-with-logits == BCE(sigmoid)

  return VAE()


def train_torch(config, train_x: np.ndarray, seed: int = 0):
  import torch
  torch.manual_seed(seed)
  hidden, latent = config.model.hidden[0], config.model.latent_dim
  x_all = torch.from_numpy(np.array(train_x.reshape(len(train_x), -1)))  # a writable copy
  model = torch_vae(torch, x_all.shape[1], hidden, latent)
  opt = torch.optim.Adam(model.parameters(), lr=config.optimizer.learning_rate)
  batch, steps = config.batch_size, config.num_steps
  rng = np.random.default_rng(seed)
  order, position = rng.permutation(len(x_all)), 0
  start = time.perf_counter()
  for _ in range(steps):
    if position + batch > len(order):  # pytorch/examples keeps the short last batch; we drop it
      order, position = rng.permutation(len(x_all)), 0
    xb = torch.bernoulli(x_all[order[position:position + batch]])
    position += batch
    logits, mu, logvar = model(xb)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    opt.zero_grad()
    ((bce + kl) / len(xb)).backward()  # per-example mean: Adam is scale-invariant, same updates
    opt.step()
  return model, time.perf_counter() - start


def genjax_params(model) -> dict:
  """pytorch Linear (out, in) weights -> genjax's VAE params (encoder emits [mean, logvar])."""
  w = {k: v.detach().numpy() for k, v in model.state_dict().items()}
  dense = lambda kernel, bias: {"kernel": jnp.asarray(kernel.T), "bias": jnp.asarray(bias)}
  return {"encoder": {"Dense_0": dense(w["fc1.weight"], w["fc1.bias"]),
                      "Dense_1": dense(np.concatenate([w["fc21.weight"], w["fc22.weight"]]),
                                       np.concatenate([w["fc21.bias"], w["fc22.bias"]]))},
          "decoder": {"MLP_0": {"Dense_0": dense(w["fc3.weight"], w["fc3.bias"]),
                                "Dense_1": dense(w["fc4.weight"], w["fc4.bias"])}}}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="experiments/vae_fashion.py")
  parser.add_argument("--out", default="runs/torch_vae_reference/eval.json")
  parser.add_argument("--num_steps", type=int, default=0, help="override the config's steps (smoke runs)")
  parser.add_argument("--eval_importance_samples", type=int, default=0, help="override k (smoke runs)")
  args = parser.parse_args()
  import os
  import genjax
  from genjax import modes, trainer
  config = genjax.get_config(args.config)
  if args.num_steps:
    config.num_steps = args.num_steps
  if args.eval_importance_samples:
    config.model.eval_importance_samples = args.eval_importance_samples
  trainer.enable_compilation_cache()
  run = trainer.Run(config, os.path.dirname(args.out))
  model, seconds = train_torch(config, run.train_arrays["x"], config.seed)
  state = run.init_state(run.first_batch())
  params = jax.tree_util.tree_map(lambda new, old: jnp.asarray(new, old.dtype).reshape(old.shape),
                                  genjax_params(model), jax.device_get(state.params))
  state = state.replace(params=params, step=jnp.asarray(config.num_steps, jnp.int32))
  results = modes.evaluation(run, state)
  import torch
  results.update(framework=f"pytorch {torch.__version__} eager, {torch.get_num_threads()} threads",
                 train_seconds=seconds, epochs=config.num_steps * config.batch_size / len(run.train_arrays["x"]))
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(results, f, indent=2, sort_keys=True, default=lambda v: np.asarray(v).tolist())
  print(json.dumps({k: results[k] for k in ("test_elbo", "test_nll", "train_seconds") if k in results}))


if __name__ == "__main__":
  main()

"""Style-generator metrics (Karras et al. 2019 sec. 4) in genjax's classifier feature space.

- Perceptual path length (sec. 4.1): E[d(G(l(t)), G(l(t + eps))) / eps^2], eps = 1e-4, l a slerp
  between two z (PPL_Z) or a lerp between their w (PPL_W); 'full' draws t ~ U(0, 1), 'end' t = 0;
  the 1% and 99% tails are dropped as in the paper's code. d is the squared distance of the
  penultimate features of genjax's own CNN (genjax/evaluate/classifier.py): no LPIPS/VGG weights
  exist here, so the numbers are NOT comparable with the paper's.
- Linear separability (sec. 4.2): labels are the classifier's predictions on generated images (the
  less confident half dropped); a linear classifier (logistic regression) fitted on half of the z
  (or w) predicts them on the other half: accuracy and the conditional entropy H(Y | X) in nats of the
  classifier's labels Y given the linear prediction X (the paper reports exp(H)).
- A truncation sweep: FID, precision and recall of samples at psi in TRUNCATION_SWEEP.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from genjax import xla_options
from genjax.evaluate.classifier import FeatureExtractor
from genjax.evaluate.sample_quality import sample_quality_metrics
from genjax.layers.style import truncate

PPL_EPSILON = 1e-4
TRUNCATION_SWEEP = (0.5, 0.7, 1.0)
CHUNK = 500  # images generated per jitted call


def slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  """Spherical interpolation of the normalised a, b (the paper's code): unit vectors along the arc."""
  a = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
  b = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
  d = jnp.sum(a * b, axis=-1, keepdims=True)
  p = t * jnp.arccos(jnp.clip(d, -1.0, 1.0))
  c = b - d * a
  c = c / jnp.linalg.norm(c, axis=-1, keepdims=True)
  return a * jnp.cos(p) + c * jnp.sin(p)


def lerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  return a + (b - a) * t


def filtered_mean(values: np.ndarray) -> float:
  """Mean of the values between their 1st and 99th percentiles (Karras et al.'s PPL filtering)."""
  lo, hi = np.percentile(values, [1, 99])
  return float(values[(values >= lo) & (values <= hi)].mean())


def conditional_entropy(y: np.ndarray, x: np.ndarray) -> float:
  """H(Y | X) in nats from paired integer labels."""
  total = 0.0
  for value in np.unique(x):
    counts = np.bincount(y[x == value])
    p = counts[counts > 0] / counts.sum()
    total += (x == value).mean() * float(-(p * np.log(p)).sum())
  return total


def linear_separability(latents: np.ndarray, labels: np.ndarray, confidence: np.ndarray) -> dict[str, float]:
  """Accuracy and H(Y | X) of a logistic regression fitted on the first half, tested on the second,
  after dropping the less confident half of the labels."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.preprocessing import StandardScaler
  keep = np.argsort(-confidence)[:len(confidence) // 2]
  latents, labels = latents[keep], labels[keep]
  half = len(labels) // 2
  if len(np.unique(labels[:half])) < 2:
    return {"accuracy": float("nan"), "entropy": float("nan")}
  scaler = StandardScaler().fit(latents[:half])
  fitted = LogisticRegression(max_iter=2000).fit(scaler.transform(latents[:half]), labels[:half])
  predicted = fitted.predict(scaler.transform(latents[half:]))
  return {"accuracy": float(np.mean(predicted == labels[half:])),
          "entropy": conditional_entropy(labels[half:], predicted)}


def style_report(gan, state, arrays: dict, rng: jax.Array) -> dict[str, float]:
  """ppl_{z,w}[_end], separability_{z,w}_{accuracy,entropy}, {fid,precision,recall}_psi{...}."""
  extractor = FeatureExtractor(gan.dataset)
  params = gan.sampling_params(state)
  num_classes = max(gan.num_classes, 1)

  def labels_for(n):
    return jnp.arange(n) % num_classes

  # One program for the four path-length variants (full/end, Z/W as traced flags): each static
  # variant was a compilation of its own, most of a small run's evaluation time.
  @xla_options.jit
  def path_pair(state, key, full, in_w):
    z_key, t_key, noise_key = jax.random.split(key, 3)
    z0, z1 = jnp.split(gan.noise(z_key, 2 * CHUNK), 2)
    onehot = gan.onehot(labels_for(CHUNK))
    t = jnp.where(full, jax.random.uniform(t_key, (CHUNK, 1)), 0.0)
    w_of = lambda z: gan.map_z(params, z, onehot)
    w0, w1 = w_of(z0), w_of(z1)
    wa = jnp.where(in_w, lerp(w0, w1, t), w_of(slerp(z0, z1, t)))
    wb = jnp.where(in_w, lerp(w0, w1, t + PPL_EPSILON), w_of(slerp(z0, z1, t + PPL_EPSILON)))
    # the same noise images for both ends of a pair (one key, same rows)
    return gan.render(state, gan.broadcast_styles(wa), noise_key), gan.render(state, gan.broadcast_styles(wb), noise_key)

  results = {}
  ppl_n = int(gan.model.get("ppl_samples", 1000))
  for name, full, in_w in (("ppl_z", True, False), ("ppl_w", True, True),
                           ("ppl_z_end", False, False), ("ppl_w_end", False, True)):
    distances = []
    for i in range(-(-ppl_n // CHUNK)):
      a, b = path_pair(state, jax.random.fold_in(rng, i), jnp.asarray(full), jnp.asarray(in_w))
      fa, fb = extractor.embed(np.asarray(a)), extractor.embed(np.asarray(b))
      distances.append(np.sum(np.square(fa.astype(np.float64) - fb), axis=-1) / PPL_EPSILON ** 2)
    results[name] = filtered_mean(np.concatenate(distances)[:ppl_n])

  @xla_options.jit
  def latent_batch(state, key, psi):
    """z, truncated w and G's images for a chunk: separability (psi 1: w unchanged) and the sweep."""
    z_key, noise_key = jax.random.split(key)
    z = gan.noise(z_key, CHUNK)
    w = truncate(gan.map_z(params, z, gan.onehot(labels_for(CHUNK))), state.extras["w_avg"], psi)
    return z, w, gan.render(state, gan.broadcast_styles(w), noise_key)

  sep_n = int(gan.model.get("separability_samples", 1000))
  zs, ws, labels, confidence = [], [], [], []
  for i in range(-(-sep_n // CHUNK)):
    z, w, images = latent_batch(state, jax.random.fold_in(rng, 1000 + i), 1.0)
    logits = extractor._outputs(np.asarray(images))[1]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    zs.append(np.asarray(z)), ws.append(np.asarray(w))
    labels.append(probs.argmax(-1)), confidence.append(probs.max(-1))
  labels, confidence = np.concatenate(labels)[:sep_n], np.concatenate(confidence)[:sep_n]
  for space, latents in (("z", zs), ("w", ws)):
    scores = linear_separability(np.concatenate(latents)[:sep_n], labels, confidence)
    results[f"separability_{space}_accuracy"] = scores["accuracy"]
    results[f"separability_{space}_entropy"] = scores["entropy"]

  n = min(len(arrays["x"]), gan.eval_num_samples)
  real = extractor.embed(arrays["x"][:n])
  for psi in TRUNCATION_SWEEP:
    fake = np.concatenate([np.asarray(latent_batch(state, jax.random.fold_in(rng, 2000 + i), psi)[2])
                           for i in range(-(-n // CHUNK))])[:n]
    metrics = sample_quality_metrics(real, extractor.embed(fake))
    for key in ("fid", "precision", "recall"):
      results[f"{key}_psi{psi}"] = metrics[key]
  results["style_metrics_features"] = extractor.name
  return results

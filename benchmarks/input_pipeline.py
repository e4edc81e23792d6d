"""Input-pipeline throughput: images/s genjax's pipeline delivers from a 64x64x3 array_record data set
this script generates, against what the DCGAN step consumes at that size, and host RSS as the set grows.

  python -m benchmarks.input_pipeline [--images 100000] [--small 10000] [--seconds 5] [--batch 64]

The data: `--images` (and `--small`, 10x fewer) uint8 64x64x3 images written once under `--data_dir`
as the folder dataset writes its records (`builders.write_records`: raw bytes per record); plus
`--folder_images` PNG files prepared through `dataset.name='folder'` itself, to time preparation.
Each reading case runs in a fresh interpreter, exactly as training reads (`Batches` over a
`RecordSource` or an in-memory `ArraySource`, `batch_stream`'s grain readers, `trainer.shard_batch`
every step), and reports images/s over `--seconds` after a warm-up and its peak RSS. The consumer is
genjax's DCGAN recipe (experiments/dcgan.py) on the 64x64x3 folder, timed as the trainer runs it.
Prints a table, then one JSON line per case.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SIDE = 64
CHUNK = 1000  # images generated at a time: generation holds 12 MB, not the data set


# ----------------------------------------------------------------------------- data

def synthetic_builder(count: int, data_dir: str):
  """`count` smooth-plus-noise uint8 images (labels 0..9, test count // 10), written once as the
  folder dataset writes its records (builders.write_records)."""
  from genjax.data import builders
  directory = os.path.join(data_dir, "bench_images", f"n{count}", "1.0.0")
  if builders.records_ready(directory):
    import tensorflow_datasets as tfds
    return tfds.builder_from_directory(directory)
  splits = {"train": images(count, 0), "test": images(max(1, count // 10), 1)}
  return builders.write_records(directory, "bench_images", builders.image_features((SIDE, SIDE, 3)), splits)


def images(n: int, split_id: int):
  """The examples of one split, generated CHUNK at a time from seeded generators."""
  ramp = np.linspace(0, 200, SIDE, dtype=np.float32)
  for start in range(0, n, CHUNK):
    rows = min(CHUNK, n - start)
    noise = np.random.default_rng([split_id, start]).integers(0, 56, size=(rows, SIDE, SIDE, 3))
    x = (ramp[None, :, None, None] + noise).astype(np.uint8)
    for i in range(rows):
      yield {"x": x[i], "label": (start + i) % 10}


def write_pngs(folder: str, count: int) -> None:
  """`count` 64x64 RGB PNGs (once) for the folder dataset's own preparation."""
  from PIL import Image
  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng(0)
  for i in range(count):
    path = os.path.join(folder, f"{i:06d}.png")
    if not os.path.exists(path):
      Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(path)


def folder_config(folder: str, data_dir: str) -> dict:
  return {"name": "folder", "path": folder, "image_size": SIDE, "data_dir": data_dir}


def time_folder_preparation(folder: str, data_dir: str) -> dict:
  """Images/s of preparing a PNG folder into array_record (decode, centre crop, resize, write),
  into a fresh directory each time."""
  import shutil
  from genjax import data as gd
  fresh = tempfile.mkdtemp(dir=data_dir)
  try:
    start = time.perf_counter()
    gd.example_shape(folder_config(folder, fresh))  # prepares both splits
    seconds = time.perf_counter() - start
  finally:
    shutil.rmtree(fresh)
  return {"case": "folder_prepare", "images": len(os.listdir(folder)), "seconds": round(seconds, 2),
          "images_per_s": round(len(os.listdir(folder)) / seconds, 1)}


# ----------------------------------------------------------------------------- reading (one process each)

def read_case(case: dict) -> dict:
  """Run in a fresh interpreter: images/s and peak RSS of reading as the trainer reads."""
  import jax
  from genjax import data as gd
  from genjax import trainer
  builder = synthetic_builder(case["images"], case["data_dir"])
  if case["in_memory"]:
    from genjax.data import builders
    source = gd.ArraySource(gd.served(*builders.read_split(builder, "train"), 255.0))
  else:
    source = gd.RecordSource(builder.as_data_source()["train"], 255.0)
  batches = gd.Batches(source, case["batch"], seed=0)
  mesh = trainer.make_mesh(jax.devices()[:1])
  stream = gd.batch_stream(batches, 0, 10 ** 9, threads=case["threads"], workers=case["workers"])
  try:
    for _ in range(20):  # warm-up: workers started, buffers full
      jax.block_until_ready(trainer.shard_batch(next(stream), mesh))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < case["seconds"]:
      jax.block_until_ready(trainer.shard_batch(next(stream), mesh))
      steps += 1
    seconds = time.perf_counter() - start
  finally:
    stream.close()
  return {**case, "images_per_s": round(steps * case["batch"] / seconds, 1),
          "peak_rss_mb": memory_mb("VmHWM"), "end_rss_mb": memory_mb("VmRSS")}


def memory_mb(field: str) -> float | None:
  """A /proc/self/status memory figure in MiB (VmHWM: peak resident set, VmRSS: current)."""
  try:
    with open("/proc/self/status") as f:
      kib = next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
  except (OSError, StopIteration):
    return None
  return round(kib / 1024, 1)


def run_case(case: dict) -> dict:
  result = subprocess.run([sys.executable, "-m", "benchmarks.input_pipeline", "--case", json.dumps(case)],
                          capture_output=True, text=True, timeout=1200)
  if result.returncode:
    raise RuntimeError(f"case {case} failed:\n{result.stderr[-3000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- consumption

def dcgan_consumption(folder: str, data_dir: str, steps: int) -> dict:
  """Images/s genjax's DCGAN recipe consumes at 64x64x3: the trainer's step, batches pre-sharded."""
  import jax
  from genjax import trainer
  from genjax.configs import gan_config
  config = gan_config("dcgan", folder_config(folder, data_dir))
  run = trainer.Run(config, os.path.join(tempfile.gettempdir(), "genjax-bench"))  # writes nothing
  batch = trainer.shard_batch(run.batches()(0), run.mesh)
  state = run.init_state(batch)
  step = trainer.make_train_step(run.objective, run.mesh, trainer.replicated(run.mesh))
  state, _ = step(state, batch)  # compile
  jax.block_until_ready(state)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state, batch)
  jax.block_until_ready((state, metrics))
  seconds = (time.perf_counter() - start) / steps
  return {"case": "dcgan_step", "batch": config.batch_size, "steps_per_s": round(1 / seconds, 2),
          "images_per_s": round(config.batch_size / seconds, 1), "device": jax.devices()[0].platform}


# ----------------------------------------------------------------------------- main

def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--images", type=int, default=100_000)
  parser.add_argument("--small", type=int, default=0, help="the smaller set (default images // 10)")
  parser.add_argument("--folder_images", type=int, default=2000)
  parser.add_argument("--batch", type=int, default=64, help="the DCGAN recipe's batch")
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--dcgan_steps", type=int, default=3)
  parser.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "genjax-input-bench"))
  parser.add_argument("--case", default="", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.case:
    print(json.dumps(read_case(json.loads(args.case))))
    return
  from benchmarks.run import ForeignLoad, load_average

  small = args.small or args.images // 10
  start = time.perf_counter()
  for count in (small, args.images):
    synthetic_builder(count, args.data_dir)
  folder = os.path.join(args.data_dir, "pngs")
  write_pngs(folder, args.folder_images)
  print(f"data ready in {time.perf_counter() - start:.0f} s (written once under {args.data_dir})", file=sys.stderr)

  base = {"data_dir": args.data_dir, "batch": args.batch, "seconds": args.seconds}
  cases = [dict(base, images=n, in_memory=False, threads=t, workers=0) for n in (small, args.images) for t in (1, 2)]
  cases += [dict(base, images=args.images, in_memory=False, threads=1, workers=2),
            dict(base, images=small, in_memory=True, threads=2, workers=0)]
  load_before = load_average()
  with ForeignLoad() as foreign:
    results = [time_folder_preparation(folder, args.data_dir)]
    results += [run_case(case) for case in cases]
    results.append(dcgan_consumption(folder, args.data_dir, args.dcgan_steps))
  load_after = load_average()

  consumption = results[-1]["images_per_s"]
  print(f"\n1-minute load average {load_before} -> {load_after}; other processes used {foreign.cores} cores; "
        f"{os.cpu_count()} cores")
  print(f"folder preparation: {results[0]['images']} PNGs in {results[0]['seconds']} s = "
        f"{results[0]['images_per_s']} images/s")
  print(f"DCGAN (experiments/dcgan.py) at {SIDE}x{SIDE}x3, batch {results[-1]['batch']}, "
        f"{results[-1]['device']}: {results[-1]['steps_per_s']} steps/s = {consumption} images/s\n")
  print("| images | source | reader | images/s | x DCGAN | peak RSS MiB | RSS at end MiB |")
  print("|---|---|---|---|---|---|---|")
  for r in results[1:-1]:
    reader = f"{r['threads']} thread(s)" + (f", {r['workers']} workers" if r["workers"] else "")
    print(f"| {r['images']} | {'memory' if r['in_memory'] else 'array_record'} | {reader} | {r['images_per_s']} "
          f"| {r['images_per_s'] / consumption:.0f}x | {r['peak_rss_mb']} | {r['end_rss_mb']} |")
  for r in results:
    print(json.dumps({**r, "load_before": load_before, "load_after": load_after, "foreign_cores": foreign.cores}))


if __name__ == "__main__":
  main()

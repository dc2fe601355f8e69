"""Samples per CPU-second of the generator alone, on one thread (less sensitive to a busy machine than wall time).

    python benchmarks/generator_cpu.py --config=configs/default.py

Run it in two checkouts one after the other (alternating, a few rounds) to
compare two versions of ocr_tf.synth side by side. It maps Generator.sample
over 3000 indices in tf.data and prints the best of three rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

sys.path.insert(0, os.getcwd())

import tensorflow as tf  # pylint: disable=wrong-import-position

from ocr_tf import atlas as atlas_lib  # pylint: disable=wrong-import-position
from ocr_tf import synth  # pylint: disable=wrong-import-position


def _load_config(path: str):
  spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def cpu_seconds(fn, n: int, batch: int = 64) -> float:
  """CPU seconds to pull n samples of fn through tf.data."""
  ds = tf.data.Dataset.range(n).map(fn).batch(batch)
  start = time.process_time()
  for _ in ds:
    pass
  return time.process_time() - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/default.py")
  parser.add_argument("--samples", type=int, default=3000)
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  gen = synth.Generator(_load_config(args.config).data, atlas_lib.load_atlas(), 0)
  for name, fn in (("params", gen.sample_params), ("sample", gen.sample)):
    cpu_seconds(fn, 256)  # trace and compile
    best = min(cpu_seconds(fn, args.samples) for _ in range(args.rounds))
    print(f"{name}_per_cpu_second={args.samples / best:.0f}", flush=True)


if __name__ == "__main__":
  main()

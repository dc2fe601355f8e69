"""md5 of the first samples of the shipped data configs and of one with every optional feature on.

    python benchmarks/stream_digest.py                 # every config
    python benchmarks/stream_digest.py tiny features   # some of them
    python benchmarks/stream_digest.py --write=tests/golden/stream.npz   # the golden samples of tests/test_golden.py

A change that must keep the samples (a refactor of ocr_tf.synth) prints the same
digests before and after. TensorFlow runs on one thread: the seed config's
large RGB images change in the last bit with the thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position

import configs.default  # pylint: disable=wrong-import-position
import configs.seed  # pylint: disable=wrong-import-position
import configs.tiny  # pylint: disable=wrong-import-position
import configs.words  # pylint: disable=wrong-import-position
from ocr_tf import atlas as atlas_lib  # pylint: disable=wrong-import-position
from ocr_tf import synth  # pylint: disable=wrong-import-position

GOLDEN_SEED = 7
# Every optional generator feature on, at the tiny config's size.
FEATURES = dict(digits_probability=0.3, short_probability=0.3, italic_probability=0.5, shear_probability=0.5,
                max_shear=10.0, shear_right_only=True, crop_box=True, downscale_probability=0.5,
                downscale_factor=(1.5, 3.0), low_res_noise=(0.0, 0.05), low_res_noise_after_contrast=True,
                blur_at_low_res=True, corpus="words", corpus_probability=0.3, corpus_upper_probability=0.2,
                corpus_title_probability=0.2, frequent_words="frequent", frequent_probability=0.2, position="start",
                morph_probability=0.6, jpeg_probability=0.5)


def data_configs() -> dict:
  """name -> data block."""
  out = {"tiny": configs.tiny.get_config().data}
  out["tiny_rgb"] = configs.tiny.get_config().data
  out["tiny_rgb"].channels = 3
  out["words"] = configs.words.get_config().data
  out["default"] = configs.default.get_config().data
  out["features"] = configs.tiny.get_config().data
  out["features"].update(FEATURES)
  out["seed"] = configs.seed.get_config().data
  return out


def digest(batch: dict) -> str:
  """md5 over every field of a batch, in key order."""
  h = hashlib.md5()
  for key in sorted(batch):
    v = np.asarray(batch[key])
    h.update(key.encode())
    h.update(b"|".join(v.tolist()) if v.dtype == object else v.tobytes())
  return h.hexdigest()


def cpu_signature() -> str:
  """The CPU model and vector extensions: XLA's code (so the last bit of a float) can depend on them."""
  flags = model = ""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name") and not model:
          model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
          flags = " ".join(sorted(x for x in line.split(":", 1)[1].split() if x.startswith(("avx", "fma", "sse4"))))
  except OSError:
    pass
  return f"{platform.machine()} {model} {flags}"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("names", nargs="*", help="configs (default: all)")
  parser.add_argument("--samples", type=int, default=12)
  parser.add_argument("--write", help="write the golden samples of tiny and features (4 each) to this .npz")
  args = parser.parse_args()
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  atlas = atlas_lib.load_atlas()
  chosen = data_configs()
  if args.write:
    arrays = {"stream_version": np.array(synth.STREAM_VERSION), "cpu": np.array(cpu_signature())}
    for name in ("tiny", "features"):
      batch = synth.Generator(chosen[name], atlas, GOLDEN_SEED).generate(list(range(4)))
      arrays.update({f"{name}/{k}": np.asarray(v).astype(bytes) if np.asarray(v).dtype == object else np.asarray(v)
                     for k, v in batch.items()})
      arrays[f"{name}/md5"] = np.array(digest(batch))
    np.savez_compressed(args.write, **arrays)
    print(f"wrote {args.write}")
    return
  print(f"stream_version={synth.STREAM_VERSION} cpu={cpu_signature()}")
  for name, d in chosen.items():
    if args.names and name not in args.names:
      continue
    n = min(args.samples, 4) if name == "seed" else args.samples
    print(f"{name} {digest(synth.Generator(d, atlas, GOLDEN_SEED).generate(list(range(n))))}", flush=True)


if __name__ == "__main__":
  main()

r"""The shipped model's speed with TensorFlow's oneDNN CPU kernels on and off (BUILD.md: when to turn them on).

  python benchmarks/onednn_speed.py [--model=RUN/export] [--rounds=3] [--batches=8]

TF_ENABLE_ONEDNN_OPTS is read once, when TensorFlow loads, so each setting runs
in its own subprocess; the two alternate for --rounds rounds, so both see the
same machine load. Each subprocess times --batches calls of serve_images on
a batch of --batch_size grey 32x256 images after one warm-up call. The last
line:

  onednn_images_per_second=... default_images_per_second=... ratio=...

where "default" is TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's choice on CPUs
without AVX-512 VNNI) and each figure is the median over the rounds.
"""

from __future__ import annotations

import os
import subprocess
import sys

from absl import app, flags
import numpy as np

_MODEL = flags.DEFINE_string("model", None, "SavedModel folder (default: the shipped model).")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Alternating rounds of both settings.", lower_bound=1)
_BATCHES = flags.DEFINE_integer("batches", 8, "Timed batches per subprocess.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 32, "Images per batch.", lower_bound=1)

_CHILD = r"""
import sys, time
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
serve = model.signatures["serve_images"]
images = tf.random.stateless_uniform([int(sys.argv[3]), 32, 256, 1], seed=[1, 2])
serve(images=images)
began = time.perf_counter()
for _ in range(int(sys.argv[2])):
  serve(images=images)["text"].numpy()
print("RATE", int(sys.argv[2]) * int(sys.argv[3]) / (time.perf_counter() - began))
"""


def _rate(model: str, onednn: str) -> float:
  env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run([sys.executable, "-c", _CHILD, model, str(_BATCHES.value), str(_BATCH.value)], env=env,
                       check=True, capture_output=True, text=True).stdout
  return float(next(line.split()[1] for line in out.splitlines() if line.startswith("RATE ")))


def main(argv):
  del argv
  model = _MODEL.value
  if model is None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from ocr_tf import predict  # pylint: disable=import-outside-toplevel
    model = predict.default_model_path()
  on, off = [], []
  for k in range(_ROUNDS.value):
    on.append(_rate(model, "1"))
    off.append(_rate(model, "0"))
    print(f"round {k + 1}: onednn {on[-1]:.1f} images/s, default {off[-1]:.1f} images/s", flush=True)
  a, b = float(np.median(on)), float(np.median(off))
  print(f"onednn_images_per_second={a:.1f} default_images_per_second={b:.1f} ratio={a / b:.2f}")


if __name__ == "__main__":
  app.run(main)

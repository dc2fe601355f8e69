r"""Plots a run's evaluation curve (workdir/metrics.jsonl) as a PNG: CER and word accuracy against minutes.

  python benchmarks/plot_curve.py --workdir=RUN --out=curve.png [--start_time=UNIX_SECONDS]

The x axis is wall time since the run's start: the first record's time minus
the steps it took at the run's mean rate, unless --start_time is given. Only
Pillow is needed. It also prints the curve as text (step, minutes, CER, word
accuracy).
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags
from PIL import Image, ImageDraw

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir.", required=True)
_OUT = flags.DEFINE_string("out", None, "PNG to write.", required=True)
_START = flags.DEFINE_float("start_time", None, "Run start (Unix seconds); default: estimated.")
_TITLE = flags.DEFINE_string("title", "", "Title line.")

W, H, PAD = 720, 420, 60


def read(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def main(argv):
  del argv
  records = read(_WORKDIR.value)
  if len(records) < 2:
    sys.exit("plot_curve: error: need at least two evaluations in metrics.jsonl")
  start = _START.value
  if start is None:
    (s0, t0), (s1, t1) = (records[0]["step"], records[0]["time"]), (records[-1]["step"], records[-1]["time"])
    start = t0 - s0 * (t1 - t0) / max(s1 - s0, 1)
  xs = [(r["time"] - start) / 60.0 for r in records]
  series = [("CER", [r["cer"] for r in records], (200, 30, 30)),
            ("word accuracy", [r["word_accuracy"] for r in records], (30, 90, 200))]
  image = Image.new("RGB", (W, H), "white")
  draw = ImageDraw.Draw(image)
  x_max = max(xs) * 1.05
  px = lambda x: PAD + (W - 2 * PAD) * x / x_max
  py = lambda y: H - PAD - (H - 2 * PAD) * y
  draw.rectangle([PAD, PAD, W - PAD, H - PAD], outline="black")
  for y in (0.0, 0.05, 0.25, 0.5, 0.75, 1.0):
    draw.line([PAD, py(y), W - PAD, py(y)], fill=(220, 220, 220) if y != 0.05 else (255, 170, 170))
    draw.text((PAD - 38, py(y) - 6), f"{y:.2f}", fill="black")
  step = 1 if x_max <= 10 else (2 if x_max <= 30 else 10)
  for m in range(0, int(x_max) + 1, step):
    draw.line([px(m), H - PAD, px(m), H - PAD + 4], fill="black")
    draw.text((px(m) - 4, H - PAD + 8), str(m), fill="black")
  draw.text((W // 2 - 30, H - PAD + 24), "minutes", fill="black")
  for k, (name, ys, color) in enumerate(series):
    pts = [(px(x), py(y)) for x, y in zip(xs, ys)]
    draw.line(pts, fill=color, width=2)
    for p in pts:
      draw.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=color)
    draw.text((W - PAD - 150, PAD + 10 + 16 * k), f"{name}: {ys[-1]:.4f}", fill=color)
  draw.text((PAD, 20), _TITLE.value or f"{_WORKDIR.value}: validation CER and word accuracy", fill="black")
  image.save(_OUT.value)
  for r, x in zip(records, xs):
    print(f"step {r['step']:6d}  {x:6.2f} min  cer {r['cer']:.4f}  word_accuracy {r['word_accuracy']:.4f}")
  print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)

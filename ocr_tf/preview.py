"""Writes samples to files so a person can look at them (the original's demo layout)."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import tensorflow as tf

from ocr_tf import synth

_BOX_COLORS = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48],
                        [145, 30, 180], [70, 240, 240]], np.uint8)


def draw_quads(image: np.ndarray, quads: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Draws each letter's quad (corners in pixel-edge coordinates) on a uint8 RGB image."""
  out = image.copy()
  h, w = out.shape[:2]
  for l in np.flatnonzero(mask):
    color = _BOX_COLORS[l % len(_BOX_COLORS)]
    q = quads[l]
    for k in range(4):
      p0, p1 = q[k], q[(k + 1) % 4]
      n = int(np.ceil(np.abs(p1 - p0).max())) * 2 + 2
      t = np.linspace(0.0, 1.0, n)[:, None]
      pts = p0 + (p1 - p0) * t - 0.5  # edges -> pixel indices
      xs = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
      ys = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
      out[ys, xs] = color
  return out


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
  img = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
  return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img


def _png(path: str, image: np.ndarray) -> None:
  tf.io.write_file(path, tf.io.encode_png(image))


def contact_sheet(images: list[np.ndarray], columns: int) -> np.ndarray:
  h, w = images[0].shape[:2]
  rows = -(-len(images) // columns)
  sheet = np.full((rows * (h + 4) + 4, columns * (w + 4) + 4, 3), 255, np.uint8)
  for i, img in enumerate(images):
    r, c = divmod(i, columns)
    sheet[4 + r * (h + 4):4 + r * (h + 4) + h, 4 + c * (w + 4):4 + c * (w + 4) + w] = img
  return sheet


def write_preview(generator: synth.Generator, out_dir: str, count: int, start: int = 0,
                  batch_size: int = 16, log=print) -> list[str]:
  """Renders samples start..start+count-1 and writes the preview files; returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  written, sheet_tiles = [], []
  rows = []
  done = 0
  while done < count:
    n = min(batch_size, count - done)
    batch = {k: v.numpy() for k, v in generator.generate(list(range(start + done, start + done + n))).items()}
    for j in range(n):
      i = int(batch["index"][j])
      img = to_uint8_rgb(batch["image"][j])
      boxed = draw_quads(img, batch["letter_quads"][j], batch["letter_mask"][j])
      clean = to_uint8_rgb(batch["clean"][j])
      for name, data in ((f"sample_{i}.png", img), (f"sample_with_boxes_{i}.png", boxed),
                         (f"clean_{i}.png", clean)):
        _png(os.path.join(out_dir, name), data)
        written.append(name)
      sheet_tiles.append(boxed)
      n_letters = int(batch["label_length"][j])
      rows.append({
          "index": i,
          "text": batch["text"][j].decode("utf-8"),
          "angle": round(float(batch["angle"][j]), 4),
          "letter_quads": np.round(batch["letter_quads"][j][:n_letters], 3).tolist(),
          "image_size": [int(img.shape[1]), int(img.shape[0])],
      })
    done += n
    log(f"preview: {done}/{count} samples")
  with open(os.path.join(out_dir, "strings_and_angles.csv"), "w", newline="") as f:
    wr = csv.writer(f)
    wr.writerow(["string", "angle"])
    for r in rows:
      wr.writerow([r["text"], f"{r['angle']:.4f}"])
  with open(os.path.join(out_dir, "labels.jsonl"), "w") as f:
    for r in rows:
      f.write(json.dumps({"file": f"sample_{r['index']}.png", "text": r["text"], "angle": r["angle"],
                          "letter_quads": r["letter_quads"], "image_size": r["image_size"]}) + "\n")
  columns = max(1, min(len(sheet_tiles), max(1, 2048 // (sheet_tiles[0].shape[1] + 4))))
  _png(os.path.join(out_dir, "contact_sheet.png"), contact_sheet(sheet_tiles, columns))
  written += ["strings_and_angles.csv", "labels.jsonl", "contact_sheet.png"]
  return written

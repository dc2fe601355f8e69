"""`ocr-tf preview`: the files it writes, their content, and that they are reproducible."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import configs.tiny
from conftest import ROOT, to_numpy
from ocr_tf import preview

COUNT = 4


def expected_files(count: int) -> set[str]:
  per_sample = {f"{stem}_{i}.png" for i in range(count)
                for stem in ("sample", "sample_with_boxes", "clean")}
  return per_sample | {"strings_and_angles.csv", "labels.jsonl", "contact_sheet.png"}


def run_preview(out: str, *flags: str) -> None:
  env = dict(os.environ, TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="2")
  result = subprocess.run(
      [sys.executable, "-m", "ocr_tf.main", "preview", "--config=configs/tiny.py", f"--count={COUNT}",
       f"--out={out}", *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
      check=False)
  assert result.returncode == 0, result.stderr
  assert f"wrote {len(expected_files(COUNT))} files to {out}" in result.stdout


def digests(folder: str) -> dict[str, str]:
  out = {}
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as f:
      out[name] = hashlib.sha256(f.read()).hexdigest()
  return out


def read_png(path: str) -> np.ndarray:
  return tf.io.decode_png(tf.io.read_file(path)).numpy()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_gen):
  """The same preview twice: by the command line (its default batch), and in this process one sample per batch."""
  folders = {name: str(tmp_path_factory.mktemp(name)) for name in ("first", "batch1")}
  run_preview(folders["first"])
  assert tiny_gen.seed == configs.tiny.get_config().data.seed  # the stream the command line previews
  preview.write_preview(tiny_gen, folders["batch1"], COUNT, batch_size=1, log=lambda _: None)
  return folders


@pytest.fixture(scope="module")
def in_process(tiny_gen):
  return to_numpy(tiny_gen.generate(list(range(COUNT))))


def test_writes_every_file(runs):
  assert set(os.listdir(runs["first"])) == expected_files(COUNT)


def test_another_process_and_batch_size_do_not_change_a_byte(runs):
  assert digests(runs["first"]) == digests(runs["batch1"])


def test_images(runs, tiny_gen, in_process):
  folder = runs["first"]
  batch = in_process
  h, w = tiny_gen.H, tiny_gen.W
  for i in range(COUNT):
    sample = read_png(os.path.join(folder, f"sample_{i}.png"))
    boxed = read_png(os.path.join(folder, f"sample_with_boxes_{i}.png"))
    clean = read_png(os.path.join(folder, f"clean_{i}.png"))
    for img in (sample, boxed, clean):
      assert img.shape == (h, w, 3) and img.dtype == np.uint8
    assert (sample == boxed).all(axis=-1).mean() < 1.0, "no box was drawn"
    assert (sample == boxed).all(axis=-1).mean() > 0.5
    np.testing.assert_array_equal(clean, preview.to_uint8_rgb(batch["clean"][i]))
    np.testing.assert_array_equal(sample, preview.to_uint8_rgb(batch["image"][i]))
  sheet = read_png(os.path.join(folder, "contact_sheet.png"))
  assert sheet.shape[0] >= h and sheet.shape[1] >= COUNT * w


def test_labels_and_csv(runs, tiny_gen, in_process):
  folder = runs["first"]
  batch = in_process
  with open(os.path.join(folder, "labels.jsonl")) as f:
    labels = [json.loads(line) for line in f]
  with open(os.path.join(folder, "strings_and_angles.csv"), newline="") as f:
    rows = list(csv.reader(f))
  assert rows[0] == ["string", "angle"]
  assert len(labels) == len(rows) - 1 == COUNT
  for i, (label, row) in enumerate(zip(labels, rows[1:])):
    assert {"text", "angle", "letter_quads", "image_size"} <= set(label)
    text = batch["text"][i].decode("utf-8")
    n = len(text)
    assert label["text"] == row[0] == text
    assert label["image_size"] == [tiny_gen.W, tiny_gen.H]
    assert abs(label["angle"] - float(row[1])) < 1e-4
    assert abs(label["angle"] - batch["angle"][i]) < 1e-4
    quads = np.array(label["letter_quads"])
    assert quads.shape == (n, 4, 2)
    np.testing.assert_allclose(quads, batch["letter_quads"][i, :n], atol=1e-3)

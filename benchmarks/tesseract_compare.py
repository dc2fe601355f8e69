r"""An exported ocr_tf model next to Tesseract on the same word images: speed and accuracy.

  # word images of a labelled folder (labels.tsv: filename<TAB>text)
  python benchmarks/tesseract_compare.py --model=WORKDIR/export --data=FOLDER
  # or N validation samples of the model's own config, written as PNGs first
  python benchmarks/tesseract_compare.py --model=WORKDIR/export --samples=200

Tesseract (Debian's tesseract-ocr with the eng model; `apt-get install
tesseract-ocr`) is run the way a word image is usually given to it: one
process per image, `--psm 8` (a single word) and `tessedit_char_whitelist` set
to the model's charset. ocr_tf reads the same files through its SavedModel
(``serving_default`` on the encoded bytes, batches of --batch_size, after one
untimed warm-up batch). Both times cover reading the files and everything up
to the text. The last line is

  tesseract_images_per_second=... ocr_tf_images_per_second=... speed_ratio=... tesseract_cer=... ocr_tf_cer=...

Text is compared exactly (case and all); CER is summed edit distances over
summed label lengths.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tesseract_lib  # noqa: E402  pylint: disable=wrong-import-position

_MODEL = flags.DEFINE_string("model", None, "SavedModel folder (ocr-tf train's WORKDIR/export).", required=True)
_DATA = flags.DEFINE_string("data", None, "Labelled folder; default: --samples validation samples.")
_SAMPLES = flags.DEFINE_integer("samples", 200, "Validation samples to write when --data is not given.")
_BATCH = flags.DEFINE_integer("batch_size", 32, "ocr_tf batch size.", lower_bound=1)
_LIMIT = flags.DEFINE_integer("limit", 0, "Use at most this many rows (0: all).", lower_bound=0)
_TESSERACT = flags.DEFINE_string("tesseract", "tesseract", "The tesseract command.")
_PSM = flags.DEFINE_integer("psm", 8, "Tesseract page segmentation mode (8: one word).")


def write_validation_samples(model_dir: str, count: int, out: str) -> None:
  """The first `count` validation samples of the model's training config, as PNGs with labels.tsv."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from ocr_tf import input_pipeline, train  # pylint: disable=import-outside-toplevel

  config = train.load_run_config(os.path.join(model_dir, "assets"))
  gen = input_pipeline.make_generator(config.data, validation=True)
  rows = []
  for batch in input_pipeline.validation_dataset(gen, count, min(count, 50)):
    for image, text, index in zip(batch["image"].numpy(), batch["text"].numpy(), batch["index"].numpy()):
      name = f"val_{index:06d}.png"
      png = tf.io.encode_png(np.round(image * 255).astype(np.uint8)).numpy()
      with open(os.path.join(out, name), "wb") as f:
        f.write(png)
      rows.append(f"{name}\t{text.decode()}")
  with open(os.path.join(out, "labels.tsv"), "w", encoding="utf-8") as f:
    f.write("\n".join(rows) + "\n")


def run_tesseract(paths: list[str], charset: str) -> tuple[list[str], float]:
  return tesseract_lib.run_tesseract(paths, charset, _TESSERACT.value, _PSM.value)


cer = tesseract_lib.cer


def main(argv):
  del argv
  if shutil.which(_TESSERACT.value) is None:
    sys.exit(f"tesseract_compare: error: {_TESSERACT.value!r} not found (apt-get install tesseract-ocr)")
  from ocr_tf import predict  # pylint: disable=import-outside-toplevel

  with open(os.path.join(_MODEL.value, "assets", "charset.txt"), encoding="utf-8") as f:
    charset = f.read()
  tmp = None
  data = _DATA.value
  if not data:
    tmp = tempfile.mkdtemp(prefix="tesseract_compare_")
    write_validation_samples(_MODEL.value, _SAMPLES.value, tmp)
    data = tmp
  try:
    rows, problems = predict.read_labels(data)
    if problems:
      print(f"tesseract_compare: {len(problems)} bad rows in labels.tsv left out; first: {problems[0]}")
    if _LIMIT.value:
      rows = rows[:_LIMIT.value]
    paths, truths = [p for p, _, _ in rows], [t for _, t, _ in rows]

    model = predict.load_model(_MODEL.value)
    list(predict.predict_files(model, paths[:_BATCH.value], batch_size=_BATCH.value))  # warm-up
    began = time.perf_counter()
    preds = list(predict.predict_files(model, paths, batch_size=_BATCH.value))
    ours_seconds = time.perf_counter() - began
    failed = [p.file for p in preds if not p.ok]
    if failed:
      print(f"tesseract_compare: ocr_tf could not read {len(failed)} file(s), first {failed[0]}")
    ours = [p.text if p.ok else "" for p in preds]

    theirs, theirs_seconds = run_tesseract(paths, charset)
  finally:
    if tmp:
      shutil.rmtree(tmp, ignore_errors=True)

  n = len(paths)
  version = subprocess.run([_TESSERACT.value, "--version"], capture_output=True, text=True,
                           check=False).stdout.splitlines()[:1]
  print(f"{n} images from {data if not tmp else 'the validation stream'}; {version[0] if version else 'tesseract'}"
        f" --psm {_PSM.value}, one process per image; ocr_tf batch {_BATCH.value}")
  for label, texts, seconds in (("tesseract", theirs, theirs_seconds), ("ocr_tf", ours, ours_seconds)):
    exact = sum(a == b for a, b in zip(texts, truths)) / max(n, 1)
    print(f"{label}: {n / seconds:.1f} images/s, word accuracy {exact:.4f}, CER {cer(texts, truths):.4f}")
  print(f"tesseract_images_per_second={n / theirs_seconds:.2f} ocr_tf_images_per_second={n / ours_seconds:.2f} "
        f"speed_ratio={theirs_seconds / ours_seconds:.1f} tesseract_cer={cer(theirs, truths):.4f} "
        f"ocr_tf_cer={cer(ours, truths):.4f}")


if __name__ == "__main__":
  app.run(main)

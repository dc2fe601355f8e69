r"""ocr_tf against Tesseract on the real word sets of benchmarks/real_words.py.

  python benchmarks/real_words.py --out=/tmp/real_words --trdg_python=...
  python benchmarks/real_eval.py --model=ocr_tf/assets/default_model --data=/tmp/real_words

For each set folder under --data (clean, degraded, unseen_fonts; any folder
with labels.tsv) it prints, for ocr_tf and for Tesseract (Debian's
tesseract-ocr, eng model, --psm 8, the model's charset as whitelist, one
process per image, as in benchmarks/tesseract_lib.py): character error
rate (summed edit distances over summed label lengths), word accuracy and
images per second. ocr_tf reads as `ocr-tf predict` does, with the shipped
word list correcting unsure readings (--lexicon; ocr_tf_raw_cer is the CER
of the model's own readings); where the set has angles.tsv, ocr_tf's angle mean
absolute error, also per word length, and on the degraded set both CERs per
degradation. It also reads a blank page, a blank black image and a
one-pixel image to show what the model returns for images without text.

Tesseract's texts are cached per set in tesseract_<version>.tsv next to the
labels (its output does not change between runs), so later runs only time
it on --speed_images images. The last lines are one key=value line per set:

  set=clean n=... ocr_tf_cer=... ocr_tf_raw_cer=... tesseract_cer=... ocr_tf_word_accuracy=... ...
  speed: tesseract_images_per_second=... ocr_tf_images_per_second=... speed_ratio=...

--json writes all figures to a file as well.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time

from absl import app, flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tesseract_lib  # noqa: E402  pylint: disable=wrong-import-position

_MODEL = flags.DEFINE_string("model", None, "Exported SavedModel folder (default: the shipped model).")
_DATA = flags.DEFINE_string("data", None, "Folder of set folders (real_words.py --out).", required=True)
_SETS = flags.DEFINE_list("sets", ["clean", "degraded", "unseen_fonts"], "Set folders under --data.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "ocr_tf batch size.", lower_bound=1)
_SPEED = flags.DEFINE_integer("speed_images", 300, "Images of the first set that both are timed on.",
                              lower_bound=1)
_LIMIT = flags.DEFINE_integer("limit", 0, "Use the first N images of each set (0: all).", lower_bound=0)
_JSON = flags.DEFINE_string("json", "", "Also write the figures here.")
_SHOW = flags.DEFINE_integer("show_errors", 8, "ocr_tf misreadings printed per set.", lower_bound=0)
_LEXICON = flags.DEFINE_string("lexicon", "words", "ocr_tf's word list ('words', a file, or 'none'), as ocr-tf "
                               "predict's --lexicon.")
_BONUS = flags.DEFINE_float("lexicon_bonus", None, "Nats a word-list word may lose and still replace the reading "
                            "(default: ocr_tf.lexicon.DEFAULT_BONUS).")


def tesseract_texts(folder: str, names: list[str], paths: list[str], charset: str) -> list[str]:
  """Tesseract's reading of every image, from the cache when it has them all."""
  version = tesseract_lib.version()
  cache = os.path.join(folder, "tesseract_" + re.sub(r"[^0-9A-Za-z.]+", "_", version) + ".tsv")
  known: dict[str, str] = {}
  if os.path.exists(cache):
    with open(cache, encoding="utf-8") as f:
      for line in f:
        name, _, text = line.rstrip("\n").partition("\t")
        known[name] = text
  todo = [i for i, n in enumerate(names) if n not in known]
  if todo:
    print(f"  tesseract: reading {len(todo)} images of {os.path.basename(folder)} ...", flush=True)
    for start in range(0, len(todo), 100):
      chunk = todo[start:start + 100]
      texts, _ = tesseract_lib.run_tesseract([paths[i] for i in chunk], charset)
      with open(cache, "a", encoding="utf-8") as f:
        for i, text in zip(chunk, texts):
          known[names[i]] = text
          f.write(f"{names[i]}\t{text}\n")
  return [known[n] for n in names]


def _angles(folder: str) -> dict[str, float]:
  path = os.path.join(folder, "angles.tsv")
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    return {name: float(v) for name, v in (line.rstrip("\n").split("\t") for line in f if line.strip())}


LENGTH_GROUPS = ((1, 1), (2, 2), (3, 3), (4, 5), (6, 1000))


def _angle_by_length(names, truths, preds, angles) -> dict:
  """Angle mean absolute error per word length (short words carry little evidence of their angle)."""
  out = {}
  for lo, hi in LENGTH_GROUPS:
    errs = [abs(p.angle - angles[nm]) for nm, t, p in zip(names, truths, preds)
            if p.ok and nm in angles and lo <= len(t) <= hi]
    if errs:
      out[f"{lo}-{hi}" if hi < 1000 else f"{lo}+"] = {"n": len(errs), "mae": float(np.mean(errs))}
  return out


def _by_source(data: str, names, truths, ours, theirs, column: int = 1, split: bool = False) -> dict:
  """CER of both per group of sources.tsv (real_words.py): column 1 the source document, 5 the degradations
  (with split, each image counts in the group of every '+'-joined name it has)."""
  path = os.path.join(data, "sources.tsv")
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    source = {row[0]: row[column] for row in (line.rstrip("\n").split("\t") for line in list(f)[1:])
              if len(row) > column}
  groups: dict = {}
  for name, t, o, th in zip(names, truths, ours, theirs):
    if name not in source:
      continue
    for key in source[name].split("+") if split else [source[name]]:
      groups.setdefault(key, []).append((t, o, th))
  return {src: {"n": len(rows), "ocr_tf_cer": tesseract_lib.cer([o for _, o, _ in rows], [t for t, _, _ in rows]),
                "tesseract_cer": tesseract_lib.cer([th for _, _, th in rows], [t for t, _, _ in rows])}
          for src, rows in sorted(groups.items())}


def blank_images(model, out: dict) -> None:
  """What the model says of images with no text."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from ocr_tf import predict  # pylint: disable=import-outside-toplevel
  tmp = tempfile.mkdtemp(prefix="real_eval_blank_")
  try:
    files = []
    for name, array in (("white_32x128", np.full((32, 128, 1), 255, np.uint8)),
                        ("black_40x200", np.zeros((40, 200, 1), np.uint8)),
                        ("grey_noise_30x90", np.clip(np.random.default_rng(0).normal(200, 6, (30, 90, 1)),
                                                     0, 255).astype(np.uint8)),
                        ("one_pixel", np.full((1, 1, 1), 255, np.uint8))):
      path = os.path.join(tmp, name + ".png")
      with open(path, "wb") as f:
        f.write(tf.io.encode_png(array).numpy())
      files.append(path)
    for p in predict.predict_files(model, files):
      name = os.path.basename(p.file)[:-4]
      out[name] = {"text": p.text, "confidence": round(p.confidence, 4)} if p.ok else {"error": p.error}
      print(f"  blank {name}: " + (f"text={p.text!r} confidence={p.confidence:.3f}" if p.ok else p.error))
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
  del argv
  from ocr_tf import predict  # pylint: disable=import-outside-toplevel
  model_dir = _MODEL.value or predict.default_model_path()
  with open(os.path.join(model_dir, "assets", "charset.txt"), encoding="utf-8") as f:
    charset = f.read()
  model = predict.load_model(model_dir)
  from ocr_tf import lexicon  # pylint: disable=import-outside-toplevel
  words = lexicon.load(_LEXICON.value, charset,
                       lexicon.DEFAULT_BONUS if _BONUS.value is None else _BONUS.value)
  if words is not None and predict.model_charset(model) is None:
    print("the model does not export text_log_probs: its readings are not corrected with the word list")
  # The shipped model is named by its path inside the package, not by where this checkout is.
  package_parent = os.path.dirname(os.path.dirname(os.path.abspath(predict.__file__)))
  shown = model_dir if _MODEL.value else os.path.relpath(predict.DEFAULT_MODEL, package_parent)
  results: dict = {"model": shown, "tesseract": tesseract_lib.version(), "sets": {},
                   "lexicon": _LEXICON.value, "lexicon_bonus": None if words is None else words.bonus}
  speed_paths: list[str] = []
  for set_name in _SETS.value:
    folder = os.path.join(_DATA.value, set_name)
    if not os.path.exists(os.path.join(folder, "labels.tsv")):
      print(f"{set_name}: no labels.tsv in {folder}, skipped")
      continue
    rows, problems = predict.read_labels(folder)
    if problems:
      print(f"{set_name}: {len(problems)} bad rows left out; first: {problems[0]}")
    rows = rows[:_LIMIT.value] if _LIMIT.value else rows
    paths, truths = [p for p, _, _ in rows], [t for _, t, _ in rows]
    names = [os.path.basename(p) for p in paths]
    speed_paths = speed_paths or paths[:_SPEED.value]
    preds = predict.predict_files(model, paths, batch_size=_BATCH.value, lexicon=words)
    ours = [p.text if p.ok else "" for p in preds]
    raw = [p.raw_text if p.ok else "" for p in preds]
    theirs = tesseract_texts(folder, names, paths, charset)
    n = len(paths)
    r = {"n": n,
         "ocr_tf_cer": tesseract_lib.cer(ours, truths),
         "ocr_tf_raw_cer": tesseract_lib.cer(raw, truths),
         "tesseract_cer": tesseract_lib.cer(theirs, truths),
         "ocr_tf_word_accuracy": sum(a == b for a, b in zip(ours, truths)) / n,
         "tesseract_word_accuracy": sum(a == b for a, b in zip(theirs, truths)) / n,
         "unreadable": sum(not p.ok for p in preds)}
    angles = _angles(folder)
    if angles:
      errs = [abs(p.angle - angles[nm]) for p, nm in zip(preds, names) if p.ok and nm in angles]
      r["angle_mae"] = float(np.mean(errs)) if errs else float("nan")
      r["angle_within_1deg"] = float(np.mean(np.array(errs) <= 1.0)) if errs else float("nan")
      r["angle_mae_by_length"] = _angle_by_length(names, truths, preds, angles)
      for group, v in r["angle_mae_by_length"].items():
        print(f"  {set_name} angle, {group} letters: n={v['n']} mae={v['mae']:.3f}")
      by_degradation = _by_source(_DATA.value, names, truths, ours, theirs, column=5, split=True)
      if by_degradation:
        r["by_degradation"] = by_degradation
        for kind, v in by_degradation.items():
          print(f"  {set_name} with {kind}: n={v['n']} ocr_tf_cer={v['ocr_tf_cer']:.4f} "
                f"tesseract_cer={v['tesseract_cer']:.4f}")
    by_source = _by_source(_DATA.value, names, truths, ours, theirs)
    if by_source:
      r["by_source"] = by_source
      for src, v in by_source.items():
        print(f"  {set_name} {src}: n={v['n']} ocr_tf_cer={v['ocr_tf_cer']:.4f} tesseract_cer={v['tesseract_cer']:.4f}")
    results["sets"][set_name] = r
    wrong = [(nm, t, o) for nm, t, o in zip(names, truths, ours) if t != o]
    for nm, t, o in wrong[:_SHOW.value]:
      print(f"  {set_name} {nm}: {t!r} read as {o!r}")
    print(f"set={set_name} " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                        for k, v in r.items() if not isinstance(v, dict)), flush=True)
  # Speed: both read the same files, ocr_tf in batches after a warm-up batch.
  predict.predict_files(model, speed_paths[:_BATCH.value], batch_size=_BATCH.value, lexicon=words)
  began = time.perf_counter()
  predict.predict_files(model, speed_paths, batch_size=_BATCH.value, lexicon=words)
  ours_s = time.perf_counter() - began
  _, theirs_s = tesseract_lib.run_tesseract(speed_paths, charset)
  n = len(speed_paths)
  results["speed"] = {"images": n, "ocr_tf_images_per_second": n / ours_s,
                      "tesseract_images_per_second": n / theirs_s, "speed_ratio": theirs_s / ours_s}
  results["blank"] = {}
  blank_images(model, results["blank"])
  print(f"speed: images={n} " + " ".join(f"{k}={v:.2f}" for k, v in results["speed"].items() if k != "images"))
  if _JSON.value:
    with open(_JSON.value, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  app.run(main)

r"""Exports a training run as the model shipped in the package (ocr_tf/assets/default_model).

  python benchmarks/ship_model.py --workdir=RUN [--out=ocr_tf/assets/default_model]

Exports RUN's newest checkpoint with `ocr-tf export`'s code, then makes the
exported config portable: a corpus that is a copy of a shipped one is named
('words') instead of given by its path, and train.init_from (a folder of the
machine that trained it) is replaced by the text of --init_from_note. Prints
the folder's size; the package allows at most --max_mb.
"""

from __future__ import annotations

import filecmp
import functools
import json
import os
import shutil
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WORKDIR = flags.DEFINE_string("workdir", None, "The training run.", required=True)
_OUT = flags.DEFINE_string("out", os.path.join(ROOT, "ocr_tf", "assets", "default_model"), "Where to export.")
_NOTE = flags.DEFINE_string("init_from_note", "the stage-1 run (see MODEL_CARD.md)",
                            "What train.init_from becomes in the shipped config.")
_MIRROR = flags.DEFINE_bool("angle_mirror", False,
                            "Export with the mirror-averaged angle (serving.export_saved_model).")
_VIEWS = flags.DEFINE_integer("angle_views", 1, "Export with the angle averaged over this many moved copies of "
                              "the image (serving.export_saved_model).")
_MAX_MB = flags.DEFINE_float("max_mb", 20.0, "Largest size allowed.")


def folder_mb(path: str) -> float:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files) / 2**20


def main(argv):
  del argv
  from ocr_tf import assets, serving, train  # pylint: disable=import-outside-toplevel
  from ocr_tf import config as config_lib  # pylint: disable=import-outside-toplevel
  shutil.rmtree(_OUT.value, ignore_errors=True)
  _, step = train.export_workdir(_WORKDIR.value, _OUT.value, functools.partial(
      serving.export_saved_model, angle_mirror=_MIRROR.value, angle_views=_VIEWS.value))
  path = os.path.join(_OUT.value, "assets", "config.json")
  with open(path, encoding="utf-8") as f:
    saved = json.load(f)
  config = config_lib.upgrade(saved)
  corpus = config.data.corpus
  for name, shipped in assets.SHIPPED_CORPORA.items():
    if corpus and os.path.isfile(corpus) and filecmp.cmp(corpus, shipped, shallow=False):
      saved["data"]["corpus"] = name
  if config.train.init_from:
    saved["train"]["init_from"] = _NOTE.value
  with open(path, "w", encoding="utf-8") as f:
    json.dump(saved, f, indent=2, sort_keys=True, ensure_ascii=False)
    f.write("\n")
  size = folder_mb(_OUT.value)
  print(f"exported step {step} of {_WORKDIR.value} to {_OUT.value}: {size:.2f} MB")
  if size > _MAX_MB.value:
    sys.exit(f"ship_model: {size:.2f} MB is more than --max_mb={_MAX_MB.value}")


if __name__ == "__main__":
  app.run(main)

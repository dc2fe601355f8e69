"""``labels.tsv``: the ``filename<TAB>text`` lines of a folder of labelled images (no TensorFlow).

``ocr-tf evaluate`` measures a model on such a folder (ocr_tf.predict) and
training mixes one into its stream (ocr_tf.real_data); both read it here.
"""

from __future__ import annotations

import os

LABELS_FILE = "labels.tsv"


class LabelsError(Exception):
  """A folder's labels.tsv is missing or cannot be read; the message names the file."""


def read_labels(data_dir: str) -> tuple[list[tuple[str, str, int]], list[str]]:
  """The rows of data_dir/labels.tsv as (path, text, line number), and the problems of bad rows.

  Blank lines are skipped; the text is everything after the first tab.

  Args:
    data_dir: the folder holding labels.tsv; the paths returned are joined to it.

  Returns:
    (rows, problems): rows as (path, text, line number); one line per bad row,
    ``labels.tsv:LINE: reason``.

  Raises:
    LabelsError: no labels.tsv, or it cannot be read as UTF-8.
  """
  path = os.path.join(data_dir, LABELS_FILE)
  try:
    with open(path, encoding="utf-8-sig") as f:
      lines = f.read().split("\n")
  except FileNotFoundError:
    raise LabelsError(f"{path}: no such file (expected filename<TAB>text lines)") from None
  except UnicodeDecodeError as e:
    raise LabelsError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
  except OSError as e:
    raise LabelsError(f"{path}: cannot read ({e.strerror or e})") from None
  rows, problems = [], []
  for number, line in enumerate(lines, 1):
    line = line.rstrip("\r")
    if not line.strip():
      continue
    name, tab, text = line.partition("\t")
    if not tab:
      problems.append(f"{LABELS_FILE}:{number}: expected filename<TAB>text, got {line[:80]!r}")
    elif not name.strip():
      problems.append(f"{LABELS_FILE}:{number}: empty filename")
    else:
      rows.append((os.path.join(data_dir, name), text, number))
  return rows, problems

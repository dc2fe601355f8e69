"""The files of a training workdir: config.json, metrics.jsonl and the sample-index log.

``config.json`` is the config of the first start (:func:`save_config`); a
later start is checked against it (:func:`check_workdir`) and ``ocr-tf
export`` rebuilds the model from it (:func:`load_run_config`).
``metrics.jsonl`` holds one JSON object per evaluation (:func:`read_metrics`);
a resumed run drops those newer than its checkpoint. With
``train.log_indices``, :class:`IndexLog` writes the sample indices of every step.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import ml_collections
import numpy as np
import tensorflow as tf

from ocr_tf import config as config_lib
from ocr_tf import files
from ocr_tf.config import ConfigError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
# `train` fields a resumed run may change: they change neither the samples nor the updates.
RESUMABLE_TRAIN_FIELDS = ("steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints",
                          "eval_samples", "eval_batch_size", "num_images", "letter_threshold",
                          "num_cpu_devices", "jit_compile", "log_indices")
INDEX_LOG = "indices.tsv"  # train.log_indices: step<TAB>comma-separated sample indices, one line per step
# `data` fields a resumed run may change: where the samples are made, not what they are.
RESUMABLE_DATA_FIELDS = ("data_service_address", "data_service_on_loss", "data_service_lookahead",
                         "data_service_timeout")


# ------------------------------------------------------------------ config.json


def config_json(config: ml_collections.ConfigDict) -> dict:
  """The config as the plain JSON tree config.json holds."""
  return json.loads(config.to_json_best_effort(sort_keys=True))


def flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
  """A nested mapping as {'block.field': value}."""
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping):
      out.update(flatten(value, f"{name}."))
    else:
      out[name] = value
  return out


def check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Raises ConfigError (one line) when workdir holds a run whose config differs.

  Only ``train.steps`` and the logging, evaluation, checkpoint and device
  fields (RESUMABLE_TRAIN_FIELDS) may differ: anything else would change the
  samples or the updates of the run being continued.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    return
  try:
    with tf.io.gfile.GFile(path) as f:
      saved = flatten(json.load(f))
  except (ValueError, tf.errors.OpError) as e:
    raise ConfigError(f"{path}: unreadable config of a previous run ({type(e).__name__}: {e})") from None
  current = flatten(config_json(config))
  free = {f"train.{name}" for name in RESUMABLE_TRAIN_FIELDS} | {f"data.{name}" for name in RESUMABLE_DATA_FIELDS}
  missing = "<absent>"
  # A field added to ocr_tf after the run started is absent there: it matches when it keeps its default.
  defaults = flatten(config_json(config_lib.get_config()))
  diffs = sorted(k for k in saved.keys() | current.keys()
                 if k not in free and saved.get(k, defaults.get(k, missing)) != current.get(k, missing))
  if diffs:
    k = diffs[0]
    more = f" (and {len(diffs) - 1} more field(s))" if len(diffs) > 1 else ""
    raise ConfigError(f"workdir {workdir} holds a run with another config: {k}={saved.get(k, missing)!r} "
                      f"there, {current.get(k, missing)!r} here{more}; use a new --workdir, or the same "
                      f"config (a resumed run may change only train.steps and the logging, evaluation "
                      f"and checkpoint fields)")


def save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes workdir/config.json at the first start (atomically); kept as is afterwards."""
  path = os.path.join(workdir, CONFIG_FILE)
  if tf.io.gfile.exists(path):
    return
  tf.io.gfile.makedirs(workdir)
  files.atomic_write(path, config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run in workdir was started with (workdir/config.json); ConfigError if absent or unreadable."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise ConfigError(f"{path}: not found (is {workdir} a training workdir?)")
  try:
    with tf.io.gfile.GFile(path) as f:
      raw = json.load(f)
  except (ValueError, TypeError, tf.errors.OpError) as e:
    raise ConfigError(f"{path}: unreadable config ({type(e).__name__}: {e})") from None
  return config_lib.checked(config_lib.upgrade(raw))


# ------------------------------------------------------------------ metrics.jsonl


def read_metrics(workdir: str) -> list[dict]:
  """The evaluations recorded in workdir/metrics.jsonl (an unfinished last line is skipped)."""
  path = os.path.join(workdir, METRICS_FILE)
  if not tf.io.gfile.exists(path):
    return []
  records = []
  with tf.io.gfile.GFile(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except ValueError:
        continue
      if isinstance(record, dict) and "step" in record:
        records.append(record)
  return records


def keep_metrics_up_to(workdir: str, step: int, write: bool) -> list[dict]:
  """The evaluations up to the restored step.

  With `write`, newer ones are dropped from the file: the resumed run makes them again.
  """
  records = read_metrics(workdir)
  kept = [r for r in records if r["step"] <= step]
  path = os.path.join(workdir, METRICS_FILE)
  if write and tf.io.gfile.exists(path) and len(kept) != len(records):
    files.atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
  return kept


def append_metrics(workdir: str, record: dict) -> None:
  """Adds one evaluation (a JSON object on one line) to workdir/metrics.jsonl."""
  with tf.io.gfile.GFile(os.path.join(workdir, METRICS_FILE), "a") as f:
    f.write(json.dumps(record, sort_keys=True) + "\n")


# ------------------------------------------------------------------ the index log


def index_log_path(workdir: str, chief: bool, task: str) -> str:
  """Where a process logs its sample indices: INDEX_LOG for the chief, indices.TASK.tsv for the others."""
  name = INDEX_LOG if chief else INDEX_LOG.replace(".tsv", f".{task.replace(':', '')}.tsv")
  return os.path.join(workdir, name)


class IndexLog:
  """train.log_indices: the sample indices of every step the run stands on (one line a step).

  At a start, lines after the restored step are dropped: those steps are
  trained again. So the file always lists each step once, with the indices
  the weights have actually been trained on.
  """

  def __init__(self, path: str, start_step: int):
    self.path = path
    kept = []
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        for line in f:
          head = line.split("\t", 1)[0]
          if line.endswith("\n") and head.isdigit() and int(head) <= start_step:
            kept.append(line)
    files.atomic_write(path, "".join(kept))
    self._file = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with

  def write(self, step: int, indices: np.ndarray) -> None:
    self._file.write(f"{step}\t{','.join(str(int(i)) for i in indices)}\n")
    self._file.flush()

  def close(self) -> None:
    self._file.close()


def read_index_log(path: str) -> dict[int, list[int]]:
  """step -> indices of an IndexLog file."""
  out = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      step, _, rest = line.rstrip("\n").partition("\t")
      out[int(step)] = [int(v) for v in rest.split(",") if v]
  return out

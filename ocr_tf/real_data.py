"""Labelled real images, mixed into the synthetic stream for fine-tuning, and evaluated as their own source.

A folder holds image files (PNG, JPEG, GIF, BMP) and ``labels.tsv``, one
``filename<TAB>text`` line per image (the format ``ocr-tf evaluate`` reads).
:func:`load_folder` reads and checks it once, before any training: rows whose
file cannot be decoded, whose text is empty, longer than ``data.max_length``
or has characters outside the charset are left out with a reason, and a
folder left with nothing is a ConfigError.

Real samples follow the sample contract (ocr_tf.synth) so that they batch with
synthetic ones: ``image`` is the file put into the model's input exactly as the
serving signature does it (ocr_tf.serving.preprocess.fit_image: scaled to fit, centred,
padded with the border colour), ``text``, ``labels`` and ``label_length`` come
from labels.tsv, and the fields a real image has no truth for (``clean``,
``angle``, the letter quads and boxes) are filled with neutral values. The
extra field ``source`` (int32: 0 synthetic, 1 real) tells the losses to train
only the text head on real samples (ocr_tf.losses).

:class:`MixedSource` decides per sample index whether it is real and which
row it shows, by a stateless draw from (mix seed, index): the mixed stream is
still a pure function of (config, atlas, folder, seed, index), so resuming
and sharding over replicas work as for the synthetic stream. Files are read
when their sample is made; they are never all held in memory.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import ml_collections
import numpy as np
import tensorflow as tf

from ocr_tf import charset as charset_lib
from ocr_tf import labels as labels_lib
from ocr_tf.config import ConfigError
from ocr_tf.labels import LABELS_FILE
from ocr_tf.serving.preprocess import fit_image

SYNTHETIC, REAL = 0, 1
_MIX_SEED_OFFSET = 0x5EA1  # the mix draws use (data.seed + this, index): not the synthetic streams' seeds


@dataclasses.dataclass
class RealSet:
  """The usable rows of a labelled folder: file paths, texts, padded charset ids and lengths."""
  folder: str
  paths: list[str]
  texts: list[str]
  labels: np.ndarray  # int32 [N, L]
  lengths: np.ndarray  # int32 [N]
  skipped: list[str]  # one line per row left out: "labels.tsv:LINE: reason"

  def __len__(self) -> int:
    return len(self.paths)


def _decodes(path: str) -> str | None:
  """None if path decodes as an image of at least 1x1 pixels, else the problem."""
  try:
    data = tf.io.read_file(path)
  except (tf.errors.OpError, OSError) as e:
    return f"cannot read {os.path.basename(path)} ({type(e).__name__})"
  if int(tf.strings.length(data)) == 0:
    return f"{os.path.basename(path)} is empty"
  try:
    image = tf.io.decode_image(data, expand_animations=False)
  except tf.errors.OpError:
    return f"{os.path.basename(path)} is not a readable PNG, JPEG, GIF or BMP image"
  if int(tf.reduce_prod(tf.shape(image)[:2])) == 0:
    return f"{os.path.basename(path)} has no pixels"
  return None


def load_folder(folder: str, chars: str, max_length: int, field: str = "data.real_dir",
                log: Callable[[str], None] | None = None) -> RealSet:
  """Reads and checks folder/labels.tsv and its images (each decoded once).

  Raises:
    ConfigError: no folder or labels.tsv, or no usable row (one line, naming `field`).
  """
  if not os.path.isdir(folder):
    raise ConfigError(f"{field}={folder!r}: no such folder")
  try:
    rows, problems = labels_lib.read_labels(folder)
  except labels_lib.LabelsError as e:
    raise ConfigError(f"{field}={folder!r}: {e}") from None
  charset = charset_lib.Charset(chars)
  paths, texts, skipped = [], [], list(problems)
  for i, (path, text, line) in enumerate(rows):
    if log and i and i % 1000 == 0:
      log(f"{field}: checked {i}/{len(rows)} images")
    bad = sorted({c for c in text if c not in chars})
    if not text:
      skipped.append(f"{LABELS_FILE}:{line}: empty text")
    elif bad:
      skipped.append(f"{LABELS_FILE}:{line}: characters outside the charset: {''.join(bad)!r}")
    elif len(text) > max_length:
      skipped.append(f"{LABELS_FILE}:{line}: {len(text)} characters, more than data.max_length={max_length}")
    else:
      problem = _decodes(path)
      if problem:
        skipped.append(f"{LABELS_FILE}:{line}: {problem}")
      else:
        paths.append(path)
        texts.append(text)
  if not paths:
    first = f" (first problem: {skipped[0]})" if skipped else ""
    raise ConfigError(f"{field}={folder!r}: no usable labelled image in {LABELS_FILE}{first}")
  labels = np.zeros((len(paths), max_length), np.int32)
  lengths = np.zeros((len(paths),), np.int32)
  for i, text in enumerate(texts):
    labels[i, :len(text)] = charset.encode(text)
    lengths[i] = len(text)
  return RealSet(folder, paths, texts, labels, lengths, skipped)


def load_from_config(data_cfg: ml_collections.ConfigDict, which: str = "real_dir",
                     log: Callable[[str], None] | None = None) -> RealSet | None:
  """The RealSet of data.real_dir (or data.real_validation_dir); None when the field is empty."""
  folder = data_cfg[which]
  if not folder:
    return None
  real = load_folder(folder, data_cfg.charset, int(data_cfg.max_length), field=f"data.{which}", log=log)
  if real.skipped and log:
    log(f"data.{which}: {len(real)} images used, {len(real.skipped)} rows left out; first: {real.skipped[0]}")
  return real


class RealSource:
  """Row j of a RealSet as a sample (`sample(j)`, for Dataset.map), shaped like `like`'s samples.

  Args:
    real: the rows.
    data_cfg: the data block (image height, width, channels).
    element_spec: the synthetic samples' spec (dict of tf.TensorSpec); fields
      a real image has no truth for get neutral values of that spec.
  """

  def __init__(self, real: RealSet, data_cfg: ml_collections.ConfigDict, element_spec: dict):
    self.real = real
    self.height, self.width, self.channels = int(data_cfg.height), int(data_cfg.width), int(data_cfg.channels)
    self.spec = dict(element_spec)
    self._paths = tf.constant(real.paths)
    self._texts = tf.constant(real.texts)
    self._labels = tf.constant(real.labels)
    self._lengths = tf.constant(real.lengths)

  def __len__(self) -> int:
    return len(self.real)

  def row_sample(self, row: tf.Tensor, index: tf.Tensor) -> dict:
    """Row `row` as sample number `index` of the stream."""
    data = tf.io.read_file(tf.gather(self._paths, row))
    image = tf.io.decode_image(data, expand_animations=False, dtype=tf.float32)
    fitted, _ = fit_image(image[None], self.height, self.width, self.channels)
    out = {key: tf.zeros(spec.shape, spec.dtype) for key, spec in self.spec.items()}
    out["image"] = fitted[0]
    out["clean"] = tf.ones_like(out["clean"])  # white: no truth
    out["text"] = tf.gather(self._texts, row)
    out["labels"] = tf.cast(tf.gather(self._labels, row), self.spec["labels"].dtype)
    out["label_length"] = tf.cast(tf.gather(self._lengths, row), self.spec["label_length"].dtype)
    out["index"] = tf.cast(index, self.spec["index"].dtype)
    out["source"] = tf.constant(REAL, tf.int32)
    return out

  def sample(self, index) -> dict:
    """Row `index` (its position in labels.tsv among the usable rows): the evaluation stream."""
    index = tf.convert_to_tensor(index, tf.int64)
    return self.row_sample(index, index)


def sample_spec(generator) -> dict:
  """The element spec of generator.sample (traced once, not run)."""
  return tf.data.Dataset.range(1).map(generator.sample).element_spec


def _with_source(sample: dict, source: int) -> dict:
  out = dict(sample)
  out["source"] = tf.constant(source, tf.int32)
  return out


class MixedSource:
  """The synthetic stream with a fraction `ratio` of its samples replaced by real rows.

  Sample i is real when u0 < ratio and then shows row floor(u1 * N), with
  (u0, u1) = stateless_uniform(seed=(mix_seed, i)); otherwise it is synthetic
  sample i, unchanged. Rows are drawn with replacement.
  """

  def __init__(self, generator, real: RealSet, ratio: float, mix_seed: int, data_cfg: ml_collections.ConfigDict):
    if not 0.0 <= ratio <= 1.0:
      raise ValueError(f"ratio={ratio!r}: must be in [0, 1]")
    self.generator = generator
    self.ratio = float(ratio)
    self.mix_seed = int(mix_seed)
    self.real = RealSource(real, data_cfg, sample_spec(generator))

  def draw(self, index) -> tuple[tf.Tensor, tf.Tensor]:
    """(is_real bool, row int64) of sample `index`."""
    index = tf.convert_to_tensor(index, tf.int64)
    u = tf.random.stateless_uniform([2], seed=tf.stack([tf.constant(self.mix_seed, tf.int64), index]),
                                    dtype=tf.float64)
    n = len(self.real)
    row = tf.minimum(tf.cast(tf.floor(u[1] * n), tf.int64), n - 1)
    return u[0] < self.ratio, row

  def sample(self, index) -> dict:
    index = tf.convert_to_tensor(index, tf.int64)
    is_real, row = self.draw(index)
    return tf.cond(is_real, lambda: self.real.row_sample(row, index),
                   lambda: _with_source(self.generator.sample(index), SYNTHETIC))


def training_source(generator, data_cfg: ml_collections.ConfigDict,
                    log: Callable[[str], None] | None = None):
  """The generator itself, or a MixedSource when data.real_dir and data.real_ratio ask for real images."""
  real = load_from_config(data_cfg, "real_dir", log=log)
  ratio = float(data_cfg.real_ratio)
  if real is None or ratio <= 0:
    return generator
  if log:
    log(f"mixing {len(real)} real images from {real.folder} into the stream at ratio {ratio:g}")
  return MixedSource(generator, real, ratio, int(data_cfg.seed) + _MIX_SEED_OFFSET, data_cfg)


def validation_source(generator, data_cfg: ml_collections.ConfigDict,
                      log: Callable[[str], None] | None = None) -> RealSource | None:
  """The rows of data.real_validation_dir as an evaluation stream, or None."""
  real = load_from_config(data_cfg, "real_validation_dir", log=log)
  if real is None:
    return None
  return RealSource(real, data_cfg, sample_spec(generator))

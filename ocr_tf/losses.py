"""Training losses of the OCR model, outside the model: CTC, angle, letters, clean.

:func:`compute_losses` takes the model's output dict and a batch of samples
(the contract of ocr_tf.synth) and returns scalar losses. Every loss is first
computed per example, then averaged with ``tf.nn.compute_average_loss``: out
of a distribution strategy that is the batch mean; inside a replica it divides
by the global batch, so summing the replicas' gradients (what optimizers do
under tf.distribute) gives the gradient of the global mean.

The letter loss needs dense targets on the letter map; :func:`targets_from_batch`
builds them with TF ops (usable in tf.function and Dataset.map) following the
encoding that :func:`ocr_tf.models.decode_letters` reads. The map's geometry
comes from the tensors themselves: its shape from the model's ``letters``
output, its stride from the image height over the map height.
"""

from __future__ import annotations

import math
from typing import Mapping

import ml_collections
import tensorflow as tf

from ocr_tf import config as config_lib
from ocr_tf.config import ConfigError


# ------------------------------------------------------------------ letter targets


def _letter_geometry(quads: tf.Tensor, mask: tf.Tensor):
  """Axis-aligned pixel boxes of the quads [B, L, 4, 2] and which letters have ink."""
  x, y = quads[..., 0], quads[..., 1]
  x0, x1 = tf.reduce_min(x, -1), tf.reduce_max(x, -1)
  y0, y1 = tf.reduce_min(y, -1), tf.reduce_max(y, -1)
  valid = mask & (x1 > x0) & (y1 > y0)
  return (y0, x0, y1, x1), valid


def letter_map_geometry(letters: tf.Tensor, image: tf.Tensor) -> tuple[tuple[int, int], int]:
  """((h, w), stride) of the letter map, from the static shapes of the model's ``letters`` output [B, h, w, C]
  and of its input images [B, H, W, C] (stride = H / h, the model's letter_stride)."""
  h, w = tuple(letters.shape)[1:3]
  height = tuple(image.shape)[1]
  if h is None or w is None or height is None or h < 1 or height % h:
    raise ValueError(f"letters of shape {tuple(letters.shape)} and images of shape {tuple(image.shape)}: "
                     f"expected static sizes, the image height a multiple of the letter map's")
  return (int(h), int(w)), int(height) // int(h)


def targets_from_batch(batch: Mapping[str, tf.Tensor], map_shape: tuple[int, int], stride: int,
                       sigma_scale: float = 1.0 / 6.0, min_sigma: float = 0.5) -> dict[str, tf.Tensor]:
  """Dense letter-map targets from ``letter_quads`` and ``letter_mask``.

  A letter is its quad's axis-aligned box; letters with no area (spaces) and
  unused slots are left out. Its center falls in cell (i, j) of the letter map
  (stride s = model.letter_stride); the heatmap there is exactly 1, around it
  an anisotropic gaussian, max-combined over letters. When two letters share
  a cell, the later one gives the offset and size.

  Args:
    batch: samples with a leading batch axis (or a single sample): at least
      ``letter_quads`` [B, L, 4, 2] and ``letter_mask`` [B, L].
    map_shape: (h, w) of the letter map (the model's ``letters`` output, see
      :func:`letter_map_geometry` and ocr_tf.models.letter_map_shape).
    stride: pixels per letter-map cell (model.letter_stride).
    sigma_scale, min_sigma: gaussian sigma per axis in cells,
      max(min_sigma, sigma_scale * box size / s).

  Returns:
    heatmap [B, h, w] in [0, 1], center_mask [B, h, w] float (1 at centers),
    offset [B, h, w, 2] (y, x) of the center inside its cell, in cells,
    size [B, h, w, 2] (log height, log width) in pixels (sizes below 1 px count
    as 1), zero away from centers; unbatched input gives unbatched targets.
  """
  quads = tf.convert_to_tensor(batch["letter_quads"], tf.float32)
  mask = tf.cast(batch["letter_mask"], tf.bool)
  if quads.shape.rank == 3:
    single = {"letter_quads": quads[None], "letter_mask": mask[None]}
    out = targets_from_batch(single, map_shape, stride, sigma_scale, min_sigma)
    return {k: v[0] for k, v in out.items()}
  h, w = int(map_shape[0]), int(map_shape[1])
  stride = float(stride)
  (y0, x0, y1, x1), valid = _letter_geometry(quads, mask)
  cy, cx = (y0 + y1) / (2 * stride), (x0 + x1) / (2 * stride)  # [B, L] in cells
  ci = tf.clip_by_value(tf.floor(cy), 0.0, h - 1.0)
  cj = tf.clip_by_value(tf.floor(cx), 0.0, w - 1.0)
  sigma_y = tf.maximum(min_sigma, sigma_scale * (y1 - y0) / stride)
  sigma_x = tf.maximum(min_sigma, sigma_scale * (x1 - x0) / stride)
  dy = tf.range(h, dtype=tf.float32)[None, :, None, None] - ci[:, None, None, :]  # [B, h, 1, L]
  dx = tf.range(w, dtype=tf.float32)[None, None, :, None] - cj[:, None, None, :]  # [B, 1, w, L]
  gauss = tf.exp(-(tf.square(dy) / (2 * tf.square(sigma_y[:, None, None, :]))
                   + tf.square(dx) / (2 * tf.square(sigma_x[:, None, None, :]))))
  letter_on = valid[:, None, None, :]
  heatmap = tf.reduce_max(tf.where(letter_on, gauss, 0.0), axis=-1)
  at_center = (dy == 0.0) & (dx == 0.0) & letter_on  # [B, h, w, L]
  num_slots = tf.shape(quads)[1]
  rank = tf.where(at_center, tf.range(1, num_slots + 1)[None, None, None, :], 0)
  center = tf.reduce_any(at_center, axis=-1)
  pick = tf.one_hot(tf.argmax(rank, axis=-1), num_slots) * tf.cast(center, tf.float32)[..., None]
  per_letter = tf.stack([cy - ci, cx - cj, tf.math.log(tf.maximum(y1 - y0, 1.0)),
                         tf.math.log(tf.maximum(x1 - x0, 1.0))], axis=-1)  # [B, L, 4]
  dense = tf.einsum("bhwl,blc->bhwc", pick, per_letter)
  return {
      "heatmap": heatmap,
      "center_mask": tf.cast(center, tf.float32),
      "offset": dense[..., :2],
      "size": dense[..., 2:],
  }


# ------------------------------------------------------------------ per-example losses


def ctc_loss(text_logits: tf.Tensor, labels: tf.Tensor, label_length: tf.Tensor) -> tf.Tensor:
  """CTC negative log-likelihood per example [B]; the blank is the last class."""
  logits = tf.cast(text_logits, tf.float32)
  shape = tf.shape(logits)
  return tf.nn.ctc_loss(labels=tf.cast(labels, tf.int32), logits=logits,
                        label_length=tf.cast(label_length, tf.int32),
                        logit_length=tf.fill([shape[0]], shape[1]), logits_time_major=False,
                        blank_index=logits.shape[-1] - 1)


def angle_loss(angle: tf.Tensor, target: tf.Tensor, delta: float = 1.0) -> tf.Tensor:
  """Huber loss in degrees per example [B]."""
  err = tf.abs(tf.cast(angle, tf.float32) - tf.cast(target, tf.float32))
  return tf.where(err <= delta, 0.5 * tf.square(err), delta * (err - 0.5 * delta))


def letter_losses(letters: tf.Tensor, targets: Mapping[str, tf.Tensor], alpha: float = 2.0,
                  beta: float = 4.0) -> dict[str, tf.Tensor]:
  """Focal loss on the heatmap and L1 on offsets and sizes at centers, per example [B].

  Each term is divided by the example's number of letters (at least 1).
  """
  letters = tf.cast(letters, tf.float32)
  logit = letters[..., 0]
  pos = targets["center_mask"]
  heat = targets["heatmap"]
  prob = tf.sigmoid(logit)
  pos_term = pos * tf.pow(1.0 - prob, alpha) * tf.math.log_sigmoid(logit)
  neg_term = (1.0 - pos) * tf.pow(1.0 - heat, beta) * tf.pow(prob, alpha) * tf.math.log_sigmoid(-logit)
  count = tf.maximum(tf.reduce_sum(pos, axis=[1, 2]), 1.0)
  at_centers = pos[..., None]
  return {
      "heatmap": -tf.reduce_sum(pos_term + neg_term, axis=[1, 2]) / count,
      "offset": tf.reduce_sum(at_centers * tf.abs(letters[..., 1:3] - targets["offset"]), [1, 2, 3]) / count,
      "size": tf.reduce_sum(at_centers * tf.abs(letters[..., 3:5] - targets["size"]), [1, 2, 3]) / count,
  }


def clean_loss(clean: tf.Tensor, target: tf.Tensor, kind: str = "l1") -> tf.Tensor:
  """Mean L1 or binary cross-entropy over pixels, per example [B]."""
  clean = tf.cast(clean, tf.float32)
  target = tf.cast(target, tf.float32)
  if kind == "l1":
    return tf.reduce_mean(tf.abs(clean - target), axis=[1, 2, 3])
  if kind == "bce":
    eps = 1e-6
    p = tf.clip_by_value(clean, eps, 1.0 - eps)
    return -tf.reduce_mean(target * tf.math.log(p) + (1.0 - target) * tf.math.log(1.0 - p), axis=[1, 2, 3])
  raise ConfigError(f"losses.clean_loss={kind!r}: must be 'l1' or 'bce'")


# ------------------------------------------------------------------ total


def _checked_weights(weights: Mapping[str, float]) -> dict[str, float]:
  unknown = sorted(set(weights) - set(config_lib.LOSS_NAMES))
  if unknown:
    raise ConfigError(f"loss weights {dict(weights)!r}: unknown names {unknown}, "
                      f"expected {config_lib.LOSS_NAMES}")
  out = {}
  for name in config_lib.LOSS_NAMES:
    w = weights.get(name, 0.0)
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
      raise ConfigError(f"loss weight {name}={w!r}: must be a finite number >= 0")
    out[name] = float(w)
  return out


def compute_losses(outputs: Mapping[str, tf.Tensor], batch: Mapping[str, tf.Tensor],
                   weights: Mapping[str, float], config: ml_collections.ConfigDict | None = None,
                   targets: Mapping[str, tf.Tensor] | None = None,
                   global_batch_size: int | None = None) -> dict[str, tf.Tensor]:
  """The weighted losses of one batch.

  Args:
    outputs: the model's output dict.
    batch: samples (image, clean, labels, label_length, angle, letter_quads, letter_mask;
      optionally source: samples with source != 0 are real images, which
      count for the CTC loss only).
    weights: per name in ocr_tf.config.LOSS_NAMES; a missing name or a 0 weight skips that
      loss (it is not computed and its output may be absent).
    config: from ocr_tf.config.loss_config (weights are taken from `weights`, not from it).
    targets: precomputed :func:`targets_from_batch` output (e.g. built in the
      input pipeline); built here when None, on the letter map of
      ``outputs['letters']`` (:func:`letter_map_geometry` with ``batch['image']``).
    global_batch_size: the batch over all replicas (see tf.nn.compute_average_loss);
      None: per-replica batch times replicas.

  Returns:
    'total' (sum of weight * loss) and, for each loss computed, its
    unweighted value under its name; with letters, also 'letters/heatmap',
    'letters/offset' and 'letters/size' (unweighted parts of 'letters').
  """
  cfg = config or config_lib.loss_config()
  w = _checked_weights(weights)

  def average(per_example, weight=None):
    return tf.nn.compute_average_loss(per_example, sample_weight=weight, global_batch_size=global_batch_size)

  # Real images (source 1, see ocr_tf.real_data) have only their text as truth.
  synthetic = None
  if "source" in batch:
    synthetic = tf.cast(tf.equal(batch["source"], 0), tf.float32)

  out = {}
  if w["ctc"]:
    out["ctc"] = average(ctc_loss(outputs["text_logits"], batch["labels"], batch["label_length"]))
  if w["angle"]:
    out["angle"] = average(angle_loss(outputs["angle"], batch["angle"], cfg.angle_huber_delta), synthetic)
  if w["letters"]:
    if targets is None:
      map_shape, stride = letter_map_geometry(outputs["letters"], batch["image"])
      targets = targets_from_batch(batch, map_shape, stride, cfg.sigma_scale, cfg.min_sigma)
    parts = letter_losses(outputs["letters"], targets, cfg.focal_alpha, cfg.focal_beta)
    for key, value in parts.items():
      out[f"letters/{key}"] = average(value, synthetic)
    out["letters"] = (out["letters/heatmap"] + cfg.letter_offset_weight * out["letters/offset"]
                      + cfg.letter_size_weight * out["letters/size"])
  if w["clean"]:
    out["clean"] = average(clean_loss(outputs["clean"], batch["clean"], cfg.clean_loss), synthetic)
  out["total"] = tf.add_n([w[name] * out[name] for name in config_lib.LOSS_NAMES if name in out]
                          or [tf.constant(0.0)])
  return out

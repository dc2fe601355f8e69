"""The model's outputs -> the signatures' outputs: text and confidence, boxes in input pixels, rows in error blanked.

Also the names of the signatures' outputs, and what ``read_text`` runs of the model.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ocr_tf import metrics
from ocr_tf import models

# Input images whose grey levels span less than this (of 0..1) are blank: empty text, confidence 0.
BLANK_RANGE = 0.06
SERVING_KEYS = ("text", "confidence", "angle", "boxes", "box_scores", "clean", "image_size", "text_log_probs",
                "error")
IMAGE_KEYS = tuple(k for k in SERVING_KEYS if k != "error")
READ_TEXT_KEYS = tuple(k for k in SERVING_KEYS if k != "clean")
READ_OUTPUTS = tuple(k for k in models.OUTPUT_NAMES if k != "clean")  # what read_text runs of the model


def is_blank(images: tf.Tensor) -> tf.Tensor:
  """bool [B]: the images [B, H, W, C] whose grey levels span less than BLANK_RANGE (no text in them)."""
  return tf.reduce_max(images, axis=[1, 2, 3]) - tf.reduce_min(images, axis=[1, 2, 3]) < BLANK_RANGE


def read_text(logits: tf.Tensor, images: tf.Tensor, charset: str) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """The text head's reading of each image.

  Args:
    logits: the model's text_logits [B, T, C] (the CTC blank last).
    images: the model's inputs [B, H, W, C]; a blank one (:func:`is_blank`) reads ''.
    charset: the characters of the columns 0..C-2.

  Returns:
    text tf.string [B] (greedy CTC decode), confidence float32 [B] (the best
    path's probability, 0 when the text is empty), log_probs float32 [B, T, C].
  """
  log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
  text = metrics.decode_text(logits, charset)
  confidence = metrics.greedy_confidence(logits)
  # An image without contrast holds no text: nothing is read, with no confidence, rather than a guess.
  flat = is_blank(images)
  text = tf.where(flat, "", text)
  confidence = tf.where(flat | tf.equal(tf.strings.length(text), 0), 0.0, confidence)
  return text, confidence, log_probs


def boxes_in_pixels(boxes: tf.Tensor, geometry: tf.Tensor, height: int, width: int) -> tf.Tensor:
  """Boxes [B, K, 4] normalized to the model's canvas -> the input image's pixels, clipped to it.

  Args:
    boxes: [ymin, xmin, ymax, xmax] in [0, 1] of the height x width canvas.
    geometry: float32 [B, 6] of preprocess.fit_image (scale, offset, input size).
    height, width: the model's input.

  Returns:
    float32 [B, K, 4] in input pixels (pixel (i, j) covers [i, i+1] x [j, j+1]).
  """
  size = tf.constant([height, width, height, width], tf.float32)
  scale = tf.concat([geometry[:, 0:2], geometry[:, 0:2]], axis=-1)[:, None, :]
  offset = tf.concat([geometry[:, 2:4], geometry[:, 2:4]], axis=-1)[:, None, :]
  limit = tf.concat([geometry[:, 4:6], geometry[:, 4:6]], axis=-1)[:, None, :]
  return tf.clip_by_value((boxes * size - offset) / scale, 0.0, limit)


def serving_outputs(out: dict[str, tf.Tensor], images: tf.Tensor, geometry: tf.Tensor, valid: tf.Tensor, *,
                    charset: str, size: tuple[int, int], max_letters: int, box_threshold: float
                    ) -> dict[str, tf.Tensor]:
  """The signatures' outputs (all but 'error') from the model's, invalid rows blanked.

  Args:
    out: the model's outputs on `images` (float32; 'clean' only when it was run).
    images: the model's inputs [B, H, W, C].
    geometry: float32 [B, 6] of preprocess.fit_image.
    valid: bool [B]; the other rows (images in error) get '', zeros and a white clean image.
    charset: the characters of the text head's columns.
    size: the model's input (height, width).
    max_letters: K, letter boxes per image.
    box_threshold: letter peaks scoring less are left out (score 0).

  Returns:
    dict of IMAGE_KEYS ('clean' only when `out` has it).
  """
  height, width = size
  text, confidence, log_probs = read_text(out["text_logits"], images, charset)
  boxes, scores = models.decode_letters(out["letters"], (height, width), max_letters, box_threshold)
  pixels = boxes_in_pixels(boxes, geometry, height, width)
  keep = (scores > 0.0) & valid[:, None]
  result = {
      "text": tf.where(valid, text, ""),
      "confidence": tf.where(valid, confidence, 0.0),
      "angle": tf.where(valid, tf.cast(out["angle"], tf.float32), 0.0),
      "boxes": tf.where(keep[..., None], pixels, 0.0),
      "box_scores": tf.where(keep, scores, 0.0),
      "image_size": tf.where(valid[:, None], tf.cast(geometry[:, 4:6], tf.int32), 0),
      "text_log_probs": tf.where(valid[:, None, None], log_probs, 0.0),
  }
  if "clean" in out:
    result["clean"] = tf.where(valid[:, None, None, None], tf.cast(out["clean"], tf.float32), 1.0)
  return result


def empty_outputs(model: keras.Model, names: tuple[str, ...]) -> dict[str, tf.Tensor]:
  """Zero-row float32 outputs `names` of `model`: the model is not run on an empty batch (its graph fails on one)."""
  shapes = {k: [0, *v.shape[1:]] for k, v in zip(model.output_names, model.outputs)}
  return {k: tf.zeros(shapes[k], tf.float32) for k in names}

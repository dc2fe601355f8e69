"""In-graph metrics of the OCR model, and text decoding for export.

Metrics over many batches (and replicas) are accumulated as sums:
:func:`metric_sums` gives one batch's counts and sums, which add up across
batches and replicas; :func:`finalize_metrics` turns the totals into rates:

* cer: character error rate, edit distance of the greedy CTC decode to the
  labels over the number of label characters;
* word_accuracy: fraction of lines decoded exactly;
* angle_mae: mean absolute angle error in degrees;
* letter_precision, letter_recall, letter_f1: decoded letter boxes matched
  greedily (by decreasing score) to true boxes at IoU >= 0.5;
* clean_psnr: mean PSNR of the clean output in dB (identical images: 100 dB).
"""

from __future__ import annotations

from typing import Mapping

import ml_collections
import tensorflow as tf

from ocr_tf import charset as charset_lib
from ocr_tf import models

MAX_PSNR = 100.0  # dB, the PSNR reported for identical images
SUM_KEYS = ("examples", "char_errors", "chars", "words_correct", "angle_abs_error",
            "letters_matched", "letters_predicted", "letters_true", "clean_psnr_sum")


# ------------------------------------------------------------------ text


def greedy_decode(text_logits: tf.Tensor) -> tf.RaggedTensor:
  """Best path CTC decoding: argmax per column, merge repeats, drop blanks (last class).

  Returns:
    int32 RaggedTensor [B, None] of charset ids.
  """
  logits = tf.convert_to_tensor(text_logits)
  blank = logits.shape[-1] - 1
  best = tf.argmax(logits, axis=-1, output_type=tf.int32)
  previous = tf.pad(best[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
  keep = tf.not_equal(best, blank) & tf.not_equal(best, previous)
  return tf.ragged.boolean_mask(best, keep)


def greedy_confidence(text_logits: tf.Tensor) -> tf.Tensor:
  """Probability of the best path, the product of each column's top softmax probability [B]."""
  log_probs = tf.nn.log_softmax(tf.cast(text_logits, tf.float32), axis=-1)
  return tf.exp(tf.reduce_sum(tf.reduce_max(log_probs, axis=-1), axis=-1))


def decode_text(text_logits: tf.Tensor, charset: charset_lib.Charset | str) -> tf.Tensor:
  """The greedy CTC decode as strings, tf.string [B], in-graph (for export)."""
  chars = charset.chars if isinstance(charset, charset_lib.Charset) else str(charset)
  num_classes = text_logits.shape[-1]
  if num_classes is not None and num_classes != len(chars) + 1:
    raise ValueError(f"text_logits has {num_classes} classes: expected {len(chars) + 1} "
                     f"for a charset of {len(chars)} characters plus the blank")
  table = tf.constant(list(chars), tf.string)
  return tf.strings.reduce_join(tf.gather(table, greedy_decode(text_logits)), axis=-1)


def _labels_sparse(labels: tf.Tensor, label_length: tf.Tensor) -> tf.SparseTensor:
  ragged = tf.RaggedTensor.from_tensor(tf.cast(labels, tf.int64), lengths=tf.cast(label_length, tf.int64))
  return ragged.to_sparse()


def edit_distances(text_logits: tf.Tensor, labels: tf.Tensor, label_length: tf.Tensor) -> tf.Tensor:
  """Edit distance (number of edits) of each greedy decode to its labels, float32 [B]."""
  hypothesis = tf.cast(greedy_decode(text_logits), tf.int64).to_sparse()
  truth = _labels_sparse(labels, label_length)
  return tf.cast(tf.edit_distance(hypothesis, truth, normalize=False), tf.float32)


def text_metrics(text_logits: tf.Tensor, labels: tf.Tensor, label_length: tf.Tensor) -> dict[str, tf.Tensor]:
  """Character error rate and word accuracy of one batch."""
  dist = edit_distances(text_logits, labels, label_length)
  chars = tf.cast(tf.reduce_sum(label_length), tf.float32)
  return {
      "cer": tf.reduce_sum(dist) / tf.maximum(chars, 1.0),
      "word_accuracy": tf.reduce_mean(tf.cast(dist == 0.0, tf.float32)),
  }


# ------------------------------------------------------------------ letters


def pairwise_iou(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
  """IoU of boxes a [B, K, 4] and b [B, L, 4] ([ymin, xmin, ymax, xmax]): [B, K, L]."""
  a, b = a[:, :, None, :], b[:, None, :, :]
  ih = tf.maximum(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]), 0.0)
  iw = tf.maximum(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]), 0.0)
  inter = ih * iw

  def area(x):
    return tf.maximum(x[..., 2] - x[..., 0], 0.0) * tf.maximum(x[..., 3] - x[..., 1], 0.0)

  union = area(a) + area(b) - inter
  return tf.where(union > 0.0, inter / tf.maximum(union, 1e-12), 0.0)


def match_letters(pred_boxes: tf.Tensor, pred_scores: tf.Tensor, true_boxes: tf.Tensor,
                  true_valid: tf.Tensor, iou_threshold: float = 0.5) -> dict[str, tf.Tensor]:
  """Greedy matching, per example: predictions by decreasing score take the free true box of highest IoU.

  Args:
    pred_boxes [B, K, 4], pred_scores [B, K]: predictions; score 0 means none.
    true_boxes [B, L, 4], true_valid [B, L] bool: the true letters.

  Returns:
    int32 [B] counts: matched (true positives), predicted, true.
  """
  pred_boxes = tf.convert_to_tensor(pred_boxes, tf.float32)
  pred_scores = tf.convert_to_tensor(pred_scores, tf.float32)
  true_boxes = tf.convert_to_tensor(true_boxes, tf.float32)
  true_valid = tf.cast(true_valid, tf.bool)
  order = tf.argsort(pred_scores, axis=-1, direction="DESCENDING", stable=True)
  pred_valid = tf.gather(pred_scores, order, batch_dims=1) > 0.0
  iou = pairwise_iou(tf.gather(pred_boxes, order, batch_dims=1), true_boxes)
  iou = tf.where(true_valid[:, None, :], iou, -1.0)
  num_true = tf.shape(true_boxes)[1]

  def step(k, taken, matched):
    row = tf.where(taken, -1.0, iou[:, k, :])
    ok = pred_valid[:, k] & (tf.reduce_max(row, axis=-1) >= iou_threshold)
    best = tf.one_hot(tf.argmax(row, axis=-1), num_true) > 0.5
    return k + 1, taken | (best & ok[:, None]), matched + tf.cast(ok, tf.int32)

  taken = tf.zeros_like(true_valid)
  matched = tf.zeros(tf.shape(true_valid)[:1], tf.int32)
  _, _, matched = tf.while_loop(lambda k, *_: k < tf.shape(iou)[1], step, (tf.constant(0), taken, matched))
  return {
      "matched": matched,
      "predicted": tf.reduce_sum(tf.cast(pred_valid, tf.int32), axis=-1),
      "true": tf.reduce_sum(tf.cast(true_valid, tf.int32), axis=-1),
  }


def true_letters(batch: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
  """The batch's letter boxes [B, L, 4] and which of them are letters with area [B, L]."""
  boxes = tf.convert_to_tensor(batch["letter_boxes"], tf.float32)
  valid = (tf.cast(batch["letter_mask"], tf.bool) & (boxes[..., 2] > boxes[..., 0])
           & (boxes[..., 3] > boxes[..., 1]))
  return boxes, valid


def f1_from_counts(matched, predicted, true) -> dict[str, tf.Tensor]:
  """Precision, recall and F1 from summed counts (each 1 when there is nothing to count)."""
  matched, predicted, true = (tf.cast(x, tf.float32) for x in (matched, predicted, true))
  precision = tf.where(predicted > 0, matched / tf.maximum(predicted, 1.0), 1.0)
  recall = tf.where(true > 0, matched / tf.maximum(true, 1.0), 1.0)
  f1 = tf.where(predicted + true > 0, 2.0 * matched / tf.maximum(predicted + true, 1.0), 1.0)
  return {"letter_precision": precision, "letter_recall": recall, "letter_f1": f1}


# ------------------------------------------------------------------ clean


def psnr(image: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """PSNR in dB per example [B] for values in [0, 1], at most MAX_PSNR (identical images)."""
  mse = tf.reduce_mean(tf.square(tf.cast(image, tf.float32) - tf.cast(target, tf.float32)), axis=[1, 2, 3])
  floor = 10.0 ** (-MAX_PSNR / 10.0)
  return -10.0 * tf.math.log(tf.maximum(mse, floor)) / tf.math.log(10.0)


# ------------------------------------------------------------------ all metrics


def metric_sums(outputs: Mapping[str, tf.Tensor], batch: Mapping[str, tf.Tensor],
                data_cfg: ml_collections.ConfigDict, max_letters: int | None = None,
                threshold: float = 0.3, iou_threshold: float = 0.5) -> dict[str, tf.Tensor]:
  """One batch's sums and counts (SUM_KEYS, float32 scalars): add them over batches and replicas.

  Args:
    outputs: the model's output dict; batch: the samples it was computed from.
    data_cfg: the data block (image size; max_length is the default max_letters).
    max_letters, threshold: passed to models.decode_letters.
    iou_threshold: a decoded box matches a true box at this IoU or more.
  """
  k = int(max_letters or data_cfg.max_length)
  dist = edit_distances(outputs["text_logits"], batch["labels"], batch["label_length"])
  boxes, scores = models.decode_letters(outputs["letters"], (data_cfg.height, data_cfg.width), k, threshold)
  counts = match_letters(boxes, scores, *true_letters(batch), iou_threshold=iou_threshold)
  angle_err = tf.abs(tf.cast(outputs["angle"], tf.float32) - tf.cast(batch["angle"], tf.float32))

  def total(x):
    return tf.reduce_sum(tf.cast(x, tf.float32))

  return {
      "examples": tf.cast(tf.shape(dist)[0], tf.float32),
      "char_errors": total(dist),
      "chars": total(batch["label_length"]),
      "words_correct": total(dist == 0.0),
      "angle_abs_error": total(angle_err),
      "letters_matched": total(counts["matched"]),
      "letters_predicted": total(counts["predicted"]),
      "letters_true": total(counts["true"]),
      "clean_psnr_sum": total(psnr(outputs["clean"], batch["clean"])),
  }


def finalize_metrics(sums: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """Rates from accumulated metric_sums: cer, word_accuracy, angle_mae, letter_*, clean_psnr."""
  s = {k: tf.cast(sums[k], tf.float32) for k in SUM_KEYS}
  n = tf.maximum(s["examples"], 1.0)
  out = {
      "cer": s["char_errors"] / tf.maximum(s["chars"], 1.0),
      "word_accuracy": s["words_correct"] / n,
      "angle_mae": s["angle_abs_error"] / n,
      "clean_psnr": s["clean_psnr_sum"] / n,
  }
  out.update(f1_from_counts(s["letters_matched"], s["letters_predicted"], s["letters_true"]))
  return out


def compute_metrics(outputs: Mapping[str, tf.Tensor], batch: Mapping[str, tf.Tensor],
                    data_cfg: ml_collections.ConfigDict, **kwargs) -> dict[str, tf.Tensor]:
  """The rates of one batch (finalize_metrics of its metric_sums)."""
  return finalize_metrics(metric_sums(outputs, batch, data_cfg, **kwargs))

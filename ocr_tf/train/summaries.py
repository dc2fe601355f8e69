"""What a run reports: TensorBoard summaries written with core TensorFlow, and its log lines.

Scalars, images and text go through ``tf.summary.write`` with the metadata
TensorBoard's plugins read, so the tensorboard package is not needed.
:func:`write_validation_images` draws the true (green) and predicted (red)
letter boxes on validation images. :class:`Window` gathers the training
losses between two log lines; :func:`log_progress` and :func:`log_metrics`
write the progress and evaluation lines.
"""

from __future__ import annotations

from typing import Mapping

import ml_collections
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from ocr_tf import metrics, models
from ocr_tf.train.state import TrainState

_TRUE_BOX_COLOR = (0.0, 0.8, 0.0, 1.0)
_PREDICTED_BOX_COLOR = (1.0, 0.0, 0.0, 1.0)
_IMAGE_MIN_HEIGHT = 96  # validation images are enlarged (nearest neighbour) to at least this height


# ------------------------------------------------------------------ TensorBoard


def _markdown_cell(text: str) -> str:
  return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`") or " "


def _metadata(plugin: str, data_class: int, description: str = "") -> summary_pb2.SummaryMetadata:
  metadata = summary_pb2.SummaryMetadata(summary_description=description, data_class=data_class)
  metadata.plugin_data.plugin_name = plugin
  return metadata


def summary_scalar(name: str, value: float, step: int) -> None:
  """A TensorBoard scalar, written with core TensorFlow (the tensorboard package is not needed)."""
  tf.summary.write(name, tf.constant(value, tf.float32), step=step,
                   metadata=_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR))


def summary_images(name: str, images: tf.Tensor, step: int, description: str = "") -> None:
  """TensorBoard images from float images [N, H, W, C] in [0, 1] (PNG encoded)."""
  pngs = tf.map_fn(lambda x: tf.io.encode_png(tf.image.convert_image_dtype(x, tf.uint8, saturate=True)),
                   images, fn_output_signature=tf.string)
  shape = tf.shape(images)
  dims = tf.strings.as_string(tf.stack([shape[2], shape[1]]))  # width, height
  tf.summary.write(name, tf.concat([dims, pngs], 0), step=step,
                   metadata=_metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE, description))


def summary_text(name: str, text: str, step: int) -> None:
  """A TensorBoard text summary (markdown)."""
  tf.summary.write(name, tf.constant(text), step=step, metadata=_metadata("text", summary_pb2.DATA_CLASS_TENSOR))


def write_scalars(values: Mapping[str, float], step: int, prefix: str = "") -> None:
  """One TensorBoard scalar per value, named prefix + its key."""
  for name, value in values.items():
    summary_scalar(f"{prefix}{name}", value, step)


def write_training_scalars(values: Mapping[str, float], lr: float, samples_per_second: float, step: int) -> None:
  """A log window's losses (as loss/NAME; grad_norm as is), the learning rate and the throughput."""
  write_scalars({f"loss/{k}" if k != "grad_norm" else k: v for k, v in values.items()}, step)
  write_scalars({"learning_rate": lr, "samples_per_second": samples_per_second}, step)


def write_validation_images(state: TrainState, batch: Mapping[str, tf.Tensor],
                            config: ml_collections.ConfigDict, step: int) -> None:
  """Validation images with true (green) and predicted (red) letter boxes, the clean output, the texts.

  Written to the default summary writer; the texts are in the image
  summaries' descriptions and in a text summary (a markdown table).
  """
  d = config.data
  outputs = state.model(batch["image"], training=False)
  predicted = [s.decode("utf-8") for s in metrics.decode_text(outputs["text_logits"], d.charset).numpy()]
  truth = [s.decode("utf-8") for s in batch["text"].numpy()]
  boxes, scores = models.decode_letters(outputs["letters"], (d.height, d.width), d.max_length,
                                        config.train.letter_threshold)
  true_boxes, true_valid = metrics.true_letters(batch)
  images = tf.convert_to_tensor(batch["image"])
  if images.shape[-1] == 1:
    images = tf.image.grayscale_to_rgb(images)
  scale = max(1, -(-_IMAGE_MIN_HEIGHT // int(d.height)))
  images = tf.image.resize(images, (d.height * scale, d.width * scale), method="nearest")
  drawn = []
  for i in range(images.shape[0]):
    image = images[i:i + 1]
    for b, keep, color in ((true_boxes[i], true_valid[i], _TRUE_BOX_COLOR),
                           (boxes[i], scores[i] > 0, _PREDICTED_BOX_COLOR)):
      chosen = tf.boolean_mask(b, keep)
      if chosen.shape[0]:
        image = tf.image.draw_bounding_boxes(image, chosen[None], tf.constant([color]))
    drawn.append(image)
  table = ["| # | true | predicted | exact |", "| --- | --- | --- | --- |"]
  table += [f"| {i} | {_markdown_cell(t)} | {_markdown_cell(p)} | {'yes' if t == p else 'no'} |"
            for i, (t, p) in enumerate(zip(truth, predicted))]
  description = "\n".join(table)
  summary_images("validation/letters", tf.concat(drawn, 0), step,
                 "Green: true letter boxes; red: predicted.\n\n" + description)
  summary_images("validation/clean", outputs["clean"], step,
                 "The model's clean (denoised) output.\n\n" + description)
  summary_text("validation/text", description, step)


# ------------------------------------------------------------------ log lines


def format_duration(seconds: float) -> str:
  """'1h05m' from an hour on, else '4m07s'."""
  seconds = int(max(seconds, 0))
  h, rest = divmod(seconds, 3600)
  return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class Window:
  """Training losses and throughput between two log lines."""

  def __init__(self):
    self.sums: dict[str, tf.Tensor] = {}
    self.steps = 0
    self.seconds = 0.0

  def add(self, out: Mapping[str, tf.Tensor], seconds: float) -> None:
    self.sums = {k: out[k] + self.sums[k] if k in self.sums else out[k] for k in out}
    self.steps += 1
    self.seconds += seconds

  def means(self) -> dict[str, float]:
    return {k: float(v) / max(self.steps, 1) for k, v in self.sums.items()}


def log_progress(step: int, total: int, start: int, values: Mapping[str, float], lr: float,
                 samples_per_second: float, elapsed: float) -> None:
  """The progress line: step, losses, gradient norm, learning rate, throughput and time left."""
  parts = " ".join(f"{k} {v:.4g}" for k, v in values.items() if k not in ("total", "grad_norm"))
  grad = f" grad_norm {values['grad_norm']:.3g}" if "grad_norm" in values else ""
  done = step - start
  eta = elapsed / done * (total - step) if done else 0.0
  logging.info("step %d/%d (%.1f%%) loss %.4f (%s)%s lr %.3g %.1f samples/s eta %s", step, total,
               100.0 * step / max(total, 1), values.get("total", float("nan")), parts, grad, lr,
               samples_per_second, format_duration(eta))


def log_metrics(step: int, result: Mapping[str, float]) -> None:
  """The evaluation line."""
  logging.info("eval at step %d: cer %.4f word_accuracy %.4f angle_mae %.3f letter_f1 %.4f clean_psnr %.2f "
               "loss %.4f", step, result["cer"], result["word_accuracy"], result["angle_mae"],
               result["letter_f1"], result["clean_psnr"], result["loss/total"])

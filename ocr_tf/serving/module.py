"""The exported object: a Keras OCR model with its three serving signatures (see :mod:`ocr_tf.serving`)."""

from __future__ import annotations

import keras
import tensorflow as tf

from ocr_tf import models
from ocr_tf.serving.angle_views import AngleViews, check_angle_views, half_difference, with_mirror
from ocr_tf.serving.image_bytes import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, OK, decode_images, error_messages
from ocr_tf.serving.postprocess import READ_OUTPUTS, empty_outputs, serving_outputs
from ocr_tf.serving.preprocess import fit_image


class ServingModule(tf.Module):
  """The exported object: a Keras OCR model with its serving signatures and constants.

  Args:
    model: the Keras model of models.build_model (input 'image' [B, height, width, channels]).
    charset: the characters of its text head's columns.
    height, width, channels: its input.
    max_letters: K, letter boxes returned per image.
    box_threshold: letter peaks scoring less are left out (score 0).
    max_pixels: images whose header claims more pixels are refused, not decoded.
    min_side: images with a side shorter than this are refused.
    angle_mirror: the angle is mirror-averaged (see angle_views.half_difference).
    angle_views: the angle is the mean over the image and angle_views - 1 moved copies (angle_views.AngleViews).

  Raises:
    ValueError: angle_views is not a whole number from 1 to 1 + len(ANGLE_SHIFTS).
  """

  def __init__(self, model: keras.Model, charset: str, height: int, width: int, channels: int,
               max_letters: int, box_threshold: float = 0.3, max_pixels: int = DEFAULT_MAX_PIXELS,
               min_side: int = DEFAULT_MIN_SIDE, angle_mirror: bool = False, angle_views: int = 1):
    super().__init__(name="ocr_serving")
    check_angle_views(angle_views)
    self._angle_mirror = bool(angle_mirror)
    self._angle_views = int(angle_views)
    self.model = model
    self._charset = str(charset)
    self._height, self._width, self._channels = int(height), int(width), int(channels)
    self._max_letters = int(max_letters)
    self._threshold = float(box_threshold)
    self._max_pixels = int(max_pixels)
    self._min_side = int(min_side)
    # Saved with the model, so that a loaded SavedModel can name the columns of text_log_probs.
    self.charset = tf.Variable(self._charset, trainable=False, name="charset")
    # The model without its clean-image decoder, for read_text: Keras runs only what the outputs need.
    self.reader = keras.Model(model.inputs, {k: model.output[k] for k in READ_OUTPUTS}, name="ocr_reader")
    # The angle alone (backbone and angle head), for the moved copies of angle_views; with them, the same
    # layers on the central half of the canvas, where a narrow crop's copies cost half as much.
    self.angle_model = keras.Model(model.inputs, model.output["angle"], name="ocr_angle")
    self._views = None if self._angle_views == 1 else AngleViews(
        self.angle_model, self._height, self._width, self._channels, self._angle_views, self._angle_mirror)
    # The widest crop whose copies are read on the central half; None: none are.
    self.narrow_max = None if self._views is None else self._views.narrow_max
    self.narrow_angle_model = None if self._views is None else self._views.narrow_model
    # The serving graph is written with tf.cond and tf.where: AutoGraph would only add tracing time.
    self.serving_default = tf.function(
        self._serve_bytes, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")], autograph=False)
    self.serve_images = tf.function(
        self._serve_images, input_signature=[tf.TensorSpec([None, None, None, None], tf.float32, name="images")],
        autograph=False)
    self.read_text = tf.function(
        lambda image_bytes: self._serve_bytes(image_bytes, clean=False),
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")], autograph=False)

  # ---------------------------------------------------------------- model

  def _model_outputs(self, images: tf.Tensor, clean: bool, geometry: tf.Tensor, valid: tf.Tensor
                     ) -> dict[str, tf.Tensor]:
    """The model (without its clean-image decoder unless `clean`) on a non-empty batch, angle views applied."""
    model, names = (self.model, models.OUTPUT_NAMES) if clean else (self.reader, READ_OUTPUTS)
    if self._angle_mirror:
      # The other outputs are the image's; the angle is the half difference with the mirror's.
      out, mirrored = with_mirror(model, images)
      out = {k: tf.cast(out[k], tf.float32) for k in names}
      out["angle"] = half_difference(out["angle"], mirrored["angle"])
    else:
      out = model(images, training=False)
      out = {k: tf.cast(out[k], tf.float32) for k in names}
    if self._views is not None:
      out["angle"] = self._views.mean_angle(images, out["angle"], geometry, valid)
    return out

  def _run(self, images: tf.Tensor, geometry: tf.Tensor, valid: tf.Tensor, clean: bool = True
           ) -> dict[str, tf.Tensor]:
    """The model on prepared images [B, H, W, C]; outputs of invalid rows are blanked; no 'clean' without clean."""
    names = models.OUTPUT_NAMES if clean else READ_OUTPUTS
    out = tf.cond(tf.shape(images)[0] > 0, lambda: self._model_outputs(images, clean, geometry, valid),
                  lambda: empty_outputs(self.model, names))
    return serving_outputs(out, images, geometry, valid, charset=self._charset, size=(self._height, self._width),
                           max_letters=self._max_letters, box_threshold=self._threshold)

  # ---------------------------------------------------------------- signatures

  def _serve_images(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
    shape = tf.shape(images)
    with tf.control_dependencies([
        tf.debugging.assert_greater(shape[1], 0, message="serve_images: image height must be > 0"),
        tf.debugging.assert_greater(shape[2], 0, message="serve_images: image width must be > 0"),
        tf.debugging.assert_greater(shape[3], 0, message="serve_images: expected 1 to 4 channels"),
        tf.debugging.assert_less_equal(shape[3], 4, message="serve_images: expected 1 to 4 channels"),
    ]):
      images = tf.identity(images)
    prepared, geometry = fit_image(images, self._height, self._width, self._channels)
    return self._run(prepared, geometry, tf.ones(shape[:1], tf.bool))

  def _serve_bytes(self, image_bytes: tf.Tensor, clean: bool = True) -> dict[str, tf.Tensor]:
    decoded = decode_images(image_bytes, (self._height, self._width, self._channels), self._max_pixels,
                            self._min_side)
    out = self._run(decoded["images"], decoded["geometry"], tf.equal(decoded["status"], OK), clean)
    out["error"] = error_messages(decoded["status"], decoded["height"], decoded["width"], self._max_pixels,
                                  self._min_side)
    return out

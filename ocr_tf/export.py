"""SavedModel export: image bytes (or decoded images) in, text, angle, boxes and clean image out.

:func:`export_saved_model` writes a SavedModel that loads with plain
``tf.saved_model.load`` in a process that never imports ocr_tf (nor keras).
It has three signatures:

``serving_default(image_bytes: tf.string [B])`` returns

==========  ==================  ================================================
key         dtype, shape        meaning
==========  ==================  ================================================
text        string [B]          greedy CTC decode ('' for an image in error or
                                a blank one: grey levels spanning < BLANK_RANGE)
confidence  float32 [B]         probability of the best CTC path; 0 when the
                                text is empty
angle       float32 [B]         text angle in degrees, counter-clockwise positive
                                (exported with angle_mirror: the half difference
                                of the estimates for the image and its mirror;
                                with angle_views=N: the mean over the fitted
                                image and N-1 copies moved by ANGLE_SHIFTS,
                                those of a crop at most 3/8 of the canvas wide
                                read on its central half; with both, each
                                view's estimate is mirror-averaged)
boxes       float32 [B, K, 4]   letter boxes [ymin, xmin, ymax, xmax] in the
                                input image's pixels (pixel (i, j) covers
                                [i, i+1] x [j, j+1]); all zeros in unused slots
box_scores  float32 [B, K]      score of each box, 0 in unused slots; sorted
clean       float32 [B, H, W, 1]  denoised image at model resolution (white for
                                an image in error)
image_size  int32 [B, 2]        the input image's (height, width); 0 when unknown
text_log_   float32 [B, T, C]   log-softmax of the text head per column, the
probs                           CTC blank last (zeros for an image in error):
                                what ocr_tf.lexicon scores readings with
error       string [B]          '' when fine, else a one-line reason
==========  ==================  ================================================

The loaded object's ``charset`` variable (tf.string) holds the characters of
the columns 0..C-2, in order.

``serve_images(images: float32 [B, h, w, c])`` takes a batch of decoded images
in [0, 1] of one size with c = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4
(RGBA) and returns the same keys but ``error``. Invalid tensors (another
channel count, a side of 0) raise InvalidArgumentError: this signature is for
callers that decode images themselves.

``read_text(image_bytes: tf.string [B])`` is ``serving_default`` without
``clean``: the clean-image decoder is not run (about a fifth of the model's
work; ``ocr-tf predict`` uses it unless it draws the clean image).

Preprocessing, identical in both signatures:

1. Alpha is composited on white; colour becomes grey with the luma weights
   (0.299, 0.587, 0.114) for a grey model, grey is repeated for an RGB model.
2. The image is resized, keeping its aspect ratio, to fit the model's H x W
   (bilinear with antialiasing; an image already H x W is left untouched, so
   the model sees exactly its pixels), then centred on an H x W canvas filled
   with the median of its 1-pixel border (its background, for a text line).
   The generator places text at random in the canvas, so centring is as good
   as any other placement.
3. Boxes are mapped back through the same scale and offset, and clipped to
   the input image.

Bad bytes never fail the batch. Each image goes through two guards:

* string ops only (cannot raise): empty input, unknown format (PNG, JPEG, GIF
  and BMP are recognised by their magic bytes), a header too short to hold
  the image size; the width and height are read from the PNG IHDR chunk, the
  GIF screen descriptor or the BMP info header;
* a ``tf.data`` pipeline whose map reads the JPEG size
  (``tf.io.extract_jpeg_shape``), refuses a side of 0, an image smaller than
  ``min_side`` or larger than ``max_pixels`` before decoding it, then decodes
  (``tf.io.decode_image``, 8 or 16 bits, 1 to 4 channels, first GIF frame)
  and preprocesses it. The pipeline ends in ``ignore_errors()``: an image
  whose decoder raises (truncated or corrupt PNG/JPEG/GIF, a BMP variant the
  decoder does not support) is dropped from the pipeline and reported as
  ``corrupt or truncated image data`` while the others go on. This is the
  graph's try/except.

What no graph can guard: the memory of a valid image within ``max_pixels``
(decoded as float32, up to about 16 bytes per pixel for RGBA) and a process
killed by the operating system.

Next to the SavedModel, ``assets/config.json`` (the training config),
``assets/charset.txt`` (the charset, UTF-8, no newline) and
``assets/serving.json`` (input size, channels, export settings) are written
for people; the graph does not read them.
"""

from __future__ import annotations

import json
import operator
import os
from typing import Any

from absl import logging
import keras
import ml_collections
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
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MIN_SIDE = 4
_LUMA = (0.299, 0.587, 0.114)
# Whole-pixel moves (rows, columns) of the fitted image whose angle estimates angle_views averages, in order:
# each puts the text at another phase of the network's strided layers (the backbone halves the rows four
# times and the columns twice, an angle branch both up to four times), which moves a single estimate by
# 0.3 degrees on average for the shipped model; the mean of several cancels part of that.
ANGLE_SHIFTS = ((1, 1), (-1, -1), (0, 2), (0, -2), (1, -1), (-1, 1), (1, 0), (-1, 0))
# The copies of a crop at most 3/8 of the canvas wide are read on its central half when that half starts at
# a multiple of this many columns: the text keeps its phase against up to five halvings.
_NARROW_ALIGN = 32
_HEADER_BYTES = 32

# Error codes of the serving graph; messages are built from them in-graph.
OK, EMPTY, UNKNOWN_FORMAT, SHORT_HEADER, ZERO_SIZE, TOO_LARGE, TOO_SMALL, CORRUPT = range(8)
# Formats recognised by their magic bytes.
_PNG, _JPEG, _GIF, _BMP, _NONE = range(5)


def _bytes_at(header: tf.Tensor, start: int, count: int, big_endian: bool) -> tf.Tensor:
  """Unsigned integer of `count` bytes of header [B, N] (uint8) at `start`, int64 [B]."""
  value = tf.zeros(tf.shape(header)[:1], tf.int64)
  order = range(count) if big_endian else reversed(range(count))
  for i in order:
    value = value * 256 + tf.cast(header[:, start + i], tf.int64)
  return value


def _signed32(value: tf.Tensor) -> tf.Tensor:
  return tf.where(value >= 2**31, value - 2**32, value)


def _matches(header: tf.Tensor, start: int, magic: bytes) -> tf.Tensor:
  expected = tf.constant(list(magic), tf.uint8)
  return tf.reduce_all(tf.equal(header[:, start:start + len(magic)], expected), axis=-1)


def sniff(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
  """Format, header size and first error code of each string, with string ops that cannot raise.

  Args:
    image_bytes: tf.string [B].

  Returns:
    dict of int32 [B] ``format`` (_PNG ... _NONE), ``status`` (OK, EMPTY,
    UNKNOWN_FORMAT or SHORT_HEADER) and int64 [B] ``height``, ``width`` as
    the header says (-1 for JPEG, whose size is read later, and when unknown).
  """
  image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
  length = tf.strings.length(image_bytes)
  padding = tf.fill(tf.shape(image_bytes), b"\0" * _HEADER_BYTES)
  fixed = tf.strings.substr(tf.strings.join([tf.strings.substr(image_bytes, 0, _HEADER_BYTES), padding]),
                            0, _HEADER_BYTES)
  header = tf.reshape(tf.io.decode_raw(fixed, tf.uint8), [-1, _HEADER_BYTES])
  is_png = _matches(header, 0, b"\x89PNG\r\n\x1a\n")
  is_jpeg = _matches(header, 0, b"\xff\xd8\xff")
  is_gif = _matches(header, 0, b"GIF87a") | _matches(header, 0, b"GIF89a")
  is_bmp = _matches(header, 0, b"BM")
  fmt = tf.where(is_png, _PNG, tf.where(is_jpeg, _JPEG, tf.where(is_gif, _GIF, tf.where(is_bmp, _BMP, _NONE))))
  # Bytes needed to read the size from the header.
  needed = tf.gather(tf.constant([24, 4, 10, 26, 0]), fmt)
  png_ok = _matches(header, 12, b"IHDR")
  bmp_core = _bytes_at(header, 14, 4, False) == 12
  missing = tf.fill(tf.shape(length), tf.constant(-1, tf.int64))

  def dimension(png_at: int, gif_at: int, bmp_core_at: int, bmp_info_at: int) -> tf.Tensor:
    """One side from the header, by format: PNG IHDR, (JPEG: later), GIF screen, BMP core or info header."""
    bmp = tf.where(bmp_core, _bytes_at(header, bmp_core_at, 2, False),
                   tf.abs(_signed32(_bytes_at(header, bmp_info_at, 4, False))))
    by_format = tf.stack([_bytes_at(header, png_at, 4, True), missing, _bytes_at(header, gif_at, 2, False),
                          bmp, missing], axis=1)
    return tf.gather(by_format, fmt, batch_dims=1)

  height = dimension(20, 8, 20, 22)
  width = dimension(16, 6, 18, 18)
  status = tf.where(length == 0, EMPTY,
                    tf.where(fmt == _NONE, UNKNOWN_FORMAT,
                             tf.where((length < needed) | ((fmt == _PNG) & ~png_ok), SHORT_HEADER, OK)))
  return {"format": tf.cast(fmt, tf.int32), "status": tf.cast(status, tf.int32), "height": height,
          "width": width}


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
  """[B, h, w, c] float in [0, 1], c in 1..4 (alpha last) -> [B, h, w, channels], alpha on white."""
  c = tf.shape(image)[-1]
  has_alpha = tf.equal(c, 2) | tf.equal(c, 4)
  color_count = tf.where(has_alpha, c - 1, c)
  alpha = tf.cond(has_alpha, lambda: image[..., -1:], lambda: tf.ones_like(image[..., :1]))
  color = image[..., :color_count] * alpha + (1.0 - alpha)
  is_rgb = color_count >= 3
  if channels == 1:
    weights = tf.constant(_LUMA, tf.float32)
    out = tf.cond(is_rgb, lambda: tf.reduce_sum(color[..., :3] * weights, axis=-1, keepdims=True),
                  lambda: color[..., :1])
  else:
    out = tf.cond(is_rgb, lambda: color[..., :3], lambda: tf.tile(color[..., :1], [1, 1, 1, 3]))
  return tf.ensure_shape(out, [None, None, None, channels])


def fit_image(image: tf.Tensor, height: int, width: int, channels: int) -> tuple[tf.Tensor, tf.Tensor]:
  """Images of one size -> the model's input, and the geometry to map boxes back.

  Args:
    image: float [B, h, w, c] in [0, 1], c in 1..4.
    height, width, channels: the model's input.

  Returns:
    images float32 [B, height, width, channels]; geometry float32 [B, 6]:
    (scale_y, scale_x, offset_y, offset_x, h, w), model pixel = input pixel *
    scale + offset.
  """
  image = tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 1.0)
  image = to_channels(image, channels)
  shape = tf.shape(image)
  b, h, w = shape[0], shape[1], shape[2]
  hf, wf = tf.cast(h, tf.float64), tf.cast(w, tf.float64)
  scale = tf.minimum(height / hf, width / wf)
  nh = tf.clip_by_value(tf.cast(tf.round(hf * scale), tf.int32), 1, height)
  nw = tf.clip_by_value(tf.cast(tf.round(wf * scale), tf.int32), 1, width)
  same = tf.equal(nh, h) & tf.equal(nw, w)
  resized = tf.cond(same, lambda: image,
                    lambda: tf.image.resize(image, tf.stack([nh, nw]), method="bilinear", antialias=True))
  border = tf.concat([image[:, 0, :, :], image[:, -1, :, :], image[:, :, 0, :], image[:, :, -1, :]], axis=1)
  # The background: the border's median, which text touching the border (a tight crop) does not shift.
  fill = tf.sort(border, axis=1)[:, tf.shape(border)[1] // 2][:, None, None, :]
  top, left = (height - nh) // 2, (width - nw) // 2
  paddings = [[0, 0], [top, height - nh - top], [left, width - nw - left], [0, 0]]
  placed = tf.pad(resized, paddings)
  inside = tf.pad(tf.ones(tf.stack([b, nh, nw, 1]), tf.bool), paddings, constant_values=False)
  out = tf.where(inside, placed, tf.broadcast_to(fill, tf.shape(placed)))
  out = tf.ensure_shape(tf.clip_by_value(out, 0.0, 1.0), [None, height, width, channels])
  geometry = tf.cast(tf.stack([tf.cast(nh, tf.float64) / hf, tf.cast(nw, tf.float64) / wf,
                               tf.cast(top, tf.float64), tf.cast(left, tf.float64), hf, wf]), tf.float32)
  return out, tf.tile(geometry[None], [b, 1])


def shift_image(images: tf.Tensor, dy: int, dx: int) -> tf.Tensor:
  """[B, H, W, C] moved down by dy and right by dx whole pixels (negative: up, left); the edge rows and
  columns repeat into the gap."""
  shape = tf.shape(images)
  rows = tf.clip_by_value(tf.range(shape[1]) - dy, 0, shape[1] - 1)
  cols = tf.clip_by_value(tf.range(shape[2]) - dx, 0, shape[2] - 1)
  return tf.gather(tf.gather(images, rows, axis=1), cols, axis=2)


def check_angle_views(angle_views: int) -> None:
  """Raises ValueError unless 1 <= angle_views <= 1 + len(ANGLE_SHIFTS) (a whole number, not a bool)."""
  try:
    views = None if isinstance(angle_views, bool) else operator.index(angle_views)
  except TypeError:
    views = None
  if views is None or not 1 <= views <= 1 + len(ANGLE_SHIFTS):
    raise ValueError(f"angle_views={angle_views!r}: expected a whole number from 1 (the image alone) to "
                     f"{1 + len(ANGLE_SHIFTS)}")


def _dims_text(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
  return tf.strings.join([tf.strings.as_string(width), "x", tf.strings.as_string(height)])


def error_messages(status: tf.Tensor, height: tf.Tensor, width: tf.Tensor, max_pixels: int,
                   min_side: int) -> tf.Tensor:
  """One-line message per error code ('' for OK), naming the size where it matters."""
  height, width = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
  dims = _dims_text(height, width)
  fixed = tf.constant([
      "",
      "empty input (0 bytes)",
      "not a decodable image (unknown format; PNG, JPEG, GIF or BMP expected)",
      "truncated image header",
      "",
      "",
      "",
      "corrupt or truncated image data (the decoder failed)",
  ])
  zero = tf.strings.join(["image has zero size (", dims, " pixels)"])
  large = tf.strings.join(["image too large (", dims, " = ", tf.strings.as_string(height * width),
                           f" pixels; limit {max_pixels})"])
  small = tf.strings.join(["image too small (", dims, f" pixels; each side must be at least {min_side})"])
  out = tf.gather(fixed, status)
  out = tf.where(status == ZERO_SIZE, zero, out)
  out = tf.where(status == TOO_LARGE, large, out)
  return tf.where(status == TOO_SMALL, small, out)


class ServingModule(tf.Module):
  """The exported object: a Keras OCR model with its serving signatures and constants."""

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
    # The angle alone (backbone and angle head), for the moved copies of angle_views; and the same layers on
    # the central half of the canvas, where a narrow crop's copies cost half as much.
    self.angle_model = keras.Model(model.inputs, model.output["angle"], name="ocr_angle")
    self._narrow_width = self._width // 2
    self._narrow_left = (self._width - self._narrow_width) // 2
    self.narrow_max = None  # the widest crop whose copies are read on the central half; None: none are
    self.narrow_angle_model = None
    if self._angle_views > 1 and self._narrow_left % _NARROW_ALIGN == 0:
      try:
        self.narrow_angle_model = keras.models.clone_model(
            self.angle_model, clone_function=lambda layer: layer,  # the same layers and weights
            input_tensors=tf.nest.map_structure(
                lambda _: keras.Input((self._height, self._narrow_width, self._channels)), self.angle_model.input))
        self.narrow_max = self._narrow_width - 2 * (self._width // 16)  # 3/8 of the canvas
      except (ValueError, TypeError) as e:
        logging.warning("angle_views: this model's angle head does not run on half the canvas (%s); every "
                        "moved copy is read on the whole canvas", str(e).splitlines()[0][:200])
    elif self._angle_views > 1:
      logging.info("angle_views: the central half of a %d-column canvas starts at column %d, not a multiple of "
                   "%d; every moved copy is read on the whole canvas", self._width, self._narrow_left,
                   _NARROW_ALIGN)
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
    model, names = (self.model, models.OUTPUT_NAMES) if clean else (self.reader, READ_OUTPUTS)
    n = tf.shape(images)[0]
    if self._angle_mirror:
      # Mirrored left to right, text turned by a turns by -a: the half difference of the two estimates keeps
      # the angle and cancels what a glyph's own asymmetry adds to it (the other outputs are the image's).
      both = model(tf.concat([images, tf.reverse(images, axis=[2])], axis=0), training=False)
      out = {k: tf.cast(both[k][:n], tf.float32) for k in names}
      out["angle"] = (out["angle"] - tf.cast(both["angle"][n:], tf.float32)) / 2.0
    else:
      out = model(images, training=False)
      out = {k: tf.cast(out[k], tf.float32) for k in names}
    if self._angle_views > 1:
      fitted_width = geometry[:, 1] * geometry[:, 5]  # the crop's width in the canvas (centred)
      out["angle"] = (out["angle"] + self._moved_angles(images, fitted_width, valid)) / float(self._angle_views)
    return out

  def _copies_angles(self, images: tf.Tensor, angle_model: keras.Model) -> tf.Tensor:
    """[B]: the sum of the angle estimates of the angle_views - 1 moved copies of each image."""
    n = tf.shape(images)[0]
    moved = tf.concat([shift_image(images, dy, dx) for dy, dx in ANGLE_SHIFTS[:self._angle_views - 1]], axis=0)
    if self._angle_mirror:
      m = tf.shape(moved)[0]
      both = tf.cast(angle_model(tf.concat([moved, tf.reverse(moved, axis=[2])], axis=0), training=False),
                     tf.float32)
      angles = (both[:m] - both[m:]) / 2.0
    else:
      angles = tf.cast(angle_model(moved, training=False), tf.float32)
    return tf.reduce_sum(tf.reshape(angles, [self._angle_views - 1, n]), axis=0)

  def _moved_angles(self, images: tf.Tensor, fitted_width: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """[B]: _copies_angles of the valid rows (0 for the others, whose angle is blanked), a crop at most
    narrow_max wide read on the central half of the canvas."""
    n = tf.shape(images)[0]
    narrow = tf.zeros_like(valid) if self.narrow_max is None else fitted_width <= self.narrow_max + 0.5

    def part(rows: tf.Tensor, crop: bool) -> tf.Tensor:
      index = tf.where(rows)[:, 0]
      x = tf.gather(images, index)
      x, angle_model = (x[:, :, self._narrow_left:self._narrow_left + self._narrow_width],
                        self.narrow_angle_model) if crop else (x, self.angle_model)
      # Not run on an empty batch (the model's graph fails on one).
      sums = tf.cond(tf.size(index) > 0, lambda: self._copies_angles(x, angle_model), lambda: tf.zeros([0]))
      return tf.scatter_nd(index[:, None], sums, [n])

    wide = part(valid & tf.logical_not(narrow), False)
    return wide if self.narrow_max is None else wide + part(valid & narrow, True)

  def _empty_outputs(self, clean: bool) -> dict[str, tf.Tensor]:
    """Zero-row outputs: the model is not run on an empty batch (its graph fails on one)."""
    shapes = {k: [0, *v.shape[1:]] for k, v in zip(self.model.output_names, self.model.outputs)}
    return {k: tf.zeros(shapes[k], tf.float32) for k in (models.OUTPUT_NAMES if clean else READ_OUTPUTS)}

  def _run(self, images: tf.Tensor, geometry: tf.Tensor, valid: tf.Tensor, clean: bool = True
           ) -> dict[str, tf.Tensor]:
    """The model on prepared images [B, H, W, C]; outputs of invalid rows are blanked; no 'clean' without clean."""
    out = tf.cond(tf.shape(images)[0] > 0, lambda: self._model_outputs(images, clean, geometry, valid),
                  lambda: self._empty_outputs(clean))
    logits = out["text_logits"]
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    text = metrics.decode_text(logits, self._charset)
    confidence = metrics.greedy_confidence(logits)
    # An image without contrast holds no text: nothing is read, with no confidence, rather than a guess.
    flat = tf.reduce_max(images, axis=[1, 2, 3]) - tf.reduce_min(images, axis=[1, 2, 3]) < BLANK_RANGE
    text = tf.where(flat, "", text)
    confidence = tf.where(flat | tf.equal(tf.strings.length(text), 0), 0.0, confidence)
    angle = tf.cast(out["angle"], tf.float32)
    boxes, scores = models.decode_letters(out["letters"], (self._height, self._width), self._max_letters,
                                          self._threshold)
    size = tf.constant([self._height, self._width, self._height, self._width], tf.float32)
    scale = tf.concat([geometry[:, 0:2], geometry[:, 0:2]], axis=-1)[:, None, :]
    offset = tf.concat([geometry[:, 2:4], geometry[:, 2:4]], axis=-1)[:, None, :]
    limit = tf.concat([geometry[:, 4:6], geometry[:, 4:6]], axis=-1)[:, None, :]
    pixels = tf.clip_by_value((boxes * size - offset) / scale, 0.0, limit)
    keep = (scores > 0.0) & valid[:, None]
    result = {
        "text": tf.where(valid, text, ""),
        "confidence": tf.where(valid, confidence, 0.0),
        "angle": tf.where(valid, angle, 0.0),
        "boxes": tf.where(keep[..., None], pixels, 0.0),
        "box_scores": tf.where(keep, scores, 0.0),
        "image_size": tf.where(valid[:, None], tf.cast(geometry[:, 4:6], tf.int32), 0),
        "text_log_probs": tf.where(valid[:, None, None], log_probs, 0.0),
    }
    if clean:
      result["clean"] = tf.where(valid[:, None, None, None], tf.cast(out["clean"], tf.float32), 1.0)
    return result

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

  def _decode_one(self, index, data, fmt, status, height, width):
    """One image of the tf.data pipeline: size checks, decode, fit. May raise (the caller drops it)."""
    height, width = tf.cond(
        tf.equal(status, OK) & tf.equal(fmt, _JPEG),
        lambda: tuple(tf.unstack(tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64))),
        lambda: (height, width))
    status = tf.where(tf.equal(status, OK) & ((height <= 0) | (width <= 0)), ZERO_SIZE, status)
    status = tf.where(tf.equal(status, OK) & (height * width > self._max_pixels), TOO_LARGE, status)
    status = tf.where(tf.equal(status, OK) & ((height < self._min_side) | (width < self._min_side)), TOO_SMALL,
                      status)

    def decode():
      image = tf.io.decode_image(data, channels=0, dtype=tf.float32, expand_animations=False)
      shape = tf.shape(image, out_type=tf.int64)
      bad = tf.where((shape[0] < self._min_side) | (shape[1] < self._min_side), TOO_SMALL, OK)
      bad = tf.where(shape[0] * shape[1] > self._max_pixels, TOO_LARGE, bad)
      prepared, geometry = tf.cond(
          tf.equal(bad, OK),
          lambda: fit_image(image[None], self._height, self._width, self._channels),
          lambda: self._blank(1))
      return prepared[0], geometry[0], tf.cast(bad, tf.int32), shape[0], shape[1]

    def skip():
      prepared, geometry = self._blank(1)
      return prepared[0], geometry[0], tf.cast(status, tf.int32), height, width

    prepared, geometry, status, height, width = tf.cond(tf.equal(status, OK), decode, skip)
    return index, prepared, geometry, status, height, width

  def _blank(self, n) -> tuple[tf.Tensor, tf.Tensor]:
    return (tf.ones(tf.stack([n, self._height, self._width, self._channels]), tf.float32),
            tf.tile(tf.constant([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]]), tf.stack([n, 1])))

  def _serve_bytes(self, image_bytes: tf.Tensor, clean: bool = True) -> dict[str, tf.Tensor]:
    n = tf.shape(image_bytes)[0]
    head = sniff(image_bytes)
    ds = tf.data.Dataset.from_tensor_slices((tf.range(n), image_bytes, head["format"], head["status"],
                                             head["height"], head["width"]))
    ds = ds.map(self._decode_one, num_parallel_calls=2, deterministic=False).ignore_errors()
    empty = tf.data.Dataset.from_tensors((
        tf.zeros([0], tf.int32), tf.zeros([0, self._height, self._width, self._channels]),
        tf.zeros([0, 6]), tf.zeros([0], tf.int32), tf.zeros([0], tf.int64), tf.zeros([0], tf.int64)))
    index, prepared, geometry, status, height, width = (
        ds.batch(2**30).concatenate(empty).take(1).get_single_element())
    rows = index[:, None]
    blank_images, blank_geometry = self._blank(n)
    images = tf.tensor_scatter_nd_update(blank_images, rows, prepared)
    geometry = tf.tensor_scatter_nd_update(blank_geometry, rows, geometry)
    status = tf.tensor_scatter_nd_update(tf.fill([n], CORRUPT), rows, status)
    height = tf.tensor_scatter_nd_update(head["height"], rows, height)
    width = tf.tensor_scatter_nd_update(head["width"], rows, width)
    valid = tf.equal(status, OK)
    out = self._run(images, geometry, valid, clean)
    out["error"] = error_messages(status, height, width, self._max_pixels, self._min_side)
    return out


def _json_ready(value: Any) -> Any:
  if isinstance(value, ml_collections.ConfigDict):
    return json.loads(value.to_json_best_effort())
  return value


def export_saved_model(model: keras.Model, config: ml_collections.ConfigDict, path: str, *,
                       max_letters: int | None = None, box_threshold: float = 0.3,
                       max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE,
                       angle_mirror: bool = False, angle_views: int = 1) -> str:
  """Writes `model` as a SavedModel with the signatures serving_default, serve_images and read_text.

  Args:
    model: the Keras model of models.build_model (input 'image' [B, H, W, C]).
    config: the training config; ``config.data`` gives the charset, H, W, C
      and ``max_length`` (the default number of letter boxes).
    path: the SavedModel folder (created; files in it are replaced).
    max_letters: K, letter boxes returned per image (default data.max_length).
    box_threshold: letter peaks scoring less are left out (score 0).
    max_pixels: images whose header claims more pixels are refused, not decoded.
    min_side: images with a side shorter than this are refused.
    angle_mirror: the angle is the half difference of the model's estimates
      for the image and for its mirror image (left-right): an angle changes
      sign in a mirror, the bias a glyph's asymmetric shape gives the
      estimate does not always. The model runs on twice the images.
    angle_views: the angle is the mean of the estimates for the fitted
      image and for angle_views - 1 copies of it moved by ANGLE_SHIFTS (one
      or two pixels). An estimate moves a little with the text's position
      against the network's strided layers; the mean is steadier (the shipped
      model: 0.523 to 0.49 degrees on rotated real words with 3). Each copy
      runs the backbone and the angle head, about 0.8 of a pass of the model;
      the copies of a crop at most 3/8 of the canvas wide (96 of 256
      columns, most words of a page) are read on the canvas's central half,
      at about half the cost.

  Returns:
    `path`.
  """
  d = config.data
  height, width, channels = int(d.height), int(d.width), int(d.channels)
  expected = (height, width, channels)
  got = tuple(model.inputs[0].shape[1:]) if model.inputs else None
  if got != expected:
    raise ValueError(f"model input shape {got} does not match config.data (height, width, channels) = {expected}")
  k = int(max_letters or d.max_length)
  if k < 1:
    raise ValueError(f"max_letters={max_letters!r}: must be >= 1")
  if int(max_pixels) < 1 or int(min_side) < 1:
    raise ValueError(f"max_pixels={max_pixels!r}, min_side={min_side!r}: both must be >= 1")
  check_angle_views(angle_views)
  module = ServingModule(model, d.charset, height, width, channels, k, box_threshold, max_pixels, min_side,
                         angle_mirror, angle_views)
  signatures = {
      "serving_default": module.serving_default.get_concrete_function(),
      "serve_images": module.serve_images.get_concrete_function(),
      "read_text": module.read_text.get_concrete_function(),
  }
  tf.saved_model.save(module, path, signatures=signatures)
  assets = os.path.join(path, "assets")
  os.makedirs(assets, exist_ok=True)
  with open(os.path.join(assets, "config.json"), "w", encoding="utf-8") as f:
    json.dump(_json_ready(config), f, indent=2, sort_keys=True, ensure_ascii=False)
    f.write("\n")
  with open(os.path.join(assets, "charset.txt"), "w", encoding="utf-8", newline="") as f:
    f.write(d.charset)
  serving = {"height": height, "width": width, "channels": channels, "max_letters": k,
             "box_threshold": float(box_threshold), "max_pixels": int(max_pixels), "min_side": int(min_side),
             "angle_mirror": bool(angle_mirror), "angle_views": int(angle_views),
             "angle_views_narrow_max": module.narrow_max,
             "signatures": {"serving_default": {"inputs": {"image_bytes": "string [B]"}, "outputs": list(SERVING_KEYS)},
                            "serve_images": {"inputs": {"images": "float32 [B, h, w, c] in [0, 1]"},
                                             "outputs": list(IMAGE_KEYS)},
                            "read_text": {"inputs": {"image_bytes": "string [B]"}, "outputs": list(READ_TEXT_KEYS)}}}
  with open(os.path.join(assets, "serving.json"), "w", encoding="utf-8") as f:
    json.dump(serving, f, indent=2)
    f.write("\n")
  return path

"""Serving: image bytes (or decoded images) in, text, angle, boxes and clean image out, as a SavedModel.

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

Preprocessing, identical in both signatures and in training on real images
(:mod:`ocr_tf.serving.preprocess`, the one place it is written):

1. Alpha is composited on white; colour becomes grey with the luma weights
   (0.299, 0.587, 0.114; ocr_tf.image_ops) for a grey model, grey is repeated
   for an RGB model.
2. The image is resized, keeping its aspect ratio, to fit the model's H x W
   (bilinear with antialiasing; an image already H x W is left untouched, so
   the model sees exactly its pixels), then centred on an H x W canvas filled
   with the median of its 1-pixel border (its background, for a text line).
   The generator places text at random in the canvas, so centring is as good
   as any other placement.
3. Boxes are mapped back through the same scale and offset, and clipped to
   the input image (:mod:`ocr_tf.serving.postprocess`).

Bad bytes never fail the batch (:mod:`ocr_tf.serving.image_bytes`). Each image
goes through two guards:

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

The parts, data flowing down the list:

=====================  ==========================================================
module                 what it does
=====================  ==========================================================
``preprocess``         any decoded image -> the model's input (TensorFlow only)
``image_bytes``        sniff, the error codes and messages, the decode pipeline
``angle_views``        the moved copies and the mirror of the angle estimate
``postprocess``        model outputs -> signature outputs; the output keys
``module``             ServingModule, the tf.Module with the three signatures
``export``             export_saved_model and the asset files
=====================  ==========================================================

The names of the Keras side (angle_views, postprocess, module, export) are
loaded on first use, so that importing ``ocr_tf.serving.preprocess`` (as
training's real-data reader does) does not load Keras and the model code.
"""

from __future__ import annotations

import importlib
from typing import Any

from ocr_tf.serving.image_bytes import (CORRUPT, DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, EMPTY, OK, SHORT_HEADER,
                                        TOO_LARGE, TOO_SMALL, UNKNOWN_FORMAT, ZERO_SIZE, decode_images,
                                        error_messages, sniff)
from ocr_tf.serving.preprocess import blank, fit_image, to_channels

# Public name -> the module of this package that defines it (imported when the name is first used).
_KERAS_SIDE = {
    "ANGLE_SHIFTS": "angle_views", "AngleViews": "angle_views", "check_angle_views": "angle_views",
    "half_difference": "angle_views", "shift_image": "angle_views", "with_mirror": "angle_views",
    "BLANK_RANGE": "postprocess", "IMAGE_KEYS": "postprocess", "READ_OUTPUTS": "postprocess",
    "READ_TEXT_KEYS": "postprocess", "SERVING_KEYS": "postprocess", "serving_outputs": "postprocess",
    "ServingModule": "module",
    "export_saved_model": "export", "write_assets": "export",
}

__all__ = sorted([
    "CORRUPT", "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_SIDE", "EMPTY", "OK", "SHORT_HEADER", "TOO_LARGE", "TOO_SMALL",
    "UNKNOWN_FORMAT", "ZERO_SIZE", "blank", "decode_images", "error_messages", "fit_image", "sniff", "to_channels",
    *_KERAS_SIDE])


def __getattr__(name: str) -> Any:
  """A Keras-side public name, from its module (PEP 562)."""
  if name not in _KERAS_SIDE:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  return getattr(importlib.import_module(f"{__name__}.{_KERAS_SIDE[name]}"), name)


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(_KERAS_SIDE))

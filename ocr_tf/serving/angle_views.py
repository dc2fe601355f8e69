"""The angle read on several views of one image: moved copies (angle_views) and the mirror image (angle_mirror).

An estimate moves a little with the text's position against the network's
strided layers, and a glyph's asymmetric shape adds a bias that a mirror does
not always share: the mean over moved copies is steadier, and the half
difference of the estimates for an image and its mirror keeps the angle (it
changes sign in a mirror) and cancels that bias.
"""

from __future__ import annotations

import operator

from absl import logging
import keras
import tensorflow as tf

# Whole-pixel moves (rows, columns) of the fitted image whose angle estimates angle_views averages, in order:
# each puts the text at another phase of the network's strided layers (the backbone halves the rows four
# times and the columns twice, an angle branch both up to four times), which moves a single estimate by
# 0.3 degrees on average for the shipped model; the mean of several cancels part of that.
ANGLE_SHIFTS = ((1, 1), (-1, -1), (0, 2), (0, -2), (1, -1), (-1, 1), (1, 0), (-1, 0))
# The copies of a crop at most 3/8 of the canvas wide are read on its central half when that half starts at
# a multiple of this many columns: the text keeps its phase against up to five halvings.
NARROW_ALIGN = 32


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


def with_mirror(model: keras.Model, images: tf.Tensor) -> tuple:
  """A model run once on images [B, H, W, C] and their left-right mirrors.

  Args:
    model: a Keras model (a tensor or a dict of tensors out).
    images: its input batch.

  Returns:
    (outputs on the images, outputs on the mirrors): each the model's output
    structure with B rows.
  """
  n = tf.shape(images)[0]
  both = model(tf.concat([images, tf.reverse(images, axis=[2])], axis=0), training=False)
  return tf.nest.map_structure(lambda x: x[:n], both), tf.nest.map_structure(lambda x: x[n:], both)


def half_difference(angle: tf.Tensor, mirrored: tf.Tensor) -> tf.Tensor:
  """float32: the angle kept by a mirror-averaged estimate, (angle - mirrored) / 2.

  Mirrored left to right, text turned by a turns by -a: the half difference
  keeps the angle and cancels what a glyph's own asymmetry adds to it.
  """
  return (tf.cast(angle, tf.float32) - tf.cast(mirrored, tf.float32)) / 2.0


class AngleViews:
  """The mean angle over the fitted image and views - 1 copies of it moved by ANGLE_SHIFTS.

  The copies of a crop at most ``narrow_max`` wide (3/8 of the canvas) are
  read by the same layers on the canvas's central half, at about half the
  cost, where that half keeps the strided layers' phase (it starts at a
  multiple of NARROW_ALIGN columns) and the angle head runs on it.

  Args:
    angle_model: the backbone and angle head: [B, height, width, channels] -> angle [B].
    height, width, channels: the model's input.
    views: 2 to 1 + len(ANGLE_SHIFTS).
    mirror: each copy's estimate is mirror-averaged (:func:`half_difference`).

  Attributes:
    narrow_max: the widest crop (canvas columns) read on the central half; None: none is.
    narrow_model: angle_model's layers and weights on the central half, or None.
  """

  def __init__(self, angle_model: keras.Model, height: int, width: int, channels: int, views: int,
               mirror: bool):
    self.angle_model = angle_model
    self.views, self.mirror = int(views), bool(mirror)
    self.narrow_width = width // 2
    self.narrow_left = (width - self.narrow_width) // 2
    self.narrow_max: int | None = None
    self.narrow_model: keras.Model | None = None
    if self.narrow_left % NARROW_ALIGN:
      logging.info("angle_views: the central half of a %d-column canvas starts at column %d, not a multiple of "
                   "%d; every moved copy is read on the whole canvas", width, self.narrow_left, NARROW_ALIGN)
      return
    try:
      self.narrow_model = keras.models.clone_model(
          angle_model, clone_function=lambda layer: layer,  # the same layers and weights
          input_tensors=tf.nest.map_structure(
              lambda _: keras.Input((height, self.narrow_width, channels)), angle_model.input))
      self.narrow_max = self.narrow_width - 2 * (width // 16)  # 3/8 of the canvas
    except (ValueError, TypeError) as e:
      logging.warning("angle_views: this model's angle head does not run on half the canvas (%s); every "
                      "moved copy is read on the whole canvas", str(e).splitlines()[0][:200])

  def mean_angle(self, images: tf.Tensor, angle: tf.Tensor, geometry: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """The mean over the views of each image.

    Args:
      images: float32 [B, H, W, C], the fitted images.
      angle: float32 [B], their own estimates.
      geometry: float32 [B, 6] of preprocess.fit_image (gives each crop's width in the canvas).
      valid: bool [B]; the other rows' copies are not read (their angle is blanked).

    Returns:
      float32 [B].
    """
    fitted_width = geometry[:, 1] * geometry[:, 5]  # the crop's width in the canvas (centred)
    return (angle + self._moved_angles(images, fitted_width, valid)) / float(self.views)

  def _copies_angles(self, images: tf.Tensor, angle_model: keras.Model) -> tf.Tensor:
    """[B]: the sum of the angle estimates of the views - 1 moved copies of each image."""
    n = tf.shape(images)[0]
    moved = tf.concat([shift_image(images, dy, dx) for dy, dx in ANGLE_SHIFTS[:self.views - 1]], axis=0)
    if self.mirror:
      angles = half_difference(*with_mirror(angle_model, moved))
    else:
      angles = tf.cast(angle_model(moved, training=False), tf.float32)
    return tf.reduce_sum(tf.reshape(angles, [self.views - 1, n]), axis=0)

  def _moved_angles(self, images: tf.Tensor, fitted_width: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """[B]: _copies_angles of the valid rows (0 for the others), a crop at most narrow_max wide read on the
    central half of the canvas."""
    n = tf.shape(images)[0]
    narrow = tf.zeros_like(valid) if self.narrow_max is None else fitted_width <= self.narrow_max + 0.5

    def part(rows: tf.Tensor, crop: bool) -> tf.Tensor:
      index = tf.where(rows)[:, 0]
      x = tf.gather(images, index)
      x, angle_model = (x[:, :, self.narrow_left:self.narrow_left + self.narrow_width],
                        self.narrow_model) if crop else (x, self.angle_model)
      # Not run on an empty batch (the model's graph fails on one).
      sums = tf.cond(tf.size(index) > 0, lambda: self._copies_angles(x, angle_model), lambda: tf.zeros([0]))
      return tf.scatter_nd(index[:, None], sums, [n])

    wide = part(valid & tf.logical_not(narrow), False)
    return wide if self.narrow_max is None else wide + part(valid & narrow, True)

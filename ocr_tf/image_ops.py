"""Pixel operations shared by the sample generator and the serving graph (TensorFlow only, no other ocr_tf import)."""

from __future__ import annotations

import tensorflow as tf

# ITU-R BT.601 luma weights of (red, green, blue).
LUMA = (0.299, 0.587, 0.114)


def luma(rgb: tf.Tensor) -> tf.Tensor:
  """Grey levels of colour pixels.

  Args:
    rgb: float [..., 3], red, green, blue.

  Returns:
    float32 [..., 1]: the luma-weighted sum of the three channels.
  """
  return tf.reduce_sum(rgb * tf.constant(LUMA, tf.float32), axis=-1, keepdims=True)

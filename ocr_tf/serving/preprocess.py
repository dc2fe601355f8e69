"""Any decoded image -> the model's input: the one place it is done, for serving and for training on real images.

TensorFlow only (no Keras): training's real-data reader (ocr_tf.real_data)
puts its files into the model's input with :func:`fit_image`, exactly as the
serving signatures do.
"""

from __future__ import annotations

import tensorflow as tf

from ocr_tf import image_ops


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
  """[B, h, w, c] float in [0, 1], c in 1..4 (alpha last) -> [B, h, w, channels], alpha on white."""
  c = tf.shape(image)[-1]
  has_alpha = tf.equal(c, 2) | tf.equal(c, 4)
  color_count = tf.where(has_alpha, c - 1, c)
  alpha = tf.cond(has_alpha, lambda: image[..., -1:], lambda: tf.ones_like(image[..., :1]))
  color = image[..., :color_count] * alpha + (1.0 - alpha)
  is_rgb = color_count >= 3
  if channels == 1:
    out = tf.cond(is_rgb, lambda: image_ops.luma(color[..., :3]), lambda: color[..., :1])
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


def blank(n: tf.Tensor | int, height: int, width: int, channels: int) -> tuple[tf.Tensor, tf.Tensor]:
  """The stand-in for `n` images in error: white model inputs and the identity geometry of size 0 x 0.

  Args:
    n: the number of images (int32 scalar).
    height, width, channels: the model's input.

  Returns:
    images float32 [n, height, width, channels] of ones; geometry float32 [n, 6]
    (1, 1, 0, 0, 0, 0), the layout of :func:`fit_image`'s.
  """
  return (tf.ones(tf.stack([n, height, width, channels]), tf.float32),
          tf.tile(tf.constant([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]]), tf.stack([n, 1])))

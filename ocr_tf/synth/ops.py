"""Small tensor helpers of the generator's XLA programs: per-sample conditionals, barriers, colour mixing."""

from __future__ import annotations

import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla as _xla

from ocr_tf.image_ops import LUMA, luma


def if_(flag, fn, x):
  """fn(x) where flag [B] is true, else x.

  Samples are rendered alone (B = 1), so this is a conditional that skips fn's
  work when the sample does not ask for it; for a batch it falls back to
  computing fn everywhere and selecting.
  """
  if x.shape[0] == 1:
    return tf.cond(flag[0], lambda: fn(x), lambda: x)
  return tf.where(tf.reshape(flag, [-1] + [1] * (x.shape.rank - 1)), fn(x), x)


def barrier(x):
  """Materializes `x` inside XLA, so consumers that read it many times (shifted
  slices, gathers) do not each recompute the chain that produced it."""
  return _xla.optimization_barrier(x)[0]


def max_all(xs):
  """Elementwise maximum of a list of tensors (an explicit chain: XLA's reduce over a stacked axis is slower)."""
  out = xs[0]
  for x in xs[1:]:
    out = tf.maximum(out, x)
  return out


def to_channels(rgb, channels: int):
  """[..., 3] colours -> [..., channels] (luma for grey)."""
  if channels == 3:
    return rgb
  return luma(rgb)


def saturate(img, amount):
  """Mixes each pixel of [B, H, W, C] with its grey by `amount` [B] (0 = grey, 1 = unchanged)."""
  if img.shape[-1] == 1:
    return img
  grey = LUMA[0] * img[..., 0:1] + LUMA[1] * img[..., 1:2] + LUMA[2] * img[..., 2:3]
  return grey + (img - grey) * amount[:, None, None, None]

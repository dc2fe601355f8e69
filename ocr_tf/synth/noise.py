"""Per-pixel noise from an integer hash of (key, position): the same numbers on every device and batch size."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

import ocr_tf.synth.ops as ops

NOISE_LEVELS = 5  # background octaves with cells of 2, 4, 8, 16, 32 px


def mix(x):
  """A 32-bit integer finalizer (xorshift-multiply), elementwise on uint32."""
  r = tf.bitwise.right_shift
  x = x ^ r(x, np.uint32(16))
  x = x * np.uint32(0x7FEB352D)
  x = x ^ r(x, np.uint32(15))
  x = x * np.uint32(0x846CA68B)
  return x ^ r(x, np.uint32(16))


def hash_uniform(key, salt: int, shape):
  """Per-sample uniform noise [B, *shape] in [0, 1) for int32 keys [B]."""
  n = int(np.prod(shape))
  idx = tf.range(n, dtype=tf.int32)
  x = tf.bitcast(idx, tf.uint32)[None, :] ^ mix(tf.bitcast(key, tf.uint32) + np.uint32(salt * 0x9E3779B9 % 2**32))[:, None]
  x = mix(x)
  u = tf.cast(tf.bitwise.right_shift(x, np.uint32(8)), tf.float32) * (1.0 / 16777216.0)
  return tf.reshape(u, tf.concat([[-1], shape], 0))


def hash_normal(key, salt: int, shape):
  """Per-sample standard normal noise [B, *shape] (Box-Muller on two hash uniforms)."""
  u1 = tf.maximum(hash_uniform(key, salt, shape), 1.0 / 16777216.0)
  u2 = hash_uniform(key, salt + 1, shape)
  return tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos((2.0 * math.pi) * u2)


def grain_rgb(key, saturation, height: int, width: int):
  """Per-pixel RGB noise in [0, 1) [B, H, W, 3] with the given saturation [B].

  One 32-bit hash per pixel gives three 10-bit channels; the grey they are
  mixed towards is their plain mean, so everything stays elementwise (one
  fused loop in XLA, no reduction over channels).
  """
  idx = tf.range(height * width, dtype=tf.int32)
  x = tf.bitcast(idx, tf.uint32)[None, :] ^ mix(tf.bitcast(key, tf.uint32) + np.uint32(0x5BD1E995))[:, None]
  x = tf.reshape(mix(x), [-1, height, width, 1])
  r = tf.bitwise.right_shift
  c = [tf.cast(tf.bitwise.bitwise_and(r(x, np.uint32(k)), np.uint32(1023)), tf.float32) * (1.0 / 1024.0)
       for k in (2, 12, 22)]
  m = (c[0] + c[1] + c[2]) * (1.0 / 3.0)
  s = saturation[:, None, None, None]
  return tf.concat([m + s * (ck - m) for ck in c], axis=-1)


def upsample2(x):
  """Bilinear x2 upsampling of [B, h, w, C] (half-pixel centres, edges replicated)."""
  for axis in (1, 2):
    x = ops.barrier(x)
    n = x.shape[axis]
    first = tf.gather(x, [0], axis=axis)
    lastv = tf.gather(x, [n - 1], axis=axis)
    prev = tf.concat([first, tf.gather(x, list(range(n - 1)), axis=axis)], axis=axis)
    nxt = tf.concat([tf.gather(x, list(range(1, n)), axis=axis), lastv], axis=axis)
    even = 0.25 * prev + 0.75 * x
    odd = 0.75 * x + 0.25 * nxt
    y = tf.stack([even, odd], axis=axis + 1)
    shape = tf.concat([tf.shape(x)[:axis], [2 * n], tf.shape(x)[axis + 1:]], 0)
    x = tf.reshape(y, shape)
  return x


def octave_noise(key, octaves, height: int, width: int, channels: int):
  """Zero-mean multi-scale noise [B, H, W, C]: NOISE_LEVELS octaves weighted by `octaves` [B, NOISE_LEVELS]."""
  grid = None
  for level in range(NOISE_LEVELS, 0, -1):
    h, w = -(-height // 2**level) + 2, -(-width // 2**level) + 2
    noise = hash_uniform(key, level, [h, w, channels]) - 0.5
    weight = octaves[:, level - 1, None, None, None]
    grid = noise * weight if grid is None else upsample2(grid)[:, :h, :w] + noise * weight
    grid = ops.barrier(grid)
  return upsample2(grid)[:, 1:height + 1, 1:width + 1]

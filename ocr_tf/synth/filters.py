"""Image filters of the degradations: Gaussian blur, resampling to a lower resolution, JPEG-like quantization."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import ocr_tf.synth.noise as noise
import ocr_tf.synth.ops as ops

# JPEG luminance quantization table (ITU-T T.81, Annex K).
JPEG_TABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], np.float32).reshape(8, 8)


def dct_matrix() -> np.ndarray:
  """The orthonormal 8-point DCT-II matrix."""
  k = np.arange(8)[:, None]
  n = np.arange(8)[None, :]
  m = np.cos(np.pi * (2 * n + 1) * k / 16.0) * np.sqrt(2.0 / 8.0)
  m[0] /= np.sqrt(2.0)
  return m.astype(np.float32)


def gaussian_kernel(sigma, radius: int):
  """Normalized 1-D Gaussian taps [..., 2 * radius + 1] for sigma [...] (sigma 0 gives a unit impulse)."""
  taps = tf.range(-radius, radius + 1, dtype=tf.float32)
  sigma = tf.maximum(tf.cast(sigma, tf.float32), 1e-3)[..., None]
  k = tf.exp(-0.5 * tf.square(taps / sigma))
  return k / tf.reduce_sum(k, axis=-1, keepdims=True)


def gaussian_blur(img, k):
  """Separable blur of [B, H, W, C] with per-sample taps k [B, 2r + 1]."""
  r = (k.shape[1] - 1) // 2
  H, W = img.shape[1], img.shape[2]
  x = ops.barrier(tf.pad(img, [[0, 0], [r, r], [0, 0], [0, 0]], mode="SYMMETRIC"))
  img = sum(k[:, i, None, None, None] * x[:, i:i + H] for i in range(2 * r + 1))
  x = ops.barrier(tf.pad(img, [[0, 0], [0, 0], [r, r], [0, 0]], mode="SYMMETRIC"))
  return sum(k[:, i, None, None, None] * x[:, :, i:i + W] for i in range(2 * r + 1))


def down_up(img):
  """Halves the resolution (2x2 mean) and scales back up bilinearly."""
  H, W = img.shape[1], img.shape[2]
  ph, pw = H % 2, W % 2
  x = tf.pad(img, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="SYMMETRIC")
  x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
  return noise.upsample2(x)[:, :H, :W]


def resample_matrices(n: int, factor):
  """[B, n, n] each: up (bilinear from the first floor(n / factor) pixels back to n) and down (area average)."""
  s = factor[:, None, None]
  n_low = tf.maximum(tf.floor(n / factor), 1.0)[:, None, None]
  i = tf.range(n, dtype=tf.float32)
  j = i[None, :, None]  # low-resolution pixel (rows of down)
  # down[j, i]: overlap of high pixel [i, i+1) with low pixel [j s, (j+1) s), over s.
  down = tf.maximum(tf.minimum(i[None, None, :] + 1.0, (j + 1.0) * s) - tf.maximum(i[None, None, :], j * s), 0.0) / s
  down = tf.where(j < n_low, down, 0.0)
  # up[x, j]: bilinear weight of low pixel j at the centre of high pixel x.
  x_low = tf.clip_by_value((i[None, :, None] + 0.5) / s - 0.5, 0.0, n_low - 1.0)
  up = tf.maximum(1.0 - tf.abs(x_low - i[None, None, :]), 0.0)
  return up, down


def resample(img, factor, low_res_fn=None):
  """Renders img [B, H, W, C] at 1/factor [B] of its resolution and scales it back up.

  low_res_fn, if given, changes the low-resolution image (it sits in the
  top-left floor(H / factor) x floor(W / factor) pixels of a [B, H, W, C]
  tensor; the rest is never read back).
  """
  H, W = img.shape[1], img.shape[2]
  up_h, down_h = resample_matrices(H, factor)
  up_w, down_w = resample_matrices(W, factor)
  if low_res_fn is None:
    x = tf.einsum("byh,bhwc->bywc", tf.matmul(up_h, down_h), img)
    return tf.einsum("bxw,bywc->byxc", tf.matmul(up_w, down_w), x)
  x = tf.einsum("bxw,bywc->byxc", down_w, tf.einsum("byh,bhwc->bywc", down_h, img))
  x = low_res_fn(x)
  return tf.einsum("bxw,bywc->byxc", up_w, tf.einsum("byh,bhwc->bywc", up_h, x))


def jpeg_like(img, quality):
  """8x8 block DCT quantization with the JPEG luminance table at `quality` [B]."""
  H, W, C = img.shape[1], img.shape[2], img.shape[3]
  ph, pw = -H % 8, -W % 8
  x = tf.pad(img, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="SYMMETRIC") * 255.0 - 128.0
  Hp, Wp = H + ph, W + pw
  x = tf.reshape(x, [-1, Hp // 8, 8, Wp // 8, 8, C])
  m = tf.constant(dct_matrix())
  coef = tf.einsum("ij,bpjqkc,lk->bpqcil", m, x, m)
  q = quality
  scale = tf.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
  table = tf.maximum(tf.floor((tf.constant(JPEG_TABLE)[None] * scale[:, None, None] + 50.0) / 100.0), 1.0)
  blocks = tf.reshape(coef, [tf.shape(coef)[0], -1, 8, 8])  # at most 4-D broadcasts outside XLA
  coef = tf.reshape(tf.round(blocks / table[:, None]) * table[:, None], tf.shape(coef))
  x = tf.einsum("ji,bpqcjk,kl->bpiqlc", m, coef, m)
  x = tf.reshape(x, [-1, Hp, Wp, C])[:, :H, :W]
  return tf.clip_by_value((x + 128.0) / 255.0, 0.0, 1.0)

"""The degradations: the clean text on paper, then one function a step, applied in the order of STEPS.

Each step takes (img [B, H, W, C], the decoded parameters, the spec) and
returns the image; a step the spec turns off returns it unchanged at trace
time, so it costs nothing. morphology() works on the text's coverage before
the warp.
"""

from __future__ import annotations

import functools

import tensorflow as tf

import ocr_tf.synth.filters as filters
import ocr_tf.synth.noise as noise
import ocr_tf.synth.ops as ops


def morphology(x, morph, close_open_steps: int, dilate_erode_steps: int):
  """Close/open then dilate/erode the coverage [B, Wc, h] by per-sample step counts morph [B, 2] (3x3 cross)."""
  close_open, dilate_erode = morph[:, 0], morph[:, 1]

  def step(v, op):
    # op per sample: 1 dilate, -1 erode, 0 keep.
    p = ops.barrier(tf.pad(v, [[0, 0], [1, 1], [1, 1]], mode="SYMMETRIC"))
    taps = [p[:, 1:-1, 1:-1], p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]]
    hi = ops.max_all(taps)
    lo = -ops.max_all([-t for t in taps])
    op = op[:, None, None]
    return ops.barrier(tf.where(op > 0, hi, tf.where(op < 0, lo, v)))

  def steps(x):
    # close k = dilate^k erode^k; open k = erode^k dilate^k; then dilate/erode.
    k = tf.abs(close_open)
    first = tf.where(close_open < 0, 1, -1)
    for i in range(close_open_steps):
      x = step(x, tf.where(k > i, first, 0))
    for i in range(close_open_steps):
      x = step(x, tf.where(k > i, -first, 0))
    for i in range(dilate_erode_steps):
      x = step(x, tf.where(tf.abs(dilate_erode) > i, tf.sign(dilate_erode), 0))
    return x

  return ops.if_((close_open != 0) | (dilate_erode != 0), steps, x)


def text_on_paper(alpha, p: dict, spec):
  """Paper with its multi-scale background noise, and the ink laid on it by the text's coverage alpha [B, H, W]."""
  C = spec.channels
  paper = ops.to_channels(p["paper"], C)[:, None, None, :]
  ink = ops.to_channels(p["ink"], C)[:, None, None, :]
  grid = noise.octave_noise(p["hash_key"][:, 0], p["octaves"], spec.height, spec.width, C)
  amp, sat = p["background"][:, 0], p["background"][:, 1]
  background = ops.saturate(grid, sat) * (2.0 * amp[:, None, None, None])
  img = tf.clip_by_value(paper + ops.barrier(background), 0.0, 1.0)
  a = alpha[..., None]
  return img * (1.0 - a) + ink * a


def _stroke_layer(img, s, dirs, len_max: int, w_max: int, black: bool):
  """Strokes s [B, n, 9] splatted pixel by pixel (as PIL draws them, no antialiasing), max alpha per pixel."""
  H, W, C = img.shape[1], img.shape[2], img.shape[3]
  B = tf.shape(img)[0]
  x0 = s[..., 0] * W
  y0 = s[..., 1] * H
  length, width, alpha = s[..., 3], s[..., 4], s[..., 5]
  dx, dy = dirs[:, :s.shape[1], 0], dirs[:, :s.shape[1], 1]
  tt = tf.range(len_max, dtype=tf.float32)[None, None, :, None]
  ww = tf.range(w_max, dtype=tf.float32)[None, None, None, :]
  off = ww - (width[..., None, None] - 1.0) / 2.0
  xs = x0[..., None, None] + tt * dx[..., None, None] - off * dy[..., None, None]
  ys = y0[..., None, None] + tt * dy[..., None, None] + off * dx[..., None, None]
  ok = ((tt < length[..., None, None]) & (ww < width[..., None, None]) & (alpha[..., None, None] > 0)
        & (xs >= 0) & (xs < W) & (ys >= 0) & (ys < H))
  xi = tf.cast(tf.floor(tf.clip_by_value(xs, 0, W - 1)), tf.int32)
  yi = tf.cast(tf.floor(tf.clip_by_value(ys, 0, H - 1)), tf.int32)
  b = tf.range(B)[:, None, None, None]
  idx = tf.reshape(tf.where(ok, (b * H + yi) * W + xi, B * H * W), [-1, 1])
  a = tf.reshape(tf.broadcast_to(alpha[..., None, None], tf.shape(ok)), [-1])
  a_max = tf.tensor_scatter_nd_max(tf.zeros([B * H * W + 1]), idx, a)
  a_max = tf.reshape(a_max[:-1], [B, H, W, 1])
  if black:
    return img * (1.0 - a_max)
  rgb = ops.to_channels(s[..., 6:9], C)
  val = tf.concat([tf.broadcast_to(rgb[:, :, None, None, :], tf.concat([tf.shape(ok), [C]], 0)),
                   tf.ones_like(xs)[..., None]], axis=-1) * alpha[..., None, None, None]
  sums = tf.tensor_scatter_nd_add(tf.zeros([B * H * W + 1, C + 1]), idx, tf.reshape(val, [-1, C + 1]))
  sums = tf.reshape(sums[:-1], [B, H, W, C + 1])
  color = sums[..., :C] / tf.maximum(sums[..., C:], 1e-6)
  return img * (1.0 - a_max) + color * a_max


def scratches(img, p: dict, spec):
  """Line noise: the short strokes in their own colours, then the long ones (black with long_scratch_black)."""
  img = ops.barrier(img)
  for name, dirs, len_max, w_max, black in (
      ("short_scratches", "short_dirs", spec.short_scratch_length, spec.short_scratch_width, False),
      ("long_scratches", "long_dirs", spec.long_scratch_length, spec.long_scratch_width, spec.long_scratch_black)):
    if p[name].shape[1] == 0:
      continue
    layer = functools.partial(_stroke_layer, s=p[name], dirs=p[dirs], len_max=len_max, w_max=w_max, black=black)
    img = ops.barrier(ops.if_(tf.reduce_any(p[name][..., 5] > 0, axis=1), layer, img))
  return img


def grain(img, p: dict, spec):
  """Per-pixel noise blended in as in the original: a noise image with its own contrast, saturation, brightness."""
  if not spec.grain:
    return img
  H, W, C = spec.height, spec.width, spec.channels
  gw, gc, gs, gb = (p["grain"][:, k, None, None, None] for k in range(4))
  if C == 3:
    g = noise.grain_rgb(p["hash_key"][:, 1], gs[:, 0, 0, 0], H, W) - 0.5
  else:
    g = noise.hash_uniform(p["hash_key"][:, 1], 99, [H, W, C]) - 0.5
  g = tf.clip_by_value(gb * (0.5 + gc * g), 0.0, 1.0)
  return img * (1.0 - gw) + g * gw


def blur(img, p: dict, spec):
  """Gaussian blur of the samples that drew a sigma above 0."""
  if not spec.blur:
    return img
  return ops.if_(p["blur"] > 0, lambda x: filters.gaussian_blur(x, p["blur_kernel"]), img)


def illumination(img, p: dict, spec):
  """A smooth linear light gradient in the light's direction."""
  if not spec.illumination:
    return img
  H, W = spec.height, spec.width
  strength = p["illumination"][:, 0]
  uu = (tf.range(W, dtype=tf.float32) / W - 0.5)[None, None, :]
  vv = (tf.range(H, dtype=tf.float32) / H - 0.5)[None, :, None] * (H / W)
  grad = p["trig"][:, 3, None, None] * uu + p["trig"][:, 4, None, None] * vv + 0.5
  return ops.if_(strength > 0, lambda x: x * (1.0 - strength[:, None, None, None] * grad[..., None]), img)


def downscale(img, p: dict, spec):
  """Render at a lower resolution and scale back up (2x2 mean, or any factor, with its own noise there)."""
  if not spec.downscale:
    return img
  if not spec.resample:
    return ops.if_(p["downscale"], filters.down_up, img)
  low_res = None
  if spec.low_res_noise:
    std = p["low_res_noise"][:, None, None, None]
    if spec.noise_after_contrast:  # sensor noise does not fade with the print's contrast
      std = std / tf.maximum(p["color"][:, 0, None, None, None], 0.05)
    shape = [spec.height, spec.width, spec.channels]
    low_res = lambda x: x + std * noise.hash_normal(p["hash_key"][:, 1], 101, shape)
  return ops.if_(p["downscale"], lambda x: filters.resample(x, p["downscale_factor"], low_res), img)


def jpeg(img, p: dict, spec):
  """JPEG-like block quantization at the drawn quality."""
  if not spec.jpeg:
    return img
  return ops.if_(p["jpeg"][:, 0] > 0, lambda x: filters.jpeg_like(x, p["jpeg"][:, 1]), img)


def color(img, p: dict, spec):
  """Contrast about the paper's level, brightness, and (RGB) saturation."""
  contrast, brightness, saturation = (p["color"][:, k, None, None, None] for k in range(3))
  paper = ops.to_channels(p["paper"], spec.channels)[:, None, None, :]
  pivot = tf.reduce_mean(paper, axis=-1, keepdims=True)
  img = pivot + (img - pivot) * contrast
  img = img * brightness
  if spec.channels == 3:
    img = ops.saturate(img - 0.0, saturation[:, 0, 0, 0])
  return img


def invert(img, p: dict, spec):  # pylint: disable=unused-argument
  """Light text on dark paper for the samples that drew it."""
  return tf.where(p["invert"][:, None, None, None], 1.0 - img, img)


STEPS = (scratches, grain, blur, illumination, downscale, jpeg, color, invert)


def compose(alpha, p: dict, spec, steps=STEPS):
  """The degraded image [B, H, W, C] in [0, 1] from the warped coverage alpha [B, H, W]."""
  img = text_on_paper(alpha, p, spec)
  for step in steps:
    img = step(img, p, spec)
  return tf.clip_by_value(img, 0.0, 1.0)

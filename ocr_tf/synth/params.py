"""Sample parameters from named uniforms: the drawing step, separate from the rendering that applies them.

:func:`decode` runs inside the XLA programs on a batch of uniform vectors
[B, N] and returns named parameters [B, ...]: the geometry (trig, font size,
margins, position), the scratch strokes, morphology, colours, background,
grain, light, blur taps, resampling, JPEG quality, contrast and the hash keys
of the per-pixel noise. The ranges and probabilities are the knobs (ocr_tf.synth.spec): runtime
tensors, so configs that differ only in them share one compiled program.
"""

from __future__ import annotations

import math

import tensorflow as tf

import ocr_tf.synth.draws as draws
import ocr_tf.synth.filters as filters

_RAD = math.pi / 180.0


def shear_degrees(u, k: dict):
  """Shear of each sample from one uniform draw `u` in [0, 1).

  Uniform in [lo, hi] (knobs 'shear'); with shear_probability p < 1 only the
  samples whose draw is below p are sheared (the draw rescaled by 1/p), the
  others are upright.
  """
  lo, hi = k["shear"]
  p = k["shear_probability"]
  return tf.where(u < p, lo + (hi - lo) * (u / tf.maximum(p, 1e-12)), 0.0)


def spacing_px(u, spacing_em, pixel_size: float):
  """Letter spacing in atlas pixels [..., L] from uniforms u [..., L] and the (lo, hi) range in em."""
  lo, hi = spacing_em
  return (lo + (hi - lo) * u) * pixel_size


def _scratches(u, lay: draws.Layout, name: str, k: dict, count_max: int, black: bool):
  """Strokes [B, n, 9]: x, y (fractions), direction (radians), length, width, alpha (0: unused), r, g, b."""
  n_range, len_range, w_range = k[name], k[name[:-2] + "_length"], k[name[:-2] + "_width"]
  v = tf.reshape(lay.take(u, name), [-1, count_max + 1, draws.SCRATCH_FIELDS])
  if count_max == 0:
    return v[:, :0]
  n0, n1 = n_range
  count = tf.minimum(tf.cast(n0, tf.int32) + tf.cast(v[:, count_max, 0] * (n1 - n0 + 1.0), tf.int32),
                     tf.cast(n1, tf.int32))
  v = v[:, :count_max]
  length = draws.uniform(v[..., 3], len_range)
  w0, w1 = w_range
  width = tf.minimum(tf.floor(w0 + (w1 - w0 + 1.0) * v[..., 4]), w1)
  alpha = v[..., 5] * tf.cast(tf.range(count_max)[None, :] < count[:, None], tf.float32)
  rgb = tf.zeros_like(v[..., 6:9]) if black else v[..., 6:9]
  return tf.concat([v[..., 0:2], v[..., 2:3] * (2 * math.pi), length[..., None], width[..., None],
                    alpha[..., None], rgb], axis=-1)


def _directions(u, lay: draws.Layout, name: str):
  a = tf.reshape(lay.take(u, name), [tf.shape(u)[0], -1, draws.SCRATCH_FIELDS])[:, :, 2] * (2 * math.pi)
  return tf.stack([tf.cos(a), tf.sin(a)], axis=-1)


def _geometry(u, m, lay: draws.Layout, k, spec) -> dict:
  one = lambda name, i=0: lay.one(u, name, i)
  uni = lambda name, i=0: lay.one(m, name, i)
  theta = (-k["max_angle"] + 2.0 * k["max_angle"] * one("angle")) * _RAD
  shear = shear_degrees(one("shear"), k)
  phi = one("light_direction") * (2 * math.pi)
  out = {"trig": tf.stack([tf.cos(theta), tf.sin(theta), tf.tan(shear * _RAD), tf.cos(phi), tf.sin(phi)], axis=1),
         "font_px": uni("font_px"), "angle": uni("angle"),
         "shear": shear}
  out["spacing"] = spacing_px(lay.take(u, "spacing"), k["spacing_em"], spec.pixel_size)
  out["margins"] = tf.stack([uni("margins", 0), uni("margins", 1), uni("margins", 2), uni("margin_bottom")], 1)
  position = lay.take(u, "position")
  out["position"] = position if spec.random_position else tf.zeros_like(position)
  if spec.crop_box:
    out["crop"] = lay.take(m, "crop") * spec.pixel_size
  return out


def _appearance(u, m, lay: draws.Layout, k) -> dict:
  one = lambda name, i=0: lay.one(u, name, i)
  uni = lambda name, i=0: lay.one(m, name, i)
  coin = lambda name, p_, i=0: one(name, i) < p_

  def tint(name, level, amount):
    return tf.clip_by_value(level[:, None] + amount * (lay.take(u, name) - 0.5), 0.0, 1.0)

  morph_on = coin("morph", k["morph_probability"], 2)
  octave_w = lay.take(u, "octaves") + 0.05
  return {
      "morph": tf.where(morph_on[:, None], tf.stack([draws.randint(one("morph", 0), k["morph_close_open"]),
                                                     draws.randint(one("morph", 1), k["morph_dilate_erode"])], 1), 0),
      "paper": tint("paper_tint", uni("paper_level"), k["paper_tint"]),
      "ink": tint("ink_tint", uni("ink_level"), k["ink_tint"]),
      "invert": coin("invert", k["invert_probability"]),
      "octaves": octave_w / tf.reduce_sum(octave_w, axis=1, keepdims=True),
      "background": lay.take(m, "background"),
      "grain": lay.take(m, "grain"),
      "illumination": tf.stack([tf.where(coin("illumination", k["illumination_probability"], 0),
                                         uni("illumination", 1), 0.0),
                                one("light_direction") * (2 * math.pi)], 1),
      "jpeg": tf.stack([tf.where(coin("jpeg", k["jpeg_probability"], 0), 1.0, 0.0),
                        uni("jpeg", 1)], 1),
      "color": lay.take(m, "color"),
  }


def _optics(u, m, lay: draws.Layout, k, spec) -> dict:
  one = lambda name, i=0: lay.one(u, name, i)
  out = {"downscale": one("downscale") < k["downscale_probability"]}
  if spec.resample:
    out["downscale_factor"] = lay.one(m, "downscale_factor")
  if spec.low_res_noise:
    out["low_res_noise"] = tf.where(out["downscale"], lay.one(m, "low_res_noise"), 0.0)
  blur = tf.where(one("blur", 0) < k["blur_probability"], lay.one(m, "blur", 1), 0.0)
  if spec.blur_at_low_res:  # a sigma in low-resolution pixels is `factor` times as wide (2 without resample)
    blur = blur * tf.where(out["downscale"], out.get("downscale_factor", 2.0), 1.0)
  out["blur"] = blur
  out["blur_kernel"] = filters.gaussian_kernel(blur, spec.blur_radius)
  # Two 32-bit keys for the per-pixel hash noise, from 16-bit halves of four uniforms.
  halves = tf.cast(tf.floor(lay.take(u, "hash_keys") * 65536.0), tf.int32)
  out["hash_key"] = tf.stack([halves[:, 0] * 65536 + halves[:, 1], halves[:, 2] * 65536 + halves[:, 3]], 1)
  return out


def decode(p: dict, lay: draws.Layout, k: dict, spec) -> dict:
  """Parameters [B, ...] of a batch of samples: p (sample_params' fields, batched) with the named draws decoded."""
  u = p["uniforms"]
  m = k.map_ranges(u)  # every range slot mapped to its range at once
  out = dict(p)
  out.update(_geometry(u, m, lay, k, spec))
  out["short_dirs"] = _directions(u, lay, "short_scratches")
  out["long_dirs"] = _directions(u, lay, "long_scratches")
  out["short_scratches"] = _scratches(u, lay, "short_scratches", k, spec.short_scratches, False)
  out["long_scratches"] = _scratches(u, lay, "long_scratches", k, spec.long_scratches, spec.long_scratch_black)
  out.update(_appearance(u, m, lay, k))
  out.update(_optics(u, m, lay, k, spec))
  return out


"""What a data config means to the generator: its structure (Spec) and its values (knobs).

This is where the generator reads a ConfigDict. The structure (image size,
maximum lengths and counts, which optional steps run, the blur radius, the
canvas widths) shapes the compiled programs and keys their cache; the knobs
(ranges and probabilities) are the numbers those programs draw with, passed
to them as tensors, so configs that differ only in knobs share one program.
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections
import tensorflow as tf

from ocr_tf import atlas as atlas_lib
from ocr_tf.config import ConfigError
import ocr_tf.synth.layout as layout_lib


@dataclasses.dataclass(frozen=True)
class Spec:
  """The structure of a generator's programs (hashable: generators with equal specs can share them)."""
  height: int
  width: int
  channels: int
  max_length: int
  max_overlap: int
  pixel_size: float
  canvas_widths: tuple
  short_scratches: int  # maximum counts and sizes of the strokes
  long_scratches: int
  short_scratch_length: int
  short_scratch_width: int
  long_scratch_length: int
  long_scratch_width: int
  long_scratch_black: bool
  morph: bool
  close_open_steps: int
  dilate_erode_steps: int
  grain: bool
  blur: bool
  blur_radius: int
  blur_at_low_res: bool
  illumination: bool
  downscale: bool
  resample: bool
  low_res_noise: bool
  noise_after_contrast: bool
  jpeg: bool
  crop_box: bool
  random_position: bool


def make_spec(d: ml_collections.ConfigDict, g: layout_lib.Glyphs, a: atlas_lib.Atlas) -> Spec:
  """The Spec of data config d with the glyphs of atlas a (already reduced to d's charset)."""
  down = d.downscale_probability > 0
  low_noise = float(d.low_res_noise[1]) > 0 and down
  blur_low = bool(d.blur_at_low_res) and down
  max_sigma = d.blur_sigma[1] * (float(d.downscale_factor[1]) if blur_low else 1.0)
  spacing_max_px = d.spacing_em[1] * g.pixel_size
  return Spec(
      height=int(d.height), width=int(d.width), channels=int(d.channels), max_length=int(d.max_length),
      max_overlap=int(d.max_overlap), pixel_size=g.pixel_size,
      canvas_widths=layout_lib.canvas_widths(g, int(d.max_length), int(d.max_overlap), float(a.advances.max()),
                                             spacing_max_px),
      short_scratches=int(d.short_scratches[1]), long_scratches=int(d.long_scratches[1]),
      short_scratch_length=int(d.short_scratch_length[1]), short_scratch_width=int(d.short_scratch_width[1]),
      long_scratch_length=int(d.long_scratch_length[1]), long_scratch_width=int(d.long_scratch_width[1]),
      long_scratch_black=bool(d.long_scratch_black), morph=d.morph_probability > 0,
      close_open_steps=max(abs(int(v)) for v in d.morph_close_open),
      dilate_erode_steps=max(abs(int(v)) for v in d.morph_dilate_erode),
      grain=d.grain[1] > 0, blur=d.blur_probability > 0 and d.blur_sigma[1] > 0,
      blur_radius=int(math.ceil(2.5 * max_sigma)), blur_at_low_res=blur_low,
      illumination=d.illumination_probability > 0, downscale=down,
      resample=tuple(d.downscale_factor) != (2.0, 2.0) or low_noise, low_res_noise=low_noise,
      noise_after_contrast=bool(d.low_res_noise_after_contrast), jpeg=d.jpeg_probability > 0,
      crop_box=bool(d.crop_box), random_position=d.position == "random")


_RANGES = ("font_px", "margins_px", "spacing_em", "paper_level", "ink_level", "background_noise",
           "background_saturation", "grain", "grain_contrast", "grain_saturation", "grain_brightness",
           "illumination_strength", "downscale_factor", "blur_sigma", "jpeg_quality", "contrast", "brightness",
           "saturation", "morph_close_open", "morph_dilate_erode", "short_scratches", "long_scratches",
           "short_scratch_length", "short_scratch_width", "long_scratch_length", "long_scratch_width")
_VALUES = ("max_angle", "paper_tint", "ink_tint", "morph_probability", "invert_probability",
           "illumination_probability", "downscale_probability", "blur_probability", "jpeg_probability")


def knob_values(d: ml_collections.ConfigDict) -> dict:
  """The numbers of data config d that the programs draw with, by name: floats, and (lo, hi) pairs of floats."""
  k = {name: tuple(float(v) for v in d[name]) for name in _RANGES}
  k.update({name: float(d[name]) for name in _VALUES})
  hi = float(d.max_shear)
  k.update(shear=(0.0 if d.shear_right_only else -hi, hi),
           shear_probability=float(d.shear_probability),
           low_res_noise=tuple(float(v) for v in d.low_res_noise),
           crop_ascent_em=tuple(float(v) for v in d.crop_ascent_em),
           crop_descent_em=tuple(float(v) for v in d.crop_descent_em))
  return k


# Uniform slots that are drawn as a value in a range: (slot, position in the slot, knob of the range).
RANGE_SLOTS = (("font_px", 0, "font_px"), ("angle", 0, "angle"), ("margins", 0, "margins_px"),
               ("margins", 1, "margins_px"), ("margins", 2, "margins_px"), ("margin_bottom", 0, "margins_px"),
               ("paper_level", 0, "paper_level"), ("ink_level", 0, "ink_level"),
               ("background", 0, "background_noise"), ("background", 1, "background_saturation"),
               ("grain", 0, "grain"), ("grain", 1, "grain_contrast"), ("grain", 2, "grain_saturation"),
               ("grain", 3, "grain_brightness"), ("illumination", 1, "illumination_strength"),
               ("blur", 1, "blur_sigma"), ("jpeg", 1, "jpeg_quality"), ("color", 0, "contrast"),
               ("color", 1, "brightness"), ("color", 2, "saturation"), ("downscale_factor", 0, "downscale_factor"),
               ("low_res_noise", 0, "low_res_noise"), ("crop", 0, "crop_ascent_em"), ("crop", 1, "crop_descent_em"))


class Knobs:
  """The knobs of a config packed in one float32 vector, read by name: k['max_angle'] is a scalar tensor,
  k['font_px'] a (lo, hi) pair of them; map_ranges(u) maps every range slot of the uniforms at once.

  One vector is one input of the compiled programs (a tensor per knob would be
  some forty inputs for every sample's two program launches), and the ranges
  are applied to the whole uniform vector in one elementwise operation (lo +
  span * u, with lo 0 and span 1 where a slot is not a range) instead of some
  thirty scalar ones.
  """

  def __init__(self, vector: tf.Tensor, slots: dict):
    self.vector = vector
    self.slots = slots

  def __getitem__(self, name: str):
    start, size = self.slots[name]
    if size == 1:
      return self.vector[start]
    return tuple(self.vector[start + i] for i in range(size))

  def map_ranges(self, u: tf.Tensor) -> tf.Tensor:
    """lo + span * u for uniforms u [..., N] of the layout the knobs were made for."""
    (lo, n), (span, _) = self.slots["range_lo"], self.slots["range_span"]
    return self.vector[lo:lo + n] + self.vector[span:span + n] * u


def knob_slots(values: dict) -> dict:
  """name -> (start, size) in the packed vector, in the order of the values."""
  slots, o = {}, 0
  for name, value in values.items():
    size = len(value) if isinstance(value, tuple) else 1
    slots[name] = (o, size)
    o += size
  return slots


def knobs(d: ml_collections.ConfigDict, lay) -> tuple[tf.Tensor, dict]:
  """(the packed float32 vector of knob_values and the range maps of layout `lay`, its slots): an input of the
  compiled programs, not constants in them."""
  values = knob_values(d)
  ranges = dict(values, angle=(-values["max_angle"], values["max_angle"]))
  lo, span = [0.0] * lay.size, [1.0] * lay.size
  for slot, i, knob in RANGE_SLOTS:
    if slot not in lay.slots:  # an added slot this config does not draw
      continue
    start, stop = lay.slots[slot]
    assert start + i < stop, (slot, i)
    a, b = ranges[knob]
    lo[start + i], span[start + i] = a, b - a
  values.update(range_lo=tuple(lo), range_span=tuple(span))
  flat = [float(x) for v in values.values() for x in (v if isinstance(v, tuple) else (v,))]
  return tf.constant(flat, tf.float32), knob_slots(values)


def check_fit(d: ml_collections.ConfigDict, a: atlas_lib.Atlas) -> None:
  """ConfigError (one line) when the longest line or the line height cannot fit the image at the smallest size."""
  sp_px = [v * float(a.pixel_size) for v in d.spacing_em]
  mean_adv = float(a.advances[a.present].mean())
  line_px = d.max_length * max(mean_adv + sp_px[1], 1.0)
  # Smallest em a line of max_length average letters gets once fitted to the width.
  fitted_em = float(a.pixel_size) * (d.width - 2 * max(d.margins_px[0], 0) - 2) / line_px
  if fitted_em < d.min_fit_em_px and fitted_em < d.font_px[0]:
    raise ConfigError(
        f"data.max_length={d.max_length}: such a line needs about {line_px / a.pixel_size * d.min_fit_em_px:.0f} px "
        f"at the smallest allowed size (data.min_fit_em_px={d.min_fit_em_px}), "
        f"more than data.width={d.width}")
  line_h = float(a.ascent.max() + a.descent.max()) / float(a.pixel_size) * d.min_fit_em_px
  if line_h > d.height:
    raise ConfigError(f"data.height={d.height}: a line at data.min_fit_em_px={d.min_fit_em_px} "
                      f"is {line_h:.0f} px tall")

"""The configuration schema: every field with its default, and its validation.

Config files in ``configs/`` start from :func:`get_config` and override a few
fields. :func:`validate_data` checks the ``data`` block before any work starts
and raises :class:`ConfigError` with one line naming the field and the value.
"""

from __future__ import annotations

import math
import os
import string

import ml_collections

ALNUM = string.digits + string.ascii_uppercase + string.ascii_lowercase


class ConfigError(ValueError):
  """An invalid configuration value. The message names the field and the value."""


def data_config() -> ml_collections.ConfigDict:
  """The generator's fields. Ranges are (min, max), probabilities in [0, 1]."""
  d = ml_collections.ConfigDict()
  d.atlas = ""  # '' = the atlas shipped with ocr_tf
  d.charset = ALNUM
  d.height = 32
  d.width = 256
  d.channels = 1  # 1 (grey) or 3 (RGB)
  d.seed = 0  # training stream
  d.validation_seed = 1  # the fixed validation stream
  # Text.
  d.min_length = 1
  d.max_length = 16
  d.corpus = ""  # a text file; its words (or lines) are sampled with corpus_probability
  d.corpus_mode = "words"  # 'words' or 'lines'
  d.corpus_probability = 0.0
  # Layout, in em units of the rendered font (1 em = font size).
  d.font_px = (20.0, 30.0)  # em size in output pixels, before fitting
  d.spacing_em = (-0.05, 0.15)  # added to each advance
  d.max_overlap = 3  # at most this many consecutive letters may overlap one column
  d.margins_px = (0, 6)  # per side, around the line box (negative: tighter, ink is never cut)
  d.position = "random"  # 'random' or 'start' (top-left after margins)
  d.min_fit_em_px = 6.0  # text scaled to fit may not get smaller than this
  # Geometry.
  d.max_angle = 5.0  # degrees, uniform in [-max_angle, max_angle]
  d.max_shear = 0.0  # degrees of italic-like shear, uniform in [-max_shear, max_shear]
  # Morphology on the text mask: integer ranges of 3x3 steps.
  d.morph_probability = 0.3
  d.morph_close_open = (-1, 1)  # < 0: close with that many steps, > 0: open
  d.morph_dilate_erode = (-1, 1)  # < 0: erode, > 0: dilate
  # Scratches: counts, lengths (output px), widths (px).
  d.short_scratches = (0, 10)
  d.short_scratch_length = (2, 20)
  d.short_scratch_width = (1, 2)
  d.long_scratches = (0, 2)
  d.long_scratch_length = (2, 200)
  d.long_scratch_width = (1, 3)
  d.long_scratch_black = True  # long scratches black (random alpha), as in the original
  # Colours (levels in [0, 1]).
  d.paper_level = (0.6, 1.0)
  d.paper_tint = 0.1  # per-channel jitter of the paper colour (RGB)
  d.ink_level = (0.0, 0.35)
  d.ink_tint = 0.15
  d.invert_probability = 0.1  # light text on dark paper
  # Background: multi-scale noise.
  d.background_noise = (0.0, 0.3)  # amplitude
  d.background_saturation = (0.0, 0.5)
  d.grain = (0.0, 0.25)  # blend weight of per-pixel noise
  d.grain_contrast = (0.2, 0.6)
  d.grain_saturation = (0.0, 0.5)
  d.grain_brightness = (0.8, 1.2)
  # Optics and sensor.
  d.blur_probability = 0.5
  d.blur_sigma = (0.0, 1.2)  # output px
  d.illumination_probability = 0.3
  d.illumination_strength = (0.0, 0.4)  # depth of a smooth light gradient
  d.downscale_probability = 0.15  # render at 1/2 resolution and scale back up
  d.jpeg_probability = 0.15
  d.jpeg_quality = (15, 60)
  d.contrast = (0.5, 1.0)
  d.brightness = (0.8, 1.1)
  d.saturation = (0.0, 1.0)
  return d


def get_config() -> ml_collections.ConfigDict:
  """Defaults for every field; configs/*.py start from here."""
  config = ml_collections.ConfigDict()
  config.data = data_config()
  return config


_PROBABILITIES = ("corpus_probability", "morph_probability", "invert_probability",
                  "blur_probability", "illumination_probability", "downscale_probability",
                  "jpeg_probability")
_RANGES_NONNEG = ("margins_px",)  # may be negative: handled below
_LEVEL_RANGES = ("paper_level", "ink_level", "background_noise", "background_saturation", "grain",
                 "grain_contrast", "grain_saturation", "contrast", "saturation",
                 "illumination_strength")


def _fail(field: str, value, why: str):
  raise ConfigError(f"data.{field}={value!r}: {why}")


def _range(d, field: str, lo=None, hi=None, integer=False):
  value = d[field]
  if not isinstance(value, (tuple, list)) or len(value) != 2:
    _fail(field, value, "expected a (min, max) pair")
  a, b = value
  for v in (a, b):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
      _fail(field, value, "expected two finite numbers")
    if integer and int(v) != v:
      _fail(field, value, "expected whole numbers")
  if a > b:
    _fail(field, value, "min is greater than max")
  if lo is not None and a < lo:
    _fail(field, value, f"must be >= {lo}")
  if hi is not None and b > hi:
    _fail(field, value, f"must be <= {hi}")
  return a, b


def _int(d, field: str, lo: int, hi: int | None = None) -> int:
  v = d[field]
  if isinstance(v, bool) or not isinstance(v, int):
    _fail(field, v, "expected a whole number")
  if v < lo or (hi is not None and v > hi):
    _fail(field, v, f"must be in [{lo}, {hi}]" if hi is not None else f"must be >= {lo}")
  return v


def validate_data(d: ml_collections.ConfigDict) -> None:
  """Checks the `data` block alone (the atlas-dependent checks are in synth)."""
  _int(d, "height", 8, 4096)
  _int(d, "width", 8, 16384)
  if d.channels not in (1, 3):
    _fail("channels", d.channels, "must be 1 or 3")
  _int(d, "min_length", 1)
  _int(d, "max_length", 1, 1024)
  if d.min_length > d.max_length:
    raise ConfigError(f"data.min_length={d.min_length} is greater than data.max_length={d.max_length}")
  if not isinstance(d.charset, str) or not d.charset:
    _fail("charset", d.charset, "must be a non-empty string")
  if len(set(d.charset)) != len(d.charset):
    _fail("charset", d.charset, "repeats characters")
  for field in ("seed", "validation_seed"):
    _int(d, field, 0, 2**31 - 1)
  for field in _PROBABILITIES:
    v = d[field]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
      _fail(field, v, "a probability must be in [0, 1]")
  if d.corpus_probability > 0 and not d.corpus:
    _fail("corpus_probability", d.corpus_probability, "needs data.corpus (a text file)")
  if d.corpus:
    if not os.path.isfile(d.corpus):
      _fail("corpus", d.corpus, "no such file")
    if d.corpus_mode not in ("words", "lines"):
      _fail("corpus_mode", d.corpus_mode, "must be 'words' or 'lines'")
  if d.position not in ("random", "start"):
    _fail("position", d.position, "must be 'random' or 'start'")
  _range(d, "font_px", lo=1.0)
  if d.font_px[0] <= 0:
    _fail("font_px", d.font_px, "sizes must be > 0")
  _range(d, "spacing_em", lo=-1.0, hi=4.0)
  _int(d, "max_overlap", 1, 8)
  _range(d, "margins_px", lo=-64, hi=4096, integer=True)
  if not (isinstance(d.min_fit_em_px, (int, float)) and d.min_fit_em_px > 0):
    _fail("min_fit_em_px", d.min_fit_em_px, "must be > 0")
  if not 0 <= d.max_angle <= 45:
    _fail("max_angle", d.max_angle, "must be in [0, 45] degrees")
  if not 0 <= d.max_shear <= 30:
    _fail("max_shear", d.max_shear, "must be in [0, 30] degrees")
  _range(d, "morph_close_open", lo=-4, hi=4, integer=True)
  _range(d, "morph_dilate_erode", lo=-4, hi=4, integer=True)
  _range(d, "short_scratches", lo=0, hi=500, integer=True)
  _range(d, "long_scratches", lo=0, hi=100, integer=True)
  _range(d, "short_scratch_length", lo=1, hi=4096, integer=True)
  _range(d, "long_scratch_length", lo=1, hi=8192, integer=True)
  _range(d, "short_scratch_width", lo=1, hi=16, integer=True)
  _range(d, "long_scratch_width", lo=1, hi=32, integer=True)
  for field in _LEVEL_RANGES:
    _range(d, field, lo=0.0, hi=1.0)
  for field in ("paper_tint", "ink_tint"):
    if not 0 <= d[field] <= 1:
      _fail(field, d[field], "must be in [0, 1]")
  _range(d, "grain_brightness", lo=0.0, hi=3.0)
  _range(d, "brightness", lo=0.0, hi=3.0)
  _range(d, "blur_sigma", lo=0.0, hi=8.0)
  _range(d, "jpeg_quality", lo=1, hi=100, integer=True)

"""The in-graph sample generator: (config, atlas, seed, index) -> one sample.

Generation has two stages, both pure TensorFlow:

1. :meth:`Generator.sample_params` draws every random choice of sample ``i``
   with stateless ops from a seed folded from ``(seed, i)``: the text, the
   font, spacing, size, angle, margins, degradation settings and keys for the
   per-pixel noise.
2. :meth:`Generator.render` turns those parameters into pixels with two
   XLA-compiled programs: glyph layout from the atlas, one affine warp, the
   letter quads through the same matrix and the clean target; then the
   degradations. Both run per sample (inside ``Dataset.map``), always with
   the same compiled code, so the bytes of sample ``i`` never depend on the
   batch, the parallelism or the replica it is made in.

The sample contract (per sample; batched: a leading batch axis):

============  ===================  ============================================
key           dtype, shape         meaning
============  ===================  ============================================
image         float32 [H, W, C]    the degraded input in [0, 1] (C = 1 or 3)
clean         float32 [H, W, 1]    same geometry, dark text on white, no
                                   degradations (the autoencoder target)
text          string []            the ground-truth string
labels        int32 [L]            charset ids, padded with 0 past
                                   ``label_length``; L = ``data.max_length``
label_length  int32 []             number of characters
angle         float32 []           degrees, counter-clockwise positive as seen
letter_quads  float32 [L, 4, 2]    each letter's ink box after the affine:
                                   (x, y) pixel corners TL, TR, BR, BL (pixel
                                   (i, j) covers [j, j+1] x [i, i+1]); zeros in
                                   unused slots; blank glyphs (space) give a
                                   zero-area quad
letter_boxes  float32 [L, 4]       axis-aligned [ymin, xmin, ymax, xmax] of the
                                   quad, normalized to [0, 1]
letter_cells  float32 [L, 4, 2]    each letter's layout cell after the same
                                   affine: pen position to pen + advance, the
                                   atlas line box tall; the cells of a line sit
                                   side by side on it, so their centres lie on
                                   one line at ``angle`` (ink-box centres do
                                   not: a 'g' and an 'A' have their ink at
                                   different heights); zeros in unused slots
letter_mask   bool [L]             which of the L slots hold a letter
index         int64 []             the sample's index in its stream
============  ===================  ============================================
"""

from __future__ import annotations

import collections
import copy
import functools
import json
import math
import re

import ml_collections
import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla as _xla

from ocr_tf import atlas as atlas_lib
from ocr_tf import charset as charset_lib
from ocr_tf import config_base
from ocr_tf.config_base import ConfigError, validate_data

# Number of scalar uniforms drawn per sample (see _draw_scalars).
_NUM_SCALARS = 52

# The per-sample functions tf.data maps are TensorFlow ops with Python control flow only on Python
# values: AutoGraph would only add tracing time (about a second per pipeline).
_NOT_CONVERTED = tf.autograph.experimental.do_not_convert

_ITALIC = re.compile(r"italic|oblique", re.IGNORECASE)  # font names of data.italic_probability's fonts
_SCRATCH_FIELDS = 9  # x, y, direction, length, width, alpha, r, g, b
_CANVAS_BUCKETS = 4
_NOISE_LEVELS = 5  # background octaves with cells of 2, 4, 8, 16, 32 px
_LUMA = (0.299, 0.587, 0.114)
# JPEG luminance quantization table (ITU-T T.81, Annex K).
_JPEG_TABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], np.float32).reshape(8, 8)


def _shear_degrees(u: tf.Tensor, d) -> tf.Tensor:
  """Shear of each sample from one uniform draw `u` in [0, 1).

  By default uniform in [-max_shear, max_shear]; with data.shear_right_only in
  [0, max_shear]; with data.shear_probability p < 1 only the samples whose
  draw is below p are sheared (the draw rescaled by 1/p), the others are
  upright. Configs that set neither get the same numbers as before the two
  fields existed.
  """
  hi = float(d.max_shear)
  lo = 0.0 if d.get("shear_right_only", False) else -hi
  p = float(d.get("shear_probability", 1.0))
  if p >= 1.0:
    return lo + (hi - lo) * u
  if p <= 0.0:
    return tf.zeros_like(u)
  return tf.where(u < p, lo + (hi - lo) * (u / p), 0.0)


def _dct_matrix() -> np.ndarray:
  k = np.arange(8)[:, None]
  n = np.arange(8)[None, :]
  m = np.cos(np.pi * (2 * n + 1) * k / 16.0) * np.sqrt(2.0 / 8.0)
  m[0] /= np.sqrt(2.0)
  return m.astype(np.float32)


# Traced render programs by (atlas content, data config without its seeds), most recently used last: see
# Generator._build_tensors.
_RENDERERS: collections.OrderedDict = collections.OrderedDict()
_MAX_RENDERERS = 8
_SEED_FIELDS = ("seed", "validation_seed")


def _renderer_key(d: ml_collections.ConfigDict, atlas: atlas_lib.Atlas) -> tuple[str, str]:
  """What the render programs depend on: the atlas' content and the data config but its seeds."""
  fields = {k: v for k, v in d.to_dict().items() if k not in _SEED_FIELDS}
  return atlas.fingerprint, json.dumps(fields, sort_keys=True, default=repr)


class Generator:
  """Makes samples for one data config, atlas and seed.

  Args:
    data_config: the `data` block of a config (see ocr_tf.config_base).
    atlas: a loaded atlas; its fonts that lack a charset character are left out.
    seed: the stream's seed (data.seed for training, data.validation_seed for
      evaluation).
  """

  def __init__(self, data_config: ml_collections.ConfigDict, atlas: atlas_lib.Atlas, seed: int):
    validate_data(data_config)
    self.config = d = copy.deepcopy(data_config)  # later changes to the caller's config do not reach it
    self._source_atlas = atlas
    try:
      self.atlas, self.dropped_fonts = atlas.subset(d.charset)
    except atlas_lib.AtlasError as e:
      raise ConfigError(f"data.charset={d.charset!r}: {e}") from None
    self.seed = int(seed)
    self.charset = charset_lib.Charset(d.charset)
    a = self.atlas
    self.H, self.W, self.C = int(d.height), int(d.width), int(d.channels)
    self.L = int(d.max_length)
    self.D = int(d.max_overlap)
    self.num_fonts = a.num_fonts
    self.italic_fonts = np.array([bool(_ITALIC.search(name)) for name in a.font_names])
    self.font_cdf = None  # None: font = floor(u * num_fonts)
    italic = float(d.get("italic_probability", -1.0))
    if italic >= 0:
      for wanted, have, kind in ((italic > 0, self.italic_fonts.any(), "italic or oblique"),
                                 (italic < 1, (~self.italic_fonts).any(), "upright")):
        if wanted and not have:
          raise ConfigError(f"data.italic_probability={italic}: the atlas has no {kind} font "
                            f"(names are matched against {_ITALIC.pattern!r})")
      weights = np.where(self.italic_fonts, italic / max(self.italic_fonts.sum(), 1),
                         (1 - italic) / max((~self.italic_fonts).sum(), 1))
      weights = weights / weights.sum()
      cdf = np.cumsum(weights)[:-1]
      cdf[np.cumsum(weights[::-1])[::-1][1:] == 0] = 2.0  # fonts of weight 0 at the end: never drawn
      self.font_cdf = tf.constant(cdf, tf.float32)
    self.num_chars = len(d.charset)
    self.cell_h, self.cell_w = a.cell_shape
    self.pixel_size = float(a.pixel_size)
    ink_present = a.ink_boxes[..., 2] > a.ink_boxes[..., 0]
    bear = np.round(a.bearings).astype(np.int64)
    self.min_bearing = int(min(0, bear[ink_present].min())) if ink_present.any() else 0
    self.max_bearing = int(max(0, bear[ink_present].max())) if ink_present.any() else 0
    self.pen0 = -self.min_bearing + 1
    sp_px = [v * self.pixel_size for v in d.spacing_em]
    step_max = int(math.ceil(float(a.advances.max()) + sp_px[1]))
    overlap_step = int(math.ceil((self.max_bearing + self.cell_w - self.min_bearing) / self.D))
    self.step_max = max(step_max, overlap_step, 1)
    self.canvas_w = self.pen0 + (self.L - 1) * self.step_max + self.max_bearing + self.cell_w + 2
    self._check_fit(sp_px)
    self._low_noise = float(d.get("low_res_noise", (0.0, 0.0))[1]) > 0 and d.downscale_probability > 0
    self._blur_low = bool(d.get("blur_at_low_res", False)) and d.downscale_probability > 0
    max_sigma = d.blur_sigma[1] * (float(d.downscale_factor[1]) if self._blur_low else 1.0)
    self._blur_radius = int(math.ceil(2.5 * max_sigma))  # taps to 2.5 sigma
    self._corpus = None
    self._capitals = None  # id -> id of its capital, when corpus entries may change case
    if d.corpus:
      self._corpus = charset_lib.load_corpus(config_base.corpus_path(d.corpus), d.corpus_mode, self.charset,
                                             self.L)
    self._frequent = None
    if float(d.get("frequent_probability", 0.0)) > 0:
      self._frequent = charset_lib.load_counts(config_base.corpus_path(d.frequent_words), self.charset, self.L)
    if (self._corpus is not None or self._frequent is not None) and \
        d.corpus_upper_probability + d.corpus_title_probability > 0:
      upper = np.array([self.charset.encode(c.upper())[0] if c.upper() in self.charset else i
                        for i, c in enumerate(d.charset)], np.int32)
      self._capitals = tf.constant(upper)  # itself when it has none
    self._resample = tuple(d.downscale_factor) != (2.0, 2.0) or self._low_noise
    self._crop = bool(d.get("crop_box", False))
    self._short = float(d.get("short_probability", 0.0)) > 0
    self._digits = float(d.get("digits_probability", 0.0)) > 0
    self._noise_after_contrast = bool(d.get("low_res_noise_after_contrast", False))
    self._digit_ids = None
    if self._digits:  # validate_data made sure the charset has some
      self._digit_ids = tf.constant(self.charset.encode("".join(c for c in d.charset if c.isdigit())), tf.int32)
    # Extra uniforms (see sample_params): [case of a corpus entry, downscale factor, crop ascent, descent,
    # short length, short coin, low-resolution noise, digits coin, frequent-word coin, which frequent word];
    # as many as the last option on uses, so earlier configs keep their samples.
    uses = ((self._frequent is not None, 10), (self._digits, 8), (self._low_noise, 7), (self._short, 6),
            (self._capitals is not None or self._resample or self._crop, 4))
    self._num_extra = max([n for on, n in uses if on], default=0)
    self._build_tensors()

  # ------------------------------------------------------------------ setup

  def _check_fit(self, sp_px) -> None:
    d = self.config
    mean_adv = float(self.atlas.advances[self.atlas.present].mean())
    line_px = d.max_length * max(mean_adv + sp_px[1], 1.0)
    # Smallest em a line of max_length average letters gets once fitted to the width.
    fitted_em = self.pixel_size * (d.width - 2 * max(d.margins_px[0], 0) - 2) / line_px
    if fitted_em < d.min_fit_em_px and fitted_em < d.font_px[0]:
      raise ConfigError(
          f"data.max_length={d.max_length}: such a line needs about {line_px / self.pixel_size * d.min_fit_em_px:.0f} px "
          f"at the smallest allowed size (data.min_fit_em_px={d.min_fit_em_px}), "
          f"more than data.width={d.width}")
    line_h = (float(self.atlas.ascent.max() + self.atlas.descent.max()) / self.pixel_size
              * d.min_fit_em_px)
    if line_h > d.height:
      raise ConfigError(f"data.height={d.height}: a line at data.min_fit_em_px={d.min_fit_em_px} "
                        f"is {line_h:.0f} px tall")

  def _build_tensors(self) -> None:
    a = self.atlas
    F, K, gh, gw = a.glyphs.shape
    cols = np.transpose(a.glyphs, (0, 1, 3, 2)).reshape(F * K * gw, gh)
    self._zero_col = F * K * gw
    self.cols = tf.constant(np.concatenate([cols, np.zeros((1, gh), np.uint8)]), tf.uint8)
    self.colbase = tf.constant((np.arange(F * K).reshape(F, K) * gw).astype(np.int32))
    self.ink_w = tf.constant(a.ink_boxes[..., 3].astype(np.int32))
    self.ink_top = tf.constant(a.ink_boxes[..., 0].astype(np.float32))
    self.ink_bottom = tf.constant(a.ink_boxes[..., 2].astype(np.float32))
    self.bearing = tf.constant(np.round(a.bearings).astype(np.int32))
    self.advance = tf.constant(a.advances.astype(np.float32))
    self.ascent = tf.constant(a.ascent.astype(np.float32))
    self.descent = tf.constant(a.descent.astype(np.float32))
    self.chars = tf.constant(np.array(list(self.config.charset)))
    # The text program comes in a few canvas widths; each sample uses the
    # narrowest that holds its line (see _line_bound), so short strings do not
    # pay for the longest possible line.
    self.canvas_widths = sorted({min(self.canvas_w, int(math.ceil(self.canvas_w * k / _CANVAS_BUCKETS)) + 8)
                                 for k in range(1, _CANVAS_BUCKETS + 1)})
    # The pixels depend on the config and the atlas, not on the seed: generators that share both (the
    # training and validation streams of a run) share the traced and compiled programs.
    key = _renderer_key(self.config, self._source_atlas)
    if key in _RENDERERS:
      _RENDERERS.move_to_end(key)
    else:  # bound to this generator, which they keep (with its config and atlas) while shared
      _RENDERERS[key] = (tf.function(self._render_text, jit_compile=True, autograph=False),
                         tf.function(self._compose, jit_compile=True, autograph=False),
                         tf.function(self._render_pixels, autograph=False))
      if len(_RENDERERS) > _MAX_RENDERERS:
        _RENDERERS.popitem(last=False)
    self._text_xla, self._compose_xla, self._render_xla = _RENDERERS[key]

  # --------------------------------------------------------------- stage 1

  def _layout_of_uniforms(self):
    """Offsets of each group of uniforms in the per-sample vector."""
    d = self.config
    sizes = [("scalars", _NUM_SCALARS), ("ids", self.L), ("spacing", self.L),
             ("short", (int(d.short_scratches[1]) + 1) * _SCRATCH_FIELDS),
             ("long", (int(d.long_scratches[1]) + 1) * _SCRATCH_FIELDS),
             ("extra", self._num_extra)]
    offsets, o = {}, 0
    for name, n in sizes:
      offsets[name] = (o, o + n)
      o += n
    return offsets, o

  @_NOT_CONVERTED
  def sample_params(self, index) -> dict:
    """Draws every random choice of sample `index`: one stateless uniform vector.

    Runs per sample inside Dataset.map and is kept to a handful of ops; the
    uniforms are turned into parameters for a whole batch inside the XLA
    programs (see _decode).
    """
    d = self.config
    index = tf.cast(index, tf.int64)
    base = tf.constant([self.seed, 0x0C12], tf.int64)
    seed = tf.random.experimental.stateless_fold_in(base, index)
    offsets, total = self._layout_of_uniforms()
    u = tf.random.stateless_uniform([total - self._num_extra], seed)
    if self._num_extra:
      # Choices added after the first release: their own stream, so configs
      # that do not use them keep their samples byte for byte.
      extra_seed = tf.random.experimental.stateless_fold_in(seed, 1)
      u = tf.concat([u, tf.random.stateless_uniform([self._num_extra], extra_seed)], 0)
    L = self.L
    o = offsets["ids"][0]
    ids = tf.minimum(tf.cast(u[o:o + L] * self.num_chars, tf.int32), self.num_chars - 1)
    lo, hi = int(d.min_length), int(d.max_length)
    length = tf.minimum(lo + tf.cast(u[1] * (hi - lo + 1), tf.int32), hi)
    if self._corpus is not None:
      corpus_ids, corpus_len = self._corpus
      j = tf.minimum(tf.cast(u[2] * corpus_ids.shape[0], tf.int32), corpus_ids.shape[0] - 1)
      use = u[3] < float(d.corpus_probability)
      word = self._word_case(tf.constant(corpus_ids)[j], u, offsets)
      ids = tf.where(use, word, ids)
      length = tf.where(use, tf.constant(corpus_len)[j], length)
    frequent = None  # a boolean tensor when frequent words are on
    if self._frequent is not None:  # a word by how often text uses it
      e = offsets["extra"][0]
      f_ids, f_len, f_cdf = self._frequent
      k = tf.minimum(tf.searchsorted(tf.constant(f_cdf), u[e + 9:e + 10], side="right")[0], f_ids.shape[0] - 1)
      frequent = u[e + 8] < float(d.frequent_probability)
      ids = tf.where(frequent, self._word_case(tf.constant(f_ids)[k], u, offsets), ids)
      length = tf.where(frequent, tf.constant(f_len)[k], length)
    if self._digits:  # a number: a random string of digits only, of digits_length
      e = offsets["extra"][0]
      n = int(self._digit_ids.shape[0])
      number = tf.gather(self._digit_ids, tf.minimum(tf.cast(u[o:o + L] * n, tf.int32), n - 1))
      g0, g1 = (int(v) for v in d.digits_length)
      number_len = g0 + tf.minimum(tf.cast(u[1] * (g1 - g0 + 1), tf.int32), g1 - g0)
      is_number = u[e + 7] < float(d.digits_probability)
      if self._corpus is not None:
        is_number = is_number & tf.logical_not(use)
      if frequent is not None:
        is_number = is_number & tf.logical_not(frequent)
      ids = tf.where(is_number, number, ids)
      length = tf.where(is_number, number_len, length)
    if self._short:  # cut to a short length: a word's first letters, or a short random string
      e = offsets["extra"][0]
      s0, s1 = (int(v) for v in d.short_length)
      cut = s0 + tf.minimum(tf.cast(u[e + 4] * (s1 - s0 + 1), tf.int32), s1 - s0)
      cut_short = u[e + 5] < float(d.short_probability)
      if frequent is not None:  # a frequent word is never cut
        cut_short = cut_short & tf.logical_not(frequent)
      length = tf.where(cut_short, tf.minimum(length, cut), length)
    ids = tf.where(tf.range(L) < length, ids, 0)
    text = tf.strings.reduce_join(tf.gather(self.chars, ids[:length]))
    return {"index": index, "text": text, "labels": ids, "label_length": length, "uniforms": u,
            "line_bound": self._line_bound(u, ids, length, offsets)}

  def _word_case(self, word: tf.Tensor, u: tf.Tensor, offsets: dict) -> tf.Tensor:
    """A word's ids [L] in CAPITALS, Capitalized or as written, by data.corpus_upper/title_probability."""
    if self._capitals is None:
      return word
    d = self.config
    e = offsets["extra"][0]
    p_upper = float(d.corpus_upper_probability)
    p_title = p_upper + float(d.corpus_title_probability)
    capitals = tf.where(u[e] < p_upper, tf.gather(self._capitals, word), word)
    first = tf.range(self.L) == 0
    return tf.where((u[e] >= p_upper) & (u[e] < p_title) & first, tf.gather(self._capitals, word), capitals)

  def _font(self, u: tf.Tensor) -> tf.Tensor:
    """Font index of uniform(s) u: every font equally likely, or by data.italic_probability."""
    if self.font_cdf is None:
      return tf.minimum(tf.cast(u * self.num_fonts, tf.int32), self.num_fonts - 1)
    flat = tf.reshape(u, [-1])
    index = tf.searchsorted(self.font_cdf, flat, side="right", out_type=tf.int32)
    return tf.reshape(index, tf.shape(u))

  def _line_bound(self, u, ids, length, offsets):
    """An upper bound of the canvas columns the line's ink reaches.

    With steps s_l = max(round(advance + spacing), 1) and the overlap rule
    (pen_l >= ink end of letter l - D), every pen position satisfies
    pen_l <= pen_0 + sum_{j<l} max(s_j + 1, ceil((max bearing + cell width -
    min bearing) / D)); the +1 absorbs rounding differences with the XLA layout.
    """
    d = self.config
    font = self._font(u[0])
    o0, o1 = offsets["spacing"]
    lo, hi = d.spacing_em
    spacing = (lo + (hi - lo) * u[o0:o1]) * self.pixel_size
    adv = tf.gather(self.advance[font], ids)
    step = tf.maximum(tf.cast(tf.round(adv + spacing), tf.int32), 1) + 1
    overlap = int(math.ceil((self.max_bearing + self.cell_w - self.min_bearing) / self.D))
    step = tf.where(tf.range(self.L) < length - 1, tf.maximum(step, overlap), 0)
    return self.pen0 + tf.reduce_sum(step) + self.max_bearing + self.cell_w + 2

  def _decode(self, p: dict) -> dict:
    """Parameters [B, ...] from the per-sample uniforms [B, N]."""
    d = self.config
    offsets, _ = self._layout_of_uniforms()
    u = p["uniforms"]
    s = u[:, :_NUM_SCALARS]
    col = lambda k: s[:, k]

    def uni(k, lo_hi):
      lo, hi = float(lo_hi[0]), float(lo_hi[1])
      return lo + (hi - lo) * col(k)

    def randint(k, lo_hi):
      lo, hi = int(lo_hi[0]), int(lo_hi[1])
      return tf.minimum(lo + tf.cast(tf.floor(col(k) * (hi - lo + 1)), tf.int32), hi)

    def coin(k, p_):
      return col(k) < float(p_)

    out = dict(p)
    out["font"] = self._font(col(0))
    # Rotation and shear (text program), light direction, stroke directions and blur taps (compose).
    rad = math.pi / 180.0
    theta = (-d.max_angle + 2.0 * d.max_angle * col(5)) * rad
    shear_degrees = _shear_degrees(col(6), d)
    shear = shear_degrees * rad
    phi = col(40) * (2 * math.pi)
    out["trig"] = tf.stack([tf.cos(theta), tf.sin(theta), tf.tan(shear), tf.cos(phi), tf.sin(phi)], axis=1)
    for key in ("short", "long"):
      o0, o1 = offsets[key]
      a = tf.reshape(u[:, o0:o1], [tf.shape(u)[0], -1, _SCRATCH_FIELDS])[:, :, 2] * (2 * math.pi)
      out[f"{key}_dirs"] = tf.stack([tf.cos(a), tf.sin(a)], axis=-1)
    o0, o1 = offsets["spacing"]
    lo, hi = d.spacing_em
    out["spacing"] = (lo + (hi - lo) * u[:, o0:o1]) * self.pixel_size
    for name, key, n_range, len_range, w_range, black in (
        ("short_scratches", "short", d.short_scratches, d.short_scratch_length, d.short_scratch_width, False),
        ("long_scratches", "long", d.long_scratches, d.long_scratch_length, d.long_scratch_width,
         d.long_scratch_black)):
      n_max = int(n_range[1])
      o0, o1 = offsets[key]
      v = tf.reshape(u[:, o0:o1], [-1, n_max + 1, _SCRATCH_FIELDS])
      if n_max == 0:
        out[name] = v[:, :0]
        continue
      count = tf.minimum(int(n_range[0]) + tf.cast(v[:, n_max, 0] * (n_range[1] - n_range[0] + 1), tf.int32),
                         int(n_range[1]))
      v = v[:, :n_max]
      sl = float(len_range[0]) + (len_range[1] - len_range[0]) * v[..., 3]
      sw = tf.minimum(tf.floor(float(w_range[0]) + (w_range[1] - w_range[0] + 1) * v[..., 4]),
                      float(w_range[1]))
      alpha = v[..., 5] * tf.cast(tf.range(n_max)[None, :] < count[:, None], tf.float32)
      rgb = tf.zeros_like(v[..., 6:9]) if black else v[..., 6:9]
      out[name] = tf.concat([v[..., 0:2], v[..., 2:3] * (2 * math.pi), sl[..., None], sw[..., None],
                             alpha[..., None], rgb], axis=-1)
    morph_on = coin(12, d.morph_probability)
    out["morph"] = tf.where(morph_on[:, None],
                            tf.stack([randint(10, d.morph_close_open), randint(11, d.morph_dilate_erode)], 1),
                            0)

    def tint(k, level, amount):
      return tf.clip_by_value(level[:, None] + amount * (s[:, k:k + 3] - 0.5), 0.0, 1.0)

    out["paper"] = tint(13, uni(16, d.paper_level), d.paper_tint)
    out["ink"] = tint(17, uni(20, d.ink_level), d.ink_tint)
    out["invert"] = coin(21, d.invert_probability)
    octave_w = s[:, 22:22 + _NOISE_LEVELS] + 0.05
    out["octaves"] = octave_w / tf.reduce_sum(octave_w, axis=1, keepdims=True)
    out["font_px"] = uni(4, d.font_px)
    out["angle"] = uni(5, (-d.max_angle, d.max_angle))
    out["shear"] = shear_degrees
    out["margins"] = tf.stack([uni(7, d.margins_px), uni(8, d.margins_px), uni(9, d.margins_px),
                               uni(27, d.margins_px)], 1)
    out["position"] = s[:, 28:30] if d.position == "random" else tf.zeros_like(s[:, 28:30])
    out["background"] = tf.stack([uni(30, d.background_noise), uni(31, d.background_saturation)], 1)
    out["grain"] = tf.stack([uni(32, d.grain), uni(33, d.grain_contrast), uni(34, d.grain_saturation),
                             uni(35, d.grain_brightness)], 1)
    out["illumination"] = tf.stack([
        tf.where(coin(38, d.illumination_probability), uni(39, d.illumination_strength), 0.0),
        col(40) * (2 * math.pi)], 1)
    out["downscale"] = coin(41, d.downscale_probability)
    if self._resample:
      e = offsets["extra"][0]
      lo, hi = float(d.downscale_factor[0]), float(d.downscale_factor[1])
      out["downscale_factor"] = lo + (hi - lo) * u[:, e + 1]
    if self._low_noise:
      e = offsets["extra"][0]
      lo, hi = (float(v) for v in d.low_res_noise)
      out["low_res_noise"] = tf.where(out["downscale"], lo + (hi - lo) * u[:, e + 6], 0.0)
    out["blur"] = tf.where(coin(36, d.blur_probability), uni(37, d.blur_sigma), 0.0)
    if self._blur_low:  # a sigma in low-resolution pixels is `factor` times as wide here (2 without _resample)
      out["blur"] = out["blur"] * tf.where(out["downscale"], out.get("downscale_factor", 2.0), 1.0)
    out["blur_kernel"] = gaussian_kernel(out["blur"], self._blur_radius)
    if self._crop:
      e = offsets["extra"][0]
      (a0, a1), (b0, b1) = d.crop_ascent_em, d.crop_descent_em
      out["crop"] = tf.stack([a0 + (a1 - a0) * u[:, e + 2], b0 + (b1 - b0) * u[:, e + 3]], axis=1) * self.pixel_size
    out["jpeg"] = tf.stack([tf.where(coin(42, d.jpeg_probability), 1.0, 0.0), uni(43, d.jpeg_quality)], 1)
    out["color"] = tf.stack([uni(44, d.contrast), uni(45, d.brightness), uni(46, d.saturation)], 1)
    # Two 32-bit keys for the per-pixel hash noise, from 16-bit halves of four uniforms.
    halves = tf.cast(tf.floor(s[:, 48:52] * 65536.0), tf.int32)
    out["hash_key"] = tf.stack([halves[:, 0] * 65536 + halves[:, 1], halves[:, 2] * 65536 + halves[:, 3]], 1)
    return out

  # --------------------------------------------------------------- stage 2

  @_NOT_CONVERTED
  def render(self, params: dict) -> dict:
    """Turns one sample's parameters (from sample_params) into the sample.

    The pixels come from two XLA programs compiled for a batch of one. XLA
    generates different code for different batch shapes, and their fused
    multiply-adds round differently by an ulp, so rendering every sample alone
    is what makes sample i the same bytes in any batch, on any replica.
    """
    numeric = {k: v[None] for k, v in params.items() if k not in ("text", "index")}
    out = tf.nest.map_structure(lambda t: t[0], self._render_xla(numeric))
    out["text"] = params["text"]
    out["index"] = params["index"]
    out["labels"] = params["labels"]
    out["label_length"] = params["label_length"]
    return out

  def render_batch(self, params: dict) -> dict:
    """Eager convenience: render a batch of parameters (leading axis), sample by sample."""
    n = int(params["index"].shape[0])
    ds = tf.data.Dataset.from_tensor_slices(params).map(self.render).batch(n)
    return next(iter(ds))

  @_NOT_CONVERTED
  def sample(self, index) -> dict:
    """Sample `index` of this generator's stream (one sample; use in Dataset.map)."""
    return self.render(self.sample_params(index))

  def generate(self, indices) -> dict:
    """Eager convenience: samples for a list of indices, batched."""
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(indices, tf.int64))
    return next(iter(ds.map(self.sample).batch(len(indices))))

  def _render_text(self, p: dict, canvas_w: tf.Tensor) -> dict:
    """Layout, canvas, warp and quads (first XLA program), on a canvas `canvas_w` wide.

    `canvas_w` is a scalar tensor that XLA takes as a compile-time constant: the
    program is traced once and compiled once per canvas width it meets.
    """
    p = self._decode(p)
    geom = self._layout(p)
    geom["canvas_w"] = canvas_w
    geom["affine"] = self._geometry(p, geom)
    canvas = self._canvas(p, geom)
    alpha, clean = self._warp(canvas, geom)
    quads, boxes, cells = self._quads(p, geom)
    return {
        "alpha": alpha,
        "clean": 1.0 - clean[..., None],
        "letter_quads": quads,
        "letter_boxes": boxes,
        "letter_cells": cells,
        "letter_mask": tf.range(self.L)[None, :] < p["label_length"][:, None],
        "angle": p["angle"],
    }

  def _render_pixels(self, p: dict) -> dict:
    # Two XLA programs: compiled as one, XLA schedules the pair several times slower.
    bound = p["line_bound"][0]
    widths = tf.constant(self.canvas_widths, tf.int32)
    bucket = tf.reduce_sum(tf.cast(widths < bound, tf.int32))
    out = tf.switch_case(bucket, [functools.partial(self._text_xla, p, tf.constant(w, tf.int32))
                                  for w in self.canvas_widths])
    out["image"] = self._compose_xla(p, out.pop("alpha"))
    return out

  # Layout: integer pen positions in atlas pixels, at most D letters per column.
  def _layout(self, p: dict) -> dict:
    L, D = self.L, self.D
    font = p["font"]
    ids = p["labels"]
    fk = tf.stack([tf.broadcast_to(font[:, None], tf.shape(ids)), ids], axis=-1)
    adv = tf.gather_nd(self.advance, fk)
    width = tf.gather_nd(self.ink_w, fk)
    bear = tf.gather_nd(self.bearing, fk)
    n = p["label_length"]
    step = tf.maximum(tf.cast(tf.round(adv + p["spacing"]), tf.int32), 1)
    pens, lefts = [], []
    for l in range(L):
      if l == 0:
        pen = tf.fill(tf.shape(n), self.pen0)
      else:
        pen = pens[-1] + step[:, l - 1]
        if l >= D:
          pen = tf.maximum(pen, lefts[l - D] + width[:, l - D] - bear[:, l])
      pens.append(pen)
      lefts.append(pen + bear[:, l])
    pen = tf.stack(pens, axis=1)
    left = tf.stack(lefts, axis=1)
    valid = tf.range(L)[None, :] < n[:, None]
    last = tf.maximum(n - 1, 0)
    pen_end = tf.cast(tf.gather(pen, last, batch_dims=1), tf.float32) + tf.gather(adv, last, batch_dims=1)
    return {"fk": fk, "pen": pen, "left": left, "width": width, "valid": valid,
            "pen_end": pen_end, "advance": adv}

  def _canvas(self, p: dict, g: dict):
    """Coverage [B, Wc, cell_h] (x-major) for the image (morphology applied) and the clean target."""
    L, D, Wc = self.L, self.D, g["canvas_w"]
    Lp = -(-L // D) * D
    pad = [[0, 0], [0, Lp - L]]
    big = tf.constant(10**7, tf.int32)
    left = tf.pad(tf.where(g["valid"], g["left"], big), pad, constant_values=10**7)
    width = tf.pad(g["width"], pad)
    base = tf.pad(tf.gather_nd(self.colbase, g["fk"]), pad)
    B = tf.shape(left)[0]
    left_g = tf.reshape(left, [B, Lp // D, D])  # letter j*D+g at [j, g]
    x = tf.range(Wc)[None, :, None, None]
    count = tf.reduce_sum(tf.cast(left_g[:, None, :, :] <= x, tf.int32), axis=2)  # [B, Wc, D]
    j = tf.maximum(count - 1, 0)
    letter = j * D + tf.range(D)[None, None, :]
    l_left = tf.gather(left, letter, batch_dims=1)
    l_width = tf.gather(width, letter, batch_dims=1)
    l_base = tf.gather(base, letter, batch_dims=1)
    col = tf.range(Wc)[None, :, None] - l_left
    ok = (count > 0) & (col >= 0) & (col < l_width)
    flat = _barrier(tf.where(ok, l_base + col, self._zero_col))
    # An explicit max over the D candidates: XLA's reduce over that axis is ~15x slower.
    cov = _max_all([tf.gather(self.cols, flat[..., k]) for k in range(D)])  # [B, Wc, gh] uint8
    cov = _barrier(tf.cast(cov, tf.float32) * (1.0 / 255.0))
    return self._morphology(cov, p["morph"]), cov

  def _morphology(self, x, morph):
    d = self.config
    if d.morph_probability <= 0:
      return x
    close_open, dilate_erode = morph[:, 0], morph[:, 1]

    def step(v, op):
      # op per sample: 1 dilate, -1 erode, 0 keep; 3x3 cross structuring element.
      p = _barrier(tf.pad(v, [[0, 0], [1, 1], [1, 1]], mode="SYMMETRIC"))
      taps = [p[:, 1:-1, 1:-1], p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]]
      hi = _max_all(taps)
      lo = -_max_all([-t for t in taps])
      op = op[:, None, None]
      return _barrier(tf.where(op > 0, hi, tf.where(op < 0, lo, v)))

    r_co = max(abs(int(v)) for v in d.morph_close_open)
    r_de = max(abs(int(v)) for v in d.morph_dilate_erode)

    def steps(x):
      # close k = dilate^k erode^k; open k = erode^k dilate^k; then dilate/erode.
      k = tf.abs(close_open)
      first = tf.where(close_open < 0, 1, -1)
      for i in range(r_co):
        x = step(x, tf.where(k > i, first, 0))
      for i in range(r_co):
        x = step(x, tf.where(k > i, -first, 0))
      for i in range(r_de):
        x = step(x, tf.where(tf.abs(dilate_erode) > i, tf.sign(dilate_erode), 0))
      return x

    return _if((close_open != 0) | (dilate_erode != 0), steps, x)

  def _geometry(self, p: dict, g: dict):
    """Forward affine per sample: out = A @ (canvas_xy - c) + t; A [B, 2, 2]."""
    H, W = float(self.H), float(self.W)
    font = p["font"]
    base = float(self.atlas.baseline)
    asc = tf.gather(self.ascent, font)
    desc = tf.gather(self.descent, font)
    # Line box and ink box in canvas coordinates (continuous, pixel j = [j, j+1]).
    valid = g["valid"]
    top = tf.gather_nd(self.ink_top, g["fk"])
    bottom = tf.gather_nd(self.ink_bottom, g["fk"])
    has_ink = valid & (bottom > top)
    leftf = tf.cast(g["left"], tf.float32)
    rightf = leftf + tf.cast(g["width"], tf.float32)
    inf = 1e9
    ink_x0 = tf.reduce_min(tf.where(has_ink, leftf, inf), axis=1)
    ink_x1 = tf.reduce_max(tf.where(has_ink, rightf, -inf), axis=1)
    ink_y0 = tf.reduce_min(tf.where(has_ink, top, inf), axis=1)
    ink_y1 = tf.reduce_max(tf.where(has_ink, bottom, -inf), axis=1)
    line_x0 = tf.fill(tf.shape(asc), float(self.pen0))
    line_x1 = g["pen_end"]
    any_ink = ink_x1 > ink_x0
    bx0 = tf.where(any_ink, tf.minimum(line_x0, ink_x0), line_x0)
    bx1 = tf.where(any_ink, tf.maximum(line_x1, ink_x1), line_x1)
    if self._crop:  # the word box of a document: fixed heights above and below the baseline; ink may pass it
      line_y0 = base - p["crop"][:, 0]
      line_y1 = base + p["crop"][:, 1]
      by0, by1 = line_y0, line_y1
    else:
      line_y0 = base - asc
      line_y1 = base + desc
      by0 = tf.where(any_ink, tf.minimum(line_y0, ink_y0), line_y0)
      by1 = tf.where(any_ink, tf.maximum(line_y1, ink_y1), line_y1)
    center = tf.stack([(bx0 + bx1) / 2, (by0 + by1) / 2], axis=1)
    cos, sin, shear = p["trig"][:, 0], p["trig"][:, 1], p["trig"][:, 2]
    # Rotation CCW as seen (y down) after a shear that leans the tops right.
    rot = tf.reshape(tf.stack([cos, sin, -sin, cos], axis=1), [-1, 2, 2])
    shr = tf.reshape(tf.stack([tf.ones_like(shear), -shear, tf.zeros_like(shear),
                               tf.ones_like(shear)], axis=1), [-1, 2, 2])
    rs = tf.matmul(rot, shr)

    def extent(x0, x1, y0, y1):
      corners = tf.stack([tf.stack([x0, y0], 1), tf.stack([x1, y0], 1), tf.stack([x1, y1], 1),
                          tf.stack([x0, y1], 1)], axis=1) - center[:, None, :]
      r = tf.einsum("bij,bkj->bki", rs, corners)
      return tf.reduce_min(r, axis=1), tf.reduce_max(r, axis=1)

    lo, hi = extent(bx0, bx1, by0, by1)
    size = hi - lo  # [B, 2] at scale 1 (atlas px)
    m = p["margins"]  # left, top, right, bottom
    m_pos = tf.maximum(m, 0.0)
    avail = tf.stack([W - m_pos[:, 0] - m_pos[:, 2], H - m_pos[:, 1] - m_pos[:, 3]], axis=1)
    avail = tf.maximum(avail, tf.constant([[W, H]]) * 0.5) - 2.0
    scale = p["font_px"] / self.pixel_size
    scale = tf.minimum(scale, tf.reduce_min(avail / tf.maximum(size, 1e-3), axis=1))
    a_mat = rs * scale[:, None, None]
    # Place the line box (with margins) in the free space; then keep the ink inside.
    llo, lhi = extent(line_x0, line_x1, line_y0, line_y1)
    llo, lhi = llo * scale[:, None], lhi * scale[:, None]
    margins_lo = tf.stack([m[:, 0], m[:, 1]], axis=1)
    margins_hi = tf.stack([m[:, 2], m[:, 3]], axis=1)
    free = tf.constant([[W, H]]) - (lhi - llo) - margins_lo - margins_hi
    t = margins_lo - llo + tf.maximum(free, 0.0) * p["position"]
    blo, bhi = lo * scale[:, None], hi * scale[:, None]
    t = tf.clip_by_value(t, 1.0 - blo, tf.constant([[W, H]]) - 1.0 - bhi)
    return a_mat, center, t

  def _warp(self, canvas, g: dict):
    """Samples the canvas at every output pixel through the inverse affine."""
    B = tf.shape(canvas[0])[0]
    Wc, gh = g["canvas_w"], self.cell_h
    a_mat, center, t = g["affine"]
    det = a_mat[:, 0, 0] * a_mat[:, 1, 1] - a_mat[:, 0, 1] * a_mat[:, 1, 0]
    inv = tf.stack([a_mat[:, 1, 1], -a_mat[:, 0, 1], -a_mat[:, 1, 0], a_mat[:, 0, 0]], axis=1)
    inv = inv / det[:, None]
    u = tf.range(self.W, dtype=tf.float32)[None, None, :] + 0.5 - t[:, 0, None, None]
    v = tf.range(self.H, dtype=tf.float32)[None, :, None] + 0.5 - t[:, 1, None, None]
    c = lambda k: inv[:, k, None, None]
    xs = c(0) * u + c(1) * v + (center[:, 0, None, None] - 0.5)
    ys = c(2) * u + c(3) * v + (center[:, 1, None, None] - 0.5)
    x0f, y0f = tf.floor(xs), tf.floor(ys)
    fx, fy = xs - x0f, ys - y0f
    x0 = tf.cast(tf.clip_by_value(x0f, -2.0, tf.cast(Wc, tf.float32) + 1.0), tf.int32)
    y0 = tf.cast(tf.clip_by_value(y0f, -2.0, gh + 1.0), tf.int32)
    zero = tf.zeros([1])
    chan = [_barrier(tf.concat([tf.reshape(c, [-1]), zero], 0)) for c in canvas]
    zero_idx = tf.shape(chan[0])[0] - 1
    bofs = (tf.range(B) * (Wc * gh))[:, None, None]
    outs = [0.0, 0.0]
    for dy in (0, 1):
      for dx in (0, 1):
        yy, xx = y0 + dy, x0 + dx
        ok = (xx >= 0) & (xx < Wc) & (yy >= 0) & (yy < gh)
        idx = _barrier(tf.where(ok, bofs + xx * gh + yy, zero_idx))
        w = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy)
        for k in range(2):
          outs[k] = outs[k] + w * tf.gather(chan[k], idx)
    return outs[0], outs[1]

  def _quads(self, p: dict, g: dict):
    a_mat, center, t = g["affine"]
    fk = g["fk"]
    x0 = tf.cast(g["left"], tf.float32)
    x1 = x0 + tf.cast(g["width"], tf.float32)
    y0 = tf.gather_nd(self.ink_top, fk)
    y1 = tf.gather_nd(self.ink_bottom, fk)
    blank = y1 <= y0
    corners = tf.stack([tf.stack([x0, y0], -1), tf.stack([x1, y0], -1), tf.stack([x1, y1], -1),
                        tf.stack([x0, y1], -1)], axis=2)  # [B, L, 4, 2]
    mid = tf.stack([(x0 + x1) / 2, (y0 + y1) / 2], -1)[:, :, None, :]
    corners = tf.where(blank[..., None, None], tf.broadcast_to(mid, tf.shape(corners)), corners)
    q = tf.einsum("bij,blkj->blki", a_mat, corners - center[:, None, None, :]) + t[:, None, None, :]
    q = tf.where(g["valid"][..., None, None], q, 0.0)
    # Layout cells: pen to pen + advance, the atlas line box (all cell rows) tall.
    c0 = tf.cast(g["pen"], tf.float32)
    c1 = c0 + tf.maximum(g["advance"], 1.0)
    top = tf.zeros_like(c0)
    bottom = tf.fill(tf.shape(c0), float(self.cell_h))
    cells = tf.stack([tf.stack([c0, top], -1), tf.stack([c1, top], -1), tf.stack([c1, bottom], -1),
                      tf.stack([c0, bottom], -1)], axis=2)
    cells = tf.einsum("bij,blkj->blki", a_mat, cells - center[:, None, None, :]) + t[:, None, None, :]
    cells = tf.where(g["valid"][..., None, None], cells, 0.0)
    lo = tf.reduce_min(q, axis=2)
    hi = tf.reduce_max(q, axis=2)
    size = tf.constant([self.W, self.H], tf.float32)
    lo, hi = tf.clip_by_value(lo / size, 0.0, 1.0), tf.clip_by_value(hi / size, 0.0, 1.0)
    boxes = tf.stack([lo[..., 1], lo[..., 0], hi[..., 1], hi[..., 0]], axis=-1)
    boxes = tf.where(g["valid"][..., None], boxes, 0.0)
    return q, boxes, cells

  # Degradations ----------------------------------------------------------

  def _hash_uniform(self, key, salt: int, shape):
    """Per-sample uniform noise [B, *shape] from a 32-bit integer hash of (key, position)."""
    n = int(np.prod(shape))
    idx = tf.range(n, dtype=tf.int32)
    x = tf.bitcast(idx, tf.uint32)[None, :] ^ _mix(tf.bitcast(key, tf.uint32) + np.uint32(salt * 0x9E3779B9 % 2**32))[:, None]
    x = _mix(x)
    u = tf.cast(tf.bitwise.right_shift(x, np.uint32(8)), tf.float32) * (1.0 / 16777216.0)
    return tf.reshape(u, tf.concat([[-1], shape], 0))

  def _hash_normal(self, key, salt: int, shape):
    """Per-sample standard normal noise [B, *shape] (Box-Muller on two hash uniforms)."""
    u1 = tf.maximum(self._hash_uniform(key, salt, shape), 1.0 / 16777216.0)
    u2 = self._hash_uniform(key, salt + 1, shape)
    return tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos((2.0 * math.pi) * u2)

  def _grain_rgb(self, key, saturation):
    """Per-pixel RGB noise in [0, 1) [B, H, W, 3] with the given saturation [B].

    One 32-bit hash per pixel gives three 10-bit channels; the grey they are
    mixed towards is their plain mean, so everything stays elementwise (one
    fused loop in XLA, no reduction over channels).
    """
    H, W = self.H, self.W
    idx = tf.range(H * W, dtype=tf.int32)
    x = tf.bitcast(idx, tf.uint32)[None, :] ^ _mix(tf.bitcast(key, tf.uint32) + np.uint32(0x5BD1E995))[:, None]
    x = tf.reshape(_mix(x), [-1, H, W, 1])
    r = tf.bitwise.right_shift
    c = [tf.cast(tf.bitwise.bitwise_and(r(x, np.uint32(k)), np.uint32(1023)), tf.float32) * (1.0 / 1024.0)
         for k in (2, 12, 22)]
    m = (c[0] + c[1] + c[2]) * (1.0 / 3.0)
    s = saturation[:, None, None, None]
    return tf.concat([m + s * (ck - m) for ck in c], axis=-1)

  def _background(self, p):
    H, W, C = self.H, self.W, self.C
    key = p["hash_key"][:, 0]
    grid = None
    for level in range(_NOISE_LEVELS, 0, -1):
      h, w = -(-H // 2**level) + 2, -(-W // 2**level) + 2
      noise = self._hash_uniform(key, level, [h, w, C]) - 0.5
      weight = p["octaves"][:, level - 1, None, None, None]
      grid = noise * weight if grid is None else _upsample2(grid)[:, :h, :w] + noise * weight
      grid = _barrier(grid)
    grid = _upsample2(grid)[:, 1:H + 1, 1:W + 1]  # [B, H, W, C] zero-mean
    amp, sat = p["background"][:, 0], p["background"][:, 1]
    grid = _saturate(grid, sat) * (2.0 * amp[:, None, None, None])
    return grid

  def _compose(self, p, alpha):
    p = self._decode(p)
    d = self.config
    H, W, C = self.H, self.W, self.C
    B = tf.shape(alpha)[0]
    paper = _to_channels(p["paper"], C)[:, None, None, :]
    ink = _to_channels(p["ink"], C)[:, None, None, :]
    img = tf.clip_by_value(paper + _barrier(self._background(p)), 0.0, 1.0)
    a = alpha[..., None]
    img = img * (1.0 - a) + ink * a
    img = self._scratches(p, _barrier(img))
    # Grain, blended as in the original (noise image with its own contrast/saturation/brightness).
    gw, gc, gs, gb = (p["grain"][:, k, None, None, None] for k in range(4))
    if d.grain[1] > 0:
      if C == 3:
        grain = self._grain_rgb(p["hash_key"][:, 1], gs[:, 0, 0, 0]) - 0.5
      else:
        grain = self._hash_uniform(p["hash_key"][:, 1], 99, [H, W, C]) - 0.5
      grain = tf.clip_by_value(gb * (0.5 + gc * grain), 0.0, 1.0)
      img = img * (1.0 - gw) + grain * gw
    if d.blur_probability > 0 and d.blur_sigma[1] > 0:
      img = _if(p["blur"] > 0, lambda x: _gaussian_blur(x, p["blur_kernel"]), img)
    if d.illumination_probability > 0:
      strength = p["illumination"][:, 0]
      uu = (tf.range(W, dtype=tf.float32) / W - 0.5)[None, None, :]
      vv = (tf.range(H, dtype=tf.float32) / H - 0.5)[None, :, None] * (H / W)
      grad = p["trig"][:, 3, None, None] * uu + p["trig"][:, 4, None, None] * vv + 0.5
      img = _if(strength > 0, lambda x: x * (1.0 - strength[:, None, None, None] * grad[..., None]), img)
    if d.downscale_probability > 0:
      if self._resample:
        factor = p["downscale_factor"]
        noise = None
        if self._low_noise:
          std = p["low_res_noise"][:, None, None, None]
          if self._noise_after_contrast:  # sensor noise does not fade with the print's contrast
            std = std / tf.maximum(p["color"][:, 0, None, None, None], 0.05)
          noise = lambda x: x + std * self._hash_normal(p["hash_key"][:, 1], 101, [H, W, C])
        img = _if(p["downscale"], lambda x: _resample(x, factor, noise), img)
      else:
        img = _if(p["downscale"], _down_up, img)
    if d.jpeg_probability > 0:
      img = _if(p["jpeg"][:, 0] > 0, lambda x: _jpeg_like(x, p["jpeg"][:, 1]), img)
    contrast, brightness, saturation = (p["color"][:, k, None, None, None] for k in range(3))
    pivot = tf.reduce_mean(paper, axis=-1, keepdims=True)
    img = pivot + (img - pivot) * contrast
    img = img * brightness
    if C == 3:
      img = _saturate(img - 0.0, saturation[:, 0, 0, 0])
    img = tf.where(p["invert"][:, None, None, None], 1.0 - img, img)
    del B
    return tf.clip_by_value(img, 0.0, 1.0)

  def _scratches(self, p, img):
    """Line noise: straight strokes splatted pixel by pixel (as PIL draws them, no AA).

    Short strokes first, in their own colours; then the long ones (black when
    data.long_scratch_black, which needs only their alpha).
    """
    d = self.config
    for name, dirs, len_max, w_max, black in (
        ("short_scratches", "short_dirs", d.short_scratch_length[1], d.short_scratch_width[1], False),
        ("long_scratches", "long_dirs", d.long_scratch_length[1], d.long_scratch_width[1],
         d.long_scratch_black)):
      if p[name].shape[1] == 0:
        continue
      layer = functools.partial(self._stroke_layer, s=p[name], dirs=p[dirs], len_max=int(len_max),
                                w_max=int(w_max), black=black)
      img = _barrier(_if(tf.reduce_any(p[name][..., 5] > 0, axis=1), layer, img))
    return img

  def _stroke_layer(self, img, s, dirs, len_max: int, w_max: int, black: bool):
    H, W, C = self.H, self.W, self.C
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
    rgb = _to_channels(s[..., 6:9], C)
    val = tf.concat([tf.broadcast_to(rgb[:, :, None, None, :], tf.concat([tf.shape(ok), [C]], 0)),
                     tf.ones_like(xs)[..., None]], axis=-1) * alpha[..., None, None, None]
    sums = tf.tensor_scatter_nd_add(tf.zeros([B * H * W + 1, C + 1]), idx, tf.reshape(val, [-1, C + 1]))
    sums = tf.reshape(sums[:-1], [B, H, W, C + 1])
    color = sums[..., :C] / tf.maximum(sums[..., C:], 1e-6)
    return img * (1.0 - a_max) + color * a_max


def _if(flag, fn, x):
  """fn(x) where flag [B] is true, else x. Samples are rendered alone (B = 1),
  so this is a conditional that skips fn's work when the sample does not ask
  for it; for a batch it falls back to computing fn everywhere and selecting."""
  if x.shape[0] == 1:
    return tf.cond(flag[0], lambda: fn(x), lambda: x)
  return tf.where(tf.reshape(flag, [-1] + [1] * (x.shape.rank - 1)), fn(x), x)


def _barrier(x):
  """Materializes `x` inside XLA, so consumers that read it many times (shifted
  slices, gathers) do not each recompute the chain that produced it."""
  return _xla.optimization_barrier(x)[0]


def _max_all(xs):
  out = xs[0]
  for x in xs[1:]:
    out = tf.maximum(out, x)
  return out


def _luma(rgb):
  """ITU-R 601 luma of [..., 3] as [..., 1]."""
  return tf.reduce_sum(rgb * tf.constant(_LUMA), axis=-1, keepdims=True)


def _mix(x):
  """A 32-bit integer finalizer (xorshift-multiply), elementwise on uint32."""
  r = tf.bitwise.right_shift
  x = x ^ r(x, np.uint32(16))
  x = x * np.uint32(0x7FEB352D)
  x = x ^ r(x, np.uint32(15))
  x = x * np.uint32(0x846CA68B)
  return x ^ r(x, np.uint32(16))


def _to_channels(rgb, channels: int):
  """[..., 3] colours -> [..., channels] (luma for grey)."""
  if channels == 3:
    return rgb
  return _luma(rgb)


def _saturate(img, amount):
  """Mixes each pixel with its grey by `amount` [B] (0 = grey, 1 = unchanged)."""
  if img.shape[-1] == 1:
    return img
  grey = _LUMA[0] * img[..., 0:1] + _LUMA[1] * img[..., 1:2] + _LUMA[2] * img[..., 2:3]
  return grey + (img - grey) * amount[:, None, None, None]


def _upsample2(x):
  """Bilinear x2 upsampling of [B, h, w, C] (half-pixel centres, edges replicated)."""
  for axis in (1, 2):
    x = _barrier(x)
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


def gaussian_kernel(sigma, radius: int):
  """Normalized 1-D Gaussian taps [..., 2 * radius + 1] for sigma [...] (sigma 0 gives a unit impulse)."""
  taps = tf.range(-radius, radius + 1, dtype=tf.float32)
  sigma = tf.maximum(tf.cast(sigma, tf.float32), 1e-3)[..., None]
  k = tf.exp(-0.5 * tf.square(taps / sigma))
  return k / tf.reduce_sum(k, axis=-1, keepdims=True)


def _gaussian_blur(img, k):
  """Separable blur of [B, H, W, C] with per-sample taps k [B, 2r + 1]."""
  r = (k.shape[1] - 1) // 2
  H, W = img.shape[1], img.shape[2]
  x = _barrier(tf.pad(img, [[0, 0], [r, r], [0, 0], [0, 0]], mode="SYMMETRIC"))
  img = sum(k[:, i, None, None, None] * x[:, i:i + H] for i in range(2 * r + 1))
  x = _barrier(tf.pad(img, [[0, 0], [0, 0], [r, r], [0, 0]], mode="SYMMETRIC"))
  return sum(k[:, i, None, None, None] * x[:, :, i:i + W] for i in range(2 * r + 1))


def _down_up(img):
  """Halves the resolution (2x2 mean) and scales back up bilinearly."""
  H, W = img.shape[1], img.shape[2]
  ph, pw = H % 2, W % 2
  x = tf.pad(img, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="SYMMETRIC")
  x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
  return _upsample2(x)[:, :H, :W]


def _resample_matrices(n: int, factor):
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


def _resample(img, factor, low_res_fn=None):
  """Renders img [B, H, W, C] at 1/factor [B] of its resolution and scales it back up.

  low_res_fn, if given, changes the low-resolution image (it sits in the
  top-left floor(H / factor) x floor(W / factor) pixels of a [B, H, W, C]
  tensor; the rest is never read back).
  """
  H, W = img.shape[1], img.shape[2]
  up_h, down_h = _resample_matrices(H, factor)
  up_w, down_w = _resample_matrices(W, factor)
  if low_res_fn is None:
    x = tf.einsum("byh,bhwc->bywc", tf.matmul(up_h, down_h), img)
    return tf.einsum("bxw,bywc->byxc", tf.matmul(up_w, down_w), x)
  x = tf.einsum("bxw,bywc->byxc", down_w, tf.einsum("byh,bhwc->bywc", down_h, img))
  x = low_res_fn(x)
  return tf.einsum("bxw,bywc->byxc", up_w, tf.einsum("byh,bhwc->bywc", up_h, x))


def _jpeg_like(img, quality):
  """8x8 block DCT quantization with the JPEG luminance table at `quality` [B]."""
  H, W, C = img.shape[1], img.shape[2], img.shape[3]
  ph, pw = -H % 8, -W % 8
  x = tf.pad(img, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="SYMMETRIC") * 255.0 - 128.0
  Hp, Wp = H + ph, W + pw
  x = tf.reshape(x, [-1, Hp // 8, 8, Wp // 8, 8, C])
  m = tf.constant(_dct_matrix())
  coef = tf.einsum("ij,bpjqkc,lk->bpqcil", m, x, m)
  q = quality
  scale = tf.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
  table = tf.maximum(tf.floor((tf.constant(_JPEG_TABLE)[None] * scale[:, None, None] + 50.0) / 100.0), 1.0)
  blocks = tf.reshape(coef, [tf.shape(coef)[0], -1, 8, 8])  # at most 4-D broadcasts outside XLA
  coef = tf.reshape(tf.round(blocks / table[:, None]) * table[:, None], tf.shape(coef))
  x = tf.einsum("ji,bpqcjk,kl->bpiqlc", m, coef, m)
  x = tf.reshape(x, [-1, Hp, Wp, C])[:, :H, :W]
  return tf.clip_by_value((x + 128.0) / 255.0, 0.0, 1.0)

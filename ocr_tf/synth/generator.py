"""The generator: (data config, atlas, seed, index) -> one sample, as a short pipeline of named steps.

1. sample_params(i): the sample's named uniforms (draws), its text (text)
   and font, and a bound of its line's width; a handful of ops per sample.
2. render(params): two XLA programs compiled for a batch of one. The text
   program decodes the parameters (params), lays the glyphs out (layout),
   applies morphology to the coverage (degrade.morphology), fits and warps
   it and carries the letter quads through the same affine (geometry). The
   compose program lays the ink on paper and runs the degradation steps in
   order (degrade.STEPS).
"""

from __future__ import annotations

import collections
import functools

import ml_collections
import numpy as np
import tensorflow as tf

from ocr_tf import atlas as atlas_lib
from ocr_tf import charset as charset_lib
from ocr_tf import assets
from ocr_tf import config as config_lib
from ocr_tf.config import ConfigError
import ocr_tf.synth.degrade as degrade
import ocr_tf.synth.draws as draws
import ocr_tf.synth.geometry as geometry
import ocr_tf.synth.layout as layout_lib
import ocr_tf.synth.params as params_lib
import ocr_tf.synth.spec as spec_lib
import ocr_tf.synth.text as text_lib

# The per-sample functions tf.data maps are TensorFlow ops with Python control flow only on Python
# values: AutoGraph would only add tracing time (about a second per pipeline).
_NOT_CONVERTED = tf.autograph.experimental.do_not_convert
_RENDERED = ("index", "text", "labels", "label_length")  # passed through render unchanged


class Programs:
  """The traced programs of one (atlas, data config), shared by its generators (training and validation)."""

  def __init__(self, generator: "Generator"):
    g = generator
    self.text = tf.function(g._render_text, jit_compile=True, autograph=False)  # pylint: disable=protected-access
    self.compose = tf.function(g._compose, jit_compile=True, autograph=False)  # pylint: disable=protected-access
    widths = g.spec.canvas_widths
    text = self.text

    def pixels(p: dict, knobs: tf.Tensor) -> dict:
      # Two XLA programs: compiled as one, XLA schedules the pair several times slower.
      bucket = tf.reduce_sum(tf.cast(tf.constant(widths, tf.int32) < p["line_bound"][0], tf.int32))
      out = tf.switch_case(bucket, [functools.partial(text, p, knobs, tf.constant(w, tf.int32)) for w in widths])
      out["image"] = self.compose(p, knobs, out.pop("alpha"))
      return out

    self.pixels = tf.function(pixels, autograph=False)


class ProgramCache:
  """Programs by key, most recently used last, at most `size` of them."""

  def __init__(self, size: int = 8):
    self.size = size
    self._programs: collections.OrderedDict = collections.OrderedDict()

  def get(self, key, make) -> Programs:
    if key in self._programs:
      self._programs.move_to_end(key)
    else:
      self._programs[key] = make()
      while len(self._programs) > self.size:
        self._programs.popitem(last=False)
    return self._programs[key]


PROGRAMS = ProgramCache()


def _program_key(atlas: atlas_lib.Atlas, charset: str, spec: spec_lib.Spec, lay: draws.Layout) -> tuple:
  """What the programs depend on: the atlas' content, the charset (its subset of the atlas), the structure and
  the length of the uniforms (the added draws a config uses; it sizes the knobs' range maps too)."""
  return atlas.fingerprint, charset, spec, lay.size


def _font_cdf(font_names, italic_probability: float):
  italic = np.array([bool(text_lib.ITALIC.search(name)) for name in font_names])
  if italic_probability < 0:
    return italic, None
  for wanted, have, kind in ((italic_probability > 0, italic.any(), "italic or oblique"),
                             (italic_probability < 1, (~italic).any(), "upright")):
    if wanted and not have:
      raise ConfigError(f"data.italic_probability={italic_probability}: the atlas has no {kind} font "
                        f"(names are matched against {text_lib.ITALIC.pattern!r})")
  return italic, tf.constant(text_lib.font_weights(italic, italic_probability), tf.float32)


def _text_rules(d: ml_collections.ConfigDict) -> text_lib.TextRules:
  return text_lib.TextRules(
      max_length=int(d.max_length), min_length=int(d.min_length), corpus_probability=float(d.corpus_probability),
      upper_probability=float(d.corpus_upper_probability), title_probability=float(d.corpus_title_probability),
      frequent_probability=float(d.frequent_probability),
      digits_probability=float(d.digits_probability), digits_length=tuple(d.digits_length),
      short_probability=float(d.short_probability), short_length=tuple(d.short_length))


def _text_tables(d: ml_collections.ConfigDict, charset: charset_lib.Charset, rules: text_lib.TextRules):
  corpus = frequent = None
  if d.corpus:
    corpus = charset_lib.load_corpus(assets.corpus_path(d.corpus), d.corpus_mode, charset, rules.max_length)
  if rules.frequent_probability > 0:
    frequent = charset_lib.load_counts(assets.corpus_path(d.frequent_words), charset, rules.max_length)
  return text_lib.text_tables(charset, rules, corpus, frequent)


def _added_slots(spec: spec_lib.Spec, rules: text_lib.TextRules, tables: text_lib.TextTables) -> frozenset:
  """The ADDED draws (ocr_tf.synth.draws) a config uses."""
  used = {"case": tables.capitals is not None, "downscale_factor": spec.resample, "crop": spec.crop_box,
          "short": rules.short_probability > 0, "low_res_noise": spec.low_res_noise,
          "digits": tables.digit_ids is not None, "frequent": tables.frequent is not None}
  return frozenset(name for name, on in used.items() if on)


class Generator:
  """Makes samples for one data config, atlas and seed.

  Args:
    data_config: the `data` block of a config (see ocr_tf.config).
    atlas: a loaded atlas; its fonts that lack a charset character are left out.
    seed: the stream's seed (data.seed for training, data.validation_seed for
      evaluation).
  """

  def __init__(self, data_config: ml_collections.ConfigDict, atlas: atlas_lib.Atlas, seed: int,
               programs: ProgramCache = PROGRAMS):
    self.config = d = config_lib.checked_data(data_config)  # frozen: later changes to the caller's config do not reach it
    try:
      self.atlas, self.dropped_fonts = atlas.subset(d.charset)
    except atlas_lib.AtlasError as e:
      raise ConfigError(f"data.charset={d.charset!r}: {e}") from None
    self.seed = int(seed)
    self.charset = charset_lib.Charset(d.charset)
    self.H, self.W, self.C, self.L = int(d.height), int(d.width), int(d.channels), int(d.max_length)
    self.italic_fonts, self.font_cdf = _font_cdf(self.atlas.font_names, float(d.italic_probability))
    self.glyphs = layout_lib.glyphs(self.atlas)
    spec_lib.check_fit(d, self.atlas)
    self.spec = spec_lib.make_spec(d, self.glyphs, self.atlas)
    self.rules = _text_rules(d)
    self.text_tables = _text_tables(d, self.charset, self.rules)
    self.layout = draws.layout(self.L, self.spec.short_scratches, self.spec.long_scratches,
                               _added_slots(self.spec, self.rules, self.text_tables))
    self.knob_vector, self.knob_slots = spec_lib.knobs(d, self.layout)
    # The pixels depend on the config and the atlas, not on the seed: generators that share both (the
    # training and validation streams of a run) share the traced and compiled programs.
    self.programs = programs.get(_program_key(atlas, d.charset, self.spec, self.layout),
                                 lambda: Programs(self))

  @property
  def canvas_widths(self) -> list[int]:
    """The canvas widths the text program is compiled for (each sample uses the narrowest that holds its line)."""
    return list(self.spec.canvas_widths)

  # --------------------------------------------------------------- stage 1

  @_NOT_CONVERTED
  def sample_params(self, index) -> dict:
    """Draws every random choice of sample `index` (one sample; use in Dataset.map).

    Kept to a handful of ops: the uniforms are turned into parameters for a
    whole batch inside the XLA programs (params.decode).
    """
    index = tf.cast(index, tf.int64)
    u = draws.uniforms(self.seed, index, self.layout)
    ids, length = text_lib.choose_text(u, self.layout, self.rules, self.text_tables, len(self.charset))
    font = text_lib.font_index(self.layout.one(u, "font"), self.atlas.num_fonts, self.font_cdf)
    spacing = params_lib.spacing_px(self.layout.take(u, "spacing"), self.config.spacing_em, self.glyphs.pixel_size)
    bound = layout_lib.line_bound(self.glyphs, font, ids, length, spacing, self.spec.max_overlap)
    return {"index": index, "text": text_lib.text_string(ids, length, self.text_tables), "labels": ids,
            "label_length": length, "font": font, "uniforms": u, "line_bound": bound}

  def decode_params(self, params: dict, knobs: tf.Tensor | None = None) -> dict:
    """The named parameters [B, ...] of a batch of sample_params (what the programs render), with this
    generator's knobs or the given ones."""
    vector = self.knob_vector if knobs is None else knobs
    return params_lib.decode(params, self.layout, spec_lib.Knobs(vector, self.knob_slots), self.spec)

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
    out = tf.nest.map_structure(lambda t: t[0], self.programs.pixels(numeric, self.knob_vector))
    out.update({k: params[k] for k in _RENDERED})
    return out

  def render_batch(self, params: dict) -> dict:
    """Eager convenience: render a batch of parameters (leading axis), sample by sample."""
    n = int(params["index"].shape[0])
    ds = tf.data.Dataset.from_tensor_slices(params).map(self.render).batch(n)
    return next(iter(ds))

  def render_text(self, params: dict, canvas_w: int) -> dict:
    """The text program on a canvas `canvas_w` wide (one of canvas_widths): alpha, clean, quads, boxes, cells."""
    return self.programs.text(params, self.knob_vector, tf.constant(canvas_w, tf.int32))

  @_NOT_CONVERTED
  def sample(self, index) -> dict:
    """Sample `index` of this generator's stream (one sample; use in Dataset.map)."""
    return self.render(self.sample_params(index))

  def generate(self, indices) -> dict:
    """Eager convenience: samples for a list of indices, batched."""
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(indices, tf.int64))
    return next(iter(ds.map(self.sample).batch(len(indices))))

  # --------------------------------------------------------------- the programs' bodies

  def _render_text(self, p: dict, knobs: tf.Tensor, canvas_w: tf.Tensor) -> dict:
    """Layout, canvas, warp and quads (first XLA program), on a canvas `canvas_w` wide.

    `canvas_w` is a scalar tensor that XLA takes as a compile-time constant: the
    program is traced once and compiled once per canvas width it meets.
    """
    s, g = self.spec, self.glyphs
    p = self.decode_params(p, knobs)
    lay = layout_lib.pens(g, p["font"], p["labels"], p["label_length"], p["spacing"], s.max_overlap)
    transform = geometry.affine(g, p, lay, s.height, s.width, s.crop_box)
    cov = layout_lib.coverage(g, lay, canvas_w, s.max_overlap)
    morphed = degrade.morphology(cov, p["morph"], s.close_open_steps, s.dilate_erode_steps) if s.morph else cov
    alpha, clean = geometry.warp((morphed, cov), transform, canvas_w, g.cell_h, s.height, s.width)
    quads, boxes, cells = geometry.letter_geometry(g, lay, transform, s.height, s.width)
    return {"alpha": alpha, "clean": 1.0 - clean[..., None], "letter_quads": quads, "letter_boxes": boxes,
            "letter_cells": cells, "letter_mask": tf.range(s.max_length)[None, :] < p["label_length"][:, None],
            "angle": p["angle"]}

  def _compose(self, p: dict, knobs: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """The degraded image (second XLA program) from the warped coverage."""
    return degrade.compose(alpha, self.decode_params(p, knobs), self.spec)

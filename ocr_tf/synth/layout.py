"""Glyph layout: the atlas as tensors, integer pen positions of a line, and its coverage canvas.

Pen positions are whole atlas pixels; at most ``max_overlap`` (D) consecutive
letters may cover one column, which is what lets the canvas be drawn as a
maximum over D candidates per column.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from ocr_tf import atlas as atlas_lib
import ocr_tf.synth.ops as ops

CANVAS_BUCKETS = 4


@dataclasses.dataclass(frozen=True)
class Glyphs:
  """The atlas as constant tensors, with the metrics the layout needs.

  Attributes:
    cols: every glyph's columns [F * K * gw + 1, gh] uint8, the last one blank.
    colbase: index of each (font, char)'s first column [F, K].
    ink_w, bearing: ink width and left bearing in whole pixels [F, K].
    ink_top, ink_bottom: ink rows [F, K]; advance [F, K]; ascent, descent [F].
    cell_h, cell_w: glyph cell; pixel_size: em in atlas pixels; baseline: row of the baseline.
    min_bearing, max_bearing: extreme whole bearings (0 included) of glyphs with ink.
    pen0: the first pen position (leaves room for a negative bearing).
  """
  cols: tf.Tensor
  colbase: tf.Tensor
  ink_w: tf.Tensor
  ink_top: tf.Tensor
  ink_bottom: tf.Tensor
  bearing: tf.Tensor
  advance: tf.Tensor
  ascent: tf.Tensor
  descent: tf.Tensor
  zero_col: int
  cell_h: int
  cell_w: int
  pixel_size: float
  baseline: float
  min_bearing: int
  max_bearing: int
  pen0: int


def glyphs(a: atlas_lib.Atlas) -> Glyphs:
  """The tensors of a (charset-subset) atlas."""
  F, K, gh, gw = a.glyphs.shape
  cols = np.transpose(a.glyphs, (0, 1, 3, 2)).reshape(F * K * gw, gh)
  ink_present = a.ink_boxes[..., 2] > a.ink_boxes[..., 0]
  bear = np.round(a.bearings).astype(np.int64)
  min_bearing = int(min(0, bear[ink_present].min())) if ink_present.any() else 0
  max_bearing = int(max(0, bear[ink_present].max())) if ink_present.any() else 0
  cell_h, cell_w = a.cell_shape
  return Glyphs(
      cols=tf.constant(np.concatenate([cols, np.zeros((1, gh), np.uint8)]), tf.uint8),
      colbase=tf.constant((np.arange(F * K).reshape(F, K) * gw).astype(np.int32)),
      ink_w=tf.constant(a.ink_boxes[..., 3].astype(np.int32)),
      ink_top=tf.constant(a.ink_boxes[..., 0].astype(np.float32)),
      ink_bottom=tf.constant(a.ink_boxes[..., 2].astype(np.float32)),
      bearing=tf.constant(np.round(a.bearings).astype(np.int32)),
      advance=tf.constant(a.advances.astype(np.float32)),
      ascent=tf.constant(a.ascent.astype(np.float32)),
      descent=tf.constant(a.descent.astype(np.float32)),
      zero_col=F * K * gw, cell_h=int(cell_h), cell_w=int(cell_w), pixel_size=float(a.pixel_size),
      baseline=float(a.baseline), min_bearing=min_bearing, max_bearing=max_bearing, pen0=-min_bearing + 1)


def overlap_step(g: Glyphs, max_overlap: int) -> int:
  """The smallest pen step after which a letter can no longer reach D letters back."""
  return int(math.ceil((g.max_bearing + g.cell_w - g.min_bearing) / max_overlap))


def canvas_widths(g: Glyphs, max_length: int, max_overlap: int, max_advance: float, max_spacing_px: float
                  ) -> tuple[int, ...]:
  """The widths the text program is compiled for: the longest line's, and a few narrower for short lines."""
  step_max = max(int(math.ceil(max_advance + max_spacing_px)), overlap_step(g, max_overlap), 1)
  full = g.pen0 + (max_length - 1) * step_max + g.max_bearing + g.cell_w + 2
  return tuple(sorted({min(full, int(math.ceil(full * k / CANVAS_BUCKETS)) + 8)
                       for k in range(1, CANVAS_BUCKETS + 1)}))


def line_bound(g: Glyphs, font, ids, length, spacing, max_overlap: int):
  """An upper bound of the canvas columns a line's ink reaches (one sample: ids, spacing [L]).

  With steps s_l = max(round(advance + spacing), 1) and the overlap rule
  (pen_l >= ink end of letter l - D), every pen position satisfies
  pen_l <= pen_0 + sum_{j<l} max(s_j + 1, ceil((max bearing + cell width -
  min bearing) / D)); the +1 absorbs rounding differences with the XLA layout.
  """
  L = int(ids.shape[0])
  adv = tf.gather(g.advance[font], ids)
  step = tf.maximum(tf.cast(tf.round(adv + spacing), tf.int32), 1) + 1
  step = tf.where(tf.range(L) < length - 1, tf.maximum(step, overlap_step(g, max_overlap)), 0)
  return g.pen0 + tf.reduce_sum(step) + g.max_bearing + g.cell_w + 2


def pens(g: Glyphs, font, ids, length, spacing, max_overlap: int) -> dict:
  """Integer pen positions [B, L] of lines of ids [B, L] in fonts [B], and what the canvas and quads need."""
  L, D = int(ids.shape[1]), max_overlap
  fk = tf.stack([tf.broadcast_to(font[:, None], tf.shape(ids)), ids], axis=-1)
  adv = tf.gather_nd(g.advance, fk)
  width = tf.gather_nd(g.ink_w, fk)
  bear = tf.gather_nd(g.bearing, fk)
  step = tf.maximum(tf.cast(tf.round(adv + spacing), tf.int32), 1)
  pen_list, lefts = [], []
  for l in range(L):
    if l == 0:
      pen = tf.fill(tf.shape(length), g.pen0)
    else:
      pen = pen_list[-1] + step[:, l - 1]
      if l >= D:
        pen = tf.maximum(pen, lefts[l - D] + width[:, l - D] - bear[:, l])
    pen_list.append(pen)
    lefts.append(pen + bear[:, l])
  pen = tf.stack(pen_list, axis=1)
  left = tf.stack(lefts, axis=1)
  valid = tf.range(L)[None, :] < length[:, None]
  last = tf.maximum(length - 1, 0)
  pen_end = tf.cast(tf.gather(pen, last, batch_dims=1), tf.float32) + tf.gather(adv, last, batch_dims=1)
  return {"fk": fk, "pen": pen, "left": left, "width": width, "valid": valid, "pen_end": pen_end, "advance": adv}


def coverage(g: Glyphs, lay: dict, canvas_w, max_overlap: int):
  """Ink coverage [B, Wc, cell_h] in [0, 1] (x-major) of the laid-out lines on a canvas canvas_w wide."""
  L, D, Wc = int(lay["left"].shape[1]), max_overlap, canvas_w
  Lp = -(-L // D) * D
  pad = [[0, 0], [0, Lp - L]]
  big = tf.constant(10**7, tf.int32)
  left = tf.pad(tf.where(lay["valid"], lay["left"], big), pad, constant_values=10**7)
  width = tf.pad(lay["width"], pad)
  base = tf.pad(tf.gather_nd(g.colbase, lay["fk"]), pad)
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
  flat = ops.barrier(tf.where(ok, l_base + col, g.zero_col))
  # An explicit max over the D candidates: XLA's reduce over that axis is ~15x slower.
  cov = ops.max_all([tf.gather(g.cols, flat[..., k]) for k in range(D)])  # [B, Wc, gh] uint8
  return ops.barrier(tf.cast(cov, tf.float32) * (1.0 / 255.0))

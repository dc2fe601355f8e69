"""The one affine of a sample: fitted to the image, warping the canvas, and carrying every letter box.

out = A @ (canvas_xy - center) + t, with A = scale * rotation @ shear. The
image is sampled through its inverse and the letter quads and cells go
through it forwards, so pixels and boxes cannot disagree.
"""

from __future__ import annotations

import tensorflow as tf

import ocr_tf.synth.layout as layout_lib
import ocr_tf.synth.ops as ops


def _line_box(g: layout_lib.Glyphs, p: dict, lay: dict, crop_box: bool):
  """The line box (x0, x1, y0, y1) to fit, with the ink's box merged in (or the crop box), in canvas pixels."""
  font = p["font"]
  base = g.baseline
  asc = tf.gather(g.ascent, font)
  desc = tf.gather(g.descent, font)
  valid = lay["valid"]
  top = tf.gather_nd(g.ink_top, lay["fk"])
  bottom = tf.gather_nd(g.ink_bottom, lay["fk"])
  has_ink = valid & (bottom > top)
  leftf = tf.cast(lay["left"], tf.float32)
  rightf = leftf + tf.cast(lay["width"], tf.float32)
  inf = 1e9
  ink_x0 = tf.reduce_min(tf.where(has_ink, leftf, inf), axis=1)
  ink_x1 = tf.reduce_max(tf.where(has_ink, rightf, -inf), axis=1)
  ink_y0 = tf.reduce_min(tf.where(has_ink, top, inf), axis=1)
  ink_y1 = tf.reduce_max(tf.where(has_ink, bottom, -inf), axis=1)
  line_x0 = tf.fill(tf.shape(asc), float(g.pen0))
  line_x1 = lay["pen_end"]
  any_ink = ink_x1 > ink_x0
  bx0 = tf.where(any_ink, tf.minimum(line_x0, ink_x0), line_x0)
  bx1 = tf.where(any_ink, tf.maximum(line_x1, ink_x1), line_x1)
  if crop_box:  # the word box of a document: fixed heights above and below the baseline; ink may pass it
    line_y0 = base - p["crop"][:, 0]
    line_y1 = base + p["crop"][:, 1]
    by0, by1 = line_y0, line_y1
  else:
    line_y0 = base - asc
    line_y1 = base + desc
    by0 = tf.where(any_ink, tf.minimum(line_y0, ink_y0), line_y0)
    by1 = tf.where(any_ink, tf.maximum(line_y1, ink_y1), line_y1)
  return (bx0, bx1, by0, by1), (line_x0, line_x1, line_y0, line_y1)


def affine(g: layout_lib.Glyphs, p: dict, lay: dict, height: int, width: int, crop_box: bool):
  """(A [B, 2, 2], center [B, 2], t [B, 2]): the line rotated and sheared, scaled to fit, placed in the margins."""
  H, W = float(height), float(width)
  (bx0, bx1, by0, by1), (line_x0, line_x1, line_y0, line_y1) = _line_box(g, p, lay, crop_box)
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
  scale = p["font_px"] / g.pixel_size
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


def warp(canvas, transform, canvas_w, cell_h: int, height: int, width: int):
  """Samples each canvas [B, Wc, cell_h] (x-major) at every output pixel through the inverse affine (bilinear)."""
  B = tf.shape(canvas[0])[0]
  Wc, gh = canvas_w, cell_h
  a_mat, center, t = transform
  det = a_mat[:, 0, 0] * a_mat[:, 1, 1] - a_mat[:, 0, 1] * a_mat[:, 1, 0]
  inv = tf.stack([a_mat[:, 1, 1], -a_mat[:, 0, 1], -a_mat[:, 1, 0], a_mat[:, 0, 0]], axis=1)
  inv = inv / det[:, None]
  u = tf.range(width, dtype=tf.float32)[None, None, :] + 0.5 - t[:, 0, None, None]
  v = tf.range(height, dtype=tf.float32)[None, :, None] + 0.5 - t[:, 1, None, None]
  c = lambda k: inv[:, k, None, None]
  xs = c(0) * u + c(1) * v + (center[:, 0, None, None] - 0.5)
  ys = c(2) * u + c(3) * v + (center[:, 1, None, None] - 0.5)
  x0f, y0f = tf.floor(xs), tf.floor(ys)
  fx, fy = xs - x0f, ys - y0f
  x0 = tf.cast(tf.clip_by_value(x0f, -2.0, tf.cast(Wc, tf.float32) + 1.0), tf.int32)
  y0 = tf.cast(tf.clip_by_value(y0f, -2.0, gh + 1.0), tf.int32)
  zero = tf.zeros([1])
  chan = [ops.barrier(tf.concat([tf.reshape(c, [-1]), zero], 0)) for c in canvas]
  zero_idx = tf.shape(chan[0])[0] - 1
  bofs = (tf.range(B) * (Wc * gh))[:, None, None]
  outs = [0.0] * len(chan)
  for dy in (0, 1):
    for dx in (0, 1):
      yy, xx = y0 + dy, x0 + dx
      ok = (xx >= 0) & (xx < Wc) & (yy >= 0) & (yy < gh)
      idx = ops.barrier(tf.where(ok, bofs + xx * gh + yy, zero_idx))
      w = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy)
      for k in range(len(chan)):
        outs[k] = outs[k] + w * tf.gather(chan[k], idx)
  return outs


def _through(transform, corners, valid):
  a_mat, center, t = transform
  q = tf.einsum("bij,blkj->blki", a_mat, corners - center[:, None, None, :]) + t[:, None, None, :]
  return tf.where(valid[..., None, None], q, 0.0)


def _corners(x0, y0, x1, y1):
  return tf.stack([tf.stack([x0, y0], -1), tf.stack([x1, y0], -1), tf.stack([x1, y1], -1),
                   tf.stack([x0, y1], -1)], axis=2)  # [B, L, 4, 2]


def letter_geometry(g: layout_lib.Glyphs, lay: dict, transform, height: int, width: int):
  """Each letter's ink quad [B, L, 4, 2], its normalized box [B, L, 4] and its layout cell [B, L, 4, 2]."""
  fk = lay["fk"]
  x0 = tf.cast(lay["left"], tf.float32)
  x1 = x0 + tf.cast(lay["width"], tf.float32)
  y0 = tf.gather_nd(g.ink_top, fk)
  y1 = tf.gather_nd(g.ink_bottom, fk)
  blank = y1 <= y0
  corners = _corners(x0, y0, x1, y1)
  mid = tf.stack([(x0 + x1) / 2, (y0 + y1) / 2], -1)[:, :, None, :]
  corners = tf.where(blank[..., None, None], tf.broadcast_to(mid, tf.shape(corners)), corners)
  q = _through(transform, corners, lay["valid"])
  # Layout cells: pen to pen + advance, the atlas line box (all cell rows) tall.
  c0 = tf.cast(lay["pen"], tf.float32)
  c1 = c0 + tf.maximum(lay["advance"], 1.0)
  top = tf.zeros_like(c0)
  bottom = tf.fill(tf.shape(c0), float(g.cell_h))
  cells = _through(transform, _corners(c0, top, c1, bottom), lay["valid"])
  lo = tf.reduce_min(q, axis=2)
  hi = tf.reduce_max(q, axis=2)
  size = tf.constant([width, height], tf.float32)
  lo, hi = tf.clip_by_value(lo / size, 0.0, 1.0), tf.clip_by_value(hi / size, 0.0, 1.0)
  boxes = tf.stack([lo[..., 1], lo[..., 0], hi[..., 1], hi[..., 0]], axis=-1)
  boxes = tf.where(lay["valid"][..., None], boxes, 0.0)
  return q, boxes, cells

r"""Correctness of generated samples, by measurement over many samples per config.

  python benchmarks/correctness.py                      # configs/tiny.py, default.py, seed.py
  python benchmarks/correctness.py --config=configs/seed.py --samples=1000
  python benchmarks/correctness.py --config=configs/tiny.py --config=configs/default.py --worst=10

For each config, samples 0..N-1 of the training stream (data.seed) are made in
batches, and one line is printed with the figures below; a PASS/FAIL summary
closes the run. Nothing here reads the generator's internals: samples come from
``Generator.sample_params`` and ``Generator.render``, and letters are rendered
alone by a second Generator (see "ink" below).

ink (each letter's clean-target ink lies inside its quad)
  Every letter is rendered alone, with the same layout, affine and quads: a
  twin generator's charset is followed by an inkless copy of every character
  (same advance, bearing and ink box, empty bitmap), and its labels point the
  other letters at their copies. To keep this affordable, letters whose slots
  are congruent modulo ``G`` (``--groups``, default ``2 * max_overlap + 1``)
  are inked together in one render: with at most ``max_overlap`` consecutive
  letters sharing a canvas column, such letters are a full letter apart, so
  the bilinear warp never mixes them, and each ink pixel of a group render is
  attributed to the nearest quad of the group (distance 0 inside).
  ``--groups`` >= ``max_length`` renders every letter on its own. The twin
  generator has a grey image and the degradations that a probability or a
  weight switches off disabled (they do not touch clean or quads); its
  quads must equal the real ones and its letters, put together, must rebuild
  the real clean target (max of parts <= clean ink <= sum of parts), which is
  checked on every sample ("alone ok").

  Ink is coverage-weighted: a pixel's ink is ``1 - clean``. A pixel counts as
  inside a quad when its centre (x + 0.5, y + 0.5) is within ``--tolerance``
  (1 px) of the quad (the quad dilated by 1 px; quad corners are pixel-edge
  coordinates). Per letter, ``frac = ink inside its dilated quad / its ink``;
  reported: the share of letters with ``frac >= 0.99``, the mean and the
  minimum ``frac``. ``union``: of all the clean-target ink of all samples, the
  share lying inside the union of the dilated quads (no per-letter renders
  involved), and the worst sample. Blank glyphs (zero-area quads) own no ink
  and are left out.

angle
  ``ctr4`` / ``ctr8``: for samples with >= 4 (>= 8) letters with ink, the
  least-squares line through the quad centres, ``-degrees(atan(slope))``
  (y points down, the angle is counter-clockwise as seen), against the
  recorded angle: mean |difference|, 99th percentile, share within 0.5 deg.
  This line is not the text's baseline: a quad is a letter's ink box, and the
  ink of different glyphs is centred at different heights. In the shipped
  atlas, ink centres sit on average 0.15 em above the baseline for 'g p q y',
  0.25 em for x-height letters, 0.34-0.36 em for capitals, digits and
  ascenders. A 4-letter string spans about 2 em, so 'yj3k' climbs 0.2 em and
  its centre line is tilted by ~6-9 degrees with perfectly placed quads. The
  error shrinks with length (mean |error| about 1.7 deg at 4-5 letters,
  0.5-0.7 at 8-11, 0.14 at 17-32, 0.05 at 33-64), so ``ctr4`` mostly measures
  the text, not the geometry; it is reported as measured, with ``ctr8``.
  ``cell4``: the same fit through the centres of the letters' layout cells
  (``letter_cells``: pen to pen + advance, the atlas line box tall, through
  the same affine), which sit on the text line whatever the glyphs: the
  share within 0.5 deg and the max |difference|. This is the "line through
  letter centres" criterion.
  Two figures that test the geometry itself: ``edge``, per letter the
  direction of the quad's TL -> TR edge (the rotated x axis, whatever the
  shear), against the angle (max |difference|); ``base``, over the ``ctr4``
  samples, the line fitted through each letter's baseline point (on the
  quad's left edge, at the atlas baseline row of the letter's ink box) against
  the angle (max |difference|). The sample's font is not part of the sample:
  it is taken as the atlas font whose ink boxes best explain the quads' sizes
  and heights across the line (``font rms``: the worst rms residual of that
  match over the ``ctr4`` samples, px; the font names printed by ``--worst``
  come from the same match). Both angles should be ~0.

count
  Per sample: ``label_length`` == number of true ``letter_mask`` slots ==
  ``len(text)``, ``labels`` spell ``text`` and are 0 past the length, unused
  quad slots are zero; every corner of every letter's quad lies in
  ``[0, W] x [0, H]`` (``margin``: the smallest distance of a corner to the
  image border, negative when outside).

determinism
  16 of the indices (``--determinism_samples``) are made again in a different
  batch composition (reversed, interleaved with as many other indices), and
  every field is compared byte for byte with the first run: ``same-size``,
  through ``input_pipeline.sample_dataset`` in batches of the run's size;
  ``batch32`` (twice the count), with ``Generator.generate`` as one batch (the
  per-replica batch changes with the number of replicas).

Criteria (PASS/FAIL): ink, every letter ``frac >= 0.99`` and ``union >= 0.99``
and the alone renders consistent; cell4, every sample within 0.5 deg; edge and
base, every letter / sample within 0.5 deg; count, every sample; determinism
(same-size) and determinism_one_batch (batch32), every sample identical. Times: ``gen`` is
the generation of the samples themselves (compilation included), ``total``
the whole measurement of that config. The exit status is 1 if any check fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time

import ml_collections
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ("configs/tiny.py", "configs/default.py", "configs/seed.py")
INK_EPS = 1e-6  # coverage below this is no ink (float noise of the warp)
TARGET_FRAC = 0.99
TARGET_DEG = 0.5


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", action="append", default=None,
                 help="config file (repeatable, or comma-separated); default: " + ", ".join(SHIPPED))
  p.add_argument("--samples", type=int, default=1000, help="samples per config")
  p.add_argument("--batch", type=int, default=0,
                 help="batch size; 0: 16, or 8 for images of more than 100k values")
  p.add_argument("--groups", type=int, default=0,
                 help="letter groups rendered alone per sample; 0: 2 * max_overlap + 1")
  p.add_argument("--tolerance", type=float, default=1.0, help="quad dilation in px")
  p.add_argument("--threads", type=int, default=1, help="TensorFlow intra- and inter-op threads")
  p.add_argument("--determinism_samples", type=int, default=16,
                 help="indices made again in another batch composition")
  p.add_argument("--worst", type=int, default=0, help="list the K worst letters and samples per config")
  args = p.parse_args(argv)
  configs = []
  for item in args.config or SHIPPED:
    configs.extend(c for c in item.split(",") if c)
  args.config = configs
  if args.samples < 1:
    p.error(f"--samples={args.samples}: must be >= 1")
  return args


def load_config(path: str):
  """get_config() of a config file, looked up from the working directory, then the repo root."""
  if not os.path.isfile(path) and os.path.isfile(os.path.join(ROOT, path)):
    path = os.path.join(ROOT, path)
  if not os.path.isfile(path):
    raise SystemExit(f"--config={path}: no such file")
  name = "correctness_config_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


# ---------------------------------------------------------------- geometry

def quad_area(quads: np.ndarray) -> np.ndarray:
  """Shoelace area of quads [..., 4, 2]."""
  x, y = quads[..., 0], quads[..., 1]
  return 0.5 * np.abs(np.sum(x * np.roll(y, -1, -1) - np.roll(x, -1, -1) * y, axis=-1))


def quad_distance(points: np.ndarray, quads: np.ndarray) -> np.ndarray:
  """Distance [N, Q] from points [N, 2] to convex quads [Q, 4, 2]; 0 inside or on the border."""
  p = points[:, None, None, :]
  a = quads[None]
  ab = np.roll(quads, -1, axis=1)[None] - a
  ap = p - a
  cross = ab[..., 0] * ap[..., 1] - ab[..., 1] * ap[..., 0]
  inside = np.all(cross >= 0, axis=-1) | np.all(cross <= 0, axis=-1)
  t = np.clip(np.sum(ap * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
  edge = np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(axis=-1)
  return np.where(inside, 0.0, edge)


def ink_pixels(ink: np.ndarray):
  """(points [N, 2] of pixel centres, weights [N]) of the pixels of `ink` [H, W] with ink."""
  ys, xs = np.nonzero(ink > INK_EPS)
  return np.stack([xs + 0.5, ys + 0.5], axis=1), ink[ys, xs].astype(np.float64)


def within_union(points: np.ndarray, quads: np.ndarray, tol: float) -> np.ndarray:
  """Which points lie within `tol` of at least one quad (bounding-box prefilter per quad)."""
  hit = np.zeros(len(points), bool)
  for q in quads:
    lo, hi = q.min(axis=0) - tol, q.max(axis=0) + tol
    sel = np.flatnonzero(~hit & np.all(points >= lo, axis=1) & np.all(points <= hi, axis=1))
    if len(sel):
      hit[sel] = quad_distance(points[sel], q[None])[:, 0] <= tol
  return hit


def line_angle(points: np.ndarray) -> float:
  """Degrees, counter-clockwise as seen, of the least-squares line through (x, y) points."""
  slope = np.polyfit(points[:, 0], points[:, 1], 1)[0]
  return -math.degrees(math.atan(slope))


# ------------------------------------------------------------ twin renders

def twin_generator(gen, synth):
  """A grey Generator on the inkless twins of its atlas (ocr_tf.atlas.inkless_twins), and the twins' id offset.

  The degradations that are switched by a probability or a weight are off:
  the clean target and the quads do not depend on them (checked: the quads
  must come out equal).
  """
  from ocr_tf import atlas as atlas_lib  # pylint: disable=import-outside-toplevel
  atlas, k = atlas_lib.inkless_twins(gen.atlas)
  d = ml_collections.ConfigDict(gen.config.to_dict())
  d.charset = atlas.charset
  d.channels = 1
  d.grain = (0.0, 0.0)
  for field in ("morph_probability", "blur_probability", "illumination_probability",
                "downscale_probability", "jpeg_probability"):
    d[field] = 0.0
  return synth.Generator(d, atlas, gen.seed), k


def twin_params(params: dict, rows: np.ndarray, groups: np.ndarray, num_groups: int, offset: int) -> dict:
  """Params of samples `rows` with only the letters of slot group `groups` inked."""
  out = {k: v[rows] for k, v in params.items()}
  slots = np.arange(out["labels"].shape[1])[None, :]
  keep = (slots % num_groups) == groups[:, None]
  out["labels"] = np.where(keep, out["labels"], out["labels"] + offset).astype(np.int32)
  return out


def infer_font(gen, quads: np.ndarray, ids: np.ndarray) -> tuple[int, float]:
  """The font whose ink boxes best explain the quads: (font, rms residual in px).

  A quad's TL -> TR length is scale * ink width; its extent across that edge
  is scale * ink height, and the position of its TL corner across that edge is
  scale * ink top + a constant of the sample (shear changes neither). The
  scale and the constant are fitted per font by least squares.
  """
  box = gen.atlas.ink_boxes[:, ids].astype(np.float64)  # [F, n, 4] top, left, bottom, right
  w_atlas, h_atlas, top_atlas = box[..., 3] - box[..., 1], box[..., 2] - box[..., 0], box[..., 0]
  edge = quads[:, 1] - quads[:, 0]
  w_quad = np.linalg.norm(edge, axis=1)
  u = edge / np.maximum(w_quad[:, None], 1e-12)
  across = lambda v: u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
  h_quad = np.abs(across(quads[:, 3] - quads[:, 0]))
  top_quad = across(quads[:, 0])
  top_quad = top_quad - top_quad.mean()
  top_c = top_atlas - top_atlas.mean(axis=1, keepdims=True)
  num = (w_atlas * w_quad + h_atlas * h_quad + top_c * top_quad).sum(1)
  scale = num / np.maximum((w_atlas ** 2 + h_atlas ** 2 + top_c ** 2).sum(1), 1e-12)
  s = scale[:, None]
  err = ((w_quad - s * w_atlas) ** 2 + (h_quad - s * h_atlas) ** 2 + (top_quad - s * top_c) ** 2).mean(1)
  f = int(np.argmin(err))
  return f, float(math.sqrt(err[f]))


# --------------------------------------------------------------- the run

class Stats:
  """Accumulates the figures of one config."""

  def __init__(self):
    self.fracs, self.letters = [], []  # per letter: frac; (index, slot, char)
    self.inkless_letters = 0
    self.orphan_ink = 0.0
    self.union_in = self.union_all = 0.0
    self.union_worst = (1.0, -1)
    self.alone_excess = 0.0  # max over pixels of (max of parts - clean ink) and (clean ink - sum of parts)
    self.twin_quads_differ = 0
    self.ctr = []  # (num letters, error deg, index)
    self.cell = []  # the same through the layout-cell centres
    self.base = []  # (error deg, index)
    self.font_rms = 0.0  # worst rms residual of the inferred font
    self.fonts = {}  # index -> inferred font
    self.edge = []  # per letter error deg
    self.count_bad = []  # (index, why)
    self.margin = math.inf
    self.samples = 0


def to_numpy(batch: dict) -> dict:
  return {k: np.asarray(v) for k, v in batch.items()}


def check_counts(st: Stats, gen, b: dict, i: int) -> None:
  n = int(b["label_length"][i])
  idx = int(b["index"][i])
  text = b["text"][i].decode("utf-8")
  mask = b["letter_mask"][i]
  labels = b["labels"][i]
  quads = b["letter_quads"][i]
  why = []
  if int(mask.sum()) != n or not mask[:n].all():
    why.append(f"mask has {int(mask.sum())} slots, label_length {n}")
  if len(text) != n:
    why.append(f"len(text)={len(text)}, label_length {n}")
  spelled = "".join(gen.config.charset[j] for j in labels[:n] if 0 <= j < len(gen.config.charset))
  if spelled != text:
    why.append(f"labels spell {spelled!r}, text {text!r}")
  if labels[n:].any():
    why.append("labels past label_length are not 0")
  if quads[n:].any():
    why.append("unused quad slots are not zero")
  q = quads[:n].astype(np.float64)
  if not np.isfinite(q).all():
    why.append("non-finite quad corners")
  else:
    margin = np.concatenate([q[..., 0].ravel(), gen.W - q[..., 0].ravel(),
                             q[..., 1].ravel(), gen.H - q[..., 1].ravel()]).min() if n else math.inf
    st.margin = min(st.margin, float(margin))
    if margin < 0:
      why.append(f"a quad corner is {-margin:.3f} px outside the image")
  if why:
    st.count_bad.append((idx, "; ".join(why)))


def check_angles(st: Stats, gen, b: dict, i: int) -> None:
  n = int(b["label_length"][i])
  idx = int(b["index"][i])
  q = b["letter_quads"][i, :n].astype(np.float64)
  angle = float(b["angle"][i])
  solid = quad_area(q) > 1e-6
  if not solid.any():
    return
  qs = q[solid]
  ids = b["labels"][i, :n][solid]
  font, rms = infer_font(gen, qs, ids)
  st.fonts[idx] = font
  d = qs[:, 1] - qs[:, 0]
  st.edge.extend((-np.degrees(np.arctan2(d[:, 1], d[:, 0])) - angle).tolist())
  if len(qs) < 4:
    return
  st.font_rms = max(st.font_rms, rms)
  st.ctr.append((len(qs), line_angle(qs.mean(axis=1)) - angle, idx))
  cells = b["letter_cells"][i, :n].astype(np.float64)
  st.cell.append((n, line_angle(cells.mean(axis=1)) - angle, idx))
  box = gen.atlas.ink_boxes[font, ids].astype(np.float64)  # top, left, bottom, right
  t = (gen.atlas.baseline - box[:, 0]) / (box[:, 2] - box[:, 0])
  base = qs[:, 0] + (qs[:, 3] - qs[:, 0]) * t[:, None]
  st.base.append((line_angle(base) - angle, idx))


def check_union(st: Stats, b: dict, i: int, tol: float) -> None:
  n = int(b["label_length"][i])
  q = b["letter_quads"][i, :n].astype(np.float64)
  q = q[quad_area(q) > 1e-6]
  points, w = ink_pixels(1.0 - b["clean"][i, ..., 0])
  if not len(w):
    return
  inside = float(w[within_union(points, q, tol)].sum())
  st.union_in += inside
  st.union_all += float(w.sum())
  share = inside / float(w.sum())
  if share < st.union_worst[0]:
    st.union_worst = (share, int(b["index"][i]))


def check_letters(st: Stats, gen, twin, offset: int, num_groups: int, b: dict, params: dict,
                  real: int, batch: int, tol: float) -> None:
  """Renders the letters of the first `real` samples of a batch in groups and attributes their ink."""
  lengths = params["label_length"][:real]
  rows = np.array([i for i in range(real) for _ in range(min(int(lengths[i]), num_groups))], np.int64)
  groups = np.array([g for i in range(real) for g in range(min(int(lengths[i]), num_groups))], np.int64)
  full_ink = 1.0 - b["clean"][:real, ..., 0].astype(np.float64)
  parts_sum = np.zeros_like(full_ink)
  parts_max = np.zeros_like(full_ink)
  inside = np.zeros((real, gen.L))
  total = np.zeros((real, gen.L))
  for start in range(0, len(rows), batch):
    sel = np.minimum(np.arange(start, start + batch), len(rows) - 1)
    out = to_numpy(twin.render_batch(twin_params(params, rows[sel], groups[sel], num_groups, offset)))
    for k in range(min(batch, len(rows) - start)):
      i, g = int(rows[start + k]), int(groups[start + k])
      n = int(lengths[i])
      quads = b["letter_quads"][i]
      if not np.array_equal(out["letter_quads"][k], quads):
        st.twin_quads_differ += 1
      ink = 1.0 - out["clean"][k, ..., 0].astype(np.float64)
      parts_sum[i] += ink
      np.maximum(parts_max[i], ink, out=parts_max[i])
      members = [l for l in range(g, n, num_groups) if quad_area(quads[l].astype(np.float64)) > 1e-6]
      points, w = ink_pixels(ink)
      if not len(w):
        continue
      if not members:
        st.orphan_ink += float(w.sum())
        continue
      dist = quad_distance(points, quads[members].astype(np.float64))
      owner = np.argmin(dist, axis=1)
      near = dist[np.arange(len(points)), owner] <= tol
      for j, l in enumerate(members):
        mine = owner == j
        total[i, l] += w[mine].sum()
        inside[i, l] += w[mine & near].sum()
  st.alone_excess = max(st.alone_excess, float((parts_max - full_ink).max()),
                        float((full_ink - parts_sum).max()))
  for i in range(real):
    n = int(lengths[i])
    quads = b["letter_quads"][i, :n].astype(np.float64)
    for l in range(n):
      if quad_area(quads[l]) <= 1e-6:
        continue
      if total[i, l] <= 0:
        st.inkless_letters += 1
        continue
      st.fracs.append(inside[i, l] / total[i, l])
      st.letters.append((int(b["index"][i]), l, gen.config.charset[params["labels"][i, l]]))


def determinism(gen, input_pipeline, tf, reference: dict, num_samples: int, batch: int) -> dict:
  """Remakes the reference indices, reversed and interleaved with other indices, two ways.

  ``same``: through input_pipeline.sample_dataset (parallel map) in batches of
  the run's size; ``one``: with Generator.generate, as one batch of all of them.
  Returns, per way, (identical samples, compared samples, [(index, differing keys)]).
  """
  chosen = sorted(reference)
  order = []
  for k, idx in enumerate(reversed(chosen)):
    order += [idx, num_samples + 10**6 + 7 * k]
  padded = order + [num_samples + 2 * 10**6 + j for j in range(-len(order) % batch)]
  ds = input_pipeline.sample_dataset(gen, tf.data.Dataset.from_tensor_slices(
      tf.constant(padded, tf.int64)), batch)
  ways = {"same": [to_numpy(out) for out in ds], "one": [to_numpy(gen.generate(order))]}
  result = {}
  for way, outs in ways.items():
    got = {}
    for out in outs:
      for k, idx in enumerate(out["index"].tolist()):
        if idx in reference:
          got[idx] = {key: v[k] for key, v in out.items()}
    same, bad = 0, []
    for idx in chosen:
      diff = [key for key, v in reference[idx].items()
              if idx not in got or key not in got[idx]
              or np.asarray(v).tobytes() != np.asarray(got[idx][key]).tobytes()]
      if diff:
        bad.append((idx, diff))
      else:
        same += 1
    result[way] = (same, len(chosen), bad)
  return result


def run_config(path: str, args, tf, input_pipeline, synth) -> dict:
  t_start = time.time()
  config = load_config(path)
  gen = input_pipeline.make_generator(config.data)
  n = args.samples
  batch = args.batch or (8 if gen.H * gen.W * gen.C > 100_000 else 16)
  num_groups = args.groups or 2 * int(config.data.max_overlap) + 1
  num_groups = max(1, min(num_groups, gen.L))
  twin, offset = twin_generator(gen, synth)
  rng = np.random.default_rng(0)
  chosen = set(rng.choice(n, size=min(args.determinism_samples, n), replace=False).tolist())
  reference = {}
  st = Stats()
  padded = -(-n // batch) * batch
  ds = tf.data.Dataset.range(padded).map(gen.sample_params).batch(batch)
  gen_time = 0.0
  t0 = time.time()
  for start, params_t in zip(range(0, padded, batch), ds):
    b = to_numpy(gen.render_batch(params_t))
    gen_time += time.time() - t0
    params = to_numpy(params_t)
    real = min(batch, n - start)
    for i in range(real):
      idx = int(b["index"][i])
      if idx in chosen:
        reference[idx] = {key: v[i] for key, v in b.items()}
      check_counts(st, gen, b, i)
      check_angles(st, gen, b, i)
      check_union(st, b, i, args.tolerance)
    check_letters(st, gen, twin, offset, num_groups, b, params, real, batch, args.tolerance)
    st.samples += real
    t0 = time.time()
  det = determinism(gen, input_pipeline, tf, reference, n, batch)
  total_time = time.time() - t_start
  return {"name": os.path.splitext(os.path.basename(path))[0], "gen": gen, "stats": st,
          "batch": batch, "groups": num_groups, "det": det,
          "gen_time": gen_time, "total_time": total_time}


def angle_figures(errors) -> tuple[float, float, float]:
  e = np.abs(np.asarray(errors, np.float64))
  if not len(e):
    return math.nan, math.nan, math.nan
  return float(e.mean()), float(np.percentile(e, 99)), float(np.mean(e <= TARGET_DEG))


def report(r: dict, args) -> dict:
  st, gen = r["stats"], r["gen"]
  fr = np.asarray(st.fracs) if st.fracs else np.full([1], math.nan)
  ok_share = float(np.mean(fr >= TARGET_FRAC)) if st.fracs else math.nan
  union = st.union_in / st.union_all if st.union_all else math.nan
  ctr4 = [e for k, e, _ in st.ctr]
  ctr8 = [e for k, e, _ in st.ctr if k >= 8]
  c4, c8 = angle_figures(ctr4), angle_figures(ctr8)
  cell4 = [e for _, e, _ in st.cell]
  k4 = angle_figures(cell4)
  cell_max = float(np.abs(cell4).max()) if cell4 else math.nan
  edge_max = float(np.abs(st.edge).max()) if st.edge else math.nan
  base_max = float(np.abs([e for e, _ in st.base]).max()) if st.base else math.nan
  det = r["det"]
  n = st.samples
  line = (
      f"{r['name']}: n={n} batch={r['batch']} groups={r['groups']} | "
      f"ink letters>=99%: {ok_share:.2%} of {len(st.fracs)} mean {fr.mean():.6f} min {fr.min():.6f} "
      f"union {union:.6f} (worst sample {st.union_worst[0]:.6f}) "
      f"alone {'ok' if st.alone_excess <= 1e-4 and not st.twin_quads_differ else 'BAD'} | "
      f"angle cell4 n={len(cell4)} within0.5 {k4[2]:.2%} max {cell_max:.2e}; "
      f"ink ctr4 n={len(ctr4)} mean {c4[0]:.3f} p99 {c4[1]:.3f} within0.5 {c4[2]:.2%}; "
      f"ctr8 n={len(ctr8)} mean {c8[0]:.3f} p99 {c8[1]:.3f} within0.5 {c8[2]:.2%}; "
      f"edge max {edge_max:.2e}; base max {base_max:.2e} (font rms {st.font_rms:.2f}px) | "
      f"count ok {n - len(st.count_bad)}/{n} margin {st.margin:.2f}px | "
      f"determinism same-size {det['same'][0]}/{det['same'][1]} "
      f"batch{2 * det['one'][1]} {det['one'][0]}/{det['one'][1]} | "
      f"gen {r['gen_time']:.1f}s ({n / r['gen_time']:.1f}/s) total {r['total_time']:.1f}s")
  print(line, flush=True)
  if st.inkless_letters or st.orphan_ink or st.twin_quads_differ or st.alone_excess > 1e-4:
    print(f"  {r['name']}: letters without ink {st.inkless_letters}, ink of blank letters "
          f"{st.orphan_ink:.1f}, twin quads differing {st.twin_quads_differ}, "
          f"alone-render mismatch {st.alone_excess:.2e}")
  for idx, why in st.count_bad[:10]:
    print(f"  {r['name']}: count sample {idx}: {why}")
  for way, (_, _, bad) in det.items():
    for idx, keys in bad:
      print(f"  {r['name']}: determinism ({way}) sample {idx}: {', '.join(keys)} differ")
  if args.worst:
    names = gen.atlas.font_names
    for j in np.argsort(fr)[:min(args.worst, len(st.fracs))]:
      idx, l, ch = st.letters[j]
      font = names[st.fonts[idx]] if idx in st.fonts else "?"
      print(f"  {r['name']}: worst letter sample {idx} slot {l} {ch!r} ({font}): frac {fr[j]:.4f}")
    for k, e, idx in sorted(st.ctr, key=lambda t: -abs(t[1]))[:args.worst]:
      print(f"  {r['name']}: worst ctr fit sample {idx} ({k} letters): {e:+.3f} deg")
  checks = {
      "ink": bool(st.fracs) and ok_share == 1.0 and union >= TARGET_FRAC and st.alone_excess <= 1e-4
             and not st.twin_quads_differ and not st.inkless_letters,
      "cell4": bool(cell4) and k4[2] == 1.0,
      "edge": bool(st.edge) and edge_max <= TARGET_DEG,
      "base": bool(st.base) and base_max <= TARGET_DEG,
      "count": not st.count_bad,
      "determinism": det["same"][0] == det["same"][1],
      "determinism_one_batch": det["one"][0] == det["one"][1],
  }
  return checks


def main(argv=None):
  args = parse_args(argv)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf
  tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  tf.config.threading.set_inter_op_parallelism_threads(args.threads)
  from ocr_tf import input_pipeline, synth
  t0 = time.time()
  summary = []
  for path in args.config:
    r = run_config(path, args, tf, input_pipeline, synth)
    summary.append((r["name"], report(r, args)))
  print(f"time {time.time() - t0:.1f}s, {args.threads} thread(s)")
  failed = []
  for name, checks in summary:
    print(f"{name}: " + " ".join(f"{k}={'PASS' if v else 'FAIL'}" for k, v in checks.items()))
    failed += [f"{name}/{k}" for k, v in checks.items() if not v]
  print("PASS" if not failed else "FAIL: " + ", ".join(failed))
  return 0 if not failed else 1


if __name__ == "__main__":
  sys.exit(main())

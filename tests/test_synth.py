"""The sample generator: the contract, geometry by measurement, corpus text, in-graph helpers."""

from __future__ import annotations

import math
import types

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

import configs.seed
from conftest import batched_params, data_variant, to_numpy
from ocr_tf import atlas as atlas_lib
from ocr_tf import charset as charset_lib
from ocr_tf.synth import filters, noise, ops
from ocr_tf import synth
from ocr_tf.config import ConfigError

NUM_TINY = 200
NUM_SEED = 50
SEED_BATCH = 25
SEED_ALONE = 5
INK = 0.1  # a clean-target pixel with 1 - clean above this is ink
TOLERANCE_PX = 1.0

CONTRACT = {
    "image": (tf.float32, lambda g: [g.H, g.W, g.C]),
    "clean": (tf.float32, lambda g: [g.H, g.W, 1]),
    "text": (tf.string, lambda g: []),
    "labels": (tf.int32, lambda g: [g.L]),
    "label_length": (tf.int32, lambda g: []),
    "angle": (tf.float32, lambda g: []),
    "letter_quads": (tf.float32, lambda g: [g.L, 4, 2]),
    "letter_boxes": (tf.float32, lambda g: [g.L, 4]),
    "letter_cells": (tf.float32, lambda g: [g.L, 4, 2]),
    "letter_mask": (tf.bool, lambda g: [g.L]),
    "index": (tf.int64, lambda g: []),
}


# ----------------------------------------------------------------- helpers

def ink_points(clean: np.ndarray) -> np.ndarray:
  """(x, y) centres of the ink pixels of one clean target [H, W, 1] (pixel (i, j) covers
  [j, j+1] x [i, i+1])."""
  ys, xs = np.nonzero(1.0 - clean[..., 0] > INK)
  return np.stack([xs + 0.5, ys + 0.5], axis=1)


def quad_distance(points: np.ndarray, quad: np.ndarray) -> np.ndarray:
  """Euclidean distance from points [N, 2] to a convex quad [4, 2] (0 inside or on it)."""
  p = points[:, None, :]
  a = quad[None, :, :]
  ab = np.roll(quad, -1, axis=0)[None, :, :] - a
  ap = p - a
  cross = ab[..., 0] * ap[..., 1] - ab[..., 1] * ap[..., 0]
  inside = np.all(cross >= 0, axis=1) | np.all(cross <= 0, axis=1)
  t = np.clip(np.sum(ap * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
  edge = np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(axis=1)
  return np.where(inside, 0.0, edge)


def fraction_near(points: np.ndarray, quads: np.ndarray) -> float:
  """Share of `points` within TOLERANCE_PX of at least one of `quads` [n, 4, 2]."""
  if len(points) == 0:
    return 1.0
  dist = np.min([quad_distance(points, q) for q in quads], axis=0)
  return float(np.mean(dist <= TOLERANCE_PX))


def twin_generator(generator: synth.Generator) -> tuple[synth.Generator, int]:
  """The generator on atlas_lib.inkless_twins of its atlas; returns it and the id offset of the twins."""
  twin_atlas, k = atlas_lib.inkless_twins(generator.atlas)
  config = ml_collections.ConfigDict(generator.config.to_dict())
  config.charset = twin_atlas.charset
  return synth.Generator(config, twin_atlas, generator.seed), k


def render_batches(generator: synth.Generator, params: dict, batch: int):
  """Renders numpy params in fixed-size batches (the last one padded, so one compiled
  shape serves all); yields each batch's outputs without the padding."""
  n = len(params["index"])
  for start in range(0, n, batch):
    sel = np.minimum(np.arange(start, start + batch), n - 1)
    out = to_numpy(generator.render_batch({k: v[sel] for k, v in params.items()}))
    yield {k: v[:min(batch, n - start)] for k, v in out.items()}


def render_all(generator: synth.Generator, params: dict, batch: int) -> dict:
  outs = list(render_batches(generator, params, batch))
  return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def render_letters_alone(twins: synth.Generator, offset: int, params: dict, batch: int):
  """Yields (sample, slot, clean target with only that letter inked) for every letter."""
  slots = [(i, l) for i in range(len(params["index"])) for l in range(params["label_length"][i])]
  rows = np.array([i for i, _ in slots])
  one = {k: v[rows] for k, v in params.items()}
  slot_ids = np.arange(one["labels"].shape[1])[None, :]
  keep = slot_ids == np.array([l for _, l in slots])[:, None]
  one["labels"] = np.where(keep, one["labels"], one["labels"] + offset).astype(np.int32)
  cleans = (c for out in render_batches(twins, one, batch) for c in out["clean"])
  for (i, l), clean in zip(slots, cleans):
    yield i, l, clean


def fitted_angle(quads: np.ndarray) -> float:
  """Degrees (counter-clockwise as seen) of the least-squares line through the quad centres."""
  centers = quads.mean(axis=1)
  slope = np.polyfit(centers[:, 0], centers[:, 1], 1)[0]
  return -math.degrees(math.atan(slope))


def edge_angles(quads: np.ndarray) -> np.ndarray:
  """Degrees (counter-clockwise as seen) of each quad's TL -> TR edge."""
  d = quads[:, 1] - quads[:, 0]
  return -np.degrees(np.arctan2(d[:, 1], d[:, 0]))


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def tiny_params(tiny_gen):
  return batched_params(tiny_gen, range(NUM_TINY))


@pytest.fixture(scope="module")
def tiny_batch(tiny_gen, tiny_params):
  return to_numpy(tiny_gen.render_batch(tiny_params))


@pytest.fixture(scope="module")
def tiny_twins(tiny_gen):
  return twin_generator(tiny_gen)


@pytest.fixture(scope="module")
def seed_setup(atlas):
  """configs/seed.py: its params for NUM_SEED samples, and a twin-charset generator to render them."""
  gen = synth.Generator(configs.seed.get_config().data, atlas, 0)
  params = batched_params(gen, range(NUM_SEED))
  twins, offset = twin_generator(gen)
  return types.SimpleNamespace(gen=gen, params=params, twins=twins, offset=offset,
                               full=render_all(twins, params, SEED_BATCH))


# ---------------------------------------------------------------- contract

def check_contract(gen: synth.Generator, batch: dict, indices) -> None:
  assert set(batch) == set(CONTRACT)
  n = len(indices)
  for key, (dtype, shape) in CONTRACT.items():
    assert batch[key].dtype == dtype, key
    assert batch[key].shape.as_list() == [n] + shape(gen), key
  b = to_numpy(batch)
  np.testing.assert_array_equal(b["index"], indices)
  for key in ("image", "clean"):
    assert b[key].min() >= 0.0 and b[key].max() <= 1.0, key
  check_labels(gen, b)
  check_quads_and_boxes(gen, b)


def check_labels(gen: synth.Generator, b: dict) -> None:
  chars = charset_lib.Charset(gen.config.charset)
  for i in range(len(b["text"])):
    text = b["text"][i].decode("utf-8")
    n = int(b["label_length"][i])
    assert n == len(text)
    c = gen.config
    shortest = min([c.min_length] + [c.short_length[0]] * (c.short_probability > 0)
                   + [c.digits_length[0]] * (c.digits_probability > 0)
                   + [1] * (c.get("frequent_probability", 0.0) > 0))  # a frequent word may be shorter
    assert shortest <= n <= gen.config.max_length
    assert chars.decode(b["labels"][i][:n]) == text
    assert not b["labels"][i][n:].any()
    if "letter_mask" in b:  # a rendered sample, not only its parameters
      np.testing.assert_array_equal(b["letter_mask"][i], np.arange(gen.L) < n)
      assert b["letter_mask"][i].sum() == n


def check_quads_and_boxes(gen: synth.Generator, b: dict) -> None:
  size = np.array([gen.W, gen.H], np.float32)
  for i in range(len(b["text"])):
    n = int(b["label_length"][i])
    quads, boxes = b["letter_quads"][i], b["letter_boxes"][i]
    assert not quads[n:].any() and not boxes[n:].any()
    lo = quads[:n].min(axis=1) / size
    hi = quads[:n].max(axis=1) / size
    expected = np.stack([lo[:, 1], lo[:, 0], hi[:, 1], hi[:, 0]], axis=1)
    np.testing.assert_allclose(boxes[:n], expected, atol=1e-5)
    assert (boxes[:n] >= 0).all() and (boxes[:n] <= 1).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_contract(channels, tiny_gen, tiny_rgb_gen):
  gen = tiny_gen if channels == 1 else tiny_rgb_gen
  indices = list(range(8))
  batch = gen.generate(indices)
  check_contract(gen, batch, indices)
  image = batch["image"].numpy()
  if channels == 3:
    assert np.abs(image[..., 0] - image[..., 1]).max() > 0.01, "colour images are all grey"


def test_labels_and_boxes_over_many_samples(tiny_gen, tiny_batch):
  check_labels(tiny_gen, tiny_batch)
  check_quads_and_boxes(tiny_gen, tiny_batch)
  lengths = set(tiny_batch["label_length"].tolist())
  assert lengths == set(range(tiny_gen.config.min_length, tiny_gen.config.max_length + 1))
  assert np.abs(tiny_batch["angle"]).max() <= tiny_gen.config.max_angle
  assert len(set(tiny_batch["text"].tolist())) > NUM_TINY * 0.8


def test_clean_is_dark_text_on_white(tiny_batch):
  clean = tiny_batch["clean"][..., 0]
  assert (np.median(clean.reshape(NUM_TINY, -1), axis=1) == 1.0).all()
  assert ((1.0 - clean) > 0.5).reshape(NUM_TINY, -1).any(axis=1).all(), "a sample has no solid ink"


def test_text_is_drawn_in_image_not_only_clean(tiny_batch):
  image = tiny_batch["image"][..., 0]
  ink = (1.0 - tiny_batch["clean"][..., 0]) > 0.5
  paper = tiny_batch["clean"][..., 0] == 1.0
  contrast = [abs(image[i][ink[i]].mean() - image[i][paper[i]].mean()) for i in range(NUM_TINY)]
  assert np.median(contrast) > 0.1


# ---------------------------------------------------------------- geometry

def check_quads_inside(batch: dict, h: int, w: int) -> None:
  for i in range(len(batch["label_length"])):
    q = batch["letter_quads"][i, :batch["label_length"][i]]
    assert (q[..., 0] >= 0).all() and (q[..., 0] <= w).all(), i
    assert (q[..., 1] >= 0).all() and (q[..., 1] <= h).all(), i


def test_tiny_quads_are_inside_the_image(tiny_gen, tiny_batch):
  check_quads_inside(tiny_batch, tiny_gen.H, tiny_gen.W)


def test_seed_quads_are_inside_the_image(seed_setup):
  check_quads_inside(seed_setup.full, seed_setup.gen.H, seed_setup.gen.W)


def test_quad_edges_follow_the_angle(tiny_batch):
  for i in range(NUM_TINY):
    q = tiny_batch["letter_quads"][i, :tiny_batch["label_length"][i]]
    np.testing.assert_allclose(edge_angles(q), tiny_batch["angle"][i], atol=0.01)
    # No shear in tiny: each quad is a rectangle (TL -> TR perpendicular to TL -> BL).
    top, left = q[:, 1] - q[:, 0], q[:, 3] - q[:, 0]
    cos = np.sum(top * left, -1) / (np.linalg.norm(top, axis=-1) * np.linalg.norm(left, axis=-1))
    assert np.abs(cos).max() < 1e-3


def test_twin_charset_renders_the_same_pixels(tiny_params, tiny_batch, tiny_twins):
  twins, _ = tiny_twins
  same = to_numpy(twins.render_batch(tiny_params))
  for key in ("image", "clean", "letter_quads", "letter_boxes"):
    np.testing.assert_array_equal(same[key], tiny_batch[key], err_msg=key)


def check_every_ink_pixel_is_in_a_quad(batch: dict) -> None:
  for i in range(len(batch["label_length"])):
    quads = batch["letter_quads"][i, :batch["label_length"][i]]
    share = fraction_near(ink_points(batch["clean"][i]), quads)
    assert share == 1.0, f"sample {i}: {1 - share:.2%} of ink is outside every quad"


def check_each_letter_alone(params: dict, full: dict, twins, offset: int, batch: int) -> None:
  full_ink = 1.0 - full["clean"][..., 0]
  parts, top, current = None, None, -1
  for i, l, clean in render_letters_alone(twins, offset, params, batch):
    if i != current:
      check_letters_make_up_sample(full_ink, current, parts, top)
      parts, top, current = np.zeros_like(full_ink[i]), np.zeros_like(full_ink[i]), i
    ink = 1.0 - clean[..., 0]
    points = ink_points(clean)
    assert len(points) > 0, f"sample {i} letter {l} left no ink"
    share = fraction_near(points, full["letter_quads"][i, l:l + 1])
    assert share >= 0.99, f"sample {i} letter {l}: only {share:.2%} of its ink inside its quad"
    parts += ink
    top = np.maximum(top, ink)
  check_letters_make_up_sample(full_ink, current, parts, top)
  assert current == len(full_ink) - 1


def check_letters_make_up_sample(full_ink, i, parts, top) -> None:
  """The letters rendered alone add up to the full sample: the layout did not move."""
  if i < 0:
    return
  assert (top <= full_ink[i] + 1e-5).all(), f"sample {i}: a letter alone has ink the sample lacks"
  assert (full_ink[i] <= parts + 1e-5).all(), f"sample {i}: the sample has ink no letter makes"


def test_tiny_ink_inside_quads(tiny_batch):
  check_every_ink_pixel_is_in_a_quad(tiny_batch)


def test_tiny_each_letter_inside_its_quad(tiny_params, tiny_batch, tiny_twins):
  twins, offset = tiny_twins
  check_each_letter_alone(tiny_params, tiny_batch, twins, offset, NUM_TINY)


def test_seed_ink_inside_quads(seed_setup):
  check_every_ink_pixel_is_in_a_quad(seed_setup.full)


def test_seed_each_letter_inside_its_quad(seed_setup):
  # Every letter of the first SEED_ALONE samples rendered alone (about 30 letters each, 1792 px wide);
  # benchmarks/correctness.py does this for 1000 samples.
  s = seed_setup
  params = {k: v[:SEED_ALONE] for k, v in s.params.items()}
  full = {k: v[:SEED_ALONE] for k, v in s.full.items()}
  check_each_letter_alone(params, full, s.twins, s.offset, SEED_BATCH)


def test_sheared_ink_inside_quads(atlas):
  gen = synth.Generator(data_variant(max_shear=20.0), atlas, 0)
  batch = to_numpy(gen.generate(list(range(64))))
  assert np.abs(batch["letter_quads"][:, 0, 3, 0] - batch["letter_quads"][:, 0, 0, 0]).max() > 1.0
  check_every_ink_pixel_is_in_a_quad(batch)


def test_shear_both_ways_or_right_only_on_some_samples(atlas):
  gen = synth.Generator(data_variant(max_shear=8.0), atlas, 0)
  both = np.asarray(gen.decode_params(batched_params(gen, range(400)))["shear"])
  assert both.min() < -7.0 and both.max() > 7.0 and (both != 0).all()
  d = data_variant(max_shear=8.0, shear_right_only=True, shear_probability=0.25)
  gen = synth.Generator(d, atlas, 0)
  right = np.asarray(gen.decode_params(batched_params(gen, range(400)))["shear"])
  assert right.min() == 0.0 and right.max() > 7.0 and right.max() <= 8.0
  assert 0.68 < np.mean(right == 0.0) < 0.82  # upright type
  upright = synth.Generator(data_variant(max_shear=8.0, shear_probability=0.0), atlas, 0)
  assert not np.asarray(upright.decode_params(batched_params(upright, range(50)))["shear"]).any()
  # The same draw decides: a sample sheared in both configs leans the same way in the second.
  sheared = right > 0
  assert np.array_equal(sheared, both < -8.0 + 16.0 * 0.25)


def test_letter_centres_line_up_with_the_angle(atlas):
  # Capitals without descenders have ink centred on one line in every font.
  d = data_variant(charset="ABCDEFGHIKLMNOPRSTUVWXYZ", min_length=8, max_length=8,
                   max_angle=10.0, max_shear=0.0)
  gen = synth.Generator(d, atlas, 0)
  b = to_numpy(gen.generate(list(range(NUM_TINY))))
  assert np.abs(b["angle"]).max() > 8.0
  errors = [fitted_angle(b["letter_quads"][i]) - b["angle"][i] for i in range(NUM_TINY)]
  assert np.abs(errors).max() < 0.5


def test_cell_centres_line_up_with_the_angle_for_every_string(tiny_batch):
  """Layout-cell centres lie on the text line: any 2+ letters give the recorded angle."""
  b = tiny_batch
  fits = [i for i in range(NUM_TINY) if b["label_length"][i] >= 2]
  assert len(fits) > NUM_TINY // 2
  errors = np.array([fitted_angle(b["letter_cells"][i, :b["label_length"][i]]) - b["angle"][i] for i in fits])
  assert np.abs(errors).max() < 0.01, np.abs(errors).max()
  for i in range(NUM_TINY):
    n = b["label_length"][i]
    cells, quads = b["letter_cells"][i], b["letter_quads"][i]
    assert not cells[n:].any()
    # Cells are parallelograms as tall as the atlas line: all the same height, rotated by the angle.
    heights = np.linalg.norm(cells[:n, 3] - cells[:n, 0], axis=-1)
    np.testing.assert_allclose(heights, heights[0], rtol=1e-4)
    top = cells[:n, 1] - cells[:n, 0]
    np.testing.assert_allclose(-np.degrees(np.arctan2(top[:, 1], top[:, 0])), b["angle"][i], atol=0.01)
    # A letter's ink box lies within its cell's height band (the cell spans the whole line box).
    up = np.array([math.sin(math.radians(b["angle"][i])), math.cos(math.radians(b["angle"][i]))])
    ink = quads[:n].reshape(-1, 2) @ up
    band = cells[:n].reshape(-1, 2) @ up
    assert ink.min() >= band.min() - 0.01 and ink.max() <= band.max() + 0.01


def test_seed_letter_centres_line_up_with_the_angle(seed_setup):
  full = seed_setup.full
  long_lines = [i for i in range(NUM_SEED) if full["label_length"][i] >= 16]
  assert len(long_lines) >= 20
  for i in long_lines:
    fit = fitted_angle(full["letter_quads"][i, :full["label_length"][i]])
    assert abs(fit - full["angle"][i]) < 0.5, (i, fit, full["angle"][i])


# ------------------------------------------------------------------ corpus

WORDS = "hello world CAT dog42 h\u00e9llo toolongword123 a-b x hello\n7\n"
KEPT = {"hello", "world", "CAT", "dog42", "x", "7"}


def test_corpus_words(atlas, tmp_path):
  path = tmp_path / "words.txt"
  path.write_text(WORDS, encoding="utf-8")
  gen = synth.Generator(data_variant(corpus=str(path), corpus_probability=1.0), atlas, 0)
  b = to_numpy(gen.generate(list(range(48))))
  texts = [t.decode("utf-8") for t in b["text"]]
  assert set(texts) <= KEPT
  assert len(set(texts)) >= 4
  check_labels(gen, b)


def test_corpus_capitals_and_capitalized(atlas, tmp_path):
  path = tmp_path / "words.txt"
  path.write_text("alpha beta gamma delta epsilon", encoding="utf-8")
  for changes, expect in (({"corpus_upper_probability": 1.0}, str.upper),
                          ({"corpus_title_probability": 1.0}, lambda w: w[0].upper() + w[1:])):
    gen = synth.Generator(data_variant(corpus=str(path), corpus_probability=1.0, **changes), atlas, 0)
    b = batched_params(gen, range(16))  # the strings are drawn with the parameters; render passes them on
    texts = [t.decode("utf-8") for t in b["text"]]
    assert all(t == expect(t.lower()) and t.lower() in "alpha beta gamma delta epsilon".split() for t in texts)
    check_labels(gen, b)


def test_short_strings_are_cut_words_or_short_random_strings(atlas, tmp_path):
  path = tmp_path / "words.txt"
  path.write_text("alphabet betatron gammaray", encoding="utf-8")
  words = "alphabet betatron gammaray".split()
  gen = synth.Generator(data_variant(corpus=str(path), corpus_probability=0.5, min_length=6, max_length=12,
                                     short_probability=1.0, short_length=(1, 3)), atlas, 0)
  b = batched_params(gen, range(48))
  texts = [t.decode("utf-8") for t in b["text"]]
  assert {len(t) for t in texts} == {1, 2, 3}, texts
  assert any(any(w.startswith(t) for w in words) and len(t) == 3 for t in texts)  # a word's first letters
  check_labels(gen, b)
  some = synth.Generator(data_variant(min_length=6, max_length=12, short_probability=0.5), atlas, 0)
  lengths = batched_params(some, range(64))["label_length"]
  assert 10 < (lengths <= 4).sum() < 54 and (lengths >= 6).sum() > 10


def test_italic_probability_sets_the_share_of_italic_fonts(atlas):
  decode = lambda gen, n: np.asarray(gen.decode_params(batched_params(gen, range(n)))["font"])
  uniform = synth.Generator(data_variant(), atlas, 0)
  italic = uniform.italic_fonts
  names = [atlas.font_names[i] for i in np.flatnonzero(italic)]
  assert 0 < len(names) < len(italic) and all("Italic" in n or "Oblique" in n for n in names)
  fonts = decode(uniform, 2000)
  assert abs(italic[fonts].mean() - italic.mean()) < 0.04  # every font equally likely by default
  for share in (0.0, 0.1, 1.0):
    gen = synth.Generator(data_variant(italic_probability=share), atlas, 0)
    drawn = decode(gen, 2000)
    assert abs(italic[drawn].mean() - share) < 0.025, share
    assert len(set(drawn.tolist())) == (italic.sum() if share == 1.0 else
                                        (~italic).sum() if share == 0.0 else len(italic)), share
  b = to_numpy(synth.Generator(data_variant(italic_probability=0.0), atlas, 0).generate(list(range(4))))
  assert b["image"].shape[0] == 4 and b["image"].std() > 0
  with pytest.raises(ConfigError, match=r"data.italic_probability=1.5"):
    synth.Generator(data_variant(italic_probability=1.5), atlas, 0)


def test_numbers_are_random_strings_of_digits(atlas, tmp_path):
  path = tmp_path / "words.txt"
  path.write_text("alphabet betatron gammaray", encoding="utf-8")
  gen = synth.Generator(data_variant(corpus=str(path), corpus_probability=0.5, min_length=6, max_length=12,
                                     digits_probability=0.5, digits_length=(2, 4)), atlas, 0)
  b = batched_params(gen, range(64))
  texts = [t.decode("utf-8") for t in b["text"]]
  numbers = [t for t in texts if t.isdigit()]
  words = [t for t in texts if t in ("alphabet", "betatron", "gammaray")]
  assert 4 <= len(numbers) <= 28 and len(words) >= 16, texts  # a half of the random third of the strings
  assert all(2 <= len(t) <= 4 for t in numbers) and len(set(numbers)) > len(numbers) // 2
  assert all(len(t) >= 6 for t in texts if t not in numbers)
  check_labels(gen, b)
  with pytest.raises(ConfigError, match="no digits"):
    synth.Generator(data_variant(charset="abcdef", digits_probability=0.5), atlas, 0)


def test_resample_matrix_keeps_levels_and_factor_one_is_identity():
  up, down = filters.resample_matrices(40, tf.constant([1.0, 1.5, 2.0, 3.0]))
  m = tf.matmul(up, down).numpy()
  np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-5)  # a flat image stays flat
  np.testing.assert_allclose(m[0], np.eye(40), atol=1e-6)
  np.testing.assert_array_equal(down.numpy()[3, 13:], 0.0)  # 40 px at 1/3: 13 low-resolution pixels
  np.testing.assert_array_equal(up.numpy()[3, :, 13:], 0.0)
  x = tf.random.stateless_uniform([4, 8, 40, 1], (1, 2))
  y = filters.resample(x, tf.constant([3.0] * 4)).numpy()
  assert np.abs(np.diff(y, axis=2)).mean() < np.abs(np.diff(x.numpy(), axis=2)).mean() * 0.6  # detail is lost
  same = filters.resample(x, tf.constant([3.0] * 4), lambda v: v).numpy()  # the split path is the same operator
  np.testing.assert_allclose(same, y, atol=1e-5)


# Every sample downscaled 3x and nothing else that adds noise; the two tests below share its programs.
LOW_RES = dict(blur_probability=0.0, jpeg_probability=0.0, grain=(0.0, 0.0), background_noise=(0.0, 0.0),
               short_scratches=(0, 0), long_scratches=(0, 0), illumination_probability=0.0,
               downscale_probability=1.0, downscale_factor=(3.0, 3.0), invert_probability=0.0,
               paper_level=(0.6, 0.6))  # no clipping at paper white


def test_low_res_noise_is_added_at_the_low_resolution(atlas):
  """Noise drawn at 1/3 of the resolution and scaled up varies over about 3 px, not pixel to pixel."""
  plain = synth.Generator(data_variant(**LOW_RES), atlas, 0).generate([0, 1, 2, 3])
  noisy = synth.Generator(data_variant(**LOW_RES, low_res_noise=(0.1, 0.1)), atlas, 0).generate([0, 1, 2, 3])
  np.testing.assert_array_equal(plain["clean"], noisy["clean"])  # the same samples, only noisier
  diff = noisy["image"].numpy() - plain["image"].numpy()
  inside = diff[:, 4:-4, 4:-4]
  assert 0.02 < inside.std() < 0.1, inside.std()  # smoothed by the scale-up and lowered by contrast
  # low_res_noise_after_contrast: a scanner's noise does not fade with a faint print, so the std is divided
  # by each sample's contrast (applied after it): the noise in the image is 1/contrast times as strong.
  sensor = synth.Generator(data_variant(**LOW_RES, low_res_noise=(0.1, 0.1), low_res_noise_after_contrast=True),
                           atlas, 0)
  contrast = sensor.decode_params(batched_params(sensor, [0, 1, 2, 3]))["color"].numpy()[:, 0]
  strong = (sensor.generate([0, 1, 2, 3])["image"].numpy() - plain["image"].numpy())[:, 4:-4, 4:-4]
  ratio = strong.std(axis=(1, 2, 3)) / inside.std(axis=(1, 2, 3))
  np.testing.assert_allclose(ratio, 1.0 / contrast, rtol=0.08)
  assert contrast.min() < 0.9  # some samples are faint
  step = np.abs(np.diff(inside, axis=2)).mean()
  far = np.abs(inside[:, :, 6:] - inside[:, :, :-6]).mean()
  assert step < 0.6 * far, (step, far)  # neighbours share their low-resolution pixel
  half = synth.Generator(data_variant(**dict(LOW_RES, downscale_probability=0.5), low_res_noise=(0.1, 0.1)), atlas, 0)
  p = half.decode_params(batched_params(half, list(range(16))))
  down, std = np.asarray(p["downscale"]), np.asarray(p["low_res_noise"])
  assert 0 < down.sum() < 16
  np.testing.assert_array_equal(std, np.where(down, 0.1, 0.0).astype(np.float32))  # only downscaled samples get it


def test_blur_at_low_res_widens_the_blur_of_downscaled_samples(atlas):
  base = dict(blur_probability=1.0, blur_sigma=(1.0, 1.0), jpeg_probability=0.0, downscale_factor=(3.0, 3.0))
  gen = synth.Generator(data_variant(**base, downscale_probability=1.0, blur_at_low_res=True), atlas, 0)
  p = gen.decode_params(batched_params(gen, [0, 1]))
  np.testing.assert_allclose(p["blur"].numpy(), 3.0)
  assert gen.spec.blur_radius == 8
  flat = synth.Generator(data_variant(**base, downscale_probability=0.0, blur_at_low_res=True), atlas, 0)
  np.testing.assert_allclose(flat.decode_params(batched_params(flat, [0, 1]))["blur"].numpy(), 1.0)


def test_downscale_factor_range_changes_only_degraded_samples(atlas):
  plain = synth.Generator(data_variant(**dict(LOW_RES, downscale_probability=0.0)), atlas, 0).generate([0, 1, 2])
  low = synth.Generator(data_variant(**LOW_RES), atlas, 0).generate([0, 1, 2])
  np.testing.assert_array_equal(plain["clean"], low["clean"])
  assert np.abs(np.diff(low["image"].numpy(), axis=2)).mean() < np.abs(np.diff(plain["image"].numpy(), axis=2)).mean()


def test_crop_box_fits_the_document_word_box(atlas):
  """Fitting [baseline - 0.7 em, baseline + 0.2 em] makes letters about 1.2-1.4x taller than fitting the line box."""
  common = dict(min_length=1, max_length=3, font_px=(80.0, 80.0), margins_px=(0, 0), max_angle=0.0)  # height-bound
  line = synth.Generator(data_variant(**common), atlas, 0).generate(list(range(12)))
  crop = synth.Generator(data_variant(**common, crop_box=True, crop_ascent_em=(0.7, 0.7),
                                      crop_descent_em=(0.2, 0.2)), atlas, 0).generate(list(range(12)))

  def tallest(b):
    boxes, n = b["letter_boxes"].numpy(), b["label_length"].numpy()
    return np.array([max(bx[2] - bx[0] for bx in boxes[i, :n[i]]) for i in range(len(n))])

  ratio = np.median(tallest(crop) / tallest(line))
  assert 1.15 < ratio < 1.6, ratio
  assert [t.decode() for t in crop["text"].numpy()] == [t.decode() for t in line["text"].numpy()]


# --------------------------------------------- in-graph ops, three ways

def three_ways(fn, *args):
  """fn(*args) eagerly, inside Dataset.map and in an XLA-compiled tf.function."""
  tensors = [tf.constant(a) for a in args]
  eager = fn(*tensors).numpy()
  ds = tf.data.Dataset.from_tensors(tuple(tensors)).map(lambda *a: fn(*a))
  mapped = next(iter(ds)).numpy()
  xla = tf.function(fn, jit_compile=True)(*tensors).numpy()
  return eager, mapped, xla


def assert_three_agree(fn, *args, atol=1e-6):
  eager, mapped, xla = three_ways(fn, *args)
  np.testing.assert_array_equal(eager, mapped)
  np.testing.assert_allclose(eager, xla, atol=atol)
  return eager


def random_images(shape, seed=0):
  return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def test_sample_params_eager_equals_dataset_map(tiny_gen):
  indices = [0, 3, 17, 123456789]
  mapped = batched_params(tiny_gen, indices)
  for j, i in enumerate(indices):
    eager = to_numpy(tiny_gen.sample_params(tf.constant(i, tf.int64)))
    assert set(eager) == set(mapped)
    for key, value in eager.items():
      np.testing.assert_array_equal(value, mapped[key][j], err_msg=key)


def test_sample_params_is_stateless(tiny_gen):
  a = to_numpy(tiny_gen.sample_params(tf.constant(5, tf.int64)))
  tiny_gen.sample_params(tf.constant(6, tf.int64))
  b = to_numpy(tiny_gen.sample_params(tf.constant(5, tf.int64)))
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_upsample2_is_bilinear_resize():
  x = random_images((2, 6, 10, 3))
  up = assert_three_agree(noise.upsample2, x)
  np.testing.assert_allclose(up, tf.image.resize(x, (12, 20), "bilinear").numpy(), atol=1e-6)


def blur_by_sigma(images, sigmas, sigma_max):
  """_gaussian_blur with one sigma per image, through the same kernel as the generator."""
  radius = int(np.ceil(2.5 * sigma_max))
  kernels = tf.stack([synth.gaussian_kernel(s, radius) for s in tf.unstack(sigmas)])
  return filters.gaussian_blur(images, kernels)


def test_gaussian_blur_sigma_zero_is_identity():
  x = random_images((2, 12, 20, 3))
  out = assert_three_agree(lambda a, s: blur_by_sigma(a, s, 1.2), x, np.zeros(2, np.float32))
  np.testing.assert_array_equal(out, x)


def test_gaussian_blur_spreads_an_impulse_by_sigma():
  x = np.zeros((2, 33, 33, 1), np.float32)
  x[:, 16, 16] = 1.0
  sigma = np.array([0.7, 1.5], np.float32)
  out = assert_three_agree(lambda a, s: blur_by_sigma(a, s, 2.0), x, sigma)
  taps = np.arange(33) - 16.0
  for b in range(2):
    np.testing.assert_allclose(out[b].sum(), 1.0, atol=1e-5)
    row = out[b, 16, :, 0] / out[b, 16, :, 0].sum()
    np.testing.assert_allclose(np.sqrt(np.sum(row * taps**2)), sigma[b], rtol=0.02)
  flat = np.full((1, 12, 20, 1), 0.4, np.float32)
  np.testing.assert_allclose(blur_by_sigma(tf.constant(flat), tf.constant([1.0]), 2.0), flat,
                             atol=1e-6)


def test_down_up_keeps_shape_and_smooths():
  for shape in ((2, 12, 20, 3), (2, 11, 19, 1)):
    x = random_images(shape)
    out = assert_three_agree(filters.down_up, x)
    assert out.shape == shape
    assert out.std() < x.std()
  x = random_images((2, 12, 20, 3))
  pooled = tf.nn.avg_pool2d(x, 2, 2, "VALID")
  np.testing.assert_allclose(filters.down_up(tf.constant(x)), tf.image.resize(pooled, (12, 20)),
                             atol=1e-6)


def test_saturate():
  x = random_images((2, 8, 8, 3))
  out = assert_three_agree(ops.saturate, x, np.array([0.0, 1.0], np.float32))
  np.testing.assert_allclose(out[0, ..., 0], out[0, ..., 1], atol=1e-6)
  np.testing.assert_allclose(out[0, ..., 0], out[0, ..., 2], atol=1e-6)
  np.testing.assert_allclose(out[0].mean(-1), (x[0] * [0.299, 0.587, 0.114]).sum(-1), atol=1e-6)
  np.testing.assert_allclose(out[1], x[1], atol=1e-6)
  grey = random_images((2, 8, 8, 1))
  np.testing.assert_array_equal(assert_three_agree(ops.saturate, grey, np.zeros(2, np.float32)),
                                grey)


def test_jpeg_like_under_xla():
  x = random_images((2, 12, 20, 3))
  jpeg = tf.function(filters.jpeg_like, jit_compile=True)
  best = jpeg(tf.constant(x), tf.constant([100.0, 100.0])).numpy()
  assert best.shape == x.shape
  assert np.abs(best - x).max() <= 2.0 / 255.0
  worse = jpeg(tf.constant(x), tf.constant([90.0, 20.0])).numpy()
  err = np.abs(worse - x).reshape(2, -1).mean(axis=1)
  assert np.abs(best - x).mean() < err[0] < err[1]


def test_jpeg_like_grey_three_ways():
  x = random_images((2, 16, 24, 1))
  out = assert_three_agree(filters.jpeg_like, x, np.array([100.0, 100.0], np.float32), atol=1e-5)
  assert np.abs(out - x).max() <= 2.0 / 255.0


def test_jpeg_like_eager_and_in_dataset_map():
  x = random_images((2, 16, 16, 3))
  out = assert_three_agree(filters.jpeg_like, x, np.array([100.0, 100.0], np.float32), atol=1e-5)
  assert np.abs(out - x).max() <= 2.0 / 255.0


# ---------------------------------------------------------------- canvas widths

def test_narrow_canvas_programs_match_the_full_width_one(seed_setup):
  """The per-sample canvas width never cuts a letter: every bucket's text program
  gives the same pixels and quads as the full-width program, over seed samples
  of every length class."""
  gen = seed_setup.gen
  widths = tf.constant(gen.canvas_widths, tf.int32)
  used = set()
  for i in range(NUM_SEED):
    p = gen.sample_params(tf.constant(i, tf.int64))
    numeric = {k: v[None] for k, v in p.items() if k not in ("text", "index")}
    bucket = int(tf.reduce_sum(tf.cast(widths < p["line_bound"], tf.int32)))
    assert bucket < len(gen.canvas_widths), f"sample {i}: line bound {int(p['line_bound'])} exceeds the canvas"
    used.add(bucket)
    if bucket == len(gen.canvas_widths) - 1:
      continue
    narrow = to_numpy(gen.render_text(numeric, gen.canvas_widths[bucket]))
    full = to_numpy(gen.render_text(numeric, gen.canvas_widths[-1]))
    for key in ("alpha", "clean", "letter_quads"):
      np.testing.assert_array_equal(narrow[key], full[key], err_msg=f"sample {i} {key}")
  assert len(used) >= 2, used


def test_frequent_words_are_drawn_by_their_counts(atlas, tmp_path):
  path = tmp_path / "frequent.tsv"
  path.write_text("# a comment\nof\t3\n\nto\t1\nto 0.5\nna\u00efve\t9\n", encoding="utf-8")  # na\u00efve: not in the charset
  gen = synth.Generator(data_variant(frequent_words=str(path), frequent_probability=1.0, min_length=6,
                                     max_length=8, short_probability=1.0, short_length=(1, 1),
                                     digits_probability=0.5), atlas, 0)
  texts = [t.decode() for t in batched_params(gen, range(300))["text"]]
  assert set(texts) == {"of", "to"}  # neither cut short nor a number
  assert 0.55 < texts.count("of") / len(texts) < 0.8  # 3 : 1.5
  half = synth.Generator(data_variant(frequent_words=str(path), frequent_probability=0.5, min_length=6,
                                      max_length=8), atlas, 0)
  texts = [t.decode() for t in batched_params(half, range(100))["text"]]
  assert 30 <= sum(t in ("of", "to") for t in texts) <= 70 and all(len(t) >= 6 for t in texts if t not in
                                                                    ("of", "to"))
  check_labels(half, batched_params(half, range(4)))
  shipped = synth.Generator(data_variant(frequent_words="frequent", frequent_probability=1.0,
                                         corpus_upper_probability=1.0), atlas, 0)
  texts = [t.decode() for t in batched_params(shipped, range(200))["text"]]
  assert texts.count("THE") > 5 and all(t == t.upper() for t in texts)  # corpus case rules apply to them too
  for bad in ("of\t-1\n", "of\n", "of\tmany\n"):
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"data.frequent_words=.*line 1 is not"):
      synth.Generator(data_variant(frequent_words=str(path), frequent_probability=0.5), atlas, 0)
  path.write_text("na\u00efve\t3\n", encoding="utf-8")
  with pytest.raises(ConfigError, match=r"data.frequent_words=.*no word of at most"):
    synth.Generator(data_variant(frequent_words=str(path), frequent_probability=0.5), atlas, 0)


def test_generators_of_one_config_share_their_render_programs(atlas):
  """The training and validation streams of a run (same config and atlas, other seeds) trace and compile the
  pixels once; another config gets its own programs, and changing a config after the fact changes nothing."""
  d = data_variant()
  train_gen, validation_gen = synth.Generator(d, atlas, 0), synth.Generator(d, atlas, 1)
  assert validation_gen.programs is train_gen.programs
  reloaded = synth.Generator(data_variant(), atlas_lib.load_atlas(), 5)  # equal content, other objects
  assert reloaded.programs is train_gen.programs
  d.blur_probability = 0.0  # the caller's config: the generators made from it keep their own copy
  assert train_gen.config.blur_probability != 0.0
  other = synth.Generator(d, atlas, 0)
  assert other.programs is not train_gen.programs
  a, b = train_gen.generate([0]), validation_gen.generate([0])  # one program, each generator's own parameters
  assert a["text"][0] != b["text"][0] and not np.array_equal(a["image"], b["image"])


def test_configs_that_differ_only_in_values_share_one_program(atlas):
  """Ranges and probabilities are inputs of the compiled programs: a config that changes only them reuses the
  programs (no new trace or XLA compile) and still draws with its own values."""
  base = synth.Generator(data_variant(), atlas, 0)
  changed = synth.Generator(data_variant(max_angle=1.0, font_px=(14.0, 18.0), contrast=(0.9, 1.0),
                                         blur_probability=0.9, jpeg_quality=(40, 90)), atlas, 0)
  assert changed.programs is base.programs and changed.spec == base.spec
  params = batched_params(changed, range(64))
  drawn = changed.decode_params(params)
  assert np.abs(np.asarray(drawn["angle"])).max() <= 1.0 + 1e-6
  assert np.asarray(drawn["font_px"]).min() >= 14.0 and np.asarray(drawn["font_px"]).max() <= 18.0
  a, b = base.generate([0, 1]), changed.generate([0, 1])
  assert np.abs(np.asarray(b["angle"])).max() <= 1.0 + 1e-6
  assert not np.array_equal(np.asarray(a["image"]), np.asarray(b["image"]))

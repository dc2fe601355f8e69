"""Named random draws: every random choice of a sample is a slice of one stateless uniform vector, by name.

A sample's uniforms come from two stateless streams seeded by (seed, index):
the first holds the slots of the first release (``FIRST``, then the per-letter
and per-scratch slots), the second the slots added since (``ADDED``), so a
config that never used an added choice keeps its samples byte for byte. A new
choice is a new slot appended to ``ADDED``: the uniforms of every earlier slot
stay where they are (stateless uniforms of a longer shape start with the same
numbers), so adding a choice never changes the samples of configs that leave it
off.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

# The version of the sample stream: sample i of a config is the same bytes for one version. Still 1: since 0.2
# the ranges and probabilities reach the compiled programs as runtime inputs (knobs) and the samples are the
# bytes 0.1 made (benchmarks/stream_digest.py prints the same digests).
STREAM_VERSION = 1
SCRATCH_FIELDS = 9  # x, y, direction, length, width, alpha, r, g, b

# (name, size) of the first stream's fixed-size slots, in stream order.
FIRST = (
    ("font", 1), ("length", 1), ("corpus_entry", 1), ("corpus_coin", 1), ("font_px", 1), ("angle", 1),
    ("shear", 1), ("margins", 3),  # left, top, right
    ("morph", 3),  # close/open steps, dilate/erode steps, coin
    ("paper_tint", 3), ("paper_level", 1), ("ink_tint", 3), ("ink_level", 1), ("invert", 1),
    ("octaves", 5), ("margin_bottom", 1), ("position", 2), ("background", 2),  # amplitude, saturation
    ("grain", 4),  # weight, contrast, saturation, brightness
    ("blur", 2),  # coin, sigma
    ("illumination", 2),  # coin, strength
    ("light_direction", 1), ("downscale", 1), ("jpeg", 2),  # coin, quality
    ("color", 3),  # contrast, brightness, saturation
    ("unused", 1), ("hash_keys", 4),
)
# The second stream's slots, in stream order; append new ones at the end.
ADDED = (
    ("case", 1),  # capitals or title case of a corpus entry or frequent word
    ("downscale_factor", 1), ("crop", 2),  # ascent, descent
    ("short", 2),  # length, coin
    ("low_res_noise", 1), ("digits", 1),  # coin
    ("frequent", 2),  # coin, which word
)
ADDED_NAMES = tuple(name for name, _ in ADDED)


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where each named slot sits in a sample's uniform vector.

  Attributes:
    slots: name -> (start, stop) in the concatenated vector.
    first_size: length of the first stream's part (the second stream follows).
    size: total length.
  """
  slots: dict
  first_size: int
  size: int

  def take(self, u: tf.Tensor, name: str) -> tf.Tensor:
    """The uniforms of slot `name`: u[..., start:stop] of a vector [N] or a batch [B, N]."""
    start, stop = self.slots[name]
    return u[..., start:stop]

  def one(self, u: tf.Tensor, name: str, k: int = 0) -> tf.Tensor:
    """The k-th uniform of slot `name`: [] for a vector, [B] for a batch."""
    start, stop = self.slots[name]
    if not 0 <= k < stop - start:
      raise IndexError(f"slot {name!r} has {stop - start} uniform(s), not {k + 1}")
    return u[..., start + k]


def layout(max_length: int, short_scratches: int, long_scratches: int, added: frozenset = frozenset(ADDED_NAMES)
           ) -> Layout:
  """The layout for lines of up to `max_length` letters and at most that many short and long scratches.

  `added` names the ADDED slots the config uses: the second stream is drawn up
  to the last of them only (not at all when none is used), which keeps it off
  the per-sample path of configs that need none.
  """
  sizes = list(FIRST) + [("ids", max_length), ("spacing", max_length),
                         ("short_scratches", (short_scratches + 1) * SCRATCH_FIELDS),
                         ("long_scratches", (long_scratches + 1) * SCRATCH_FIELDS)]
  slots, o = {}, 0
  for name, n in sizes:
    slots[name] = (o, o + n)
    o += n
  first = o
  last = max([i for i, (name, _) in enumerate(ADDED) if name in added], default=-1)
  for name, n in ADDED[:last + 1]:
    slots[name] = (o, o + n)
    o += n
  return Layout(slots, first, o)


def uniforms(seed: int, index: tf.Tensor, lay: Layout) -> tf.Tensor:
  """Sample `index`'s uniform vector [lay.size] from the stream `seed` (stateless: the same on every device)."""
  base = tf.constant([seed, 0x0C12], tf.int64)
  sample_seed = tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))
  first = tf.random.stateless_uniform([lay.first_size], sample_seed)
  if lay.size == lay.first_size:
    return first
  added_seed = tf.random.experimental.stateless_fold_in(sample_seed, 1)
  return tf.concat([first, tf.random.stateless_uniform([lay.size - lay.first_size], added_seed)], 0)


def uniform(u: tf.Tensor, lo_hi) -> tf.Tensor:
  """u in [0, 1) mapped to [lo, hi)."""
  lo, hi = lo_hi
  return lo + (hi - lo) * u


def randint(u: tf.Tensor, lo_hi) -> tf.Tensor:
  """u in [0, 1) mapped to a whole number in [lo, hi] (int32; lo and hi whole numbers, as floats)."""
  lo, hi = lo_hi
  return tf.minimum(tf.cast(lo, tf.int32) + tf.cast(tf.floor(u * (hi - lo + 1.0)), tf.int32), tf.cast(hi, tf.int32))

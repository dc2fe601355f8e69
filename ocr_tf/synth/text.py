"""Text choice: which characters a sample shows, from random strings, a corpus, frequent words or numbers.

Runs per sample inside ``Dataset.map`` (before the XLA programs), on the
sample's named uniforms (ocr_tf.synth.draws).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import tensorflow as tf

from ocr_tf import charset as charset_lib
import ocr_tf.synth.draws as draws

ITALIC = re.compile(r"italic|oblique", re.IGNORECASE)  # font names of data.italic_probability's fonts


@dataclasses.dataclass(frozen=True)
class TextRules:
  """The text fields of a data config (see ocr_tf.config.data_config)."""
  max_length: int
  min_length: int
  corpus_probability: float = 0.0
  upper_probability: float = 0.0
  title_probability: float = 0.0
  frequent_probability: float = 0.0
  digits_probability: float = 0.0
  digits_length: tuple = (1, 6)
  short_probability: float = 0.0
  short_length: tuple = (1, 4)


@dataclasses.dataclass(frozen=True)
class TextTables:
  """Constant tables of the text choice.

  Attributes:
    chars: the charset's characters (tf.string [K]).
    corpus: (ids [N, L], lengths [N]) of the corpus entries, or None.
    frequent: (ids [N, L], lengths [N], cdf [N]) of the frequent words, or None.
    capitals: id -> id of its capital (itself when it has none), or None when case never changes.
    digit_ids: ids of the charset's digits, or None when numbers are off.
  """
  chars: tf.Tensor
  corpus: tuple | None = None
  frequent: tuple | None = None
  capitals: tf.Tensor | None = None
  digit_ids: tf.Tensor | None = None


def text_tables(charset: charset_lib.Charset, rules: TextRules, corpus: tuple | None,
                frequent: tuple | None) -> TextTables:
  """The tables for a charset, given the loaded corpus and frequent words (charset.load_corpus/load_counts)."""
  chars = charset.chars
  capitals = None
  if (corpus is not None or frequent is not None) and rules.upper_probability + rules.title_probability > 0:
    upper = np.array([charset.encode(c.upper())[0] if c.upper() in charset else i for i, c in enumerate(chars)],
                     np.int32)
    capitals = tf.constant(upper)
  digit_ids = None
  if rules.digits_probability > 0:
    digit_ids = tf.constant(charset.encode("".join(c for c in chars if c.isdigit())), tf.int32)
  return TextTables(tf.constant(np.array(list(chars))), corpus, frequent, capitals, digit_ids)


def font_index(u: tf.Tensor, num_fonts: int, font_cdf: tf.Tensor | None) -> tf.Tensor:
  """Font of uniform(s) u: every font equally likely (font_cdf None), or by the cumulative weights font_cdf."""
  if font_cdf is None:
    return tf.minimum(tf.cast(u * num_fonts, tf.int32), num_fonts - 1)
  flat = tf.reshape(u, [-1])
  index = tf.searchsorted(font_cdf, flat, side="right", out_type=tf.int32)
  return tf.reshape(index, tf.shape(u))


def font_weights(italic: np.ndarray, italic_probability: float) -> np.ndarray:
  """Cumulative font weights (all but the last) giving italic fonts `italic_probability` in all.

  Fonts of weight 0 at the end get 2.0: a uniform draw never reaches them.
  """
  weights = np.where(italic, italic_probability / max(italic.sum(), 1),
                     (1 - italic_probability) / max((~italic).sum(), 1))
  weights = weights / weights.sum()
  cdf = np.cumsum(weights)[:-1]
  cdf[np.cumsum(weights[::-1])[::-1][1:] == 0] = 2.0
  return cdf


def _word_case(word, u, lay: draws.Layout, rules: TextRules, tables: TextTables):
  """A word's ids [L] in CAPITALS, Capitalized or as written."""
  if tables.capitals is None:
    return word
  p_upper = float(rules.upper_probability)
  p_title = p_upper + float(rules.title_probability)
  c = lay.one(u, "case")
  capitals = tf.where(c < p_upper, tf.gather(tables.capitals, word), word)
  first = tf.range(rules.max_length) == 0
  return tf.where((c >= p_upper) & (c < p_title) & first, tf.gather(tables.capitals, word), capitals)


def _number(u, lay: draws.Layout, rules: TextRules, tables: TextTables):
  """A string of digits only and its length, of rules.digits_length."""
  n = int(tables.digit_ids.shape[0])
  number = tf.gather(tables.digit_ids, tf.minimum(tf.cast(lay.take(u, "ids") * n, tf.int32), n - 1))
  g0, g1 = (int(v) for v in rules.digits_length)
  return number, g0 + tf.minimum(tf.cast(lay.one(u, "length") * (g1 - g0 + 1), tf.int32), g1 - g0)


def choose_text(u: tf.Tensor, lay: draws.Layout, rules: TextRules, tables: TextTables, num_chars: int):
  """(ids [L] padded with 0, length []) of one sample from its uniforms u [N]."""
  L = rules.max_length
  ids = tf.minimum(tf.cast(lay.take(u, "ids") * num_chars, tf.int32), num_chars - 1)
  lo, hi = int(rules.min_length), int(rules.max_length)
  length = tf.minimum(lo + tf.cast(lay.one(u, "length") * (hi - lo + 1), tf.int32), hi)
  from_corpus = frequent = None
  if tables.corpus is not None:
    corpus_ids, corpus_len = tables.corpus
    j = tf.minimum(tf.cast(lay.one(u, "corpus_entry") * corpus_ids.shape[0], tf.int32), corpus_ids.shape[0] - 1)
    from_corpus = lay.one(u, "corpus_coin") < float(rules.corpus_probability)
    ids = tf.where(from_corpus, _word_case(tf.constant(corpus_ids)[j], u, lay, rules, tables), ids)
    length = tf.where(from_corpus, tf.constant(corpus_len)[j], length)
  if tables.frequent is not None:  # a word by how often text uses it
    f_ids, f_len, f_cdf = tables.frequent
    which = lay.take(u, "frequent")[1:2]
    k = tf.minimum(tf.searchsorted(tf.constant(f_cdf), which, side="right")[0], f_ids.shape[0] - 1)
    frequent = lay.one(u, "frequent") < float(rules.frequent_probability)
    ids = tf.where(frequent, _word_case(tf.constant(f_ids)[k], u, lay, rules, tables), ids)
    length = tf.where(frequent, tf.constant(f_len)[k], length)
  if tables.digit_ids is not None:  # a number: a random string of digits only
    number, number_len = _number(u, lay, rules, tables)
    is_number = lay.one(u, "digits") < float(rules.digits_probability)
    for other in (from_corpus, frequent):
      if other is not None:
        is_number = is_number & tf.logical_not(other)
    ids = tf.where(is_number, number, ids)
    length = tf.where(is_number, number_len, length)
  if rules.short_probability > 0:  # cut short: a word's first letters, or a short random string
    s0, s1 = (int(v) for v in rules.short_length)
    cut = s0 + tf.minimum(tf.cast(lay.one(u, "short") * (s1 - s0 + 1), tf.int32), s1 - s0)
    cut_short = lay.one(u, "short", 1) < float(rules.short_probability)
    if frequent is not None:  # a frequent word is never cut
      cut_short = cut_short & tf.logical_not(frequent)
    length = tf.where(cut_short, tf.minimum(length, cut), length)
  return tf.where(tf.range(L) < length, ids, 0), length


def text_string(ids: tf.Tensor, length: tf.Tensor, tables: TextTables) -> tf.Tensor:
  """The string of ids[:length]."""
  return tf.strings.reduce_join(tf.gather(tables.chars, ids[:length]))

"""The alphabet: characters <-> ids, the CTC blank, and corpus loading."""

from __future__ import annotations

import numpy as np

from ocr_tf.config import ConfigError


class Charset:
  """Ids 0..N-1 are the characters in order; id N is the CTC blank."""

  def __init__(self, chars: str):
    if not chars or len(set(chars)) != len(chars):
      raise ConfigError(f"charset {chars!r} must be non-empty with no repeats")
    self.chars = chars
    self._index = {c: i for i, c in enumerate(chars)}

  def __len__(self) -> int:
    return len(self.chars)

  def __contains__(self, char: str) -> bool:
    return char in self._index

  @property
  def blank(self) -> int:
    return len(self.chars)

  @property
  def num_classes(self) -> int:
    """Characters plus the CTC blank."""
    return len(self.chars) + 1

  def encode(self, text: str) -> list[int]:
    bad = sorted({c for c in text if c not in self._index})
    if bad:
      raise ValueError(f"{text!r} has characters outside the charset: {''.join(bad)!r}")
    return [self._index[c] for c in text]

  def decode(self, ids) -> str:
    return "".join(self.chars[i] for i in ids if 0 <= i < len(self.chars))


def load_corpus(path: str, mode: str, charset: Charset, max_length: int):
  """Reads words (or lines) of a text file as padded ids [N, max_length] and lengths [N].

  Entries with characters outside the charset, or longer than max_length, are
  left out; a corpus left with nothing is a ConfigError.
  """
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise ConfigError(f"data.corpus={path!r}: cannot read ({e})") from None
  entries = text.split() if mode == "words" else [ln.strip() for ln in text.splitlines()]
  kept = sorted({e for e in entries if e and len(e) <= max_length and all(c in charset for c in e)})
  if not kept:
    raise ConfigError(f"data.corpus={path!r}: no {mode} of at most {max_length} charset characters "
                      f"({len(entries)} read)")
  return _padded_ids(kept, charset, max_length)


def _padded_ids(entries: list[str], charset: Charset, max_length: int):
  """Entries as ids [N, max_length] padded with 0, and their lengths [N]."""
  ids = np.zeros((len(entries), max_length), np.int32)
  lengths = np.zeros((len(entries),), np.int32)
  for i, e in enumerate(entries):
    ids[i, :len(e)] = charset.encode(e)
    lengths[i] = len(e)
  return ids, lengths


def load_counts(path: str, charset: Charset, max_length: int):
  """Reads word<TAB>count lines (blank lines and lines starting with '#' skipped) as padded ids [N, max_length],
  lengths [N] and the cumulative share of the counts [N] (float32, last 1), to draw a word by its count.

  A word written twice counts with the sum; words with characters outside the
  charset, or longer than max_length, are left out. A line that is not a word
  and a positive count, or a file left with nothing, is a ConfigError.
  """
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise ConfigError(f"data.frequent_words={path!r}: cannot read ({e})") from None
  counts: dict[str, float] = {}
  for number, line in enumerate(lines, 1):
    if not line.strip() or line.lstrip().startswith("#"):
      continue
    fields = line.split()
    try:
      count = float(fields[1]) if len(fields) == 2 else -1.0
    except ValueError:
      count = -1.0
    if not count > 0 or count == float("inf"):
      raise ConfigError(f"data.frequent_words={path!r}: line {number} is not 'word<TAB>count' with a positive "
                        f"count: {line[:80]!r}")
    word = fields[0]
    if len(word) <= max_length and all(c in charset for c in word):
      counts[word] = counts.get(word, 0.0) + count
  if not counts:
    raise ConfigError(f"data.frequent_words={path!r}: no word of at most {max_length} charset characters")
  words = sorted(counts)
  ids, lengths = _padded_ids(words, charset, max_length)
  cdf = np.cumsum(np.array([counts[w] for w in words], np.float64))
  return ids, lengths, (cdf / cdf[-1]).astype(np.float32)

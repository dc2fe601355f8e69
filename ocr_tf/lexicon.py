"""Word-list correction of a CTC reading, scored by the model's own per-column probabilities.

A reading that is not in the word list, but is one edit (a letter inserted,
deleted or replaced) away from words that are, is replaced by the likeliest
of those words when the model itself finds it nearly as likely: its CTC
log-likelihood, plus ``bonus`` nats for being a word, beats the reading's.
So ``thc`` becomes ``the`` when the model hesitated over the last letter, and
a code such as ``gcm`` the model read with confidence stays as read. Readings
of one character, and readings already in the list (as written, in lower
case, capitalized or in capitals) are never changed.

The likelihoods come from the SavedModel's ``text_log_probs`` output
([B, T, C] log-softmax, the CTC blank last; see :mod:`ocr_tf.serving`);
:func:`ctc_log_likelihood` is the CTC forward algorithm (Graves et al.,
2006) over those columns, computed for all candidates of a reading at once.
"""

from __future__ import annotations

import functools
import os
from typing import Iterable, Sequence

import numpy as np

from ocr_tf.assets import SHIPPED_CORPORA

# Nats a word-list word may lose to the reading and still replace it: chosen
# on real word crops of PDF manuals that are not in the evaluation sets
# (benchmarks/real_eval.py --lexicon_bonus to measure others).
DEFAULT_BONUS = 5.0
NONE = "none"


class LexiconError(Exception):
  """The word list cannot be used (no such file, not UTF-8, no word in the charset)."""


def _forms(word: str) -> set[str]:
  """A word as written, capitalized and in capitals (a list gives 'the'; pages also print 'The', 'THE')."""
  return {word, word[:1].upper() + word[1:], word.upper()}


class Lexicon:
  """A word list and the correction of readings towards it.

  Args:
    words: the words; those with characters outside `charset` are left out.
    charset: the model's characters, in id order (the blank is id len(charset)).
    bonus: nats, see the module docstring; 0 keeps a reading unless a word is
      strictly likelier.
  """

  def __init__(self, words: Iterable[str], charset: str, bonus: float = DEFAULT_BONUS):
    if not charset:
      raise LexiconError("empty charset")
    if not np.isfinite(bonus) or bonus < 0:
      raise LexiconError(f"bonus={bonus!r}: must be a finite number >= 0")
    self.charset = charset
    self.bonus = float(bonus)
    self._index = {c: i for i, c in enumerate(charset)}
    self._by_lower: dict[str, set[str]] = {}
    for word in words:
      word = word.strip()
      if word and all(c in self._index for c in word):
        self._by_lower.setdefault(word.lower(), set()).update(
            f for f in _forms(word) if all(c in self._index for c in f))
    if not self._by_lower:
      raise LexiconError(f"no word made only of the model's characters ({charset[:20]}...)")
    self._letters = sorted({c for key in self._by_lower for c in key})

  def __len__(self) -> int:
    return len(self._by_lower)

  def __contains__(self, text: str) -> bool:
    return text in self._by_lower.get(text.lower(), ())

  @classmethod
  def from_file(cls, path: str, charset: str, bonus: float = DEFAULT_BONUS) -> "Lexicon":
    """Words separated by white space in a UTF-8 text file; 'words' names the shipped English list."""
    path = SHIPPED_CORPORA.get(path, path)
    try:
      with open(path, encoding="utf-8") as f:
        text = f.read()
    except FileNotFoundError:
      raise LexiconError(f"{path}: no such file (give a word list, 'words' for the shipped one, "
                         f"or '{NONE}')") from None
    except IsADirectoryError:
      raise LexiconError(f"{path}: is a folder, not a word list") from None
    except UnicodeDecodeError as e:
      raise LexiconError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
      raise LexiconError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
      return cls(text.split(), charset, bonus)
    except LexiconError as e:
      raise LexiconError(f"{path}: {e}") from None

  def candidates(self, text: str) -> list[str]:
    """The list's words (in their forms) at most one edit from `text`, case aside; sorted."""
    low = text.lower()
    near = set()
    for i in range(len(low) + 1):
      head, tail = low[:i], low[i:]
      if tail:
        near.add(head + tail[1:])
        near.update(head + c + tail[1:] for c in self._letters)
      near.update(head + c + tail for c in self._letters)
    out = set()
    for key in near:
      out.update(self._by_lower.get(key, ()))
    return sorted(out)

  def correct(self, text: str, log_probs: np.ndarray) -> str:
    """`text` (the greedy reading of `log_probs` [T, C]), or the word-list word that replaces it."""
    return self.correct_scored(text, log_probs)[0]

  def correct_scored(self, text: str, log_probs: np.ndarray) -> tuple[str, float | None]:
    """As :meth:`correct`, with the replacing word's CTC log-likelihood (None when `text` stays)."""
    if len(text) < 2 or text in self or any(c not in self._index for c in text):
      return text, None
    words = self.candidates(text)
    if not words:
      return text, None
    scores = ctc_log_likelihood(log_probs, [self.encode(w) for w in [text] + words], len(self.charset))
    best = int(np.argmax(scores[1:])) + 1
    if scores[best] + self.bonus > scores[0]:
      return words[best - 1], float(scores[best])
    return text, None

  def encode(self, text: str) -> list[int]:
    return [self._index[c] for c in text]


def ctc_log_likelihood(log_probs: np.ndarray, labels: Sequence[Sequence[int]], blank: int) -> np.ndarray:
  """log p(label | columns) for each label, by the CTC forward algorithm; float64 [N].

  Args:
    log_probs: [T, C] log-probabilities per column (rows sum to 1 in probability).
    labels: N label id sequences (no blank in them).
    blank: the blank's id.
  """
  log_probs = np.asarray(log_probs, np.float64)
  steps = log_probs.shape[0]
  n = len(labels)
  states = 2 * max((len(l) for l in labels), default=0) + 1
  ext = np.full((n, states), blank, np.int64)
  for i, label in enumerate(labels):
    ext[i, 1:2 * len(label):2] = label
  ends = np.array([2 * len(l) for l in labels])
  # A jump over a blank is allowed onto a letter that differs from the one two states back.
  skip = np.zeros((n, states), bool)
  skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
  valid = np.arange(states)[None, :] <= ends[:, None]
  emit = log_probs[:, ext]  # [T, N, S]
  alpha = np.full((n, states), -np.inf)
  alpha[:, 0] = emit[0, :, 0]
  if states > 1:
    alpha[:, 1] = np.where(ends >= 1, emit[0, :, 1], -np.inf)
  pad1 = np.full((n, 1), -np.inf)
  pad2 = np.full((n, 2), -np.inf)
  with np.errstate(divide="ignore"):
    for t in range(1, steps):
      stay = alpha
      step = np.concatenate([pad1, alpha[:, :-1]], axis=1)
      jump = np.where(skip, np.concatenate([pad2, alpha[:, :-2]], axis=1), -np.inf)
      alpha = np.logaddexp(np.logaddexp(stay, step), jump) + emit[t]
      alpha = np.where(valid, alpha, -np.inf)
  rows = np.arange(n)
  last = alpha[rows, ends]
  before = np.where(ends >= 1, alpha[rows, np.maximum(ends - 1, 0)], -np.inf)
  return np.logaddexp(last, before)


def load(spec: str | None, charset: str, bonus: float = DEFAULT_BONUS) -> Lexicon | None:
  """The lexicon a command-line value names: None for '' or 'none', else a word list path or 'words'.

  A list already loaded in this process is reused while its file is unchanged.
  """
  if not spec or spec.strip().lower() == NONE:
    return None
  path = SHIPPED_CORPORA.get(spec, os.path.expanduser(spec))
  try:
    stamp = os.stat(path).st_mtime_ns
  except OSError:
    stamp = None  # from_file says why
  return _load(path, stamp, charset, float(bonus))


@functools.lru_cache(maxsize=4)
def _load(path: str, stamp: int | None, charset: str, bonus: float) -> Lexicon:
  del stamp  # part of the cache key only
  return Lexicon.from_file(path, charset, bonus)

"""ocr_tf.lexicon: the CTC forward algorithm, and correcting readings towards a word list."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from ocr_tf import lexicon, predict

CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BLANK = len(CHARSET)


def columns(*letters: dict[str, float], steps_per_letter: int = 3) -> np.ndarray:
  """log-probabilities [T, C]: per letter, one column with the given probabilities, then blanks."""
  rows = []
  for probs in letters:
    p = np.full(BLANK + 1, 1e-6)
    for c, v in probs.items():
      p[CHARSET.index(c)] = v
    rows.append(p / p.sum())
    for _ in range(steps_per_letter - 1):
      b = np.full(BLANK + 1, 1e-6)
      b[BLANK] = 1.0
      rows.append(b / b.sum())
  return np.log(np.array(rows))


def reading(word: str, last: dict[str, float]) -> np.ndarray:
  """Columns that read `word` but its last letter, whose probabilities are `last`."""
  return columns(*[{c: 1.0} for c in word[:-1]], last)


# ------------------------------------------------------------------ CTC


@pytest.mark.parametrize("seed", [0, 1])
def test_ctc_log_likelihood_matches_tensorflow(seed):
  rng = np.random.default_rng(seed)
  steps, classes = 24, 7
  log_probs = tf.nn.log_softmax(rng.normal(size=(steps, classes)) * 2).numpy()
  labels = [[0, 1, 1, 2], [3], [5, 5], [0, 1, 2, 3, 4, 0, 1, 2], [2, 4, 2]]
  ours = lexicon.ctc_log_likelihood(log_probs, labels, blank=classes - 1)
  for label, value in zip(labels, ours):
    ref = -tf.nn.ctc_loss(tf.constant([label]), tf.constant(log_probs[None], tf.float32), [len(label)], [steps],
                          logits_time_major=False, blank_index=classes - 1).numpy()[0]
    assert value == pytest.approx(ref, abs=1e-3), label


def test_ctc_log_likelihood_edge_cases():
  log_probs = np.log(np.full((4, 3), 1 / 3))
  empty, too_long = lexicon.ctc_log_likelihood(log_probs, [[], [0, 0, 0]], blank=2)
  assert empty == pytest.approx(4 * np.log(1 / 3))  # all blanks: one path
  assert too_long == -np.inf  # three equal letters need 5 columns


# ------------------------------------------------------------------ correction


@pytest.fixture(scope="module")
def words() -> lexicon.Lexicon:
  return lexicon.Lexicon(["the", "those", "file", "Paris", "gem", "x"], CHARSET, bonus=5.0)


def test_an_unsure_letter_becomes_the_word(words):
  lp = reading("thc", {"c": 0.6, "e": 0.35})
  assert words.correct("thc", lp) == "the"
  # With no bonus the model's own likelier reading stays.
  assert lexicon.Lexicon(["the"], CHARSET, bonus=0.0).correct("thc", lp) == "thc"


def test_a_confident_reading_stays(words):
  assert words.correct("gcm", reading("gcm", {"m": 1.0})) == "gcm"  # 'gem' needs an 'e' the model never saw
  assert words.correct("thc", reading("thc", {"c": 0.999, "e": 1e-5})) == "thc"


def test_case_forms_and_untouched_readings(words):
  assert words.correct("Thc", columns({"T": 1.0}, {"h": 1.0}, {"c": 0.6, "e": 0.35})) == "The"
  assert words.correct("THC", columns({"T": 1.0}, {"H": 1.0}, {"C": 0.6, "E": 0.35})) == "THE"
  assert "The" in words and "THOSE" in words and "Paris" in words and "tHe" not in words
  for text in ("the", "The", "x", "", "g"):  # in the list, or a single character
    assert words.correct(text, reading("thc", {"c": 0.5, "e": 0.5})) == text
  assert words.correct("qqqqq", reading("qqqqq", {"q": 1.0})) == "qqqqq"  # nothing one edit away


def test_candidates_are_one_edit_away(words):
  assert words.candidates("thc") == ["THE", "The", "the"]
  assert words.candidates("fle") == ["FILE", "File", "file"]  # insertion
  assert words.candidates("thoses") == ["THOSE", "Those", "those"]  # deletion
  assert "Paris" in words.candidates("paxis") and "paris" not in words.candidates("paxis")
  assert words.candidates("zzzz") == []


def test_words_outside_the_charset_are_left_out():
  small = lexicon.Lexicon(["caf\u00e9", "cafe", "don't"], CHARSET)
  assert len(small) == 1 and "cafe" in small


# ------------------------------------------------------------------ word list files


def test_shipped_list_and_none():
  shipped = lexicon.load("words", CHARSET)
  assert len(shipped) > 50000 and "the" in shipped and "The" in shipped
  assert lexicon.load("words", CHARSET) is shipped  # loaded once per process
  assert lexicon.load("none", CHARSET) is None and lexicon.load("", CHARSET) is None


def test_bad_word_lists(tmp_path):
  (tmp_path / "latin1.txt").write_bytes("caf\xe9 the\n".encode("latin-1"))
  (tmp_path / "symbols.txt").write_text("!!! ??? \u00e9t\u00e9\n", encoding="utf-8")
  cases = {str(tmp_path / "missing.txt"): "no such file",
           str(tmp_path): "is a folder",
           str(tmp_path / "latin1.txt"): "not UTF-8",
           str(tmp_path / "symbols.txt"): "no word made only of the model's characters"}
  for path, message in cases.items():
    with pytest.raises(lexicon.LexiconError, match=message):
      lexicon.load(path, CHARSET)
  with pytest.raises(lexicon.LexiconError, match="bonus"):
    lexicon.Lexicon(["the"], CHARSET, bonus=-1.0)


# ------------------------------------------------------------------ in predictions


def served(text: str, log_probs: np.ndarray) -> dict:
  """One row of serving_default's outputs (numpy) for predict._prediction."""
  k = 3
  return {"error": b"", "text": text.encode(), "confidence": np.float32(0.5), "angle": np.float32(1.0),
          "boxes": np.zeros((k, 4), np.float32), "box_scores": np.zeros(k, np.float32),
          "image_size": np.array([20, 60], np.int32), "clean": np.ones((4, 8, 1), np.float32),
          "text_log_probs": log_probs.astype(np.float32)}


def test_prediction_keeps_the_models_reading(words):
  lp = reading("thc", {"c": 0.6, "e": 0.35})
  pred = predict._prediction("a.png", served("thc", lp), words)  # pylint: disable=protected-access
  assert (pred.text, pred.raw_text) == ("the", "thc")
  assert pred.confidence == pytest.approx(np.exp(lexicon.ctc_log_likelihood(lp, [words.encode("the")], BLANK)[0]),
                                          rel=1e-5)
  assert pred.to_json()["raw_text"] == "thc" and pred.to_json()["text"] == "the"
  plain = predict._prediction("a.png", served("thc", lp), None)  # pylint: disable=protected-access
  assert (plain.text, plain.raw_text, plain.confidence) == ("thc", "thc", 0.5)
  assert "raw_text" not in plain.to_json()

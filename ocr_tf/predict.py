"""Reading text from image files with an exported SavedModel, and measuring it on a labelled folder.

:func:`predict_files` sends files in batches of bytes to the SavedModel's
``serving_default`` signature (see :mod:`ocr_tf.serving`); every file gets a
:class:`Prediction`, with ``error`` set when the file cannot be read or is
not a usable image. A file never costs the others their results: files that
cannot be opened are reported without reaching the model, the graph turns
bad bytes into an error result, and should a batch call fail anyway, its
files are sent again one by one.

:func:`evaluate` reads ``labels.tsv`` in a folder (``filename<TAB>text`` per
line, file names relative to the folder) and reports word accuracy, character
error rate and speed.

Both correct each reading with a word list (:mod:`ocr_tf.lexicon`; the
shipped English list by default, ``lexicon=None`` for the model's own
reading) when the model exports ``text_log_probs``; a corrected
:class:`Prediction` keeps the model's reading in ``raw_text``.

The ``cmd_*`` functions print results and return the process exit code:
0 when every input was read, 1 when some input failed (the others are still
reported), 2 when the command could not run at all (no model, no labels).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any, Sequence, TextIO

import numpy as np
import tensorflow as tf

from ocr_tf import assets, errors
from ocr_tf import labels as labels_lib
from ocr_tf import lexicon as lexicon_lib
from ocr_tf.labels import LABELS_FILE
from ocr_tf.serving.preprocess import to_channels

DEFAULT_BATCH_SIZE = 16
DEFAULT_LEXICON = "words"  # the shipped English word list (ocr_tf/assets/words.txt)
# The model shipped with the package (see MODEL_CARD.md next to it).
DEFAULT_MODEL = assets.DEFAULT_MODEL
MAX_FILE_BYTES = 256 * 1024 * 1024
_BOX_COLOR = (1.0, 0.1, 0.1, 1.0)


class PredictError(Exception):
  """A command cannot run at all (model not loadable, labels missing); the message says why."""


@dataclasses.dataclass
class Prediction:
  """What the model read from one file; ``error`` is None when the file was read.

  Boxes are the letter boxes with a positive score, [ymin, xmin, ymax, xmax]
  in the input image's pixels; ``clean`` is the denoised image [H, W, 1] at
  model resolution (None unless predict_files was asked for it); ``drawn`` lists the files written for --draw. When the
  word list replaced the model's reading, ``raw_text`` is that reading and
  ``confidence`` the model's probability of ``text`` (all CTC paths);
  otherwise ``raw_text`` equals ``text`` and ``confidence`` is the best path's.
  """
  file: str
  text: str = ""
  raw_text: str = ""
  confidence: float = 0.0
  angle: float = 0.0
  boxes: list[list[float]] = dataclasses.field(default_factory=list)
  box_scores: list[float] = dataclasses.field(default_factory=list)
  image_size: tuple[int, int] = (0, 0)
  error: str | None = None
  clean: np.ndarray | None = dataclasses.field(default=None, repr=False)
  drawn: list[str] = dataclasses.field(default_factory=list)

  @property
  def ok(self) -> bool:
    return self.error is None

  def to_json(self) -> dict[str, Any]:
    """The JSON-ready fields (not the clean image)."""
    out: dict[str, Any] = {"file": self.file}
    if self.error is not None:
      out["error"] = self.error
      return out
    out.update(text=self.text, confidence=round(self.confidence, 6), angle=round(self.angle, 4),
               image_size=list(self.image_size), boxes=[[round(v, 2) for v in b] for b in self.boxes],
               box_scores=[round(s, 4) for s in self.box_scores])
    if self.raw_text != self.text:
      out["raw_text"] = self.raw_text
    if self.drawn:
      out["drawn"] = list(self.drawn)
    return out


# ------------------------------------------------------------------ model


def load_model(model_path: str) -> Any:
  """tf.saved_model.load of an exported model; PredictError naming the path when it fails."""
  if not os.path.isdir(model_path):
    raise PredictError(f"{model_path}: no SavedModel folder there")
  try:
    loaded = tf.saved_model.load(model_path)
  except Exception as e:  # pylint: disable=broad-except
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise PredictError(f"{model_path}: cannot load the SavedModel ({first})") from None
  if "serving_default" not in getattr(loaded, "signatures", {}):
    raise PredictError(f"{model_path}: the SavedModel has no serving_default signature")
  return loaded


def default_model_path() -> str:
  """The shipped model's folder; PredictError when this installation lacks it."""
  if not os.path.isfile(os.path.join(DEFAULT_MODEL, "saved_model.pb")):
    raise PredictError(f"the default model is missing from this installation ({DEFAULT_MODEL}); "
                       "give --model=SAVEDMODEL_FOLDER")
  return DEFAULT_MODEL


def _as_model(model: Any) -> Any:
  return load_model(model) if isinstance(model, (str, os.PathLike)) else model



def _serve(signature, items: Sequence[bytes]) -> list[dict[str, np.ndarray] | str]:
  """Per item: its outputs (numpy, no batch axis), or an error message if the model call failed."""
  try:
    out = signature(image_bytes=tf.constant(list(items), tf.string))
    out = {k: v.numpy() for k, v in out.items()}
    return [{k: v[i] for k, v in out.items()} for i in range(len(items))]
  except tf.errors.OpError as e:
    if len(items) == 1:
      return [f"the model failed on this image ({errors.one_line(e)})"]
  return [r for item in items for r in _serve(signature, [item])]


def _read(path: str, max_bytes: int) -> bytes | str:
  """The file's bytes, or why it cannot be read."""
  try:
    size = os.path.getsize(path)
    if os.path.isdir(path):
      return "is a folder, not an image file"
    if size > max_bytes:
      return f"file too large ({size} bytes; limit {max_bytes})"
    with open(path, "rb") as f:
      return f.read()
  except FileNotFoundError:
    return "no such file"
  except OSError as e:
    return f"cannot read ({e.strerror or e})"


def model_charset(model: Any) -> str | None:
  """The characters of a loaded SavedModel's text_log_probs columns; None for a model exported without them."""
  charset = getattr(model, "charset", None)
  if charset is None or "text_log_probs" not in model.signatures["serving_default"].structured_outputs:
    return None
  return charset.numpy().decode("utf-8")


def model_lexicon(model: Any, lexicon: Any) -> lexicon_lib.Lexicon | None:
  """`lexicon` (a Lexicon, a word list path, 'words', or None/'none') for a loaded model.

  None when there is no list, or the model does not export text_log_probs.

  Raises:
    PredictError: the word list cannot be read or holds no word of the model's charset.
  """
  if lexicon is None:
    return None
  charset = model_charset(model)
  if charset is None:
    return None
  if isinstance(lexicon, lexicon_lib.Lexicon):
    if lexicon.charset != charset:
      raise PredictError("--lexicon: the word list was built for another charset than the model's")
    return lexicon
  try:
    return lexicon_lib.load(str(lexicon), charset)
  except lexicon_lib.LexiconError as e:
    raise PredictError(f"--lexicon: {e}") from None


def _prediction(path: str, out: dict[str, np.ndarray], lexicon: lexicon_lib.Lexicon | None) -> Prediction:
  error = out["error"].decode("utf-8", "replace")
  if error:
    return Prediction(file=path, error=error)
  keep = out["box_scores"] > 0
  raw = out["text"].decode("utf-8", "replace")
  text, confidence = raw, float(out["confidence"])
  if lexicon is not None and raw:
    text, log_likelihood = lexicon.correct_scored(raw, out["text_log_probs"])
    if log_likelihood is not None:
      confidence = float(np.exp(log_likelihood))
  return Prediction(file=path, text=text, raw_text=raw, confidence=confidence,
                    angle=float(out["angle"]), boxes=out["boxes"][keep].astype(float).tolist(),
                    box_scores=out["box_scores"][keep].astype(float).tolist(),
                    image_size=(int(out["image_size"][0]), int(out["image_size"][1])), clean=out.get("clean"))


# ------------------------------------------------------------------ drawing


def _to_png(image: tf.Tensor) -> tf.Tensor:
  return tf.io.encode_png(tf.image.convert_image_dtype(tf.clip_by_value(image, 0.0, 1.0), tf.uint8,
                                                       saturate=True))


def draw(data: bytes, prediction: Prediction, out_dir: str, stem: str) -> list[str]:
  """Writes `stem`.boxes.png (the input with letter boxes, RGB) and `stem`.clean.png; returns the paths."""
  image = tf.io.decode_image(data, channels=0, dtype=tf.float32, expand_animations=False)
  rgb = to_channels(image[None], 3)
  h, w = int(rgb.shape[1]), int(rgb.shape[2])
  boxes = np.asarray(prediction.boxes, np.float32).reshape(-1, 4) / np.array([h, w, h, w], np.float32)
  drawn = tf.image.draw_bounding_boxes(rgb, boxes[None], colors=np.array([_BOX_COLOR], np.float32))
  paths = [os.path.join(out_dir, f"{stem}.boxes.png"), os.path.join(out_dir, f"{stem}.clean.png")]
  tf.io.write_file(paths[0], _to_png(drawn[0]))
  tf.io.write_file(paths[1], _to_png(tf.convert_to_tensor(prediction.clean)))
  return paths


def _stems(files: Sequence[str]) -> list[str]:
  """One distinct output name per file: its base name without extension, numbered when repeated."""
  seen: dict[str, int] = {}
  out = []
  for path in files:
    stem = os.path.splitext(os.path.basename(os.path.normpath(path)))[0] or "image"
    count = seen.get(stem, 0) + 1
    seen[stem] = count
    out.append(stem if count == 1 else f"{stem}_{count}")
  return out


# ------------------------------------------------------------------ predict


def predict_files(model_path: Any, files: Sequence[str], draw_dir: str | None = None,
                  batch_size: int = DEFAULT_BATCH_SIZE, max_file_bytes: int = MAX_FILE_BYTES,
                  lexicon: Any = DEFAULT_LEXICON, clean: bool = False) -> list[Prediction]:
  """Reads the text of each file; one Prediction per file, in order.

  Args:
    model_path: an exported SavedModel folder, or a model already loaded with
      tf.saved_model.load (or :func:`load_model`).
    files: image file paths (PNG, JPEG, GIF, BMP).
    draw_dir: if set, for each file read, ``<name>.boxes.png`` (the image with
      its letter boxes) and ``<name>.clean.png`` (the cleaned image) are
      written there (created if missing).
    batch_size: files per call of the model.
    max_file_bytes: larger files are refused without being read.
    lexicon: the word list that corrects readings (:func:`model_lexicon`);
      None (or 'none') for the model's own reading.
    clean: also return each image's cleaned image (Prediction.clean; always
      with draw_dir). Without it the model's clean-image decoder is not run
      (the read_text signature), about a fifth less work.

  Raises:
    PredictError: the model cannot be loaded, or the word list read.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size={batch_size!r}: must be >= 1")
  model = _as_model(model_path)
  # read_text skips the clean-image decoder (models exported before it have only serving_default).
  signature = model.signatures.get("read_text") if not (draw_dir or clean) else None
  signature = signature or model.signatures["serving_default"]
  lexicon = model_lexicon(model, lexicon)
  stems = _stems(files) if draw_dir else []
  if draw_dir:
    os.makedirs(draw_dir, exist_ok=True)
  results: list[Prediction] = []
  for start in range(0, len(files), batch_size):
    chunk = list(files[start:start + batch_size])
    read = [_read(path, max_file_bytes) for path in chunk]
    readable = [i for i, r in enumerate(read) if isinstance(r, bytes)]
    served = _serve(signature, [read[i] for i in readable]) if readable else []
    outputs: dict[int, dict | str] = dict(zip(readable, served))
    for i, path in enumerate(chunk):
      out = outputs.get(i, read[i])
      pred = Prediction(file=path, error=out) if isinstance(out, str) else _prediction(path, out, lexicon)
      if draw_dir and pred.ok:
        try:
          pred.drawn = draw(read[i], pred, draw_dir, stems[start + i])
        except (tf.errors.OpError, OSError) as e:
          pred = dataclasses.replace(pred, error=f"cannot draw into {draw_dir} ({errors.one_line(e)})")
      results.append(pred)
  return results


def _stream(stream: TextIO | None, default: TextIO) -> TextIO:
  return stream if stream is not None else default


def _note_no_lexicon(model: Any, asked: Any, words: lexicon_lib.Lexicon | None, command: str, err: TextIO) -> None:
  """Says on stderr that a word list was asked for but the model cannot use one."""
  if words is None and asked is not None and str(asked).strip().lower() != lexicon_lib.NONE:
    if model_charset(model) is None:
      print(f"ocr-tf {command}: this model does not export text_log_probs (exported by an older ocr_tf): "
            "readings are not corrected with the word list", file=err)


def cmd_predict(model_path: str, files: Sequence[str], as_json: bool = False, draw_dir: str | None = None,
                batch_size: int = DEFAULT_BATCH_SIZE, out: TextIO | None = None,
                err: TextIO | None = None, lexicon: Any = DEFAULT_LEXICON) -> int:
  """Prints what the model reads in each file; returns the exit code.

  Output, one line per image on stdout: ``file<TAB>text<TAB>confidence<TAB>angle``
  (confidence 4 decimals, angle in degrees, 2 decimals), or with `as_json` one
  JSON object per file with file, text, confidence, angle, image_size, boxes,
  box_scores (and raw_text when the word list `lexicon` changed the reading,
  and drawn); a file that failed gets ``{"file", "error"}``.
  Every failed file also gets one line on stderr: ``ocr-tf predict: FILE: PROBLEM``.

  Returns:
    0 if every file was read, 1 if any failed, 2 if nothing could be done
    (no files, model or word list not loadable, draw_dir not writable).
  """
  out, err = _stream(out, sys.stdout), _stream(err, sys.stderr)
  if not files:
    print("ocr-tf predict: no image files given", file=err)
    return 2
  try:
    model = load_model(model_path)
    words = model_lexicon(model, lexicon)
    _note_no_lexicon(model, lexicon, words, "predict", err)
    if draw_dir:
      os.makedirs(draw_dir, exist_ok=True)
  except PredictError as e:
    print(f"ocr-tf predict: {e}", file=err)
    return 2
  except OSError as e:
    print(f"ocr-tf predict: cannot create {draw_dir} ({e.strerror or e})", file=err)
    return 2
  failed = 0
  for pred in predict_files(model, files, draw_dir=draw_dir, batch_size=batch_size, lexicon=words):
    if not pred.ok:
      failed += 1
      print(f"ocr-tf predict: {pred.file}: {pred.error}", file=err)
    if as_json:
      print(json.dumps(pred.to_json(), ensure_ascii=False), file=out)
    elif pred.ok:
      print(f"{pred.file}\t{pred.text}\t{pred.confidence:.4f}\t{pred.angle:.2f}", file=out)
  out.flush()
  return 1 if failed else 0


# ------------------------------------------------------------------ evaluate


def edit_distance(a: str, b: str) -> int:
  """Levenshtein distance (insertions, deletions, substitutions) between two strings."""
  if len(a) < len(b):
    a, b = b, a
  previous = list(range(len(b) + 1))
  for i, ca in enumerate(a, 1):
    current = [i]
    for j, cb in enumerate(b, 1):
      current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
    previous = current
  return previous[-1]


def read_labels(data_dir: str) -> tuple[list[tuple[str, str, int]], list[str]]:
  """The rows of data_dir/labels.tsv as (path, text, line number), and the problems of bad rows (labels.read_labels).

  Raises:
    PredictError: no labels.tsv, or it cannot be read as UTF-8.
  """
  try:
    return labels_lib.read_labels(data_dir)
  except labels_lib.LabelsError as e:
    raise PredictError(str(e)) from None


def evaluate(model_path: Any, data_dir: str, batch_size: int = DEFAULT_BATCH_SIZE,
             lexicon: Any = DEFAULT_LEXICON) -> dict[str, Any]:
  """Word accuracy, CER and speed of an exported model on a labelled folder.

  Args:
    model_path: a SavedModel folder or a loaded SavedModel.
    data_dir: holds labels.tsv (``filename<TAB>text`` per line) and the images.
    batch_size: files per call of the model.
    lexicon: the word list that corrects readings (see :func:`predict_files`).

  Returns:
    dict: word_accuracy (exact matches / n), cer (summed edit distances /
    summed label lengths), raw_cer (the same for the model's own readings,
    before the word list), images_per_second (n over the wall time of
    reading and predicting), n (images read), errors (bad rows plus files
    that could not be read; not in the rates), problems (one line each),
    seconds. Rates are nan when n is 0.

  Raises:
    PredictError: no labels.tsv, or the model or word list cannot be loaded.
  """
  rows, problems = read_labels(data_dir)
  model = _as_model(model_path)
  words = model_lexicon(model, lexicon)
  start = time.perf_counter()
  preds = predict_files(model, [p for p, _, _ in rows], batch_size=batch_size, lexicon=words)
  seconds = time.perf_counter() - start
  n = correct = edits = raw_edits = chars = 0
  for (path, truth, number), pred in zip(rows, preds):
    if not pred.ok:
      problems.append(f"{os.path.relpath(path, data_dir)} ({LABELS_FILE}:{number}): {pred.error}")
      continue
    n += 1
    correct += pred.text == truth
    edits += edit_distance(pred.text, truth)
    raw_edits += edit_distance(pred.raw_text, truth)
    chars += len(truth)
  nan = float("nan")
  return {
      "word_accuracy": correct / n if n else nan,
      "cer": edits / max(chars, 1) if n else nan,
      "raw_cer": raw_edits / max(chars, 1) if n else nan,
      "images_per_second": n / seconds if n and seconds > 0 else 0.0,
      "n": n,
      "errors": len(problems),
      "problems": problems,
      "seconds": seconds,
  }


def format_metrics(result: dict[str, Any]) -> str:
  """The one-line summary: word_accuracy=... cer=... raw_cer=... images_per_second=... n=... errors=..."""
  return (f"word_accuracy={result['word_accuracy']:.4f} cer={result['cer']:.4f} raw_cer={result['raw_cer']:.4f} "
          f"images_per_second={result['images_per_second']:.1f} n={result['n']} errors={result['errors']}")


def cmd_evaluate(model_path: str, data_dir: str, batch_size: int = DEFAULT_BATCH_SIZE,
                 out: TextIO | None = None, err: TextIO | None = None, lexicon: Any = DEFAULT_LEXICON) -> int:
  """Prints the metrics line of :func:`evaluate` on stdout and each problem on stderr.

  Returns:
    0 if every row was evaluated, 1 if some rows or files failed (or none was
    left), 2 if the evaluation could not run (labels, model or word list missing).
  """
  out, err = _stream(out, sys.stdout), _stream(err, sys.stderr)
  try:
    read_labels(data_dir)  # before the model loads: a wrong folder fails at once
    model = load_model(model_path)
    words = model_lexicon(model, lexicon)
    _note_no_lexicon(model, lexicon, words, "evaluate", err)
    result = evaluate(model, data_dir, batch_size=batch_size, lexicon=words)
  except PredictError as e:
    print(f"ocr-tf evaluate: {e}", file=err)
    return 2
  for problem in result["problems"]:
    print(f"ocr-tf evaluate: {problem}", file=err)
  print(format_metrics(result), file=out)
  out.flush()
  return 1 if result["errors"] or not result["n"] else 0

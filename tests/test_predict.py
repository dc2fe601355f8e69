"""predict_files / cmd_predict / evaluate / cmd_evaluate on an exported tiny model, with every kind of bad input."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from ocr_tf import input_pipeline, lexicon, predict, serving
from test_export import pil_bytes, png_header, sharp_model, tiny_config

H, W = 32, 128


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
  config = tiny_config()
  path = str(tmp_path_factory.mktemp("predict") / "model")
  return serving.export_saved_model(sharp_model(config), config, path)


@pytest.fixture(scope="module")
def loaded(model_dir):
  return predict.load_model(model_dir)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
  """Generator images 0..3 as uint8 [4, H, W, 1]."""
  batch = input_pipeline.make_generator(tiny_config().data).generate([0, 1, 2, 3])
  return tf.image.convert_image_dtype(batch["image"], tf.uint8, saturate=True).numpy()


def write(path, data: bytes) -> str:
  with open(path, "wb") as f:
    f.write(data)
  return str(path)


@pytest.fixture(scope="module")
def files(images, tmp_path_factory) -> dict[str, str]:
  """Good and bad input files by role."""
  d = tmp_path_factory.mktemp("inputs")
  png = tf.io.encode_png(images[0]).numpy()
  out = {f"good{i}": write(d / f"good{i}.png", tf.io.encode_png(images[i]).numpy()) for i in range(4)}
  out.update(
      missing=str(d / "missing.png"),
      empty=write(d / "empty.png", b""),
      text=write(d / "notes.png", b"this is a text file, not an image\n"),
      truncated=write(d / "truncated.png", png[:len(png) // 2]),
      tiny=write(d / "tiny.png", tf.io.encode_png(np.full((1, 1, 1), 255, np.uint8)).numpy()),
      huge=write(d / "huge.png", png_header(20000, 20000)),
      sixteen=write(d / "sixteen.png", tf.io.encode_png(images[0].astype(np.uint16) * 257).numpy()),
      jpeg=write(d / "photo.jpg", tf.io.encode_jpeg(images[1]).numpy()),
      gif=write(d / "good0.gif", pil_bytes(images[0][..., 0], "GIF")),
      folder=str(d),
  )
  return out


EXPECTED_ERRORS = {
    "missing": "no such file",
    "empty": "empty input (0 bytes)",
    "text": "not a decodable image",
    "truncated": "corrupt or truncated image data",
    "tiny": "image too small (1x1 pixels",
    "huge": "image too large (20000x20000",
    "folder": "is a folder",
}


@pytest.fixture(scope="module")
def reference(loaded, files) -> dict[str, bytes]:
  """The text serving_default reads from each good file, called directly."""
  roles = ["good0", "good1", "good2", "good3"]
  items = [open(files[r], "rb").read() for r in roles]
  out = loaded.signatures["serving_default"](image_bytes=tf.constant(items))
  return {r: t.decode() for r, t in zip(roles, out["text"].numpy())}


ORDER = ["good0", "missing", "empty", "good1", "text", "truncated", "tiny", "huge", "sixteen", "folder",
         "jpeg", "gif", "good2", "good3"]


def test_predict_files_reports_each_bad_file_and_reads_the_others(loaded, files, reference):
  paths = [files[r] for r in ORDER]
  preds = predict.predict_files(loaded, paths, batch_size=5)
  assert [p.file for p in preds] == paths
  by_role = dict(zip(ORDER, preds))
  for role, expected in EXPECTED_ERRORS.items():
    assert by_role[role].error is not None and expected in by_role[role].error, (role, by_role[role].error)
    assert by_role[role].text == ""
  for role in ("good0", "good1", "good2", "good3"):
    assert by_role[role].ok and by_role[role].text == reference[role], role
    assert by_role[role].image_size == (H, W)
  # A 16-bit PNG and a GIF of image 0 are read like image 0.
  for role in ("sixteen", "gif"):
    assert by_role[role].ok and by_role[role].text == reference["good0"], role
  assert by_role["jpeg"].ok
  good = by_role["good0"]
  assert good.boxes and len(good.boxes) == len(good.box_scores)
  boxes = np.array(good.boxes)
  assert (boxes[:, 0] <= boxes[:, 2]).all() and boxes.max() <= W
  assert good.clean is None  # read_text: the clean-image decoder was not run
  [full] = predict.predict_files(loaded, [files["good0"]], clean=True)  # serving_default
  assert full.clean.shape == (H, W, 1)
  assert full.text == good.text
  np.testing.assert_allclose(full.boxes, good.boxes, atol=1e-3)
  assert abs(full.angle - good.angle) < 1e-4 and abs(full.confidence - good.confidence) < 1e-5


def test_predict_files_takes_a_path(model_dir, files, reference):
  preds = predict.predict_files(model_dir, [files["good1"]])
  assert preds[0].text == reference["good1"]


class _FailingSignature:
  """serving_default that raises for any batch holding more than one image or the bytes b'BOOM'."""

  def __init__(self, signature):
    self.signature = signature
    self.calls = []

  def __call__(self, image_bytes):
    items = list(image_bytes.numpy())
    self.calls.append(len(items))
    if len(items) > 1 or b"BOOM" in items[0]:
      raise tf.errors.InvalidArgumentError(None, None, "decoder exploded\nsecond line")
    return self.signature(image_bytes=image_bytes)


class _Model:

  def __init__(self, loaded):
    self.signatures = {"serving_default": _FailingSignature(loaded.signatures["serving_default"])}


def test_a_failing_batch_is_retried_file_by_file(loaded, files, reference, tmp_path):
  boom = write(tmp_path / "boom.png", b"\x89PNG\r\n\x1a\nBOOM" + b"\0" * 40)
  model = _Model(loaded)
  preds = predict.predict_files(model, [files["good0"], boom, files["good1"]], batch_size=8)
  assert model.signatures["serving_default"].calls == [3, 1, 1, 1]
  assert preds[0].text == reference["good0"] and preds[2].text == reference["good1"]
  assert preds[1].error == "the model failed on this image (decoder exploded)"


def test_cmd_predict_tsv(model_dir, files, reference, capsys):
  paths = [files[r] for r in ORDER]
  code = predict.cmd_predict(model_dir, paths, as_json=False, draw_dir=None)
  captured = capsys.readouterr()
  assert code == 1
  lines = captured.out.splitlines()
  assert len(lines) == len(ORDER) - len(EXPECTED_ERRORS)
  fields = [line.split("\t") for line in lines]
  assert all(len(f) == 4 for f in fields)
  assert fields[0][0] == files["good0"] and fields[0][1] == reference["good0"]
  assert re.fullmatch(r"\d\.\d{4}", fields[0][2]) and re.fullmatch(r"-?\d+\.\d{2}", fields[0][3])
  errors = captured.err.strip().splitlines()
  assert len(errors) == len(EXPECTED_ERRORS)
  for role, expected in EXPECTED_ERRORS.items():
    line = next(e for e in errors if e.startswith(f"ocr-tf predict: {files[role]}: "))
    assert expected in line, line


def test_cmd_predict_json_and_exit_zero(model_dir, files, reference, capsys):
  code = predict.cmd_predict(model_dir, [files["good0"], files["good1"]], as_json=True, draw_dir=None)
  captured = capsys.readouterr()
  assert code == 0 and captured.err == ""
  objects = [json.loads(line) for line in captured.out.splitlines()]
  assert [o["text"] for o in objects] == [reference["good0"], reference["good1"]]
  assert set(objects[0]) >= {"file", "text", "confidence", "angle", "boxes", "box_scores", "image_size"}
  assert objects[0]["image_size"] == [H, W]
  code = predict.cmd_predict(model_dir, [files["good0"], files["empty"]], as_json=True, draw_dir=None)
  captured = capsys.readouterr()
  objects = [json.loads(line) for line in captured.out.splitlines()]
  assert code == 1 and objects[1] == {"file": files["empty"], "error": "empty input (0 bytes)"}


def test_cmd_predict_draw(model_dir, files, tmp_path, capsys):
  out_dir = tmp_path / "drawn"
  paths = [files["good0"], files["gif"], files["jpeg"], files["missing"]]
  code = predict.cmd_predict(model_dir, paths, as_json=False, draw_dir=str(out_dir))
  capsys.readouterr()
  assert code == 1
  names = sorted(os.listdir(out_dir))
  assert names == ["good0.boxes.png", "good0.clean.png", "good0_2.boxes.png", "good0_2.clean.png",
                   "photo.boxes.png", "photo.clean.png"]
  boxes = tf.io.decode_png(tf.io.read_file(str(out_dir / "good0.boxes.png"))).numpy()
  clean = tf.io.decode_png(tf.io.read_file(str(out_dir / "good0.clean.png"))).numpy()
  assert boxes.shape == (H, W, 3) and clean.shape == (H, W, 1)
  assert ((boxes[..., 0] > 200) & (boxes[..., 1] < 60)).any(), "no red box drawn"


def test_cmd_predict_cannot_run(model_dir, files, tmp_path, capsys):
  assert predict.cmd_predict(str(tmp_path / "nowhere"), [files["good0"]]) == 2
  assert "no SavedModel folder" in capsys.readouterr().err
  assert predict.cmd_predict(model_dir, []) == 2
  assert "no image files" in capsys.readouterr().err


# ------------------------------------------------------------------ evaluate


def test_edit_distance():
  assert predict.edit_distance("", "abc") == 3
  assert predict.edit_distance("kitten", "sitting") == 3
  assert predict.edit_distance("same", "same") == 0


def test_evaluate_counts_rates_and_errors(loaded, model_dir, files, reference, tmp_path, capsys):
  data = tmp_path / "eval"
  data.mkdir()
  for role in ("good0", "good1", "good2"):
    write(data / f"{role}.png", open(files[role], "rb").read())
  write(data / "bad.png", b"junk")
  wrong = reference["good2"] + "Zz"
  rows = [f"good0.png\t{reference['good0']}", f"good1.png\t{reference['good1']}", "", f"good2.png\t{wrong}",
          "no tab on this row", "missing.png\tabc", "bad.png\tabc", "\tnoname"]
  (data / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
  result = predict.evaluate(loaded, str(data))
  assert result["n"] == 3 and result["errors"] == 4
  assert result["word_accuracy"] == pytest.approx(2 / 3)
  chars = len(reference["good0"]) + len(reference["good1"]) + len(wrong)
  assert result["cer"] == pytest.approx(2 / chars)
  assert result["images_per_second"] > 0
  problems = "\n".join(result["problems"])
  assert "labels.tsv:5: expected filename<TAB>text" in problems
  assert "labels.tsv:8: empty filename" in problems
  assert "missing.png (labels.tsv:6): no such file" in problems
  assert "bad.png (labels.tsv:7): not a decodable image" in problems

  assert predict.cmd_evaluate(model_dir, str(data)) == 1
  captured = capsys.readouterr()
  assert re.fullmatch(r"word_accuracy=0\.6667 cer=\d\.\d{4} raw_cer=\d\.\d{4} images_per_second=\d+\.\d n=3 "
                      r"errors=4\n",
                      captured.out), captured.out
  assert len(captured.err.splitlines()) == 4
  assert all(line.startswith("ocr-tf evaluate: ") for line in captured.err.splitlines())


def test_cmd_evaluate_clean_folder_and_missing_labels(model_dir, files, reference, tmp_path, capsys):
  data = tmp_path / "eval"
  data.mkdir()
  write(data / "a.png", open(files["good3"], "rb").read())
  (data / "labels.tsv").write_text(f"a.png\t{reference['good3']}\r\n", encoding="utf-8")
  assert predict.cmd_evaluate(model_dir, str(data)) == 0
  captured = capsys.readouterr()
  assert captured.out.startswith("word_accuracy=1.0000 cer=0.0000 ") and captured.err == ""
  assert predict.cmd_evaluate(model_dir, str(tmp_path / "nothing")) == 2
  assert "labels.tsv: no such file" in capsys.readouterr().err


def test_word_list_corrects_readings_of_an_export(loaded, model_dir, files, reference, tmp_path, capsys):
  """A word one letter from the model's reading replaces it when the list's bonus is large enough."""
  charset = predict.model_charset(loaded)
  role, read = next((r, t) for r, t in sorted(reference.items()) if len(t) >= 2)
  word = read[:-1] + ("a" if read[-1] != "a" else "b")
  eager = lexicon.Lexicon([word], charset, bonus=1000.0)
  strict = lexicon.Lexicon([word], charset, bonus=0.0)
  [fixed] = predict.predict_files(loaded, [files[role]], lexicon=eager)
  assert (fixed.text, fixed.raw_text) == (word, read)
  assert 0.0 <= fixed.confidence < 1.0
  [kept] = predict.predict_files(loaded, [files[role]], lexicon=strict)
  [plain] = predict.predict_files(loaded, [files[role]], lexicon=None)
  assert kept.text == plain.text == plain.raw_text == read
  # Through evaluate: cer counts the corrected text, raw_cer the model's reading.
  data = tmp_path / "eval"
  data.mkdir()
  write(data / "a.png", open(files[role], "rb").read())
  (data / "labels.tsv").write_text(f"a.png\t{word}\n", encoding="utf-8")
  result = predict.evaluate(loaded, str(data), lexicon=eager)
  assert result["cer"] == 0.0 and result["raw_cer"] == pytest.approx(1 / len(word))
  with pytest.raises(predict.PredictError, match="another charset"):
    predict.predict_files(loaded, [files[role]], lexicon=lexicon.Lexicon([word], charset[::-1]))
  # A word list that cannot be read stops the command before any image is read.
  assert predict.cmd_predict(model_dir, [files[role]], lexicon=str(tmp_path / "nowords.txt")) == 2
  assert predict.cmd_evaluate(model_dir, str(data), lexicon=str(tmp_path / "nowords.txt")) == 2
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 2 and all("--lexicon:" in line and "nowords.txt: no such file" in line for line in err), err


def test_blank_images_read_as_empty_text_with_no_confidence(loaded, tmp_path):
  """A sharp untrained model reads something in any image; blank ones must give '' with confidence 0."""
  files = []
  for name, array in (("white", np.full((32, 100, 1), 255, np.uint8)), ("black", np.zeros((20, 60, 3), np.uint8)),
                      ("grey", np.full((40, 40, 1), 128, np.uint8))):
    path = str(tmp_path / f"{name}.png")
    with open(path, "wb") as f:
      f.write(tf.io.encode_png(array).numpy())
    files.append(path)
  preds = predict.predict_files(loaded, files)
  assert [(p.ok, p.text, p.confidence) for p in preds] == [(True, "", 0.0)] * 3


def test_fuzzed_image_bytes_never_crash_or_hang(model_dir):
  """A few hundred of benchmarks/fuzz_serving.py's inputs (the script runs 10,000) and the CLI on 40 of them."""
  from benchmarks import fuzz_serving
  figures = fuzz_serving.fuzz(model_dir, inputs=300, cli_inputs=40, seed=1, max_seconds=5.0, log=lambda _: None)
  assert figures["ok"], figures["problems"]
  assert figures["errors"] > 150 and figures["read"] > 20  # both kinds were exercised
  assert figures["cli_exit"] == 1 and figures["cli_lines"] == 40
  assert figures["rss_peak_mb"] - figures["rss_start_mb"] < 300


def test_default_model_is_used_without_model(capsys, monkeypatch, tmp_path):
  """Without --model, predict reads with the shipped model; without one installed, one clear line."""
  monkeypatch.setattr(predict, "DEFAULT_MODEL", str(tmp_path / "none"))
  with pytest.raises(predict.PredictError) as e:
    predict.default_model_path()
  assert "default model is missing" in str(e.value) and "--model" in str(e.value)


def _word_png(text: str, path: str, font: str, size: int = 15, angle: float = 0.0) -> None:
  """A word as a document gives it: Pillow text, tight box (ascent + descent), optionally turned."""
  from PIL import Image, ImageDraw, ImageFont
  face = ImageFont.truetype(font, size)
  ascent, descent = face.getmetrics()
  width = int(face.getlength(text)) + 2
  image = Image.new("L", (width, ascent + descent), 255)
  ImageDraw.Draw(image).text((1, 0), text, font=face, fill=0)
  if angle:
    image = image.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=255)
  image.save(path)


DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@pytest.mark.skipif(not os.path.isfile(predict.DEFAULT_MODEL + "/saved_model.pb"), reason="no shipped model")
@pytest.mark.skipif(not os.path.isfile(DEJAVU), reason="needs Debian's fonts-dejavu-core (.ci/run installs it)")
def test_shipped_model_reads_words_without_model_flag(tmp_path, capsys):
  words = ["Training", "without", "collected", "data", "Model2026"]
  files = []
  for k, word in enumerate(words):
    path = str(tmp_path / f"w{k}.png")
    _word_png(word, path, DEJAVU, size=14 + 3 * k, angle=(-3.0 if k == 2 else 0.0))
    files.append(path)
  blank = str(tmp_path / "blank.png")
  with open(blank, "wb") as f:
    f.write(tf.io.encode_png(np.full((20, 80, 1), 250, np.uint8)).numpy())
  import subprocess
  import sys
  from conftest import ROOT
  result = subprocess.run([sys.executable, "-m", "ocr_tf.main", "predict", *files, blank], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode == 0, result.stderr[-3000:]
  got = [line.split("\t") for line in result.stdout.strip().splitlines()]
  assert [g[0] for g in got] == files + [blank]
  # Four of the five exactly, and at most one letter wrong in all: the shipped model reads a DejaVu Sans
  # capital T at 12-14 px as I or l now and then (MODEL_CARD.md lists it).
  read = [g[1] for g in got[:-1]]
  assert sum(r == w for r, w in zip(read, words)) >= 4, got
  assert sum(predict.edit_distance(r, w) for r, w in zip(read, words)) <= 1, got
  assert got[-1][1:3] == ["", "0.0000"]  # blank: empty text, no confidence

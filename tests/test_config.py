"""Config validation: each bad value stops with one line naming the field and the value."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, data_variant, one_line
from ocr_tf import atlas as atlas_lib
from ocr_tf import config_base, input_pipeline, synth
from ocr_tf.config_base import ConfigError

PROBABILITIES = ("corpus_probability", "morph_probability", "invert_probability", "blur_probability",
                 "illumination_probability", "downscale_probability", "jpeg_probability", "digits_probability")


def check_bad_value(field: str, value, **others) -> None:
  d = data_variant(**{field: value}, **others)
  with pytest.raises(ConfigError) as e:
    config_base.validate_data(d)
  one_line(e, f"data.{field}={value!r}")


def test_shipped_configs_are_valid():
  import configs.default  # pylint: disable=import-outside-toplevel
  import configs.seed  # pylint: disable=import-outside-toplevel
  import configs.tiny  # pylint: disable=import-outside-toplevel
  import configs.words  # pylint: disable=import-outside-toplevel
  for module in (configs.tiny, configs.default, configs.seed, configs.words):
    config_base.validate_config(module.get_config())


@pytest.mark.parametrize("field,value", [
    ("height", 0), ("height", -32), ("width", 0), ("width", -1), ("height", 5000),
    ("channels", 2), ("max_length", 0), ("min_length", 0), ("max_overlap", 0),
    ("seed", -1), ("position", "middle"), ("max_angle", 60.0), ("max_shear", -1.0),
    ("font_px", (30.0, 20.0)), ("jpeg_quality", (0, 60)), ("blur_sigma", (0.0, 9.0)),
    ("paper_level", (0.5, 1.5)), ("paper_tint", 2.0), ("morph_close_open", (-5, 1)),
    ("min_fit_em_px", 0.0), ("charset", "abca"), ("charset", ""),
    ("short_length", (0, 3)), ("short_length", (4, 2)), ("short_probability", 1.5),
    ("low_res_noise", (0.0, 1.5)), ("low_res_noise", (-0.1, 0.1)),
    ("digits_length", (0, 3)), ("digits_length", (5, 2)),
])
def test_bad_value(field, value):
  check_bad_value(field, value)


@pytest.mark.parametrize("field", PROBABILITIES)
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_probability_outside_unit_interval(field, value, tmp_path):
  corpus = tmp_path / "words.txt"
  corpus.write_text("word\n")
  check_bad_value(field, value, corpus=str(corpus))


def test_min_length_above_max_length():
  with pytest.raises(ConfigError) as e:
    config_base.validate_data(data_variant(min_length=9))
  one_line(e, "data.min_length=9", "data.max_length=8")


def test_corpus_probability_needs_a_corpus():
  check_bad_value("corpus_probability", 0.5)


def test_missing_corpus_file(tmp_path):
  check_bad_value("corpus", str(tmp_path / "no_such_words.txt"))


def test_corpus_with_no_usable_word(atlas, tmp_path):
  path = tmp_path / "words.txt"
  path.write_text("h\u00e9llo a-b waytoolongforeight\n", encoding="utf-8")
  with pytest.raises(ConfigError) as e:
    synth.Generator(data_variant(corpus=str(path), corpus_probability=1.0), atlas, 0)
  one_line(e, f"data.corpus={str(path)!r}")


def test_charset_character_missing_from_atlas(atlas):
  charset = "ab\u00e9\u4e2d"
  with pytest.raises(ConfigError) as e:
    synth.Generator(data_variant(charset=charset), atlas, 0)
  one_line(e, f"data.charset={charset!r}", "'\u00e9\u4e2d'")


def test_max_length_that_cannot_fit(atlas):
  with pytest.raises(ConfigError) as e:
    synth.Generator(data_variant(width=32, max_length=200), atlas, 0)
  one_line(e, "data.max_length=200", "data.width=32")


def test_line_taller_than_the_image(atlas):
  with pytest.raises(ConfigError) as e:
    synth.Generator(data_variant(height=8, min_fit_em_px=10.0), atlas, 0)
  one_line(e, "data.height=8")


def test_valid_variants_build(atlas):
  synth.Generator(data_variant(width=32, max_length=2), atlas, 0)
  synth.Generator(data_variant(charset="0123456789 "), atlas, 0)


@pytest.fixture(scope="module")
def bad_atlas_files(tmp_path_factory):
  folder = tmp_path_factory.mktemp("atlases")
  text = folder / "notes.npz"
  text.write_text("not an atlas\n")
  truncated = folder / "truncated.npz"
  with open(atlas_lib.DEFAULT_ATLAS_PATH, "rb") as f:
    truncated.write_bytes(f.read(4096))
  return {"text": str(text), "truncated": str(truncated), "folder": str(folder),
          "missing": str(folder / "missing.npz")}


@pytest.mark.parametrize("kind", ["text", "truncated", "folder", "missing"])
def test_unreadable_atlas(bad_atlas_files, kind):
  path = bad_atlas_files[kind]
  with pytest.raises(atlas_lib.AtlasError) as e:
    input_pipeline.make_generator(data_variant(atlas=path))
  one_line(e, path)


# ------------------------------------------------------------------ CLI

def run_cli(*args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="2")
  return subprocess.run([sys.executable, "-m", "ocr_tf.main", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300, check=False)


def the_error_line(result: subprocess.CompletedProcess) -> str:
  """The one line the command writes about the problem (TensorFlow's start-up log aside)."""
  assert result.returncode != 0
  assert "Traceback" not in result.stderr, result.stderr
  lines = [ln for ln in result.stderr.splitlines() if ln.startswith("ocr-tf:")]
  assert len(lines) == 1, result.stderr
  return lines[0]


def test_cli_reports_a_bad_value(tmp_path):
  out = tmp_path / "preview"
  result = run_cli("preview", "--config=configs/tiny.py", "--config.data.min_length=9", f"--out={out}")
  line = the_error_line(result)
  assert "data.min_length=9" in line and "data.max_length=8" in line
  assert not out.exists()


def test_cli_reports_a_bad_atlas(tmp_path):
  atlas = tmp_path / "atlas.npz"
  shutil.copy(os.path.join(ROOT, "configs", "tiny.py"), atlas)
  result = run_cli("preview", "--config=configs/tiny.py", f"--config.data.atlas={atlas}",
                   f"--out={tmp_path / 'preview'}")
  line = the_error_line(result)
  assert str(atlas) in line and "not an .npz" in line


# ------------------------------------------------------------------ fuzzing


FUZZ_VALUES = (None, "", "x", True, False, -1, 0, 1, 10**12, -10**12, 0.5, -0.5, 1e300, float("nan"),
               float("inf"), (), (1,), (2, 1), (1, 2, 3), (-5, 5), ("a", "b"), [0.0, 1e9], {"a": 1})


def _leaves(block, prefix=""):
  for key in block.keys():
    value = block[key]
    if hasattr(value, "keys"):
      yield from _leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}"


def _set(config, dotted: str, value) -> None:
  *path, last = dotted.split(".")
  node = config
  for part in path:
    node = node[part]
  node[last] = value


@pytest.mark.parametrize("block", ["data", "model", "train"])
def test_fuzzed_field_values_stop_with_one_line(block):
  """Every field of a block, set to each of a range of wrong types and extreme values.

  A value is either refused when set (ConfigDict's type check: the command
  line reports those as a flag error) or passes validation or stops it with
  a ConfigError of one line naming the field. Nothing else may escape.
  """
  import configs.tiny  # pylint: disable=import-outside-toplevel
  fields = list(_leaves(configs.tiny.get_config()[block], f"{block}."))
  assert len(fields) > 10
  refused = stopped = passed = 0
  for field in fields:
    for value in FUZZ_VALUES:
      config = configs.tiny.get_config()
      try:
        _set(config, field, value)
      except (TypeError, ValueError, KeyError):
        refused += 1
        continue
      try:
        config_base.validate_config(config)
      except ConfigError as e:
        message = str(e)
        assert "\n" not in message and message, (field, value, message)
        stopped += 1
        continue
      except Exception as e:  # pylint: disable=broad-except
        pytest.fail(f"{field}={value!r}: {type(e).__name__} escaped validation: {e}")
      passed += 1
  assert stopped > len(fields)  # most fields refuse most values
  assert refused + stopped + passed == len(fields) * len(FUZZ_VALUES)


def test_cli_override_of_a_wrong_type_is_one_line(tmp_path):
  args = [sys.executable, "-m", "ocr_tf.main", "preview", "--config=tiny", "--config.data.height=abc",
          f"--out={tmp_path}"]
  result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode != 0
  assert "Traceback" not in result.stderr, result.stderr[-2000:]
  lines = [ln for ln in result.stderr.splitlines() if "height" in ln]
  assert len(lines) == 1 and "abc" in lines[0], result.stderr[-2000:]



def test_frequent_probability_needs_a_frequent_word_list(tmp_path):
  check_bad_value("frequent_probability", 0.5)
  check_bad_value("frequent_probability", 1.5)


def test_missing_frequent_word_list(tmp_path):
  check_bad_value("frequent_words", str(tmp_path / "no_such_list.tsv"))


def test_config_files_load_and_validate_without_tensorflow():
  """The CLI checks a config before it imports TensorFlow, so a bad value is reported at once."""
  code = textwrap.dedent("""\
      import glob, importlib, os, sys
      from ocr_tf import config_base
      names = sorted(os.path.basename(p)[:-3] for p in glob.glob("configs/*.py") if not p.endswith("__init__.py"))
      for name in names:
        config_base.validate_config(importlib.import_module("configs." + name).get_config())
      bad = importlib.import_module("configs.tiny").get_config()
      bad.model.text_width = 3
      try:
        config_base.validate_config(bad)
      except config_base.ConfigError as e:
        print(e)
      print(len(names), "tensorflow" in sys.modules, "keras" in sys.modules)
      """)
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert lines[0] == "model.text_width=3: must be even for a bidirectional LSTM"
  count, tensorflow, keras = lines[1].split()
  assert int(count) >= 5 and (tensorflow, keras) == ("False", "False"), lines

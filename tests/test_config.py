"""Config validation: each bad value stops with one line naming the field and the value."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import textwrap

import ml_collections
import pytest

from conftest import ROOT, data_variant, one_line
from ocr_tf import atlas as atlas_lib
from ocr_tf import config as config_lib
from ocr_tf import input_pipeline, synth
from ocr_tf.config import ConfigError

PROBABILITIES = ("corpus_probability", "morph_probability", "invert_probability", "blur_probability",
                 "illumination_probability", "downscale_probability", "jpeg_probability", "digits_probability")


def check_bad_value(field: str, value, **others) -> None:
  d = data_variant(**{field: value}, **others)
  with pytest.raises(ConfigError) as e:
    config_lib.validate_data(d)
  one_line(e, f"data.{field}={value!r}")


def test_shipped_configs_are_valid():
  import configs.default  # pylint: disable=import-outside-toplevel
  import configs.seed  # pylint: disable=import-outside-toplevel
  import configs.tiny  # pylint: disable=import-outside-toplevel
  import configs.words  # pylint: disable=import-outside-toplevel
  for module in (configs.tiny, configs.default, configs.seed, configs.words):
    config_lib.validate_config(module.get_config())


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
    config_lib.validate_data(data_variant(min_length=9))
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
        config_lib.validate_config(config)
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
      from ocr_tf import assets, config_base, errors
      from ocr_tf import config as config_lib
      names = sorted(os.path.basename(p)[:-3] for p in glob.glob("configs/*.py") if not p.endswith("__init__.py"))
      for name in names:
        config_lib.checked(importlib.import_module("configs." + name).get_config())
      bad = importlib.import_module("configs.tiny").get_config()
      bad.model.text_width = 3
      try:
        config_lib.validate_config(bad)
      except config_lib.ConfigError as e:
        print(e)
      print(len(names), "tensorflow" in sys.modules, "keras" in sys.modules or "numpy" in sys.modules)
      """)
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert lines[0] == "model.text_width=3: must be even for a bidirectional LSTM"
  count, tensorflow, keras = lines[1].split()
  assert int(count) >= 5 and (tensorflow, keras) == ("False", "False"), lines


# ------------------------------------------------------------------ checked configs


def test_checked_config_reads_like_a_config_dict():
  import configs.tiny  # pylint: disable=import-outside-toplevel
  config = configs.tiny.get_config()
  c = config_lib.check(config)
  assert isinstance(c, config_lib.CheckedConfig) and isinstance(c, ml_collections.FrozenConfigDict)
  assert c.data.height == 32 and c["model"]["preset"] == "tiny" and c.train.loss.weights.ctc == 1.0
  assert "data" in c and "nope" not in c and "height" in c.data
  assert c.get("nope", 7) == 7 and c.data.get("width") == 128
  assert c.to_dict() == ml_collections.FrozenConfigDict(config).to_dict()
  assert json.loads(json.dumps(c.to_dict())) == json.loads(config.to_json_best_effort())
  text = c.to_json_best_effort(indent=2, sort_keys=True)
  assert text == config.to_json_best_effort(indent=2, sort_keys=True)
  for block in (c.data, c.model, c.train, c.train.loss, c.train.loss.weights):
    assert isinstance(block, ml_collections.FrozenConfigDict)
  with pytest.raises(AttributeError):
    c.data.height = 64
  with pytest.raises(AttributeError):
    c.train.loss.weights["ctc"] = 0.0
  config.data.height = 64  # the checked copy does not follow its source
  assert c.data.height == 32 and c.as_configdict().data.height == 32


def test_checked_config_is_checked_once():
  import configs.tiny  # pylint: disable=import-outside-toplevel
  c = config_lib.check(configs.tiny.get_config())
  assert config_lib.checked(c) is c
  assert isinstance(c.data, config_lib.CheckedConfig) and config_lib.checked_data(c.data) is c.data
  copied = copy.deepcopy(c)
  assert copied == c and copied is not c and config_lib.checked(copied) is copied
  assert config_lib.checked_data(copied.data) is copied.data
  data = config_lib.check_data(configs.tiny.get_config().data)
  assert isinstance(data, config_lib.CheckedConfig) and config_lib.checked_data(data) is data
  assert copy.deepcopy(data) == data
  with pytest.raises(ConfigError, match="config has no `data` block"):
    config_lib.checked(data)  # a data block is not a full config
  unchecked = ml_collections.FrozenConfigDict(configs.tiny.get_config())
  assert isinstance(config_lib.checked(unchecked), config_lib.CheckedConfig)
  with pytest.raises(TypeError, match="made by ocr_tf.config.check"):
    config_lib.CheckedConfig(configs.tiny.get_config(), "config", None)


def test_check_refuses_a_bad_value_with_one_line():
  with pytest.raises(ConfigError) as e:
    config_lib.check_data(data_variant(min_length=9))
  one_line(e, "data.min_length=9", "data.max_length=8")
  import configs.tiny  # pylint: disable=import-outside-toplevel
  bad = configs.tiny.get_config()
  bad.train.loss.clean_loss = "l2"
  with pytest.raises(ConfigError) as e:
    config_lib.checked(bad)
  one_line(e, "train.loss.clean_loss='l2'")


def test_generator_takes_a_checked_data_block(atlas, tiny_gen):
  gen = synth.Generator(config_lib.check_data(data_variant()), atlas, 0)
  assert config_lib.checked_data(gen.config) is gen.config
  a, b = gen.sample(3), tiny_gen.sample(3)
  for key in ("image", "clean", "labels", "letter_quads"):
    assert a[key].numpy().tobytes() == b[key].numpy().tobytes(), key
  assert input_pipeline.make_generator(data_variant()).config.to_dict() == gen.config.to_dict()


# ------------------------------------------------------------------ configs of earlier versions


def _saved(config) -> dict:
  """A config as train.py and export.py write it to config.json."""
  return json.loads(config.to_json_best_effort(indent=2, sort_keys=True))


def test_upgrade_of_a_current_file_is_the_same_config():
  import configs.words  # pylint: disable=import-outside-toplevel
  config = configs.words.get_config()
  upgraded = config_lib.upgrade(_saved(config))
  assert upgraded == config  # tuples again, where JSON gave lists
  assert config_lib.check(upgraded) == config_lib.check(config)
  with open(os.path.join(ROOT, "ocr_tf", "assets", "default_model", "assets", "config.json"), encoding="utf-8") as f:
    shipped = json.load(f)
  assert _saved(config_lib.check(config_lib.upgrade(shipped))) == shipped


# Fields added after the first version, with the value that keeps what older runs did. Before ocr_tf.config.upgrade
# filled them, code read them with .get(field, this value) or checked them only when present: these must be (and
# are) the current defaults.
ADDED_FIELDS = {
    "data.corpus_upper_probability": 0.0, "data.corpus_title_probability": 0.0, "data.short_probability": 0.0,
    "data.short_length": (1, 4), "data.digits_probability": 0.0, "data.digits_length": (1, 6),
    "data.frequent_words": "", "data.frequent_probability": 0.0, "data.real_dir": "", "data.real_ratio": 0.0,
    "data.real_validation_dir": "", "data.data_service_address": "", "data.data_service_on_loss": "local",
    "data.data_service_lookahead": 32, "data.data_service_timeout": 60.0, "data.crop_box": False,
    "data.crop_ascent_em": (0.68, 0.8), "data.crop_descent_em": (0.18, 0.28), "data.shear_right_only": False,
    "data.shear_probability": 1.0, "data.italic_probability": -1.0, "data.downscale_factor": (2.0, 2.0),
    "data.low_res_noise": (0.0, 0.0), "data.low_res_noise_after_contrast": False, "data.blur_at_low_res": False,
    "model.angle_pool": "average", "model.angle_branch": (), "train.init_from": "", "train.trainable": "",
    "train.log_indices": False, "train.deterministic": False,
}


def test_upgrade_fills_fields_an_older_file_lacks():
  import configs.tiny  # pylint: disable=import-outside-toplevel
  saved = _saved(configs.tiny.get_config())
  for dotted in ADDED_FIELDS:
    block, field = dotted.split(".")
    del saved[block][field]
  del saved["train"]["loss"]["clean_loss"]
  upgraded = config_lib.upgrade(saved)
  for dotted, value in ADDED_FIELDS.items():
    block, field = dotted.split(".")
    assert upgraded[block][field] == value, dotted
  assert upgraded.train.loss.clean_loss == "l1"
  assert upgraded.model.widths == (16, 32, 48, 96) and upgraded.model.letter_width == 24  # tiny, as saved
  assert upgraded == configs.tiny.get_config()  # every added field at its default: the same config
  config_lib.check(upgraded)


@pytest.mark.parametrize("change,message", [
    (lambda s: s["data"].update(colour="red"), "data.colour='red': not a field of this ocr_tf"),
    (lambda s: s["train"]["loss"].update(huber=1.0), "train.loss.huber=1.0: not a field of this ocr_tf"),
    (lambda s: s.update(eval={}), "config.eval: not a block"),
    (lambda s: s.pop("model"), "config.model=None: expected the model block"),
    (lambda s: s["train"].update(loss=3), "train.loss=3: expected a block of fields"),
])
def test_upgrade_refuses_what_it_does_not_know(change, message):
  import configs.tiny  # pylint: disable=import-outside-toplevel
  saved = _saved(configs.tiny.get_config())
  change(saved)
  with pytest.raises(ConfigError) as e:
    config_lib.upgrade(saved)
  one_line(e, message)


# ------------------------------------------------------------------ presets, shipped files, helpers


def test_presets_table():
  assert config_lib.PRESETS == ("tiny", "default", "large")
  widths = [config_lib.model_config(p).widths for p in config_lib.PRESETS]
  assert widths == [(16, 32, 48, 64), (32, 64, 128, 192), (64, 128, 256, 384)]
  for preset in config_lib.PRESETS:
    m = config_lib.model_config(preset)
    assert m.preset == preset
    config_lib.validate(m, config_lib.data_config())
    assert config_lib.output_strides(m) == (16, 4) and config_lib.text_length(m, config_lib.data_config()) == 64
  m = config_lib.model_config("tiny")
  m.widths = (1, 2, 3, 4)
  assert config_lib.model_config("tiny").widths == (16, 32, 48, 64)  # each call a new block


def test_shipped_files_and_corpus_names():
  from ocr_tf import assets  # pylint: disable=import-outside-toplevel
  for path in (assets.DEFAULT_ATLAS, assets.WORDS, assets.FREQUENT_WORDS, assets.MODEL_CARD):
    assert os.path.isfile(path), path
  assert os.path.isfile(os.path.join(assets.DEFAULT_MODEL, "saved_model.pb"))
  assert atlas_lib.DEFAULT_ATLAS_PATH == assets.DEFAULT_ATLAS
  assert assets.corpus_path("words") == assets.WORDS and assets.corpus_path("frequent") == assets.FREQUENT_WORDS
  assert assets.corpus_path("/some/list.txt") == "/some/list.txt"


def test_one_line_and_atomic_write(tmp_path):
  from ocr_tf import errors  # pylint: disable=import-outside-toplevel
  assert errors.one_line(ValueError("\n  first line\nsecond")) == "first line"
  assert errors.one_line(KeyError()) == "KeyError" and errors.one_line(OSError("  ")) == "OSError"
  assert errors.one_line(RuntimeError("x" * 500)) == "x" * 300
  path = str(tmp_path / "out.txt")
  errors.atomic_write(path, "caf\u00e9\n")
  errors.atomic_write(path, "again\n")
  assert open(path, encoding="utf-8").read() == "again\n"
  errors.atomic_write(path, b"\x00\xff")
  assert open(path, "rb").read() == b"\x00\xff" and os.listdir(tmp_path) == ["out.txt"]


def test_shipped_configs_by_name_and_python_m():
  from ocr_tf import main as main_lib  # pylint: disable=import-outside-toplevel
  assert main_lib.shipped_config_path("tiny") == os.path.join(ROOT, "configs", "tiny.py")
  assert main_lib.shipped_config_path("no_such_config") is None
  result = subprocess.run([sys.executable, "-m", "ocr_tf", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
  # absl prints the usage and exits with 1, as `ocr-tf --help` does.
  assert "ocr-tf train --config=" in result.stdout and "Traceback" not in result.stderr, result.stderr[-2000:]
  import ocr_tf  # pylint: disable=import-outside-toplevel
  with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
    assert "ocr_tf/__init__.py" in f.read()  # setup.py reads the version from there
  assert ocr_tf.__version__ == "0.2.0"

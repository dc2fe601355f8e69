"""Shared setup: TensorFlow on two threads, the repo root importable, shared generators."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# One XLA compilation cache for the whole run, set before TensorFlow reads its flags: the pytest-xdist
# workers (started after this runs in the controller, so they inherit the variables) and every
# subprocess a test starts load the generator programs another process compiled, instead of
# compiling each again (about a third of a new Generator's first batch). TensorFlow writes each
# entry to a temporary file and renames it, so processes can share the folder.
_CACHE_VARIABLE = "OCR_TF_TEST_XLA_CACHE"
_OWN_XLA_CACHE = _CACHE_VARIABLE not in os.environ
if _OWN_XLA_CACHE:
  os.environ[_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="ocr_tf_tests_xla_")
  os.environ["TF_XLA_FLAGS"] = (f"{os.environ.get('TF_XLA_FLAGS', '')} "
                                f"--tf_xla_persistent_cache_directory={os.environ[_CACHE_VARIABLE]}").strip()

import tensorflow as tf  # pylint: disable=wrong-import-position

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)

import ml_collections  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import pytest  # pylint: disable=wrong-import-position

import configs.tiny  # pylint: disable=wrong-import-position
from ocr_tf import atlas as atlas_lib  # pylint: disable=wrong-import-position
from ocr_tf import synth  # pylint: disable=wrong-import-position

# The suite makes a few dozen data configs; a process keeps the traced programs of the 8 it used last
# (synth.PROGRAMS.size), so a config met again after eight others (the tiny one of most tests) would be
# traced again. Keeping all of them costs the atlas tensors of each config's first generator (about 15 MB).
synth.PROGRAMS.size = 64


# The longest test files first, by the seconds each took in a recorded run (tests/durations.json, refreshed with
# `pytest --record-durations`): with pytest-xdist's `--dist loadfile --no-loadscope-reorder` (.ci/run) the
# workers take files in this order, so the short ones at the end even out when both finish. A file not in the
# record (a new one) goes first: it may be long.
DURATIONS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "durations.json")
_RECORDED: dict[str, float] = {}


def pytest_addoption(parser):
  parser.addoption("--record-durations", action="store_true",
                   help=f"write each test file's total seconds to {os.path.relpath(DURATIONS_FILE, ROOT)}")


def _file_seconds() -> dict[str, float]:
  try:
    with open(DURATIONS_FILE, encoding="utf-8") as f:
      return {str(k): float(v) for k, v in json.load(f).items()}
  except (OSError, ValueError, AttributeError):
    return {}


def pytest_collection_modifyitems(items):
  seconds = _file_seconds()
  longest = max(seconds.values(), default=0.0) + 1.0
  items.sort(key=lambda item: -seconds.get(item.path.name, longest))  # stable: a file's own order is kept


def pytest_runtest_logreport(report):
  name = os.path.basename(report.nodeid.split("::", 1)[0])
  _RECORDED[name] = _RECORDED.get(name, 0.0) + report.duration


def pytest_sessionfinish(session):
  config = session.config
  if config.getoption("--record-durations") and not hasattr(config, "workerinput") and _RECORDED:
    with open(DURATIONS_FILE + ".tmp", "w", encoding="utf-8") as f:
      json.dump({k: round(v, 1) for k, v in sorted(_RECORDED.items(), key=lambda kv: -kv[1])}, f, indent=1)
      f.write("\n")
    os.replace(DURATIONS_FILE + ".tmp", DURATIONS_FILE)


def pytest_unconfigure(config):  # pylint: disable=unused-argument
  if _OWN_XLA_CACHE:
    shutil.rmtree(os.environ[_CACHE_VARIABLE], ignore_errors=True)


def data_variant(config_module=configs.tiny, **changes) -> ml_collections.ConfigDict:
  """The `data` block of a config module with some fields changed."""
  d = config_module.get_config().data
  for key, value in changes.items():
    d[key] = value
  return d


def to_numpy(batch: dict) -> dict:
  return {k: np.asarray(v) for k, v in batch.items()}


def batched_params(generator: synth.Generator, indices) -> dict:
  """sample_params of `indices`, batched as numpy arrays (what render takes)."""
  ds = tf.data.Dataset.from_tensor_slices(tf.constant(list(indices), tf.int64))
  ds = ds.map(generator.sample_params).batch(len(indices))
  return to_numpy(next(iter(ds)))


@pytest.fixture(scope="session")
def atlas() -> atlas_lib.Atlas:
  return atlas_lib.load_atlas()


@pytest.fixture(scope="session")
def tiny_gen(atlas) -> synth.Generator:
  """configs/tiny.py (grey), seed 0."""
  return synth.Generator(data_variant(), atlas, 0)


@pytest.fixture(scope="session")
def tiny_rgb_gen(atlas) -> synth.Generator:
  """configs/tiny.py with channels=3, seed 0."""
  return synth.Generator(data_variant(channels=3), atlas, 0)


def one_line(exc_info, *parts: str) -> str:
  """The message of a pytest.raises ExceptionInfo: one line holding every part."""
  message = str(exc_info.value)
  assert "\n" not in message, message
  for part in parts:
    assert part in message, f"{part!r} not in {message!r}"
  return message

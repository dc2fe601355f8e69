"""Shared setup: TensorFlow on two threads, the repo root importable, shared generators."""

from __future__ import annotations

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


# The longest test files first: with pytest-xdist's `--dist loadfile --no-loadscope-reorder` (.ci/run)
# the workers take files in this order, so the short ones at the end even out when both finish.
# (xdist's default order, most tests first, would leave a one-test file of two minutes for last.)
LONGEST_FILES_FIRST = ("test_data_service.py", "test_train.py", "test_faults.py", "test_synth.py",
                       "test_distributed.py", "test_kill_restart.py", "test_real_data.py", "test_export.py",
                       "test_predict.py", "test_preview_cli.py", "test_pipeline.py")


def pytest_unconfigure(config):  # pylint: disable=unused-argument
  if _OWN_XLA_CACHE:
    shutil.rmtree(os.environ[_CACHE_VARIABLE], ignore_errors=True)


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(LONGEST_FILES_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order is kept


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

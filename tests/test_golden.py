"""The sample stream held to golden samples (tests/golden/stream.npz, written by benchmarks/stream_digest.py).

A refactor of ocr_tf.synth must keep these samples: the text, labels and masks
exactly, every float within 1e-5 (XLA's code may differ by an ulp on another
CPU), and, on the CPU that wrote the file, every byte (the md5). A change of
the stream bumps synth.STREAM_VERSION and writes the file again.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import benchmarks.stream_digest as stream_digest
from ocr_tf import synth

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "stream.npz")


@pytest.fixture(scope="module")
def golden():
  return np.load(GOLDEN)


def test_golden_file_is_of_this_stream_version(golden):
  assert int(golden["stream_version"]) == synth.STREAM_VERSION


@pytest.mark.parametrize("name", ["tiny", "features"])
def test_samples_match_the_golden_ones(golden, atlas, name):
  d = stream_digest.data_configs()[name]
  batch = synth.Generator(d, atlas, stream_digest.GOLDEN_SEED).generate(list(range(4)))
  for key, value in batch.items():
    want, got = golden[f"{name}/{key}"], np.asarray(value)
    got = got.astype(bytes) if got.dtype == object else got
    assert want.shape == got.shape, key
    if got.dtype.kind in "fc":
      np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{name}/{key}")
    else:
      np.testing.assert_array_equal(got, want, err_msg=f"{name}/{key}")
  if str(golden["cpu"]) == stream_digest.cpu_signature():
    assert stream_digest.digest(batch) == str(golden[f"{name}/md5"])

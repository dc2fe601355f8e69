"""Determinism: sample i is the same bytes whatever the batch, parallelism, replica or instance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf

from conftest import data_variant, to_numpy
from ocr_tf import input_pipeline, synth

ALL_KEYS = ("image", "clean", "letter_quads", "letter_boxes", "letter_cells", "text", "labels", "label_length",
            "angle", "letter_mask", "index")
BUT_IMAGE = tuple(k for k in ALL_KEYS if k != "image")


def by_index(batches) -> dict:
  """{index: {key: array}} over one batch or a sequence of batches."""
  if isinstance(batches, dict):
    batches = [batches]
  out = {}
  for batch in batches:
    b = to_numpy(batch)
    for j, i in enumerate(b["index"]):
      out[int(i)] = {k: b[k][j] for k in ALL_KEYS}
  return out


def assert_same_samples(a: dict, b: dict, indices, keys=ALL_KEYS) -> None:
  for i in indices:
    for key in keys:
      x, y = a[i][key], b[i][key]
      if isinstance(x, bytes):
        assert x == y, (i, key)
      else:
        assert x.dtype == y.dtype, (i, key)
        assert x.tobytes() == y.tobytes(), f"sample {i}: {key} differs"


def indices_of(ds: tf.data.Dataset) -> list[int]:
  return [int(i) for i in ds.as_numpy_iterator()]


@pytest.fixture(scope="module")
def first_eight(tiny_gen):
  return by_index(tiny_gen.generate(list(range(8))))


# ------------------------------------------------------------ determinism

def assert_images_close(a: dict, b: dict, indices) -> None:
  for i in indices:
    np.testing.assert_allclose(a[i]["image"], b[i]["image"], rtol=0, atol=1e-6, err_msg=f"sample {i}")


@pytest.fixture(scope="module")
def other_batches(tiny_gen):
  return by_index(tiny_gen.generate([5, 3])), by_index(tiny_gen.generate([3]))


def test_batch_composition_keeps_labels_clean_and_quads(first_eight, other_batches):
  pair, single = other_batches
  assert_same_samples(first_eight, pair, [5, 3], BUT_IMAGE)
  assert_same_samples(first_eight, single, [3], BUT_IMAGE)
  assert_images_close(first_eight, pair, [5, 3])
  assert_images_close(first_eight, single, [3])


def test_batch_composition_keeps_image_bytes(first_eight, other_batches):
  pair, single = other_batches
  assert_same_samples(first_eight, pair, [5, 3], ["image"])
  assert_same_samples(first_eight, single, [3], ["image"])


def test_repeated_index_in_a_batch(tiny_gen):
  b = to_numpy(tiny_gen.generate([3, 3]))
  for key in ("image", "clean", "letter_quads"):
    assert b[key][0].tobytes() == b[key][1].tobytes(), key


def test_sample_dataset_parallelism(tiny_gen, first_eight):
  streams = []
  for parallel in (1, tf.data.AUTOTUNE):
    ds = input_pipeline.sample_dataset(tiny_gen, tf.data.Dataset.range(16), 4,
                                       num_parallel_calls=parallel)
    batches = list(ds)
    assert [list(b["index"].numpy()) for b in batches] == [list(range(j, j + 4)) for j in (0, 4, 8, 12)]
    streams.append(by_index(batches))
  assert_same_samples(streams[0], streams[1], range(16))
  assert_same_samples(first_eight, streams[0], range(8), BUT_IMAGE)
  assert_images_close(first_eight, streams[0], range(8))


def test_two_instances_agree(atlas, first_eight):
  other = synth.Generator(data_variant(), atlas, 0)
  assert_same_samples(first_eight, by_index(other.generate(list(range(8)))), range(8))


def test_indices_and_seeds_give_different_samples(atlas, tiny_gen, first_eight):
  images = [first_eight[i]["image"].tobytes() for i in range(8)]
  assert len(set(images)) == 8
  texts = [first_eight[i]["text"] for i in range(8)]
  assert len(set(texts)) == 8
  other_seed = by_index(synth.Generator(data_variant(), atlas, 1).generate(list(range(8))))
  for i in range(8):
    assert other_seed[i]["image"].tobytes() != first_eight[i]["image"].tobytes()
  assert [other_seed[i]["text"] for i in range(8)] != texts


def test_make_generator_seeds(atlas):
  d = data_variant(seed=7, validation_seed=11)
  assert input_pipeline.make_generator(d, atlas=atlas).seed == 7
  assert input_pipeline.make_generator(d, validation=True, atlas=atlas).seed == 11


def test_validation_dataset_is_the_first_indices(tiny_gen, first_eight):
  ds = input_pipeline.validation_dataset(tiny_gen, num_samples=10, batch_size=4)
  batches = list(ds)
  assert [list(b["index"].numpy()) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
  assert_same_samples(first_eight, by_index(batches), range(8), BUT_IMAGE)
  assert_images_close(first_eight, by_index(batches), range(8))


# --------------------------------------------------------- index streams

@pytest.mark.parametrize("b,replicas,pipelines", [(3, 1, 1), (2, 4, 1), (3, 4, 2), (1, 4, 4)])
def test_pipelines_split_each_step(b, replicas, pipelines):
  steps = 3
  g = b * replicas
  local = g // pipelines
  streams = [indices_of(input_pipeline.index_dataset(b, replicas, p, pipelines, num_steps=steps))
             for p in range(pipelines)]
  for p, stream in enumerate(streams):
    assert len(stream) == steps * local
    for s in range(steps):
      run = stream[s * local:(s + 1) * local]
      assert run == list(range(s * g + p * local, s * g + (p + 1) * local))
  everything = sorted(itertools.chain.from_iterable(streams))
  assert everything == list(range(steps * g))


def test_start_step_resumes_the_stream():
  b, replicas = 2, 3
  full = indices_of(input_pipeline.index_dataset(b, replicas, num_steps=5))
  resumed = indices_of(input_pipeline.index_dataset(b, replicas, start_step=3, num_steps=2))
  assert resumed == full[3 * b * replicas:]
  unbounded = input_pipeline.index_dataset(b, replicas, start_step=3)
  assert indices_of(unbounded.take(len(resumed))) == resumed


def test_index_dataset_rejects_uneven_pipelines():
  with pytest.raises(ValueError, match="3 replicas"):
    input_pipeline.index_dataset(2, 3, 0, 2)


def test_build_inputs_per_pipeline(tiny_gen, first_eight):
  ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=4)
  ds = input_pipeline.build_inputs(tiny_gen, global_batch=8, start_step=0, input_context=ctx,
                                   num_steps=2)
  batches = list(ds)
  assert [list(b["index"].numpy()) for b in batches] == [[4, 5], [6, 7], [12, 13], [14, 15]]
  assert all(b["image"].shape[0] == 2 for b in batches)
  assert_same_samples(first_eight, by_index(batches[:2]), range(4, 8), BUT_IMAGE)
  assert_images_close(first_eight, by_index(batches[:2]), range(4, 8))


def test_build_inputs_resumes_with_the_same_bytes(tiny_gen):
  from_start = list(input_pipeline.build_inputs(tiny_gen, global_batch=4, num_steps=3))
  resumed = list(input_pipeline.build_inputs(tiny_gen, global_batch=4, start_step=2, num_steps=1))
  assert [list(b["index"].numpy()) for b in resumed] == [[8, 9, 10, 11]]
  assert_same_samples(by_index(from_start), by_index(resumed), range(8, 12))


def test_build_inputs_rejects_uneven_global_batch(tiny_gen):
  ctx = tf.distribute.InputContext(num_replicas_in_sync=3)
  with pytest.raises(ValueError, match="global batch 8"):
    input_pipeline.build_inputs(tiny_gen, global_batch=8, input_context=ctx)

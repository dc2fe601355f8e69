"""The model: output names, shapes and dtypes, layer names, serialization, config errors."""

from __future__ import annotations

import os
import re

import keras
import numpy as np
import pytest

from conftest import data_variant
from ocr_tf import config as config_lib
from ocr_tf import models
from ocr_tf.config import ConfigError

CHARSET = "abcdefghij"  # 10 characters + blank = 11 classes


def tiny_data(**changes):
  return data_variant(charset=CHARSET, **changes)


@pytest.fixture(scope="module")
def tiny_model() -> keras.Model:
  return models.build_model(config_lib.model_config("tiny"), tiny_data())


def snake_case(name: str) -> str:
  return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def all_layers(model: keras.Model):
  """The model's layers and the layers wrapped inside them (e.g. Bidirectional's LSTMs)."""
  for layer in model.layers:
    yield layer
    for attr in ("forward_layer", "backward_layer"):
      if hasattr(layer, attr):
        yield getattr(layer, attr)


@pytest.mark.parametrize("height,width,channels,head,pool,branch", [(32, 128, 1, "lstm", "average", ()),
                                                                     (48, 64, 3, "conv", "attention", ()),
                                                                     (32, 128, 1, "lstm", "attention", (8, 12, 16))])
def test_output_names_shapes_dtypes(height, width, channels, head, pool, branch):
  mc = config_lib.model_config("tiny")
  mc.text_head = head
  mc.angle_pool = pool
  mc.angle_branch = branch
  d = tiny_data(height=height, width=width, channels=channels, max_length=4)
  model = models.build_model(mc, d)
  out = model(np.random.default_rng(0).random((2, height, width, channels), np.float32))
  assert set(out) == set(models.OUTPUT_NAMES)
  expected = {
      "text_logits": (2, width // 4, len(CHARSET) + 1),
      "angle": (2,),
      "letters": (2, height // 4, width // 4, models.LETTER_CHANNELS),
      "clean": (2, height, width, 1),
  }
  for key, shape in expected.items():
    assert tuple(out[key].shape) == shape, key
    assert out[key].dtype == "float32", key
  assert config_lib.text_length(mc, d) == width // 4
  assert config_lib.letter_map_shape(mc, d) == (height // 4, width // 4)
  clean = np.asarray(out["clean"])
  assert clean.min() >= 0.0 and clean.max() <= 1.0


def test_every_layer_named(tiny_model):
  names = [layer.name for layer in all_layers(tiny_model)]
  assert len(names) == len(set(names))
  for layer in all_layers(tiny_model):
    auto = snake_case(type(layer).__name__)
    assert not re.fullmatch(rf"{auto}(_\d+)?", layer.name), f"{layer.name} looks auto-named"
  assert {"image", "text_logits", "angle", "letters", "clean"} <= set(names)


def test_parameter_counts_of_presets():
  tiny = models.count_params(models.build_model(config_lib.model_config("tiny"), data_variant()))
  assert 100_000 <= tiny <= 300_000, tiny


def test_config_round_trip_gives_same_outputs(tiny_model):
  clone = keras.Model.from_config(tiny_model.get_config())
  clone.set_weights(tiny_model.get_weights())
  x = np.random.default_rng(1).random((2, 32, 128, 1), np.float32)
  a, b = tiny_model(x), clone(x)
  for key in models.OUTPUT_NAMES:
    np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


def test_saved_keras_file_round_trip(tiny_model, tmp_path):
  path = os.path.join(tmp_path, "tiny.keras")
  tiny_model.save(path)
  loaded = keras.saving.load_model(path)
  x = np.random.default_rng(2).random((2, 32, 128, 1), np.float32)
  a, b = tiny_model(x), loaded(x)
  for key in models.OUTPUT_NAMES:
    np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


def test_squeeze_layer_config_round_trip():
  layer = models.Squeeze(axis=1, name="squeeze_test")
  config = layer.get_config()
  assert config["axis"] == 1
  again = models.Squeeze.from_config(config)
  assert again.axis == 1 and again.name == "squeeze_test"
  restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
  assert isinstance(restored, models.Squeeze) and restored.axis == 1
  assert tuple(again(np.zeros((3, 1, 2), np.float32)).shape) == (3, 2)


def test_attention_pool_weights_positions_by_softmax():
  values = np.arange(2 * 1 * 3 * 2, dtype=np.float32).reshape(2, 1, 3, 2)
  even = models.AttentionPool()([values, np.zeros((2, 1, 3, 1), np.float32)])
  np.testing.assert_allclose(np.asarray(even), values.mean(axis=(1, 2)), rtol=1e-6)
  logits = np.full((2, 1, 3, 1), -50.0, np.float32)
  logits[0, 0, 2], logits[1, 0, 0] = 50.0, 50.0
  one = np.asarray(models.AttentionPool()([values, logits]))
  np.testing.assert_allclose(one, [values[0, 0, 2], values[1, 0, 0]], rtol=1e-6)


@pytest.mark.parametrize("changes,field", [
    ({"height": 30}, "data.height=30"),
    ({"width": 126}, "data.width=126"),
    ({"max_length": 20}, "data.max_length=20"),
])
def test_data_errors_name_the_field(changes, field):
  with pytest.raises(ConfigError, match=re.escape(field)):
    models.build_model(config_lib.model_config("tiny"), tiny_data(**changes))


@pytest.mark.parametrize("field,value,message", [
    ("letter_stride", 8, "model.letter_stride=8"),
    ("text_head", "gru", "model.text_head='gru'"),
    ("depths", (1, 1), "model.depths=(1, 1)"),
    ("widths", (16, 0, 48, 64), "model.widths=(16, 0, 48, 64)"),
    ("angle_pool", "max", "model.angle_pool='max'"),
    ("angle_branch", (8, 0), "model.angle_branch=(8, 0)"),
    ("angle_branch", (4,) * 7, "6 halvings do not divide the 32x128 image"),
])
def test_model_errors_name_the_field(field, value, message):
  mc = config_lib.model_config("tiny")
  mc[field] = value
  with pytest.raises(ConfigError, match=re.escape(message)):
    models.build_model(mc, tiny_data())


def test_unknown_preset():
  with pytest.raises(ConfigError, match="model.preset='huge'"):
    config_lib.model_config("huge")


def test_decode_letters_shapes_and_threshold():
  letters = np.full((2, 8, 32, 5), -10.0, np.float32)
  letters[0, 3, 5] = [10.0, 0.5, 0.5, np.log(16.0), np.log(8.0)]
  boxes, scores = models.decode_letters(letters, (32, 128), max_letters=4, threshold=0.5)
  assert tuple(boxes.shape) == (2, 4, 4) and tuple(scores.shape) == (2, 4)
  s = np.asarray(scores)
  assert s[0, 0] > 0.99 and np.all(s[0, 1:] == 0) and np.all(s[1] == 0)
  # Center (3.5, 5.5) cells * 4 px = (14, 22) px; 16x8 px box.
  np.testing.assert_allclose(np.asarray(boxes)[0, 0], [6 / 32, 18 / 128, 22 / 32, 26 / 128], atol=1e-6)
  assert np.all(np.asarray(boxes)[0, 1:] == 0)


def test_decode_letters_more_slots_than_cells():
  boxes, scores = models.decode_letters(np.zeros((1, 2, 2, 5), np.float32), (8, 8), max_letters=6,
                                        threshold=0.0)
  assert tuple(boxes.shape) == (1, 6, 4) and tuple(scores.shape) == (1, 6)

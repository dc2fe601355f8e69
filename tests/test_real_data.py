"""Real labelled images: reading a folder, samples shaped like synthetic ones, mixing, losses, training."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import tensorflow as tf

import configs.tiny
from ocr_tf import config as config_lib
from ocr_tf import input_pipeline, losses, models, real_data, serving, train
from ocr_tf.config import ConfigError

TEXTS = ["Hello", "w0rld", "A", "xyz12", "QQ", "tf"]


def tiny_config():
  config = configs.tiny.get_config()
  config.train.update({"steps": 1, "batch_size": 8, "warmup_steps": 0, "log_every": 1, "eval_every": 0,
                       "checkpoint_every": 0, "eval_samples": 8, "eval_batch_size": 4, "num_images": 0})
  return config


@pytest.fixture(scope="module")
def config():
  return tiny_config()


@pytest.fixture(scope="module")
def generator(config):
  return input_pipeline.make_generator(config.data)


def _png(array: np.ndarray) -> bytes:
  return tf.io.encode_png(tf.constant(array)).numpy()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """Six good rows in various sizes and channel counts, and one row of each kind of bad."""
  root = tmp_path_factory.mktemp("real")
  rng = np.random.default_rng(0)
  lines = []
  for i, text in enumerate(TEXTS):
    h, w, c = [(20, 60, 1), (40, 200, 3), (13, 9, 1), (64, 64, 4), (30, 300, 3), (16, 40, 1)][i]
    (root / f"w{i}.png").write_bytes(_png(rng.integers(0, 256, (h, w, c), dtype=np.uint8)))
    lines.append(f"w{i}.png\t{text}")
  (root / "fake.png").write_bytes(b"not an image")
  (root / "empty.png").write_bytes(b"")
  lines += ["fake.png\tabc", "empty.png\tabc", "w0.png\thas space", "w0.png\t" + "x" * 9, "w0.png\t",
            "missing.png\tabc", "no tab here"]
  (root / "labels.tsv").write_text("\n".join(lines) + "\n")
  return str(root)


def test_load_folder_keeps_good_rows_and_says_why_others_are_left_out(folder, config):
  real = real_data.load_folder(folder, config.data.charset, config.data.max_length)
  assert real.texts == TEXTS
  assert [os.path.basename(p) for p in real.paths] == [f"w{i}.png" for i in range(len(TEXTS))]
  assert real.labels.shape == (len(TEXTS), config.data.max_length)
  assert list(real.lengths) == [len(t) for t in TEXTS]
  charset = config.data.charset
  assert "".join(charset[i] for i in real.labels[0, :5]) == "Hello"
  skipped = "\n".join(real.skipped)
  assert len(real.skipped) == 7, skipped
  for part in (":13: expected filename<TAB>text", ":7: fake.png is not a readable", ":8: empty.png is empty",
               ":9: characters outside the charset: ' '", ":10: 9 characters, more than data.max_length=8",
               ":11: empty text", ":12: cannot read missing.png"):
    assert part in skipped, (part, skipped)


def test_load_folder_errors_are_one_line(tmp_path, config):
  with pytest.raises(ConfigError, match=r"data.real_dir='.*nope': no such folder"):
    real_data.load_folder(str(tmp_path / "nope"), config.data.charset, 8)
  with pytest.raises(ConfigError, match="labels.tsv: no such file"):
    real_data.load_folder(str(tmp_path), config.data.charset, 8)
  (tmp_path / "labels.tsv").write_text("a.png\tabc\n")
  with pytest.raises(ConfigError) as e:
    real_data.load_folder(str(tmp_path), config.data.charset, 8, field="data.real_validation_dir")
  message = str(e.value)
  assert "\n" not in message and "data.real_validation_dir=" in message
  assert "no usable labelled image" in message and "cannot read a.png" in message


def test_real_sample_is_fitted_like_serving_and_shaped_like_synthetic(folder, config, generator):
  real = real_data.load_folder(folder, config.data.charset, config.data.max_length)
  spec = tf.data.Dataset.range(1).map(generator.sample).element_spec
  source = real_data.RealSource(real, config.data, spec)
  ds = tf.data.Dataset.range(len(TEXTS)).map(source.sample).batch(len(TEXTS))
  batch = next(iter(ds))
  assert set(batch) == set(spec) | {"source"}
  for key, s in spec.items():
    assert batch[key].dtype == s.dtype and tuple(batch[key].shape[1:]) == tuple(s.shape), key
  assert [t.decode() for t in batch["text"].numpy()] == TEXTS
  assert list(batch["label_length"].numpy()) == [len(t) for t in TEXTS]
  np.testing.assert_array_equal(batch["labels"].numpy(), real.labels)
  assert list(batch["index"].numpy()) == list(range(len(TEXTS)))
  assert (batch["source"].numpy() == real_data.REAL).all()
  assert not batch["letter_mask"].numpy().any()
  for i, path in enumerate(real.paths):
    decoded = tf.io.decode_image(tf.io.read_file(path), expand_animations=False, dtype=tf.float32)
    want, _ = serving.fit_image(decoded[None], config.data.height, config.data.width, config.data.channels)
    np.testing.assert_allclose(batch["image"][i].numpy(), want[0].numpy(), atol=1e-6)
  # The same function eagerly.
  one = source.sample(2)
  assert one["text"].numpy().decode() == "A" and one["image"].shape == (32, 128, 1)


def test_mixed_stream_is_deterministic_and_keeps_synthetic_samples(folder, config, generator):
  real = real_data.load_folder(folder, config.data.charset, config.data.max_length)
  mixed = real_data.MixedSource(generator, real, 0.25, 77, config.data)
  draws = [mixed.draw(i) for i in range(400)]
  is_real = np.array([bool(d[0]) for d in draws])
  rows = np.array([int(d[1]) for d in draws])
  assert 0.18 < is_real.mean() < 0.32, is_real.mean()
  assert set(rows[is_real]) == set(range(len(TEXTS)))  # every row is drawn
  again = real_data.MixedSource(generator, real, 0.25, 77, config.data)
  assert [bool(again.draw(i)[0]) for i in range(400)] == list(is_real)
  other = real_data.MixedSource(generator, real, 0.25, 78, config.data)
  assert [bool(other.draw(i)[0]) for i in range(400)] != list(is_real)

  indices = [int(np.flatnonzero(is_real)[0]), int(np.flatnonzero(~is_real)[0]), int(np.flatnonzero(~is_real)[1])]
  batch = next(iter(tf.data.Dataset.from_tensor_slices(tf.constant(indices, tf.int64))
                    .map(mixed.sample, num_parallel_calls=2).batch(3)))
  assert list(batch["source"].numpy()) == [1, 0, 0]
  assert batch["text"][0].numpy().decode() == TEXTS[rows[indices[0]]]
  synthetic = generator.generate(indices[1:])
  for key in ("image", "clean", "labels", "letter_quads", "angle"):
    np.testing.assert_array_equal(batch[key][1:].numpy(), synthetic[key].numpy(), err_msg=key)


def test_real_samples_train_only_the_text_head(config, generator):
  model = models.build_model(config.model, config.data)
  batch = dict(generator.generate([0, 1, 2, 3]))
  outputs = model(batch["image"], training=False)
  weights = {"ctc": 1.0, "angle": 1.0, "letters": 1.0, "clean": 1.0}
  plain = losses.compute_losses(outputs, batch, weights)
  synthetic = losses.compute_losses(outputs, {**batch, "source": tf.zeros([4], tf.int32)}, weights)
  for key in ("ctc", "angle", "letters", "clean"):
    np.testing.assert_allclose(float(plain[key]), float(synthetic[key]), rtol=1e-6)
  half = losses.compute_losses(outputs, {**batch, "source": tf.constant([0, 1, 0, 1])}, weights)
  np.testing.assert_allclose(float(half["ctc"]), float(plain["ctc"]), rtol=1e-6)
  per_angle = losses.angle_loss(outputs["angle"], batch["angle"], config.train.loss.angle_huber_delta).numpy()
  np.testing.assert_allclose(float(half["angle"]), (per_angle[0] + per_angle[2]) / 4, rtol=1e-5)
  real = losses.compute_losses(outputs, {**batch, "source": tf.ones([4], tf.int32)}, weights)
  assert float(real["ctc"]) > 0
  for key in ("angle", "letters", "clean"):
    assert float(real[key]) == 0.0, key


@pytest.mark.parametrize("changes, expected", [
    ({"real_ratio": 0.5}, "data.real_ratio=0.5: needs data.real_dir"),
    ({"real_ratio": 1.5, "real_dir": "x"}, "data.real_ratio=1.5: a fraction must be in [0, 1]"),
    ({"real_dir": "FOLDER"}, "data.real_dir='FOLDER': is set but data.real_ratio is 0"),
    ({"real_dir": "/no/such/folder", "real_ratio": 0.1}, "data.real_dir='/no/such/folder': no such folder"),
    ({"real_validation_dir": "EMPTY"}, "data.real_validation_dir='EMPTY': has no labels.tsv"),
])
def test_config_errors(changes, expected, folder, tmp_path):
  config = tiny_config()
  changes = {k: {"FOLDER": folder, "EMPTY": str(tmp_path)}.get(v, v) if isinstance(v, str) else v
             for k, v in changes.items()}
  expected = expected.replace("FOLDER", folder).replace("EMPTY", str(tmp_path))
  config.data.update(changes)
  with pytest.raises(ConfigError) as e:
    config_lib.validate_config(config)
  assert str(e.value) == expected or str(e.value).startswith(expected), str(e.value)


@pytest.fixture(scope="module")
def mixed_run(folder, tmp_path_factory):
  """One step of the tiny config with real images mixed in and evaluated as their own source."""
  config = tiny_config()
  config.data.real_dir = folder
  config.data.real_ratio = 0.5
  config.data.real_validation_dir = folder
  workdir = str(tmp_path_factory.mktemp("mixed"))
  return config, workdir, train.train_and_evaluate(config, workdir)


def test_training_mixes_real_images_and_reports_them_as_a_source(mixed_run, tmp_path):
  config, workdir, result = mixed_run
  assert result["step"] == 1
  assert all(math.isfinite(v) for v in result["losses"].values()), result["losses"]
  record = train.read_metrics(workdir)[-1]
  for key in ("cer", "word_accuracy", "real/cer", "real/word_accuracy", "real/loss/ctc"):
    assert math.isfinite(record[key]), (key, record)
  assert "real/angle_mae" not in record
  config = config.copy_and_resolve_references()
  config.data.real_validation_dir = str(tmp_path / "absent")
  with pytest.raises(ConfigError, match="no such folder"):
    train.train_and_evaluate(config, str(tmp_path / "other"))


def test_fine_tuning_starts_from_another_runs_weights(folder, mixed_run, tmp_path):
  first = mixed_run[1]
  tuned = tiny_config()
  tuned.train.steps = 0  # no update: the checkpoint written at the start holds the initial weights
  tuned.train.init_from = first
  tuned.data.real_dir, tuned.data.real_ratio = folder, 0.5
  second = str(tmp_path / "second")
  assert train.train_and_evaluate(tuned, second)["step"] == 0
  a = tf.train.load_checkpoint(os.path.join(first, "checkpoints"))
  b = tf.train.load_checkpoint(os.path.join(second, "checkpoints"))
  names = [n for n, _ in tf.train.list_variables(os.path.join(first, "checkpoints"))
           if n.startswith("model/") and "OPTIMIZER_SLOT" not in n]
  assert len(names) > 20
  for name in names:
    np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)
  assert int(b.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == 0

  # Another angle head: the layers both models have are copied by name, the new ones keep their initial values.
  attention = tiny_config()
  attention.model.angle_pool = "attention"
  model = models.build_model(attention.model, attention.data)
  fresh = {layer.name: layer.get_weights() for layer in model.layers if layer.name.startswith("angle_")}
  train.init_weights(model, first)
  source = models.build_model(tiny_config().model, tiny_config().data)
  tf.train.Checkpoint(model=source).restore(tf.train.latest_checkpoint(os.path.join(first, "checkpoints"))) \
      .expect_partial()
  by_name = {layer.name: layer for layer in source.layers if layer.weights}
  shared = [layer for layer in model.layers if layer.weights and layer.name in by_name]
  assert len(shared) > 20
  for layer in shared:
    for x, y in zip(layer.get_weights(), by_name[layer.name].get_weights()):
      np.testing.assert_array_equal(x, y, err_msg=layer.name)
  assert {layer.name for layer in model.layers if layer.weights and layer.name not in by_name} == \
      {"angle_local", "angle_attention"}
  for name in ("angle_local", "angle_attention"):
    for x, y in zip(model.get_layer(name).get_weights(), fresh[name]):
      np.testing.assert_array_equal(x, y, err_msg=name)

  tuned.train.init_from = str(tmp_path / "nothing")
  with pytest.raises(ConfigError, match="train.init_from=.*no checkpoint there"):
    train.train_and_evaluate(tuned, str(tmp_path / "third"))
  other = tiny_config()
  other.train.init_from = first
  other.model.text_width = 32
  with pytest.raises(ConfigError, match="train.init_from=.*its model does not match"):
    train.train_and_evaluate(other, str(tmp_path / "fourth"))

"""Letter targets, losses and metrics on hand-made batches, eagerly and in graphs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import data_variant
from ocr_tf import config as config_lib
from ocr_tf import losses, metrics, models
from ocr_tf.config import ConfigError

CHARSET = "abcdefghij"
H, W, L = 32, 128, 8
# Per example, the letters' pixel boxes (y0, x0, y1, x1).
LETTERS = (
    ((4, 6, 24, 16), (4, 20, 24, 30), (6, 36, 26, 44), (4, 50, 22, 62)),
    ((8, 10, 28, 22), (8, 26, 28, 40), (8, 100, 28, 110)),
)


def hand_batch(channels: int = 1) -> dict:
  """Light images with a dark rectangle per letter, and the matching sample fields."""
  b = len(LETTERS)
  image = np.full((b, H, W, channels), 0.9, np.float32)
  quads = np.zeros((b, L, 4, 2), np.float32)
  boxes = np.zeros((b, L, 4), np.float32)
  mask = np.zeros((b, L), bool)
  labels = np.zeros((b, L), np.int32)
  for i, letters in enumerate(LETTERS):
    for j, (y0, x0, y1, x1) in enumerate(letters):
      image[i, y0:y1, x0:x1] = 0.1
      quads[i, j] = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
      boxes[i, j] = (y0 / H, x0 / W, y1 / H, x1 / W)
      mask[i, j] = True
      labels[i, j] = (3 * j + i) % len(CHARSET)
  return {
      "image": image,
      "clean": (image[..., :1] > 0.5).astype(np.float32),
      "labels": labels,
      "label_length": np.array([len(x) for x in LETTERS], np.int32),
      "angle": np.array([1.5, -2.0], np.float32),
      "letter_quads": quads,
      "letter_boxes": boxes,
      "letter_mask": mask,
  }


@pytest.fixture(scope="module")
def configs():
  return config_lib.model_config("tiny"), data_variant(charset=CHARSET)


@pytest.fixture(scope="module")
def geometry(configs):
  """(letter map shape, stride) of the configs' model: what targets_from_batch takes."""
  model_cfg, data_cfg = configs
  return config_lib.letter_map_shape(model_cfg, data_cfg), model_cfg.letter_stride


def logits_from_targets(t: dict) -> tf.Tensor:
  """A letter map whose decode is exactly the targets: heatmap as logits, offsets, sizes."""
  p = tf.clip_by_value(t["heatmap"], 1e-6, 1.0 - 1e-6)
  return tf.concat([(tf.math.log(p) - tf.math.log(1.0 - p))[..., None], t["offset"], t["size"]], axis=-1)


# ------------------------------------------------------------------ targets


def test_targets_values_at_centers(geometry):
  t = {k: np.asarray(v) for k, v in losses.targets_from_batch(hand_batch(), *geometry).items()}
  assert t["heatmap"].shape == (2, 8, 32) and t["offset"].shape == (2, 8, 32, 2)
  np.testing.assert_array_equal(t["center_mask"].sum(axis=(1, 2)), [4, 3])
  np.testing.assert_array_equal(t["heatmap"] == 1.0, t["center_mask"] == 1.0)
  assert t["heatmap"].min() >= 0.0
  # Letter (4, 6, 24, 16): center (14, 11) px = (3.5, 2.75) cells.
  assert t["center_mask"][0, 3, 2] == 1.0
  np.testing.assert_allclose(t["offset"][0, 3, 2], [0.5, 0.75])
  np.testing.assert_allclose(t["size"][0, 3, 2], np.log([20.0, 10.0]), rtol=1e-6)
  off_center = t["center_mask"] == 0
  assert np.all(t["offset"][off_center] == 0) and np.all(t["size"][off_center] == 0)


def test_targets_leave_out_spaces_and_unused_slots(geometry):
  batch = hand_batch()
  batch["letter_mask"][0, 4] = True  # a space: zero-area quad at (70, 10)
  batch["letter_quads"][0, 4] = [(70, 10)] * 4
  batch["letter_quads"][1, 5] = [(90, 5), (99, 5), (99, 20), (90, 20)]  # masked out
  t = losses.targets_from_batch(batch, *geometry)
  np.testing.assert_array_equal(np.asarray(t["center_mask"]).sum(axis=(1, 2)), [4, 3])


def test_targets_same_eager_in_function_and_in_dataset_map(geometry):
  batch = hand_batch()
  eager = losses.targets_from_batch(batch, *geometry)
  traced = tf.function(lambda b: losses.targets_from_batch(b, *geometry))(batch)
  keys = ("letter_quads", "letter_mask")
  ds = tf.data.Dataset.from_tensor_slices({k: batch[k] for k in keys})
  mapped = next(iter(ds.map(lambda s: losses.targets_from_batch(s, *geometry)).batch(2)))
  for key in eager:
    np.testing.assert_array_equal(np.asarray(eager[key]), np.asarray(traced[key]), err_msg=key)
    np.testing.assert_array_equal(np.asarray(eager[key]), np.asarray(mapped[key]), err_msg=key)


def test_decode_letters_recovers_target_boxes(geometry):
  batch = hand_batch()
  t = losses.targets_from_batch(batch, *geometry)
  boxes, scores = models.decode_letters(logits_from_targets(t), (H, W), max_letters=L, threshold=0.5)
  boxes, scores = np.asarray(boxes), np.asarray(scores)
  for i, letters in enumerate(LETTERS):
    n = len(letters)
    assert np.all(scores[i, :n] > 0.99) and np.all(scores[i, n:] == 0)
    found = boxes[i, :n][np.argsort(boxes[i, :n, 1])]
    np.testing.assert_allclose(found, batch["letter_boxes"][i, :n], atol=1e-5)


# ------------------------------------------------------------------ losses


def random_outputs(seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  return {
      "text_logits": tf.constant(rng.normal(size=(2, W // 4, len(CHARSET) + 1)), tf.float32),
      "angle": tf.constant(rng.normal(size=(2,)), tf.float32),
      "letters": tf.constant(rng.normal(size=(2, H // 4, W // 4, 5)), tf.float32),
      "clean": tf.constant(rng.random((2, H, W, 1)), tf.float32),
  }


def test_losses_finite_and_positive():
  out = losses.compute_losses(random_outputs(), hand_batch(), config_lib.loss_config().weights)
  assert set(out) == {"ctc", "angle", "letters", "clean", "total", "letters/heatmap", "letters/offset",
                      "letters/size"}
  for key, value in out.items():
    v = float(value)
    assert np.isfinite(v) and v > 0, (key, v)
  w = config_lib.loss_config().weights
  expected = sum(w[k] * float(out[k]) for k in config_lib.LOSS_NAMES)
  np.testing.assert_allclose(float(out["total"]), expected, rtol=1e-5)


def test_bce_clean_loss():
  cfg = config_lib.loss_config()
  cfg.clean_loss = "bce"
  out = losses.compute_losses(random_outputs(), hand_batch(), {"clean": 1.0}, config=cfg)
  assert np.isfinite(float(out["clean"])) and float(out["clean"]) > 0
  cfg.clean_loss = "l2"
  with pytest.raises(ConfigError, match="losses.clean_loss='l2'"):
    losses.compute_losses(random_outputs(), hand_batch(), {"clean": 1.0}, config=cfg)


def test_zero_weight_skips_the_loss():
  outputs = random_outputs()
  del outputs["clean"], outputs["letters"]  # a skipped loss must not even look at its output
  weights = {"ctc": 1.0, "angle": 2.0, "letters": 0.0, "clean": 0.0}
  out = losses.compute_losses(outputs, hand_batch(), weights)
  assert set(out) == {"ctc", "angle", "total"}
  np.testing.assert_allclose(float(out["total"]), float(out["ctc"]) + 2.0 * float(out["angle"]), rtol=1e-6)


def test_weight_errors():
  with pytest.raises(ConfigError, match="unknown names \\['text'\\]"):
    losses.compute_losses(random_outputs(), hand_batch(), {"text": 1.0})
  with pytest.raises(ConfigError, match="angle=-1.0"):
    losses.compute_losses(random_outputs(), hand_batch(), {"angle": -1.0})


def test_global_batch_size_divides_the_sum():
  weights = {"angle": 1.0}
  local = losses.compute_losses(random_outputs(), hand_batch(), weights)
  spread = losses.compute_losses(random_outputs(), hand_batch(), weights, global_batch_size=4)
  np.testing.assert_allclose(float(spread["angle"]), float(local["angle"]) / 2, rtol=1e-6)


def test_letter_map_geometry_comes_from_the_tensors(configs, geometry):
  """The letters output and the images give the configs' letter map: the same targets and losses."""
  model_cfg, data_cfg = configs
  model = models.build_model(model_cfg, data_cfg)
  batch = hand_batch()
  outputs = model(batch["image"], training=False)
  assert losses.letter_map_geometry(outputs["letters"], batch["image"]) == geometry
  weights = {"letters": 1.0}
  derived = losses.compute_losses(outputs, batch, weights)
  given = losses.compute_losses(outputs, batch, weights, targets=losses.targets_from_batch(batch, *geometry))
  for key in derived:
    assert float(derived[key]) == float(given[key]), key
  with pytest.raises(ValueError, match="image height a multiple"):
    losses.letter_map_geometry(tf.zeros([2, 7, 32, 5]), batch["image"])


def test_gradient_steps_reduce_the_loss(configs, geometry):
  model_cfg, data_cfg = configs
  keras.utils.set_random_seed(0)
  model = models.build_model(model_cfg, data_cfg)
  batch = hand_batch()
  targets = losses.targets_from_batch(batch, *geometry)
  weights = config_lib.loss_config().weights
  optimizer = keras.optimizers.Adam(3e-3)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      out = losses.compute_losses(model(batch["image"], training=True), batch, weights, targets=targets)
    grads = tape.gradient(out["total"], model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return out

  history = [{k: float(v) for k, v in step().items()} for _ in range(10)]
  assert all(np.isfinite(h["total"]) for h in history)
  assert history[-1]["total"] < 0.8 * history[0]["total"], [h["total"] for h in history]
  for key in config_lib.LOSS_NAMES:
    assert history[-1][key] < history[0][key], (key, history[0][key], history[-1][key])


# ------------------------------------------------------------------ metrics


def one_hot_logits(paths) -> tf.Tensor:
  """Logits [B, T, 4] whose argmax per column is the given path (charset 'abc', blank 3)."""
  return tf.constant(np.eye(4, dtype=np.float32)[np.array(paths)] * 5.0)


TEXT_PATHS = [[0, 0, 3, 0, 1, 3], [2, 3, 3, 1, 1, 3], [3, 3, 3, 3, 3, 3]]
TEXT_LABELS = np.array([[0, 0, 1], [0, 1, 2], [1, 0, 0]], np.int32)  # 'aab', 'abc', 'b'
TEXT_LENGTHS = np.array([3, 3, 1], np.int32)


def test_greedy_decode_and_decode_text():
  logits = one_hot_logits(TEXT_PATHS)
  assert metrics.greedy_decode(logits).to_list() == [[0, 0, 1], [2, 1], []]
  assert metrics.decode_text(logits, "abc").numpy().tolist() == [b"aab", b"cb", b""]
  traced = tf.function(lambda x: metrics.decode_text(x, "abc"))(logits)
  assert traced.numpy().tolist() == [b"aab", b"cb", b""]
  with pytest.raises(ValueError, match="text_logits has 4 classes: expected 6"):
    metrics.decode_text(logits, "abcde")


def test_cer_and_word_accuracy_exact():
  logits = one_hot_logits(TEXT_PATHS)
  np.testing.assert_array_equal(metrics.edit_distances(logits, TEXT_LABELS, TEXT_LENGTHS), [0, 2, 1])
  m = metrics.text_metrics(logits, TEXT_LABELS, TEXT_LENGTHS)
  np.testing.assert_allclose(float(m["cer"]), 3 / 7, rtol=1e-6)
  np.testing.assert_allclose(float(m["word_accuracy"]), 1 / 3, rtol=1e-6)
  traced = tf.function(metrics.text_metrics)(logits, TEXT_LABELS, TEXT_LENGTHS)
  np.testing.assert_allclose(float(traced["cer"]), 3 / 7, rtol=1e-6)


def test_letter_f1_exact():
  true_boxes = np.zeros((2, 3, 4), np.float32)
  true_boxes[0, 0] = [0.0, 0.0, 0.5, 0.1]
  true_boxes[0, 1] = [0.0, 0.2, 0.5, 0.3]
  true_boxes[0, 2] = [0.3, 0.3, 0.3, 0.3]  # zero area: not a letter
  true_boxes[1, 0] = [0.5, 0.5, 1.0, 0.6]
  true_valid = (true_boxes[..., 2] > true_boxes[..., 0]) & (true_boxes[..., 3] > true_boxes[..., 1])
  pred = np.zeros((2, 4, 4), np.float32)
  scores = np.zeros((2, 4), np.float32)
  pred[0, 0], scores[0, 0] = [0.0, 0.0, 0.5, 0.1], 0.8  # duplicate with a lower score: unmatched
  pred[0, 1], scores[0, 1] = [0.0, 0.2, 0.5, 0.28], 0.7  # IoU 0.8 with true 1
  pred[0, 2], scores[0, 2] = [0.0, 0.0, 0.5, 0.1], 0.9  # exact true 0
  pred[0, 3] = [0.0, 0.2, 0.5, 0.3]  # score 0: no prediction
  pred[1, 0], scores[1, 0] = [0.5, 0.55, 1.0, 0.65], 0.9  # IoU 1/3: unmatched
  counts = metrics.match_letters(pred, scores, true_boxes, true_valid)
  np.testing.assert_array_equal(counts["matched"], [2, 0])
  np.testing.assert_array_equal(counts["predicted"], [3, 1])
  np.testing.assert_array_equal(counts["true"], [2, 1])
  rates = metrics.f1_from_counts(2, 4, 3)
  np.testing.assert_allclose(float(rates["letter_precision"]), 1 / 2)
  np.testing.assert_allclose(float(rates["letter_recall"]), 2 / 3)
  np.testing.assert_allclose(float(rates["letter_f1"]), 4 / 7, rtol=1e-6)
  traced = tf.function(metrics.match_letters)(pred, scores, true_boxes, true_valid)
  np.testing.assert_array_equal(traced["matched"], [2, 0])


def test_psnr_of_identical_images_is_capped():
  x = np.random.default_rng(0).random((2, 4, 4, 1)).astype(np.float32)
  np.testing.assert_allclose(metrics.psnr(x, x), [metrics.MAX_PSNR] * 2, rtol=1e-5)
  np.testing.assert_allclose(metrics.psnr(np.zeros_like(x), np.full_like(x, 0.1)), [20.0] * 2, rtol=1e-5)


def test_all_metrics_on_perfect_outputs(configs, geometry):
  _, data_cfg = configs
  batch = hand_batch()
  targets = losses.targets_from_batch(batch, *geometry)
  paths = np.full((2, W // 4), len(CHARSET))
  for i, n in enumerate(batch["label_length"]):
    paths[i, 1:2 * n:2] = batch["labels"][i, :n]
  outputs = {
      "text_logits": tf.constant(np.eye(len(CHARSET) + 1, dtype=np.float32)[paths] * 5.0),
      "angle": tf.constant(batch["angle"] + [0.5, -1.0]),
      "letters": logits_from_targets(targets),
      "clean": tf.constant(batch["clean"]),
  }
  sums = tf.function(lambda o, b: metrics.metric_sums(o, b, data_cfg))(outputs, batch)
  assert set(sums) == set(metrics.SUM_KEYS)
  doubled = metrics.finalize_metrics({k: 2 * v for k, v in sums.items()})
  for rates in (metrics.finalize_metrics(sums), doubled):
    got = {k: float(v) for k, v in rates.items()}
    assert got["cer"] == 0.0 and got["word_accuracy"] == 1.0
    np.testing.assert_allclose(got["angle_mae"], 0.75, rtol=1e-6)
    assert got["letter_f1"] == 1.0 and got["letter_precision"] == 1.0 and got["letter_recall"] == 1.0
    np.testing.assert_allclose(got["clean_psnr"], metrics.MAX_PSNR, rtol=1e-5)

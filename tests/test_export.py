"""The SavedModel export: signatures, agreement with the Keras model, bad bytes, loading without ocr_tf."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import configs.tiny
from ocr_tf import config as config_lib
from ocr_tf import input_pipeline, metrics, models, serving

H, W, C = 32, 128, 1
NUM_IMAGES = 4


def tiny_config() -> ml_collections.ConfigDict:
  """configs/tiny.py with the tiny model preset as config.model."""
  config = configs.tiny.get_config()
  config.model = config_lib.model_config("tiny")
  return config


def sharp_model(config: ml_collections.ConfigDict) -> keras.Model:
  """An untrained tiny model whose outputs depend visibly on the image.

  Batch norm moving variances of 0.25 amplify the features so that the
  greedy text differs between images and letter peaks pass the threshold.
  """
  keras.utils.set_random_seed(0)
  model = models.build_model(config.model, config.data)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      gamma, beta, mean, variance = layer.get_weights()
      layer.set_weights([gamma, beta, mean, np.full_like(variance, 0.25)])
  return model


def png_header(width: int, height: int, bit_depth: int = 8) -> bytes:
  """A PNG signature and IHDR chunk claiming a size, and no pixel data."""
  ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
  chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
  return b"\x89PNG\r\n\x1a\n" + chunk


def pil_bytes(image: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image, mode).save(buf, format=fmt)
  return buf.getvalue()


@pytest.fixture(scope="module")
def config() -> ml_collections.ConfigDict:
  return tiny_config()


@pytest.fixture(scope="module")
def model(config) -> keras.Model:
  return sharp_model(config)


@pytest.fixture(scope="module")
def samples(config) -> dict:
  """Generator images 0..3 quantized to 8 bits: uint8, their floats, and their PNG bytes."""
  batch = input_pipeline.make_generator(config.data).generate(list(range(NUM_IMAGES)))
  u8 = tf.image.convert_image_dtype(batch["image"], tf.uint8, saturate=True)
  return {"u8": u8.numpy(), "float": tf.image.convert_image_dtype(u8, tf.float32).numpy(),
          "png": [tf.io.encode_png(x).numpy() for x in u8]}


@pytest.fixture(scope="module")
def saved(model, config, tmp_path_factory) -> str:
  path = str(tmp_path_factory.mktemp("export") / "model")
  return serving.export_saved_model(model, config, path)


@pytest.fixture(scope="module")
def loaded(saved):
  return tf.saved_model.load(saved)


def serve(loaded, items: list[bytes]) -> dict:
  out = loaded.signatures["serving_default"](image_bytes=tf.constant(items, tf.string))
  return {k: v.numpy() for k, v in out.items()}


def keras_outputs(model, images: np.ndarray, charset: str) -> dict:
  out = model(images, training=False)
  boxes, scores = models.decode_letters(out["letters"], (H, W), configs.tiny.get_config().data.max_length, 0.3)
  return {"text": metrics.decode_text(out["text_logits"], charset).numpy(),
          "confidence": metrics.greedy_confidence(out["text_logits"]).numpy(),
          "angle": out["angle"].numpy(), "clean": out["clean"].numpy(),
          "boxes": boxes.numpy() * np.array([H, W, H, W], np.float32), "box_scores": scores.numpy(),
          "text_log_probs": tf.nn.log_softmax(out["text_logits"]).numpy()}


# ------------------------------------------------------------------ signatures


def test_signatures_inputs_outputs(loaded, config):
  assert set(loaded.signatures) == {"serving_default", "serve_images", "read_text"}
  k = config.data.max_length
  expected = {"text": (tf.string, [None]), "confidence": (tf.float32, [None]), "angle": (tf.float32, [None]),
              "boxes": (tf.float32, [None, k, 4]), "box_scores": (tf.float32, [None, k]),
              "clean": (tf.float32, [None, H, W, 1]), "image_size": (tf.int32, [None, 2]),
              "text_log_probs": (tf.float32, [None, W // 4, len(config.data.charset) + 1]),
              "error": (tf.string, [None])}
  sig = loaded.signatures["serving_default"]
  _, inputs = sig.structured_input_signature
  assert list(inputs) == ["image_bytes"]
  assert inputs["image_bytes"].dtype == tf.string and inputs["image_bytes"].shape.as_list() == [None]
  outputs = sig.structured_outputs
  assert set(outputs) == set(serving.SERVING_KEYS) == set(expected)
  for key, (dtype, shape) in expected.items():
    assert outputs[key].dtype == dtype, key
    assert outputs[key].shape.as_list() == shape, key
  sig = loaded.signatures["serve_images"]
  _, inputs = sig.structured_input_signature
  assert list(inputs) == ["images"]
  assert inputs["images"].dtype == tf.float32 and inputs["images"].shape.as_list() == [None] * 4
  assert set(sig.structured_outputs) == set(serving.IMAGE_KEYS) == set(expected) - {"error"}
  sig = loaded.signatures["read_text"]
  _, inputs = sig.structured_input_signature
  assert list(inputs) == ["image_bytes"] and inputs["image_bytes"].dtype == tf.string
  assert set(sig.structured_outputs) == set(serving.READ_TEXT_KEYS) == set(expected) - {"clean"}


def test_read_text_is_serving_default_without_the_clean_image(loaded, samples):
  items = samples["png"] + [b"", b"not an image"]
  full = serve(loaded, items)
  out = {k: v.numpy() for k, v in loaded.signatures["read_text"](image_bytes=tf.constant(items)).items()}
  assert "clean" not in out
  for key in serving.READ_TEXT_KEYS:
    if full[key].dtype == object:
      assert list(out[key]) == list(full[key]), key
    else:
      np.testing.assert_allclose(out[key], full[key], atol=1e-5, err_msg=key)
  assert out["error"][-1] and not out["error"][0]


def test_assets_written(saved, config):
  assets = os.path.join(saved, "assets")
  with open(os.path.join(assets, "charset.txt"), encoding="utf-8") as f:
    assert f.read() == config.data.charset
  with open(os.path.join(assets, "config.json"), encoding="utf-8") as f:
    written = json.load(f)
  assert written["data"]["height"] == H and written["model"]["preset"] == "tiny"
  with open(os.path.join(assets, "serving.json"), encoding="utf-8") as f:
    settings = json.load(f)
  assert (settings["height"], settings["width"], settings["channels"]) == (H, W, C)
  assert settings["angle_mirror"] is False and settings["angle_views"] == 1
  assert settings["angle_views_narrow_max"] is None


def test_export_refuses_mismatched_config(model, tmp_path):
  config = tiny_config()
  config.data.height = 64
  with pytest.raises(ValueError, match=r"does not match config.data"):
    serving.export_saved_model(model, config, str(tmp_path / "m"))


# ------------------------------------------------------------------ agreement with the Keras model


def test_bytes_match_keras_model(loaded, model, samples, config):
  out = serve(loaded, samples["png"])
  ref = keras_outputs(model, samples["float"], config.data.charset)
  assert list(out["error"]) == [b""] * NUM_IMAGES
  assert list(out["text"]) == list(ref["text"])
  assert len(set(out["text"])) > 1, "the test model should read different text from different images"
  np.testing.assert_allclose(out["angle"], ref["angle"], atol=1e-4)
  np.testing.assert_allclose(out["confidence"], ref["confidence"], rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(out["clean"], ref["clean"], atol=1e-5)
  np.testing.assert_allclose(out["box_scores"], ref["box_scores"], atol=1e-5)
  assert (out["box_scores"] > 0).any()
  np.testing.assert_allclose(out["boxes"], ref["boxes"], atol=1e-2)
  np.testing.assert_array_equal(out["image_size"], [[H, W]] * NUM_IMAGES)
  np.testing.assert_allclose(out["text_log_probs"], ref["text_log_probs"], atol=1e-4)
  # The columns are named by the charset saved with the model: their greedy decode is the text.
  charset = loaded.charset.numpy().decode()
  assert charset == config.data.charset
  for log_probs, text in zip(out["text_log_probs"], out["text"]):
    best = [int(i) for i in log_probs.argmax(-1)]
    merged = [c for j, c in enumerate(best) if c != len(charset) and (j == 0 or c != best[j - 1])]
    assert "".join(charset[c] for c in merged) == text.decode()


def test_angle_mirror_is_odd_in_a_mirror_and_keeps_the_other_outputs(model, samples, config):
  d = config.data
  plain = serving.ServingModule(model, d.charset, H, W, C, d.max_length)
  mirror = serving.ServingModule(model, d.charset, H, W, C, d.max_length, angle_mirror=True)
  images = tf.constant(samples["float"])
  a, b = plain.serve_images(images), mirror.serve_images(images)
  flipped = mirror.serve_images(tf.reverse(images, axis=[2]))
  np.testing.assert_allclose(flipped["angle"].numpy(), -b["angle"].numpy(), atol=1e-4)
  ref = keras_outputs(model, samples["float"], d.charset)["angle"]
  ref_flipped = keras_outputs(model, samples["float"][:, :, ::-1].copy(), d.charset)["angle"]
  np.testing.assert_allclose(b["angle"].numpy(), (ref - ref_flipped) / 2, atol=1e-4)
  for key in ("text", "confidence", "boxes", "box_scores", "clean", "text_log_probs"):
    np.testing.assert_allclose(b[key].numpy(), a[key].numpy(), atol=1e-5, err_msg=key) if key != "text" else \
        np.testing.assert_array_equal(b[key].numpy(), a[key].numpy())


def test_angle_views_average_moved_copies_and_keep_the_other_outputs(model, samples, config):
  d = config.data
  plain = serving.ServingModule(model, d.charset, H, W, C, d.max_length)
  views = serving.ServingModule(model, d.charset, H, W, C, d.max_length, angle_views=3)
  images = tf.constant(samples["float"])
  a, b = plain.serve_images(images), views.serve_images(images)
  # The copies: moved down and right by one pixel, and up and left by one, edges repeated.
  padded = np.pad(samples["float"], ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  moved = [padded[:, :H, :W], padded[:, 2:, 2:]]
  np.testing.assert_array_equal(serving.shift_image(images, 1, 1).numpy(), moved[0])
  np.testing.assert_array_equal(serving.shift_image(images, -1, -1).numpy(), moved[1])
  ref = [keras_outputs(model, x, d.charset)["angle"] for x in [samples["float"]] + moved]
  assert np.abs(ref[1] - ref[0]).max() > 1e-4, "the copies should move the estimates of this model"
  np.testing.assert_allclose(b["angle"].numpy(), np.mean(ref, axis=0), atol=1e-4)
  for key in ("text", "confidence", "boxes", "box_scores", "clean", "text_log_probs"):
    np.testing.assert_allclose(b[key].numpy(), a[key].numpy(), atol=1e-5, err_msg=key) if key != "text" else \
        np.testing.assert_array_equal(b[key].numpy(), a[key].numpy())
  both = serving.ServingModule(model, d.charset, H, W, C, d.max_length, angle_mirror=True, angle_views=2)
  flipped = [x[:, :, ::-1].copy() for x in (samples["float"], moved[0])]
  odd = [(keras_outputs(model, x, d.charset)["angle"] - keras_outputs(model, y, d.charset)["angle"]) / 2
         for x, y in zip((samples["float"], moved[0]), flipped)]
  np.testing.assert_allclose(both.serve_images(images)["angle"].numpy(), np.mean(odd, axis=0), atol=1e-4)
  for bad in (0, 1 + len(serving.ANGLE_SHIFTS) + 1, 2.0, True):
    with pytest.raises(ValueError, match="angle_views"):
      serving.ServingModule(model, d.charset, H, W, C, d.max_length, angle_views=bad)


def test_angle_views_of_a_narrow_crop_are_read_on_the_central_half(model, samples, config, tmp_path):
  """A crop at most 3/8 of the canvas wide: its moved copies go through the same layers on a half-width canvas."""
  d = config.data
  views = serving.ServingModule(model, d.charset, H, W, C, d.max_length, angle_views=3)
  assert views.narrow_max == 3 * W // 8

  def copies(x, angle_model):  # the two moved copies' angle estimates, edges repeated
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = x.shape[1:3]
    return [angle_model(x) for x in (padded[:, :h, :w], padded[:, 2:, 2:])]

  narrow_config = tiny_config()
  narrow_config.data.width, narrow_config.data.max_length = W // 2, 4
  narrow = models.build_model(narrow_config.model, narrow_config.data)  # built on its own, weights copied by name
  for layer in narrow.layers:
    layer.set_weights(model.get_layer(layer.name).get_weights())
  on_half = lambda x: narrow(x, training=False)["angle"].numpy()
  on_whole = lambda x: keras_outputs(model, x, d.charset)["angle"]
  for width, half in ((3 * W // 8, True), (3 * W // 8 + 1, False)):
    crop = samples["float"][:, :, 10:10 + width]
    fitted = serving.fit_image(tf.constant(crop), H, W, C)[0].numpy()
    whole = on_whole(fitted)
    ref = copies(fitted[:, :, W // 4:W // 4 + W // 2], on_half) if half else copies(fitted, on_whole)
    got = views.serve_images(tf.constant(crop))["angle"].numpy()
    np.testing.assert_allclose(got, (whole + ref[0] + ref[1]) / 3, atol=1e-4, err_msg=f"width {width}")
    if half:
      other = copies(fitted, on_whole)
      assert np.abs((whole + other[0] + other[1]) / 3 - got).max() > 1e-3, "the half canvas should change it"
      narrow_png = tf.io.encode_png(tf.constant((crop[1] * 255).round().astype(np.uint8))).numpy()
      narrow_angle = got[1]
  # A read_text batch mixes narrow and wide crops and images in error: each row takes its own path.
  batch = tf.constant([samples["png"][0], narrow_png, b"", samples["png"][2]])
  mixed = views.read_text(batch)
  assert list(mixed["error"].numpy()[[0, 1, 3]]) == [b""] * 3 and mixed["error"].numpy()[2]
  alone = [views.read_text(tf.constant([b]))["angle"].numpy()[0] for b in (samples["png"][0], samples["png"][2])]
  angles = mixed["angle"].numpy()
  assert abs(alone[0] - alone[1]) > 1e-3
  np.testing.assert_allclose(angles, [alone[0], narrow_angle, 0.0, alone[1]], atol=1e-4)
  # Saved and loaded: the same angles, and the settings in serving.json.
  path = serving.export_saved_model(model, config, str(tmp_path / "views"), angle_views=3)
  np.testing.assert_allclose(tf.saved_model.load(path).signatures["read_text"](image_bytes=batch)["angle"].numpy(),
                             angles, atol=1e-4)
  with open(os.path.join(path, "assets", "serving.json"), encoding="utf-8") as f:
    settings = json.load(f)
  assert (settings["angle_views"], settings["angle_views_narrow_max"]) == (3, 3 * W // 8)


def test_serve_images_matches_bytes(loaded, samples):
  out = loaded.signatures["serve_images"](images=tf.constant(samples["float"]))
  ref = serve(loaded, samples["png"])
  assert list(out["text"].numpy()) == list(ref["text"])
  np.testing.assert_allclose(out["angle"].numpy(), ref["angle"], atol=1e-5)
  np.testing.assert_allclose(out["boxes"].numpy(), ref["boxes"], atol=1e-2)


def test_serve_images_channels(loaded, samples):
  """RGB, RGBA (opaque) and grey + alpha give the grey image's text."""
  grey = samples["float"]
  ref = loaded.signatures["serve_images"](images=tf.constant(grey))["text"].numpy()
  opaque = np.ones_like(grey)
  for images in (np.concatenate([grey, opaque], -1), np.concatenate([grey] * 3 + [opaque], -1)):
    out = loaded.signatures["serve_images"](images=tf.constant(images))
    assert list(out["text"].numpy()) == list(ref)
  rgb = np.concatenate([grey] * 3, -1)
  np.testing.assert_allclose(
      loaded.signatures["serve_images"](images=tf.constant(rgb))["angle"].numpy(),
      loaded.signatures["serve_images"](images=tf.constant(grey))["angle"].numpy(), atol=1e-4)
  with pytest.raises(tf.errors.InvalidArgumentError, match="1 to 4 channels"):
    loaded.signatures["serve_images"](images=tf.zeros([1, 8, 8, 5]))


def test_smaller_image_is_centred_and_boxes_map_back(loaded, model, samples, config):
  """A 16x128 crop is not resized, only centred (8 rows of border colour above and below)."""
  crop = samples["u8"][:, 8:24]
  out = serve(loaded, [tf.io.encode_png(x).numpy() for x in crop])
  crop_f = samples["float"][:, 8:24]
  border = np.concatenate([crop_f[:, 0], crop_f[:, -1], crop_f[:, :, 0], crop_f[:, :, -1]], axis=1)
  median = np.sort(border, axis=1)[:, border.shape[1] // 2]  # the border's median fills the canvas
  canvas = np.broadcast_to(median[:, None, None, :], samples["float"].shape).copy()
  canvas[:, 8:24] = crop_f
  ref = keras_outputs(model, canvas.astype(np.float32), config.data.charset)
  assert list(out["text"]) == list(ref["text"])
  np.testing.assert_allclose(out["angle"], ref["angle"], atol=1e-4)
  expected = ref["boxes"] - np.array([8, 0, 8, 0], np.float32)
  expected = np.clip(expected, 0, np.array([16, W, 16, W], np.float32))
  expected = np.where(ref["box_scores"][..., None] > 0, expected, 0)
  np.testing.assert_allclose(out["boxes"], expected, atol=1e-2)
  np.testing.assert_array_equal(out["image_size"], [[16, W]] * NUM_IMAGES)


@pytest.mark.parametrize("size,scale,offset", [
    ((64, 256), (0.5, 0.5), (0, 0)),
    ((10, 20), (3.2, 3.2), (0, 32)),
    ((32, 512), (0.25, 0.25), (12, 0)),
])
def test_fit_image_geometry(size, scale, offset):
  image = tf.random.stateless_uniform([2, *size, 3], (1, 2))

  def run(x):
    return serving.fit_image(x, H, W, C)

  for out, geometry in (run(image), tf.function(run)(image)):
    assert out.shape == (2, H, W, C)
    np.testing.assert_allclose(geometry.numpy()[0], [*scale, *offset, *size], rtol=1e-6)
    assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0


def test_fit_image_inside_dataset_map():
  ds = tf.data.Dataset.from_tensor_slices(tf.random.stateless_uniform([2, 10, 20, 4], (3, 4)))
  out = next(iter(ds.map(lambda x: serving.fit_image(x[None], H, W, 3)[0][0]).batch(2)))
  eager = serving.fit_image(tf.random.stateless_uniform([2, 10, 20, 4], (3, 4)), H, W, 3)[0]
  np.testing.assert_allclose(out.numpy(), eager.numpy(), atol=1e-6)


def test_to_channels_composites_alpha_on_white():
  rgba = tf.constant([[[[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.5]]]])
  grey = serving.to_channels(rgba, 1).numpy()[0, 0, :, 0]
  np.testing.assert_allclose(grey, [1.0, 0.0, 0.5 + 0.5 * 0.299], atol=1e-6)
  rgb = serving.to_channels(tf.constant([[[[0.25, 1.0]]]]), 3).numpy()
  np.testing.assert_allclose(rgb, [[[[0.25, 0.25, 0.25]]]])


# ------------------------------------------------------------------ bad bytes


def test_sniff_reads_sizes_without_decoding():
  rgb = np.zeros((7, 9, 3), np.uint8)
  items = [png_header(20000, 30000), pil_bytes(rgb, "GIF"), pil_bytes(rgb, "BMP"),
           tf.io.encode_jpeg(rgb).numpy(), b"", b"GIF8", b"\x89PNG\r\n\x1a\n", b"not an image at all"]
  head = {k: v.numpy() for k, v in serving.sniff(tf.constant(items)).items()}
  assert list(head["status"]) == [serving.OK] * 4 + [serving.EMPTY, serving.UNKNOWN_FORMAT, serving.SHORT_HEADER,
                                                     serving.UNKNOWN_FORMAT]
  assert list(head["height"][:3]) == [30000, 7, 7] and list(head["width"][:3]) == [20000, 9, 9]
  assert head["height"][3] == -1


def bad_and_good_items(samples) -> list[tuple[bytes, str]]:
  """(bytes, expected error substring or '' for fine) of every kind of input the signature must survive."""
  png, u8 = samples["png"][0], samples["u8"][0]
  jpeg = tf.io.encode_jpeg(u8).numpy()
  return [
      (png, ""),
      (b"", "empty input"),
      (b"hello, this is text", "not a decodable image"),
      (png[:len(png) // 2], "corrupt or truncated"),
      (png[:20], "truncated image header"),
      (jpeg[:len(jpeg) // 2], "corrupt or truncated"),
      (b"\xff\xd8\xff" + b"\0" * 40, "corrupt or truncated"),
      (tf.io.encode_png(np.full((1, 1, 1), 200, np.uint8)).numpy(), "image too small (1x1"),
      (png_header(20000, 20000), "image too large (20000x20000 = 400000000 pixels"),
      (png_header(0, 10), "zero size"),
      (tf.io.encode_png((u8.astype(np.uint16) * 257)).numpy(), ""),
      (pil_bytes(u8[..., 0], "GIF"), ""),
      (pil_bytes(u8[..., 0], "BMP"), ""),
      (pil_bytes(np.concatenate([np.repeat(u8, 3, -1), np.full_like(u8, 255)], -1), "PNG", "RGBA"), ""),
      (jpeg, ""),
      (samples["png"][1], ""),
  ]


def test_mixed_batch_never_raises(loaded, samples):
  items = bad_and_good_items(samples)
  out = serve(loaded, [b for b, _ in items])
  ref = serve(loaded, samples["png"][:2])
  for i, (_, expected) in enumerate(items):
    error = out["error"][i].decode()
    if expected:
      assert expected in error, (i, error)
      assert out["text"][i] == b"" and out["confidence"][i] == 0 and not out["boxes"][i].any()
    else:
      assert error == "", (i, error)
      np.testing.assert_array_equal(out["image_size"][i], [H, W])
  # Lossless variants of image 0 (16 bits, GIF, BMP, RGBA PNG) read exactly like it.
  for i in (0, 10, 11, 12, 13):
    assert out["text"][i] == ref["text"][0], i
    np.testing.assert_allclose(out["angle"][i], ref["angle"][0], atol=1e-4)
  assert out["text"][-1] == ref["text"][1]


def test_empty_batch(loaded):
  out = serve(loaded, [])
  assert out["text"].shape == (0,) and out["clean"].shape == (0, H, W, 1)


# ------------------------------------------------------------------ loading without ocr_tf


_LOADER = textwrap.dedent("""
    import sys
    sys.modules["ocr_tf"] = None
    sys.modules["keras"] = None
    sys.modules["configs"] = None
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model_path, out_path, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
    items = [open(name, "rb").read() for name in inputs]
    loaded = tf.saved_model.load(model_path)
    out = loaded.signatures["serving_default"](image_bytes=tf.constant(items, tf.string))
    np.savez(out_path, **{k: v.numpy() for k, v in out.items()})
    print("ok", "ocr_tf" in sys.modules and sys.modules["ocr_tf"] is not None)
""")


def test_loads_in_a_process_without_ocr_tf(saved, loaded, samples, tmp_path):
  items = samples["png"] + [b"", png_header(20000, 20000)]
  inputs = []
  for i, item in enumerate(items):
    inputs.append(str(tmp_path / f"item{i}.bin"))
    with open(inputs[-1], "wb") as f:
      f.write(item)
  script = tmp_path / "load.py"
  script.write_text(_LOADER)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  result = subprocess.run([sys.executable, str(script), saved, str(tmp_path / "out.npz"), *inputs],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip() == "ok False"
  out = dict(np.load(tmp_path / "out.npz", allow_pickle=True))
  ref = serve(loaded, items)
  assert set(out) == set(serving.SERVING_KEYS)
  np.testing.assert_array_equal(out["text"], ref["text"])
  np.testing.assert_array_equal(out["error"], ref["error"])
  np.testing.assert_allclose(out["angle"], ref["angle"], atol=1e-5)
  np.testing.assert_allclose(out["boxes"], ref["boxes"], atol=1e-2)


def test_larger_image_is_resized_and_boxes_scale_back(loaded, samples):
  """Image 0 at twice the size (64x256, RGB) reads like image 0; its boxes are in the large image's pixels."""
  big = np.repeat(np.repeat(np.repeat(samples["u8"][:1], 2, axis=1), 2, axis=2), 3, axis=3)
  out = serve(loaded, [tf.io.encode_png(big[0]).numpy(), samples["png"][0]])
  assert list(out["error"]) == [b"", b""]
  np.testing.assert_array_equal(out["image_size"], [[2 * H, 2 * W], [H, W]])
  assert out["boxes"][0].max() <= 2 * W and out["boxes"][0][:, 2].max() <= 2 * H
  big_boxes, small_boxes = out["boxes"][0][out["box_scores"][0] > 0], out["boxes"][1][out["box_scores"][1] > 0]
  assert big_boxes.max() > small_boxes.max() * 1.5, "boxes were not scaled back to the input's pixels"
  np.testing.assert_allclose(out["angle"][0], out["angle"][1], atol=0.5)


def test_fine_tuning_starts_from_an_exported_model(model, config, saved, tmp_path):
  """train.init_from takes a SavedModel folder (its variables and assets/config.json), e.g. the shipped model."""
  from ocr_tf import train  # pylint: disable=import-outside-toplevel
  from ocr_tf.config import ConfigError  # pylint: disable=import-outside-toplevel
  same = models.build_model(config.model, config.data)
  assert train.init_weights(same, saved, config.model) == os.path.join(saved, "variables", "variables")
  for a, b in zip(same.weights, model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)

  # Another angle head: assets/config.json rebuilds the exported model, the shared layers are copied by name.
  other = config.copy_and_resolve_references()
  other.model.angle_pool = "attention"
  tuned = models.build_model(other.model, other.data)
  train.init_weights(tuned, saved, other.model)
  for layer in tuned.layers:
    if layer.weights and not layer.name.startswith("angle_"):
      for a, b in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
        np.testing.assert_array_equal(a, b, err_msg=layer.name)

  wider = config.copy_and_resolve_references()
  wider.model.text_width = 32
  with pytest.raises(ConfigError, match="train.init_from=.*its model does not match"):
    train.init_weights(models.build_model(wider.model, wider.data), saved, wider.model)
  with pytest.raises(ConfigError, match="no checkpoint there .*an exported SavedModel folder"):
    train.init_weights(same, str(tmp_path), config.model)
  from ocr_tf import predict  # pylint: disable=import-outside-toplevel
  assert train.init_checkpoint("shipped") == os.path.join(predict.DEFAULT_MODEL, "variables", "variables")

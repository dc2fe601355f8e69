"""export_saved_model: the SavedModel of a Keras OCR model, and the files written next to it for people."""

from __future__ import annotations

import json
import os
from typing import Any

import keras
import ml_collections
import tensorflow as tf

from ocr_tf.serving.angle_views import check_angle_views
from ocr_tf.serving.image_bytes import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE
from ocr_tf.serving.module import ServingModule
from ocr_tf.serving.postprocess import IMAGE_KEYS, READ_TEXT_KEYS, SERVING_KEYS


def _json_ready(value: Any) -> Any:
  if isinstance(value, ml_collections.ConfigDict):
    return json.loads(value.to_json_best_effort())
  return value


def _letter_count(model: keras.Model, data: ml_collections.ConfigDict, max_letters: int | None, max_pixels: int,
                  min_side: int) -> int:
  """K, the letter boxes per image, once the model's input and the limits are checked.

  Raises:
    ValueError: the model's input is not config.data's, or a limit is below 1.
  """
  expected = (int(data.height), int(data.width), int(data.channels))
  got = tuple(model.inputs[0].shape[1:]) if model.inputs else None
  if got != expected:
    raise ValueError(f"model input shape {got} does not match config.data (height, width, channels) = {expected}")
  k = int(max_letters or data.max_length)
  if k < 1:
    raise ValueError(f"max_letters={max_letters!r}: must be >= 1")
  if int(max_pixels) < 1 or int(min_side) < 1:
    raise ValueError(f"max_pixels={max_pixels!r}, min_side={min_side!r}: both must be >= 1")
  return k


def _serving_json(data: ml_collections.ConfigDict, k: int, box_threshold: float, max_pixels: int, min_side: int,
                  angle_mirror: bool, angle_views: int, narrow_max: int | None) -> dict[str, Any]:
  """assets/serving.json: the input size, the export settings and the signatures' inputs and outputs."""
  return {"height": int(data.height), "width": int(data.width), "channels": int(data.channels), "max_letters": k,
          "box_threshold": float(box_threshold), "max_pixels": int(max_pixels), "min_side": int(min_side),
          "angle_mirror": bool(angle_mirror), "angle_views": int(angle_views),
          "angle_views_narrow_max": narrow_max,
          "signatures": {"serving_default": {"inputs": {"image_bytes": "string [B]"}, "outputs": list(SERVING_KEYS)},
                         "serve_images": {"inputs": {"images": "float32 [B, h, w, c] in [0, 1]"},
                                          "outputs": list(IMAGE_KEYS)},
                         "read_text": {"inputs": {"image_bytes": "string [B]"}, "outputs": list(READ_TEXT_KEYS)}}}


def write_assets(path: str, config: ml_collections.ConfigDict, serving: dict[str, Any]) -> None:
  """Writes path/assets/config.json (the training config), charset.txt (UTF-8, no newline) and serving.json."""
  assets = os.path.join(path, "assets")
  os.makedirs(assets, exist_ok=True)
  with open(os.path.join(assets, "config.json"), "w", encoding="utf-8") as f:
    json.dump(_json_ready(config), f, indent=2, sort_keys=True, ensure_ascii=False)
    f.write("\n")
  with open(os.path.join(assets, "charset.txt"), "w", encoding="utf-8", newline="") as f:
    f.write(config.data.charset)
  with open(os.path.join(assets, "serving.json"), "w", encoding="utf-8") as f:
    json.dump(serving, f, indent=2)
    f.write("\n")


def export_saved_model(model: keras.Model, config: ml_collections.ConfigDict, path: str, *,
                       max_letters: int | None = None, box_threshold: float = 0.3,
                       max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE,
                       angle_mirror: bool = False, angle_views: int = 1) -> str:
  """Writes `model` as a SavedModel with the signatures serving_default, serve_images and read_text.

  Args:
    model: the Keras model of models.build_model (input 'image' [B, H, W, C]).
    config: the training config; ``config.data`` gives the charset, H, W, C
      and ``max_length`` (the default number of letter boxes).
    path: the SavedModel folder (created; files in it are replaced).
    max_letters: K, letter boxes returned per image (default data.max_length).
    box_threshold: letter peaks scoring less are left out (score 0).
    max_pixels: images whose header claims more pixels are refused, not decoded.
    min_side: images with a side shorter than this are refused.
    angle_mirror: the angle is the half difference of the model's estimates
      for the image and for its mirror image (left-right): an angle changes
      sign in a mirror, the bias a glyph's asymmetric shape gives the
      estimate does not always. The model runs on twice the images.
    angle_views: the angle is the mean of the estimates for the fitted
      image and for angle_views - 1 copies of it moved by ANGLE_SHIFTS (one
      or two pixels). An estimate moves a little with the text's position
      against the network's strided layers; the mean is steadier (the shipped
      model: 0.523 to 0.49 degrees on rotated real words with 3). Each copy
      runs the backbone and the angle head, about 0.8 of a pass of the model;
      the copies of a crop at most 3/8 of the canvas wide (96 of 256
      columns, most words of a page) are read on the canvas's central half,
      at about half the cost.

  Returns:
    `path`.

  Raises:
    ValueError: the model does not match config.data, or a setting is out of range.
  """
  d = config.data
  k = _letter_count(model, d, max_letters, max_pixels, min_side)
  check_angle_views(angle_views)
  module = ServingModule(model, d.charset, int(d.height), int(d.width), int(d.channels), k, box_threshold,
                         max_pixels, min_side, angle_mirror, angle_views)
  signatures = {
      "serving_default": module.serving_default.get_concrete_function(),
      "serve_images": module.serve_images.get_concrete_function(),
      "read_text": module.read_text.get_concrete_function(),
  }
  tf.saved_model.save(module, path, signatures=signatures)
  write_assets(path, config, _serving_json(d, k, box_threshold, max_pixels, min_side, angle_mirror, angle_views,
                                           module.narrow_max))
  return path

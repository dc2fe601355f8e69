"""The OCR network: one Keras functional model from an image to four named outputs.

:func:`build_model` returns a ``keras.Model`` taking ``image`` float32
[B, H, W, C] in [0, 1] and returning a dict:

============  ======================  ==========================================
key           shape                   meaning
============  ======================  ==========================================
text_logits   [B, T, num_classes]     per-column class scores; T = W / width
                                      stride; CTC over the charset, blank last
angle         [B]                     the text's angle in degrees
letters       [B, H/s, W/s, 5]        dense letter map at ``letter_stride`` s:
                                      0 center heatmap logit, 1-2 center offset
                                      (y, x) inside the cell in cell units,
                                      3-4 box size (log h, log w) in pixels
clean         [B, H, W, 1]            the denoised image in [0, 1]
============  ======================  ==========================================

The backbone is a stack of stages of residual conv-BN-ReLU blocks, each
stage downsampling by its ``(height, width)`` stride; height is reduced more
than width. The text head collapses the last feature map to one row and runs
bidirectional LSTMs (or 1-D convs) over its columns. A U-Net-like decoder
climbs back to full resolution with skip connections from every stage; the
letter head reads the decoder level at stride ``letter_stride`` and the clean
head its full-resolution level. :func:`decode_letters` turns the letter map
into boxes in-graph.

Presets (``ocr_tf.config.model_config``), with parameter counts for grey images and the
62-character default charset:

* ``tiny``: about 220k parameters; trains in minutes on 2 CPU cores on
  32x128 grey images (configs/tiny.py): a step of 32 images takes about 0.1 s.
* ``default``: about 2.9M parameters (32x256, configs/default.py); one GPU.
* ``large``: about 17M parameters; deeper and wider, for multi-GPU runs.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import ml_collections
import tensorflow as tf

from ocr_tf import charset as charset_lib
from ocr_tf import config as config_lib
from ocr_tf.config import ConfigError

OUTPUT_NAMES = ("text_logits", "angle", "letters", "clean")
LETTER_CHANNELS = 5
# Initial heatmap bias: sigmoid(-2.19) = 0.1, the CenterNet prior.
_HEATMAP_PRIOR_BIAS = -2.19
# Predicted log sizes are clipped to this range (pixels e^-4 .. e^10) before exp.
_LOG_SIZE_RANGE = (-4.0, 10.0)


# ------------------------------------------------------------------ layers


@keras.saving.register_keras_serializable(package="ocr_tf")
class Squeeze(keras.layers.Layer):
  """Removes one axis of size 1 (e.g. [B, 1] -> [B])."""

  def __init__(self, axis: int = -1, **kwargs):
    super().__init__(**kwargs)
    self.axis = int(axis)

  def call(self, inputs):
    return keras.ops.squeeze(inputs, axis=self.axis)

  def compute_output_shape(self, input_shape):
    shape = list(input_shape)
    del shape[self.axis]
    return tuple(shape)

  def get_config(self) -> dict:
    config = super().get_config()
    config["axis"] = self.axis
    return config


@keras.saving.register_keras_serializable(package="ocr_tf")
class AttentionPool(keras.layers.Layer):
  """Softmax-weighted average over positions: (values [B, H, W, C], logits [B, H, W, 1]) -> [B, C]."""

  def call(self, inputs):
    values, logits = inputs
    h, w, c = values.shape[1], values.shape[2], values.shape[3]
    v = keras.ops.reshape(values, (-1, h * w, c))
    weights = keras.ops.softmax(keras.ops.reshape(logits, (-1, h * w)), axis=1)
    return keras.ops.sum(v * weights[..., None], axis=1)

  def compute_output_shape(self, input_shape):
    return (input_shape[0][0], input_shape[0][-1])


def _conv_bn(x, filters: int, kernel, strides, name: str, momentum: float, relu: bool = True,
             padding: str = "same"):
  x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                          name=f"{name}_conv")(x)
  x = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
  if relu:
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
  return x


def _residual_block(x, filters: int, strides: tuple[int, int], name: str, momentum: float):
  """conv-BN-ReLU, conv-BN, plus the input (average-pooled, projected as needed), ReLU.

  The shortcut pools before its 1x1 conv (ResNet-D) instead of striding the
  1x1 conv: better, and oneDNN's strided 1x1 weight gradient corrupts memory
  for inputs with few channels (oneDNN issue 6035).
  """
  y = _conv_bn(x, filters, 3, strides, f"{name}_a", momentum)
  y = _conv_bn(y, filters, 3, 1, f"{name}_b", momentum, relu=False)
  shortcut = x
  if tuple(strides) != (1, 1):
    shortcut = keras.layers.AveragePooling2D(pool_size=tuple(strides), strides=tuple(strides), padding="same",
                                             name=f"{name}_pool")(shortcut)
  if x.shape[-1] != filters:
    shortcut = _conv_bn(shortcut, filters, 1, 1, f"{name}_proj", momentum, relu=False)
  y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
  return keras.layers.ReLU(name=f"{name}_out")(y)


def _backbone(image, m: ml_collections.ConfigDict) -> list:
  """Feature maps of every level: the stem (full resolution), then each stage."""
  x = _conv_bn(image, m.stem_width, 3, 1, "stem", m.bn_momentum)
  features = [x]
  for i, (width, depth, strides) in enumerate(zip(m.widths, m.depths, m.strides)):
    for j in range(depth):
      x = _residual_block(x, width, tuple(strides) if j == 0 else (1, 1), f"stage{i + 1}_block{j + 1}",
                          m.bn_momentum)
    features.append(x)
  return features


def _decoder(features: Sequence, m: ml_collections.ConfigDict) -> list:
  """U-Net decoder: level i = upsampled level i+1, concatenated with backbone level i, conv."""
  outs = [None] * len(features)
  x = outs[-1] = features[-1]
  for i in reversed(range(len(features) - 1)):
    x = keras.layers.UpSampling2D(size=tuple(m.strides[i]), interpolation="bilinear",
                                  name=f"decoder{i}_up")(x)
    x = keras.layers.Concatenate(name=f"decoder{i}_concat")([x, features[i]])
    x = _conv_bn(x, m.decoder_widths[i], 3, 1, f"decoder{i}", m.bn_momentum)
    outs[i] = x
  return outs


def _text_head(features, m: ml_collections.ConfigDict, num_classes: int):
  """Collapse the last feature map to one row, model the columns, classify each column."""
  rows, cols = features.shape[1], features.shape[2]
  x = _conv_bn(features, m.text_width, (rows, 1), 1, "text_collapse", m.bn_momentum, padding="valid")
  x = keras.layers.Reshape((cols, m.text_width), name="text_columns")(x)
  for k in range(m.text_layers):
    if m.text_head == "lstm":
      lstm = keras.layers.LSTM(m.text_width // 2, return_sequences=True, name=f"text_lstm{k + 1}")
      x = keras.layers.Bidirectional(lstm, name=f"text_bilstm{k + 1}")(x)
    else:
      y = keras.layers.Conv1D(m.text_width, 5, padding="same", use_bias=False, name=f"text_conv{k + 1}")(x)
      y = keras.layers.BatchNormalization(momentum=m.bn_momentum, name=f"text_conv{k + 1}_bn")(y)
      y = keras.layers.ReLU(name=f"text_conv{k + 1}_relu")(y)
      x = keras.layers.Add(name=f"text_conv{k + 1}_add")([x, y])
  return keras.layers.Dense(num_classes, dtype="float32", name="text_logits")(x)


def _pooled(features, m: ml_collections.ConfigDict, prefix: str):
  """[B, C] summary of a feature map for the angle: see model.angle_pool."""
  if m.angle_pool == "attention":
    x = keras.layers.Conv2D(m.angle_width, 1, activation="relu", name=f"{prefix}_local")(features)
    logits = keras.layers.Conv2D(1, 1, name=f"{prefix}_attention")(features)
    return AttentionPool(dtype="float32", name=f"{prefix}_pool")([x, logits])
  x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}_pool")(features)
  return keras.layers.Dense(m.angle_width, activation="relu", name=f"{prefix}_hidden")(x)


def _angle_head(features, image, m: ml_collections.ConfigDict):
  x = _pooled(features, m, "angle")
  branch = tuple(m.angle_branch)
  if branch:
    y = _conv_bn(image, branch[0], 3, 1, "angle_stem", m.bn_momentum)
    for i, width in enumerate(branch[1:]):
      y = _residual_block(y, width, (2, 2), f"angle_block{i + 1}", m.bn_momentum)
    y = _pooled(y, m, "angle_branch")
    x = keras.layers.Concatenate(name="angle_both")([x, y])
    x = keras.layers.Dense(m.angle_width, activation="relu", name="angle_mix")(x)
    x = keras.layers.Dense(1, dtype="float32", name="angle_value")(x)
  else:
    x = keras.layers.Dense(1, dtype="float32", name="angle_degrees")(x)
  return Squeeze(axis=-1, dtype="float32", name="angle")(x)


def _letter_head(features, m: ml_collections.ConfigDict):
  x = _conv_bn(features, m.letter_width, 3, 1, "letter_hidden", m.bn_momentum)
  heat = keras.layers.Conv2D(1, 1, dtype="float32", name="letter_heatmap",
                             bias_initializer=keras.initializers.Constant(_HEATMAP_PRIOR_BIAS))(x)
  box = keras.layers.Conv2D(LETTER_CHANNELS - 1, 1, dtype="float32", name="letter_box")(x)
  return keras.layers.Concatenate(dtype="float32", name="letters")([heat, box])


def _clean_head(features):
  return keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32",
                             name="clean")(features)


def build_model(model_cfg: ml_collections.ConfigDict, data_cfg: ml_collections.ConfigDict) -> keras.Model:
  """The OCR model for images of data_cfg's height, width, channels and charset.

  Args:
    model_cfg: from ocr_tf.config.model_config (possibly with fields changed).
    data_cfg: the `data` block of a config (height, width, channels, charset,
      max_length).

  Returns:
    A functional keras.Model with input ``image`` [B, H, W, C] and a dict of
    outputs ``text_logits``, ``angle``, ``letters``, ``clean`` (module docstring).
  """
  config_lib.validate(model_cfg, data_cfg)
  if data_cfg.channels not in (1, 3):
    raise ConfigError(f"data.channels={data_cfg.channels!r}: must be 1 or 3")
  num_classes = charset_lib.Charset(data_cfg.charset).num_classes
  image = keras.Input(shape=(int(data_cfg.height), int(data_cfg.width), int(data_cfg.channels)),
                      name="image")
  features = _backbone(image, model_cfg)
  decoded = _decoder(features, model_cfg)
  letter_level = config_lib.level_strides(model_cfg).index((model_cfg.letter_stride, model_cfg.letter_stride))
  outputs = {
      "text_logits": _text_head(features[-1], model_cfg, num_classes),
      "angle": _angle_head(features[-1], image, model_cfg),
      "letters": _letter_head(decoded[letter_level], model_cfg),
      "clean": _clean_head(decoded[0]),
  }
  return keras.Model(inputs=image, outputs=outputs, name=f"ocr_{model_cfg.preset}")


# ------------------------------------------------------------------ letter decoding


def decode_letters(letters: tf.Tensor, image_size: tuple[int, int], max_letters: int,
                   threshold: float = 0.3) -> tuple[tf.Tensor, tf.Tensor]:
  """Boxes from the letter map, in-graph: 3x3 max-pool peaks, top-K by score.

  Args:
    letters: [B, h, w, 5] as output by the model (heatmap logits, offsets, log sizes).
    image_size: (H, W) of the model's input image, in pixels.
    max_letters: K, the number of boxes returned per image.
    threshold: peaks whose score (sigmoid of the heatmap logit) is below it are
      dropped: score 0, box all zeros.

  Returns:
    boxes [B, K, 4] normalized [ymin, xmin, ymax, xmax] clipped to [0, 1],
    scores [B, K], sorted by decreasing score.
  """
  if int(max_letters) < 1:
    raise ValueError(f"max_letters={max_letters!r}: must be >= 1")
  letters = tf.convert_to_tensor(letters, tf.float32)
  if letters.shape.rank != 4 or letters.shape[-1] != LETTER_CHANNELS:
    raise ValueError(f"letters has shape {letters.shape}: expected [B, h, w, {LETTER_CHANNELS}]")
  height, width = float(image_size[0]), float(image_size[1])
  shape = tf.shape(letters)
  b, h, w = shape[0], shape[1], shape[2]
  heat = tf.sigmoid(letters[..., 0])
  peaks = tf.nn.max_pool2d(heat[..., None], ksize=3, strides=1, padding="SAME")[..., 0]
  heat = tf.where(heat >= peaks, heat, 0.0)
  flat = tf.reshape(heat, [b, h * w])
  k = int(max_letters)
  flat = tf.pad(flat, [[0, 0], [0, tf.maximum(k - h * w, 0)]])
  scores, index = tf.math.top_k(flat, k=k)
  index = tf.minimum(index, h * w - 1)
  regress = tf.gather(tf.reshape(letters[..., 1:], [b, h * w, LETTER_CHANNELS - 1]), index, batch_dims=1)
  stride_y = height / tf.cast(h, tf.float32)
  stride_x = width / tf.cast(w, tf.float32)
  cy = (tf.cast(index // w, tf.float32) + regress[..., 0]) * stride_y
  cx = (tf.cast(index % w, tf.float32) + regress[..., 1]) * stride_x
  size = tf.exp(tf.clip_by_value(regress[..., 2:], *_LOG_SIZE_RANGE))
  half_h, half_w = size[..., 0] / 2, size[..., 1] / 2
  boxes = tf.stack([(cy - half_h) / height, (cx - half_w) / width,
                    (cy + half_h) / height, (cx + half_w) / width], axis=-1)
  keep = scores >= threshold
  scores = tf.where(keep, scores, 0.0)
  boxes = tf.where(keep[..., None], tf.clip_by_value(boxes, 0.0, 1.0), 0.0)
  return boxes, scores


def count_params(model: keras.Model) -> int:
  """Number of weights (trainable and not) of a model."""
  return int(sum(math.prod(w.shape) for w in model.weights))

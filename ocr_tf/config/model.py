"""The `model` block: its presets (a table), their checks and the geometry they imply.

TensorFlow-free, so that a config file loads and a bad value is reported
before TensorFlow is imported; ocr_tf.models builds the network from it.

Fields:
  preset: the preset the block started from ('tiny', 'default', 'large'); it
    names the Keras model, changing it alone does not change the network.
  stem_width: channels of the full-resolution stem conv.
  widths, depths, strides: per backbone stage, its channels, number of
    residual blocks and (height, width) stride of its first block.
  decoder_widths: channels of the decoder at each skip level, from full
    resolution (the stem) to the level just above the last stage.
  letter_stride: stride of the letter map; some level must have this
    cumulative stride in both height and width.
  letter_width: channels of the letter head's hidden conv.
  text_head: 'lstm' (bidirectional LSTMs) or 'conv' (residual 1-D convs).
  text_width: channels of the text head (LSTM: both directions together).
  text_layers: number of bidirectional LSTMs or residual 1-D conv blocks.
  angle_width: hidden units of the angle head.
  angle_pool: how the angle head pools the last features: 'average' (over
    every position) or 'attention' (a softmax-weighted average of
    per-position estimates, so a short word in a wide image counts as much
    as a long one).
  angle_branch: channels of the angle head's own conv stages, each a
    residual block halving height and width, from a full-resolution conv of
    the image; () = none, the head reads the backbone's last features only.
    The text task wants features that ignore a small rotation, and the last
    level is one row: a lone letter's tilt is lost there. With a branch the
    angle comes from both (pooled the same way, then a hidden layer).
  bn_momentum: BatchNormalization momentum.
"""

from __future__ import annotations

import ml_collections

from ocr_tf.config.checks import ConfigError, is_positive_int

ANGLE_POOLS = ("average", "attention")
TEXT_HEADS = ("lstm", "conv")

# The fields every preset shares, in the order the block lists them (after `preset`).
_COMMON = {
    "strides": ((2, 2), (2, 2), (2, 1), (2, 1)),
    "letter_stride": 4,
    "text_head": "lstm",
    "angle_pool": "average",
    "angle_branch": (),
    "bn_momentum": 0.9,
}

# One row per preset: the fields that differ between them.
_PRESETS = {
    "tiny": {"stem_width": 8, "widths": (16, 32, 48, 64), "depths": (1, 1, 1, 1),
             "decoder_widths": (8, 16, 24, 32), "letter_width": 24, "text_width": 64, "text_layers": 1,
             "angle_width": 32},
    "default": {"stem_width": 16, "widths": (32, 64, 128, 192), "depths": (1, 2, 2, 2),
                "decoder_widths": (16, 32, 64, 96), "letter_width": 64, "text_width": 192, "text_layers": 2,
                "angle_width": 64},
    "large": {"stem_width": 32, "widths": (64, 128, 256, 384), "depths": (2, 3, 4, 3),
              "decoder_widths": (32, 64, 128, 192), "letter_width": 128, "text_width": 384, "text_layers": 2,
              "angle_width": 128},
}
PRESETS = tuple(_PRESETS)


def model_config(preset: str = "default") -> ml_collections.ConfigDict:
  """The model block of one preset (the fields are described in the module docstring).

  Args:
    preset: 'tiny', 'default' or 'large'.

  Returns:
    A new ConfigDict; raises ConfigError for another preset name.
  """
  if preset not in _PRESETS:
    raise ConfigError(f"model.preset={preset!r}: must be one of {', '.join(PRESETS)}")
  c = ml_collections.ConfigDict()
  c.preset = preset
  for name, value in {**_COMMON, **_PRESETS[preset]}.items():
    c[name] = value
  return c


def level_strides(model_cfg: ml_collections.ConfigDict) -> list[tuple[int, int]]:
  """Cumulative (height, width) stride of each feature level: the stem, then each stage."""
  out = [(1, 1)]
  for sh, sw in model_cfg.strides:
    out.append((out[-1][0] * sh, out[-1][1] * sw))
  return out


def output_strides(model_cfg: ml_collections.ConfigDict) -> tuple[int, int]:
  """Total (height, width) stride of the backbone; the width stride sets T."""
  return level_strides(model_cfg)[-1]


def text_length(model_cfg: ml_collections.ConfigDict, data_cfg: ml_collections.ConfigDict) -> int:
  """T, the number of CTC frames: image width over the backbone's width stride."""
  return int(data_cfg.width) // output_strides(model_cfg)[1]


def letter_map_shape(model_cfg: ml_collections.ConfigDict,
                     data_cfg: ml_collections.ConfigDict) -> tuple[int, int]:
  """(height, width) of the letter map."""
  s = int(model_cfg.letter_stride)
  return int(data_cfg.height) // s, int(data_cfg.width) // s


def _check_sequence(m: ml_collections.ConfigDict, name: str, length: int | None = None) -> None:
  value = m[name]
  if not isinstance(value, (tuple, list)) or not value:
    raise ConfigError(f"model.{name}={value!r}: expected a non-empty sequence")
  if length is not None and len(value) != length:
    raise ConfigError(f"model.{name}={value!r}: expected {length} entries, one per stage")
  if not all(is_positive_int(v) for v in value):
    raise ConfigError(f"model.{name}={value!r}: entries must be whole numbers >= 1")


def _check_stages(m: ml_collections.ConfigDict) -> None:
  """Per-stage sequences of one length, strides as (height, width) pairs, widths as whole numbers."""
  _check_sequence(m, "widths")
  n = len(m.widths)
  _check_sequence(m, "depths", n)
  _check_sequence(m, "decoder_widths", n)
  strides = m.strides
  if (not isinstance(strides, (tuple, list)) or len(strides) != n
      or not all(isinstance(s, (tuple, list)) and len(s) == 2 and all(is_positive_int(v) for v in s)
                 for s in strides)):
    raise ConfigError(f"model.strides={strides!r}: expected {n} (height, width) pairs of whole numbers >= 1, "
                      f"one per stage")
  for name in ("stem_width", "letter_width", "text_width", "text_layers", "angle_width", "letter_stride"):
    if not is_positive_int(m[name]):
      raise ConfigError(f"model.{name}={m[name]!r}: must be a whole number >= 1")


def _check_heads(m: ml_collections.ConfigDict, data_cfg: ml_collections.ConfigDict) -> None:
  """The angle head's pooling and branch, the text head's kind and width."""
  if m.angle_pool not in ANGLE_POOLS:
    raise ConfigError(f"model.angle_pool={m.angle_pool!r}: must be one of {', '.join(ANGLE_POOLS)}")
  branch = m.angle_branch
  if not isinstance(branch, (tuple, list)) or not all(is_positive_int(v) for v in branch):
    raise ConfigError(f"model.angle_branch={branch!r}: expected channels (whole numbers >= 1) of each of the "
                      f"angle branch's stages, or () for none")
  if branch and (int(data_cfg.height) % 2 ** (len(branch) - 1) or int(data_cfg.width) % 2 ** (len(branch) - 1)):
    raise ConfigError(f"model.angle_branch={tuple(branch)!r}: {len(branch) - 1} halvings do not divide the "
                      f"{data_cfg.height}x{data_cfg.width} image")
  if m.text_head not in TEXT_HEADS:
    raise ConfigError(f"model.text_head={m.text_head!r}: must be 'lstm' or 'conv'")
  if m.text_head == "lstm" and m.text_width % 2:
    raise ConfigError(f"model.text_width={m.text_width}: must be even for a bidirectional LSTM")


def _check_geometry(m: ml_collections.ConfigDict, data_cfg: ml_collections.ConfigDict) -> None:
  """The image against the strides: divisible, a level at the letter stride, enough CTC frames."""
  sh, sw = output_strides(m)
  h, w = int(data_cfg.height), int(data_cfg.width)
  if h % sh:
    raise ConfigError(f"data.height={h}: not divisible by the backbone's total height stride {sh} "
                      f"(model.strides={tuple(map(tuple, m.strides))})")
  if w % sw:
    raise ConfigError(f"data.width={w}: not divisible by the backbone's total width stride {sw} "
                      f"(model.strides={tuple(map(tuple, m.strides))})")
  s = m.letter_stride
  if (s, s) not in level_strides(m):
    raise ConfigError(f"model.letter_stride={s}: no feature level has stride ({s}, {s}); "
                      f"levels: {level_strides(m)}")
  t = w // sw
  if t < 2 * data_cfg.max_length - 1:
    raise ConfigError(f"data.max_length={data_cfg.max_length}: CTC needs up to {2 * data_cfg.max_length - 1} "
                      f"frames for it, the model gives T = {w} / {sw} = {t}")


def validate(model_cfg: ml_collections.ConfigDict, data_cfg: ml_collections.ConfigDict) -> None:
  """Checks the model block against the data block.

  Args:
    model_cfg: a full model block (model_config(), possibly with fields changed).
    data_cfg: the data block it is for (height, width, max_length).

  Raises:
    ConfigError: one line naming the first bad field and its value.
  """
  _check_stages(model_cfg)
  _check_heads(model_cfg, data_cfg)
  _check_geometry(model_cfg, data_cfg)

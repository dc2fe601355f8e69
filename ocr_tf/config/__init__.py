"""The configuration schema: every field with its default, its checks, and the upgrade of older files.

No TensorFlow here: a config file loads and a bad value is reported before
TensorFlow is imported. Config files in ``configs/`` start from
:func:`get_config` and override a few fields. A config has three blocks:

* ``data``: the generator (:func:`data_config`; ocr_tf.config.data);
* ``model``: the network, the fields of a preset (:func:`model_config`;
  ocr_tf.config.model); changing ``model.preset`` alone does not change the
  network: a config file picks the preset with :func:`model_config`;
* ``train``: the training run (:func:`train_config`), with its ``loss`` block
  (:func:`loss_config`; ocr_tf.config.train).

:func:`validate_config` checks the blocks and raises :class:`ConfigError`
with one line naming the field and the value. The commands check a config
once: :func:`checked` returns a :class:`CheckedConfig`, a frozen copy that
every part reading it takes as it is (:func:`checked_data` for a data block
alone, which the generator takes). :func:`upgrade` turns a config.json
written by an earlier version into a full current config.
"""

from __future__ import annotations

import copy

import ml_collections

from ocr_tf.config.checks import ConfigError
from ocr_tf.config.data import ALNUM, DATA_SERVICE_ON_LOSS, data_config, normalize_address, validate_data
from ocr_tf.config.model import (ANGLE_POOLS, PRESETS, letter_map_shape, level_strides, model_config, output_strides,
                                 text_length, validate)
from ocr_tf.config.train import LOSS_NAMES, OPTIMIZERS, PRECISIONS, loss_config, train_config, validate_train
from ocr_tf.config.upgrade import BLOCKS, upgrade

__all__ = [
    "ALNUM", "ANGLE_POOLS", "BLOCKS", "DATA_SERVICE_ON_LOSS", "LOSS_NAMES", "OPTIMIZERS", "PRECISIONS", "PRESETS",
    "CheckedConfig", "ConfigError", "check", "check_data", "checked", "checked_data", "data_config", "get_config",
    "letter_map_shape", "level_strides", "loss_config", "model_config", "normalize_address", "output_strides",
    "text_length", "train_config", "upgrade", "validate", "validate_config", "validate_data", "validate_train",
]


def get_config() -> ml_collections.ConfigDict:
  """Defaults for every field ('default' model preset); configs/*.py start from here."""
  config = ml_collections.ConfigDict()
  config.data = data_config()
  config.model = model_config("default")
  config.train = train_config()
  return config


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Checks every block of a full config: data, model (against data), train.

  Raises:
    ConfigError: one line naming the first bad field and its value.
  """
  for block in BLOCKS:
    if block not in config:
      raise ConfigError(f"config has no `{block}` block: start the config file from ocr_tf.config.get_config()")
  validate_data(config.data)
  validate(config.model, config.data)
  validate_train(config.train)


_KEY = object()  # CheckedConfig's constructor takes it: only check() and check_data() have it


class CheckedConfig(ml_collections.FrozenConfigDict):
  """A full config or a data block that passed its checks, frozen so that it stays valid.

  Read it as a ConfigDict (attributes, ``in``, ``get``, ``to_dict``,
  ``to_json_best_effort``); its blocks are frozen too, and the data block of
  a checked config is itself a checked data block. Made by :func:`check` and
  :func:`check_data` only; copies (copy.deepcopy, pickle) stay checked.
  """

  def __init__(self, config: ml_collections.ConfigDict, checked_as: str, key: object):
    if key is not _KEY:
      raise TypeError("a CheckedConfig is made by ocr_tf.config.check(config) or check_data(data_block)")
    super().__init__(config)
    object.__setattr__(self, "_checked_as", checked_as)
    if checked_as == "config":
      self._fields["data"] = CheckedConfig(self._fields["data"], "data", _KEY)

  def __setstate__(self, state: dict) -> None:
    CheckedConfig.__init__(self, state["_configdict"], state["_checked_as"], _KEY)

  def copy_and_resolve_references(self, visit_map=None) -> "CheckedConfig":
    del visit_map  # a frozen config holds no references
    return copy.deepcopy(self)


def _frozen_copy(config: ml_collections.ConfigDict, checked_as: str) -> CheckedConfig:
  """A CheckedConfig of a copy: later changes to `config` do not reach it."""
  return CheckedConfig(ml_collections.ConfigDict(copy.deepcopy(config.to_dict())), checked_as, _KEY)


def _checked(value: ml_collections.ConfigDict, kind: str, validate) -> CheckedConfig:
  """`value` itself when it is a CheckedConfig of this kind, else validate(value) and a checked copy."""
  if isinstance(value, CheckedConfig) and value._checked_as == kind:  # pylint: disable=protected-access
    return value
  validate(value)
  return _frozen_copy(value, kind)


def check(config: ml_collections.ConfigDict) -> CheckedConfig:
  """Validates a full config (validate_config) and returns it as a CheckedConfig; raises ConfigError."""
  validate_config(config)
  return _frozen_copy(config, "config")


def checked(config: ml_collections.ConfigDict) -> CheckedConfig:
  """`config` itself when it is a CheckedConfig of a full config, else check(config)."""
  return _checked(config, "config", validate_config)


def check_data(data: ml_collections.ConfigDict) -> CheckedConfig:
  """Validates a data block alone (validate_data) and returns it as a CheckedConfig; raises ConfigError."""
  validate_data(data)
  return _frozen_copy(data, "data")


def checked_data(data: ml_collections.ConfigDict) -> CheckedConfig:
  """`data` itself when it is a checked data block (check_data, or the data block of check), else check_data."""
  return _checked(data, "data", validate_data)

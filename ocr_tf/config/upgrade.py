"""Configs saved by earlier versions (a run's config.json, an export's assets/config.json) as current configs.

A field added to ocr_tf after a file was written is absent from it; its
default is the value that keeps the behaviour the file was written with
(a new field's default always switches its feature off or leaves the
numbers as they were). :func:`upgrade` is the one place that knows this:
it fills every absent field with its default, so the code reads
``config.data.field`` directly. A field or block this version does not
know (a newer ocr_tf's, or a typing error) is refused with one line.
"""

from __future__ import annotations

from typing import Any, Mapping

import ml_collections

from ocr_tf.config.checks import ConfigError
from ocr_tf.config.data import data_config
from ocr_tf.config.model import PRESETS, model_config
from ocr_tf.config.train import train_config

BLOCKS = ("data", "model", "train")


def _immutable(value: Any) -> Any:
  """JSON lists as the tuples a config file gives (recursively)."""
  if isinstance(value, (list, tuple)):
    return tuple(_immutable(v) for v in value)
  return value


def _merge(defaults: ml_collections.ConfigDict, saved: Mapping, where: str) -> dict:
  """The fields of `defaults` as a dict, each replaced by its value in `saved` when there; blocks recursively."""
  unknown = sorted(set(saved) - set(defaults.keys()))
  if unknown:
    name = unknown[0]
    raise ConfigError(f"{where}.{name}={saved[name]!r}: not a field of this ocr_tf (a config of a newer version, "
                      f"or a misspelt field)")
  out = {}
  for name in defaults.keys():
    default = defaults[name]
    if name not in saved:
      out[name] = default.to_dict() if isinstance(default, ml_collections.ConfigDict) else default
    elif isinstance(default, ml_collections.ConfigDict):
      if not isinstance(saved[name], Mapping):
        raise ConfigError(f"{where}.{name}={saved[name]!r}: expected a block of fields")
      out[name] = _merge(default, saved[name], f"{where}.{name}")
    else:
      out[name] = _immutable(saved[name])
  return out


def upgrade(raw: Mapping) -> ml_collections.ConfigDict:
  """A config.json written by this or an earlier version, as a full current config.

  Args:
    raw: the file's content (json.load): blocks data, model and train.

  Returns:
    A ConfigDict with every current field: those of `raw` as saved (JSON
    lists as tuples), the others at their defaults; the model block's from
    the preset it names. Not validated (its files need not exist here):
    check() it before use.

  Raises:
    ConfigError: one line, for a missing or unknown block or an unknown field.
  """
  if not isinstance(raw, Mapping):
    raise ConfigError(f"config={raw!r}: expected blocks {', '.join(BLOCKS)}")
  unknown = sorted(set(raw) - set(BLOCKS))
  if unknown:
    raise ConfigError(f"config.{unknown[0]}: not a block of this ocr_tf's configs (it has {', '.join(BLOCKS)})")
  for block in BLOCKS:
    if not isinstance(raw.get(block), Mapping):
      raise ConfigError(f"config.{block}={raw.get(block)!r}: expected the {block} block of a config")
  preset = raw["model"].get("preset")
  defaults = {"data": data_config(), "model": model_config(preset if preset in PRESETS else "default"),
              "train": train_config()}
  return ml_collections.ConfigDict({block: _merge(defaults[block], raw[block], block) for block in BLOCKS})

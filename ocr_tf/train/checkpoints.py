"""Checkpoints of a run: restoring the newest readable one, writing one, initial weights, exporting a workdir.

A run's checkpoints (``workdir/checkpoints``, tf.train.CheckpointManager) are
restored newest first, skipping damaged ones (:func:`restore_newest_readable`);
a failed write is one :class:`CheckpointWriteError` line naming the intact
previous one. ``train.init_from`` takes the model weights of another run or
of an exported SavedModel (:func:`init_weights`), and :func:`export_workdir`
hands a run's newest weights to an export function.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from ocr_tf import assets, errors, models
from ocr_tf import config as config_lib
from ocr_tf.config import ConfigError
from ocr_tf.train.rundir import CHECKPOINT_DIR, CONFIG_FILE, config_json, flatten, load_run_config
from ocr_tf.train.state import TrainState

# The model shipped in the package (train.init_from='shipped').

ExportFn = Callable[[keras.Model, ml_collections.ConfigDict, str], Any]


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written; the message names the folder, the cause and the intact one."""



# ------------------------------------------------------------------ the run's own checkpoints


def checkpoint_candidates(checkpoint_dir: str) -> list[str]:
  """Checkpoint prefixes of checkpoint_dir, newest first: those the state file lists, then any other ckpt-N."""
  listed = []
  try:
    ckpt_state = tf.train.get_checkpoint_state(checkpoint_dir)
    if ckpt_state is not None:
      listed = [os.path.join(checkpoint_dir, os.path.basename(p)) for p in ckpt_state.all_model_checkpoint_paths]
  except (tf.errors.OpError, ValueError) as e:  # an unreadable state file: fall back to the files
    logging.warning("%s/checkpoint is unreadable (%s); looking at the checkpoint files", checkpoint_dir,
                    errors.one_line(e))
  on_disk = [p[:-len(".index")] for p in tf.io.gfile.glob(os.path.join(checkpoint_dir, "ckpt-*.index"))]
  number = lambda p: int(p.rsplit("-", 1)[1]) if p.rsplit("-", 1)[1].isdigit() else -1
  return sorted(set(listed) | set(on_disk), key=number, reverse=True)


def restore_newest_readable(checkpoint: tf.train.Checkpoint, checkpoint_dir: str, partial: bool = False
                            ) -> str | None:
  """Restores the newest checkpoint that reads whole; a corrupted or half-written one is skipped with a warning.

  Returns the prefix restored, None when the folder has no checkpoint.
  Raises ConfigError when there are checkpoints and none of them reads.
  """
  candidates = checkpoint_candidates(checkpoint_dir)
  problems = []
  for path in candidates:
    try:
      status = checkpoint.restore(path)
      (status.expect_partial() if partial else status).assert_existing_objects_matched()
    except Exception as e:  # pylint: disable=broad-except  (a damaged file fails in many ways, IndexError among them)
      problems.append(f"{os.path.basename(path)}: {errors.one_line(e)}")
      logging.warning("checkpoint %s is unreadable (%s); falling back to the previous one", path, errors.one_line(e))
      continue
    if problems:
      logging.warning("restored %s after skipping %d unreadable checkpoint(s)", path, len(problems))
    return path
  if candidates:
    raise ConfigError(f"{checkpoint_dir}: none of its {len(candidates)} checkpoint(s) reads; newest: {problems[0]}")
  return None


def restore_latest(state: TrainState, checkpoint_dir: str) -> tuple[int, str | None]:
  """Restores the newest readable checkpoint of checkpoint_dir into state; returns (its step, its prefix).

  (0, None) when there is none.
  """
  path = restore_newest_readable(state.checkpoint, checkpoint_dir)
  return (int(state.step.numpy()), path) if path else (0, None)


def save_checkpoint(manager: tf.train.CheckpointManager, step: int) -> str:
  """manager.save(step); CheckpointWriteError (one line, naming the intact previous one) when it fails."""
  try:
    return manager.save(checkpoint_number=step)
  except (tf.errors.OpError, OSError) as e:
    previous = manager.latest_checkpoint
    kept = f"the previous checkpoint {previous} is intact" if previous else "there is no previous checkpoint"
    raise CheckpointWriteError(
        f"cannot write the checkpoint of step {step} to {manager.directory} ({errors.one_line(e)}); {kept}. "
        f"Free space or make the folder writable, then run the same command to resume") from None


def export_workdir(workdir: str, out: str, export_fn: ExportFn) -> tuple[Any, int]:
  """Exports the newest checkpoint of a run: export_fn(model, config, out); returns (its result, step).

  The model is rebuilt from workdir/config.json in float32 and only its
  weights are read from the checkpoint (not the optimizer).
  """
  config = load_run_config(workdir)
  checkpoint_dir = os.path.join(workdir, CHECKPOINT_DIR)
  model = models.build_model(config.model, config.data)
  step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
  if restore_newest_readable(tf.train.Checkpoint(model=model, step=step), checkpoint_dir, partial=True) is None:
    raise ConfigError(f"{checkpoint_dir}: no checkpoint to export (train first)")
  return export_fn(model, config, out), int(step.numpy())


# ------------------------------------------------------------------ train.init_from


def _source_config(path: str) -> ml_collections.ConfigDict | None:
  """The config.json of the run or SavedModel a checkpoint belongs to (unvalidated: its data files need not exist
  here), or None. A run keeps it in its workdir, an export in its assets/ folder; both are two levels above the
  checkpoint (WORKDIR/checkpoints/ckpt-N, MODEL/variables/variables)."""
  root = os.path.dirname(os.path.dirname(path))
  for candidate in (os.path.join(root, CONFIG_FILE), os.path.join(root, "assets", CONFIG_FILE)):
    try:
      with tf.io.gfile.GFile(candidate) as f:
        return config_lib.upgrade(json.load(f))
    except tf.errors.NotFoundError:
      continue
    except (ValueError, TypeError, tf.errors.OpError, ConfigError):
      return None
  return None


def init_checkpoint(source: str) -> str | None:
  """The checkpoint prefix init_from names: a workdir's newest, a checkpoints/ folder's newest, a prefix, or the
  variables of an exported SavedModel (ocr-tf export; 'shipped' names the model shipped in the package)."""
  if source == "shipped":
    source = assets.DEFAULT_MODEL
  saved = os.path.join(source, "variables", "variables")
  if tf.io.gfile.exists(os.path.join(source, "saved_model.pb")) and tf.io.gfile.exists(saved + ".index"):
    return saved
  return tf.train.latest_checkpoint(os.path.join(source, CHECKPOINT_DIR)) or \
      tf.train.latest_checkpoint(source) or (source if tf.io.gfile.exists(source + ".index") else None)


def _copy_layers_by_name(model: keras.Model, src: keras.Model, source: str, path: str) -> int:
  """Copies the weights of the layers both models have (by name); returns how many. ConfigError on a shape
  mismatch."""
  src_layers = {layer.name: layer for layer in src.layers if layer.weights}
  copied, fresh = 0, []
  for layer in model.layers:
    if not layer.weights:
      continue
    other = src_layers.get(layer.name)
    if other is None:
      fresh.append(layer.name)
      continue
    shapes, src_shapes = [tuple(w.shape) for w in layer.weights], [tuple(w.shape) for w in other.weights]
    if shapes != src_shapes:
      raise ConfigError(f"train.init_from={source!r}: its model does not match this config's (layer "
                        f"{layer.name}: weights {src_shapes} there, {shapes} here)")
    layer.set_weights(other.get_weights())
    copied += 1
  if copied:
    logging.info("init_from: %d layers copied by name from %s; new layers at their initial values: %s; "
                 "layers of the source left out: %s", copied, path, ", ".join(fresh) or "none",
                 ", ".join(sorted(set(src_layers) - {layer.name for layer in model.layers})) or "none")
  return copied


def init_weights(model: keras.Model, source: str, model_config: ml_collections.ConfigDict | None = None) -> str:
  """Loads model weights (not the optimizer, not the step) from a workdir's newest checkpoint, a checkpoint path
  or an exported SavedModel (its variables; e.g. the shipped model, to fine-tune it on other fonts or images).

  When the source run's model differs only by layers one of the two lacks
  (a head built another way, see model.angle_pool), its config.json rebuilds
  that model and the layers both have are copied by name; the others keep
  their initial values (logged). Returns the checkpoint used. Raises
  ConfigError (one line) when there is none or when a layer both have
  differs (another preset, width or charset).
  """
  path = init_checkpoint(source)
  if path is None:
    raise ConfigError(f"train.init_from={source!r}: no checkpoint there (a training workdir, its checkpoints/ "
                      f"folder, a checkpoint prefix or an exported SavedModel folder)")
  mismatch = f"train.init_from={source!r}: its model does not match this config's"
  src_config = _source_config(path)
  saved = flatten(config_json(src_config.model)) if src_config is not None and "model" in src_config else None
  current = flatten(config_json(model_config)) if model_config is not None else None
  same = saved is None or current is None or all(saved[k] == current[k] for k in saved.keys() & current.keys())
  if same:  # restore in place; a model of another shape fails here
    initial = model.get_weights()
    try:
      tf.train.Checkpoint(model=model).read(path).expect_partial().assert_existing_objects_matched()
      return path
    except (AssertionError, ValueError, tf.errors.OpError) as e:
      model.set_weights(initial)  # a failed restore may have set some of them
      mismatch += f" ({errors.one_line(e)[:200]})"
  if src_config is None:
    raise ConfigError(mismatch)
  try:
    src = models.build_model(src_config.model, src_config.data)
    tf.train.Checkpoint(model=src).read(path).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError, TypeError, KeyError, AttributeError, tf.errors.OpError, ConfigError):
    raise ConfigError(mismatch) from None
  if not _copy_layers_by_name(model, src, source, path):
    raise ConfigError(mismatch)
  return path

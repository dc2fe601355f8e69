"""Training and evaluation: :func:`train_and_evaluate` (config, workdir) under a tf.distribute strategy.

The run, in order:

1. the config is validated and compared with ``workdir/config.json`` (a
   workdir holding a run with other data, model or training fields stops
   here with one line); the first start writes that file;
2. the strategy comes from the machine (:func:`create_strategy`) and the
   global batch ``train.batch_size`` is split evenly over its replicas;
3. the model, optimizer and step are created (:func:`create_train_state`) and
   restored from the newest checkpoint in ``workdir/checkpoints``;
4. every replica reads its own shard of the sample stream from global step
   ``start_step = restored step`` on, so a resumed run sees exactly the
   samples an uninterrupted run would; with ``data.real_dir`` a fraction
   ``data.real_ratio`` of them are real labelled images (ocr_tf.real_data);
5. the custom loop runs :func:`train_step` through ``strategy.run``; it logs,
   writes TensorBoard scalars, checkpoints and evaluates on the fixed
   validation stream (:func:`evaluate`), and on ``data.real_validation_dir``
   when given (``real/*`` metrics), at the configured intervals and once
   more at the end; then it calls ``export_fn`` when one is given.

Files in the workdir:

==================  ==========================================================
config.json         the config of the first start
checkpoints/        tf.train.CheckpointManager: model, optimizer, step
train/, eval/       TensorBoard events (written with core TF ops): losses, learning rate, samples/s,
                    gradient norm; evaluation metrics, validation images with
                    true (green) and predicted (red) letter boxes and texts
metrics.jsonl       one JSON object per evaluation: step, cer, word_accuracy,
                    angle_mae, letter_precision/recall/f1, clean_psnr, loss/*
                    (and real/cer, real/word_accuracy, real/loss/ctc)
==================  ==========================================================
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import shutil
import tempfile
import time
from typing import Any, Callable, Mapping

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from ocr_tf import atlas as atlas_lib
from ocr_tf import config_base, data_service, input_pipeline, losses, metrics, models, predict, real_data, synth
from ocr_tf.config_base import ConfigError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
# What a real labelled folder (data.real_validation_dir) is measured by: it has no angle, boxes or clean truth.
REAL_METRICS = ("cer", "word_accuracy", "loss/ctc")
# `train` fields a resumed run may change: they change neither the samples nor the updates.
RESUMABLE_TRAIN_FIELDS = ("steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints",
                          "eval_samples", "eval_batch_size", "num_images", "letter_threshold",
                          "num_cpu_devices", "jit_compile", "log_indices")
INDEX_LOG = "indices.tsv"  # train.log_indices: step<TAB>comma-separated sample indices, one line per step
# `data` fields a resumed run may change: where the samples are made, not what they are.
RESUMABLE_DATA_FIELDS = ("data_service_address", "data_service_on_loss", "data_service_lookahead",
                         "data_service_timeout")
# Sample fields fed to the replicas (strings stay on the host).
MODEL_FIELDS = ("image", "clean", "labels", "label_length", "angle", "letter_quads", "letter_boxes",
                "letter_mask", "index")
_TRUE_BOX_COLOR = (0.0, 0.8, 0.0, 1.0)
_PREDICTED_BOX_COLOR = (1.0, 0.0, 0.0, 1.0)
_IMAGE_MIN_HEIGHT = 96  # validation images are enlarged (nearest neighbour) to at least this height

ExportFn = Callable[[keras.Model, ml_collections.ConfigDict, str], Any]


# ------------------------------------------------------------------ strategy


def _tf_config_cluster() -> dict | None:
  raw = os.environ.get("TF_CONFIG", "")
  if not raw.strip():
    return None
  try:
    spec = json.loads(raw)
  except json.JSONDecodeError as e:
    raise ConfigError(f"TF_CONFIG={raw!r}: not JSON ({e})") from None
  return (spec.get("cluster") or None) if isinstance(spec, dict) else None


def _logical_cpus(n: int) -> list[str]:
  """Splits the CPU into n logical devices (only possible before TensorFlow starts its runtime)."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  try:
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
  except RuntimeError:
    pass  # already initialized: accepted below if it has the asked number of devices
  devices = tf.config.list_logical_devices("CPU")
  if len(devices) != n:
    raise ConfigError(f"train.num_cpu_devices={n}: TensorFlow already runs with {len(devices)} CPU "
                      f"device(s) in this process; ask for logical devices before any TensorFlow op runs")
  return [d.name for d in devices]


def create_strategy(train_cfg: ml_collections.ConfigDict) -> tf.distribute.Strategy:
  """The strategy this machine calls for.

  MultiWorkerMirroredStrategy when TF_CONFIG names a cluster; MirroredStrategy
  over ``train.num_cpu_devices`` logical CPU devices when it is above 1, or
  over all GPUs when several are visible; the default strategy otherwise (one
  GPU or the CPU).
  """
  if _tf_config_cluster():
    if train_cfg.num_cpu_devices > 1:
      logging.warning("train.num_cpu_devices=%d is ignored: TF_CONFIG asks for several workers",
                      train_cfg.num_cpu_devices)
    return tf.distribute.MultiWorkerMirroredStrategy()
  if train_cfg.num_cpu_devices > 1:
    return tf.distribute.MirroredStrategy(_logical_cpus(train_cfg.num_cpu_devices))
  if len(tf.config.list_physical_devices("GPU")) > 1:
    return tf.distribute.MirroredStrategy()
  return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the workdir (always, except on non-chief workers)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or resolver.task_type in (None, "chief"):
    return True
  cluster = resolver.cluster_spec().as_dict()
  return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def _strategy_name(strategy: tf.distribute.Strategy) -> str:
  if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return "MultiWorkerMirroredStrategy"
  return type(strategy).__name__.lstrip("_")


def _task_name(strategy: tf.distribute.Strategy) -> str:
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or resolver.task_type is None:
    return "local"
  return f"{resolver.task_type}_{resolver.task_id}"


# ------------------------------------------------------------------ workdir


def _config_json(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort(sort_keys=True))


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping):
      out.update(_flatten(value, f"{name}."))
    else:
      out[name] = value
  return out


def check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Raises ConfigError (one line) when workdir holds a run whose config differs.

  Only ``train.steps`` and the logging, evaluation, checkpoint and device
  fields (RESUMABLE_TRAIN_FIELDS) may differ: anything else would change the
  samples or the updates of the run being continued.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    return
  try:
    with tf.io.gfile.GFile(path) as f:
      saved = _flatten(json.load(f))
  except (ValueError, tf.errors.OpError) as e:
    raise ConfigError(f"{path}: unreadable config of a previous run ({type(e).__name__}: {e})") from None
  current = _flatten(_config_json(config))
  free = {f"train.{name}" for name in RESUMABLE_TRAIN_FIELDS} | {f"data.{name}" for name in RESUMABLE_DATA_FIELDS}
  missing = "<absent>"
  # A field added to ocr_tf after the run started is absent there: it matches when it keeps its default.
  defaults = _flatten(_config_json(config_base.get_config()))
  diffs = sorted(k for k in saved.keys() | current.keys()
                 if k not in free and saved.get(k, defaults.get(k, missing)) != current.get(k, missing))
  if diffs:
    k = diffs[0]
    more = f" (and {len(diffs) - 1} more field(s))" if len(diffs) > 1 else ""
    raise ConfigError(f"workdir {workdir} holds a run with another config: {k}={saved.get(k, missing)!r} "
                      f"there, {current.get(k, missing)!r} here{more}; use a new --workdir, or the same "
                      f"config (a resumed run may change only train.steps and the logging, evaluation "
                      f"and checkpoint fields)")


def save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes workdir/config.json at the first start (atomically); kept as is afterwards."""
  path = os.path.join(workdir, CONFIG_FILE)
  if tf.io.gfile.exists(path):
    return
  tf.io.gfile.makedirs(workdir)
  with tf.io.gfile.GFile(path + ".tmp", "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
  tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run in workdir was started with (workdir/config.json); ConfigError if absent or unreadable."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise ConfigError(f"{path}: not found (is {workdir} a training workdir?)")
  try:
    with tf.io.gfile.GFile(path) as f:
      config = ml_collections.ConfigDict(json.load(f))
  except (ValueError, TypeError, tf.errors.OpError) as e:
    raise ConfigError(f"{path}: unreadable config ({type(e).__name__}: {e})") from None
  config_base.validate_config(config)
  return config


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


def read_metrics(workdir: str) -> list[dict]:
  """The evaluations recorded in workdir/metrics.jsonl (an unfinished last line is skipped)."""
  path = os.path.join(workdir, METRICS_FILE)
  if not tf.io.gfile.exists(path):
    return []
  records = []
  with tf.io.gfile.GFile(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except ValueError:
        continue
      if isinstance(record, dict) and "step" in record:
        records.append(record)
  return records


def _keep_metrics_up_to(workdir: str, step: int, write: bool) -> list[dict]:
  """The evaluations up to the restored step.

  With `write`, newer ones are dropped from the file: the resumed run makes them again.
  """
  records = read_metrics(workdir)
  kept = [r for r in records if r["step"] <= step]
  path = os.path.join(workdir, METRICS_FILE)
  if write and tf.io.gfile.exists(path) and len(kept) != len(records):
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
      f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
  return kept


def _append_metrics(workdir: str, record: dict) -> None:
  with tf.io.gfile.GFile(os.path.join(workdir, METRICS_FILE), "a") as f:
    f.write(json.dumps(record, sort_keys=True) + "\n")


# ------------------------------------------------------------------ state


@keras.saving.register_keras_serializable(package="ocr_tf")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warmup to `peak` over `warmup_steps` (step s uses (s+1)/warmup), then cosine to `floor` at `decay_steps`."""

  def __init__(self, peak: float, warmup_steps: int, decay_steps: int, floor: float):
    super().__init__()
    self.peak = float(peak)
    self.warmup_steps = int(warmup_steps)
    self.decay_steps = int(decay_steps)
    self.floor = float(floor)

  def __call__(self, step):
    s = tf.cast(step, tf.float32)
    warmup = float(max(self.warmup_steps, 1))
    span = float(max(self.decay_steps - self.warmup_steps, 1))
    progress = tf.clip_by_value((s - self.warmup_steps) / span, 0.0, 1.0)
    cosine = self.floor + (self.peak - self.floor) * 0.5 * (1.0 + tf.cos(math.pi * progress))
    return tf.where(s < self.warmup_steps, self.peak * (s + 1.0) / warmup, cosine)

  def get_config(self) -> dict:
    return {"peak": self.peak, "warmup_steps": self.warmup_steps, "decay_steps": self.decay_steps,
            "floor": self.floor}


def learning_rate_schedule(train_cfg: ml_collections.ConfigDict) -> WarmupCosine:
  """The schedule of the config: warmup, then cosine until train.decay_steps (0: train.steps)."""
  t = train_cfg
  end = t.decay_steps or max(t.steps, t.warmup_steps + 1)
  return WarmupCosine(t.learning_rate, t.warmup_steps, end, t.learning_rate * t.final_learning_rate_factor)


def create_optimizer(train_cfg: ml_collections.ConfigDict, model: keras.Model) -> keras.optimizers.Optimizer:
  """Adam or AdamW on the schedule, built on the model's weights (so a checkpoint restores into it).

  Weight decay (AdamW) leaves out vectors and scalars: biases and normalization
  parameters. Under 'mixed_float16' the optimizer is a LossScaleOptimizer.
  """
  t = train_cfg
  schedule = learning_rate_schedule(t)
  if t.optimizer == "adamw":
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=t.weight_decay)
    optimizer.exclude_from_weight_decay(var_list=[v for v in model.trainable_variables if len(v.shape) <= 1])
  else:
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
  if t.precision == "mixed_float16":
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  optimizer.build(model.trainable_variables)
  return optimizer


@dataclasses.dataclass
class TrainState:
  """What a checkpoint holds: the model, its optimizer and the number of steps done."""
  model: keras.Model
  optimizer: keras.optimizers.Optimizer
  step: tf.Variable
  checkpoint: tf.train.Checkpoint
  schedule: WarmupCosine


def freeze(model: keras.Model, pattern: str) -> list[str]:
  """Freezes every layer whose name `pattern` does not match (re.search); returns the names left trainable.

  A frozen layer's weights get no update and its BatchNormalization runs in
  inference mode, so its outputs stay those of the weights it was given
  (train.init_from): fine-tuning one head leaves the others as they were.
  "" trains every layer. ConfigError when no layer with weights matches.
  """
  for layer in model.layers:
    layer.trainable = not pattern or bool(re.search(pattern, layer.name))
  weighted = [layer for layer in model.layers if layer.weights]
  kept = [layer.name for layer in weighted if layer.trainable]
  if not kept:
    raise ConfigError(f"train.trainable={pattern!r}: matches no layer with weights (layers: "
                      f"{', '.join(layer.name for layer in weighted)[:300]} ...)")
  if pattern:
    logging.info("train.trainable=%r: training %d of %d layers with weights", pattern, len(kept), len(weighted))
  return kept


def create_train_state(config: ml_collections.ConfigDict, strategy: tf.distribute.Strategy) -> TrainState:
  """A fresh model (initial weights from train.seed), its optimizer and step 0, under the strategy."""
  keras.utils.set_random_seed(int(config.train.seed))
  with strategy.scope():
    model = models.build_model(config.model, config.data)
    freeze(model, config.train.get("trainable", ""))
    optimizer = create_optimizer(config.train, model)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
  return TrainState(model, optimizer, step, checkpoint, learning_rate_schedule(config.train))


def _source_config(path: str) -> ml_collections.ConfigDict | None:
  """The config.json of the run or SavedModel a checkpoint belongs to (unvalidated: its data files need not exist
  here), or None. A run keeps it in its workdir, an export in its assets/ folder; both are two levels above the
  checkpoint (WORKDIR/checkpoints/ckpt-N, MODEL/variables/variables)."""
  root = os.path.dirname(os.path.dirname(path))
  for candidate in (os.path.join(root, CONFIG_FILE), os.path.join(root, "assets", CONFIG_FILE)):
    try:
      with tf.io.gfile.GFile(candidate) as f:
        return ml_collections.ConfigDict(json.load(f))
    except tf.errors.NotFoundError:
      continue
    except (ValueError, TypeError, tf.errors.OpError):
      return None
  return None


def init_checkpoint(source: str) -> str | None:
  """The checkpoint prefix init_from names: a workdir's newest, a checkpoints/ folder's newest, a prefix, or the
  variables of an exported SavedModel (ocr-tf export; 'shipped' names the model shipped in the package)."""
  if source == "shipped":
    source = predict.DEFAULT_MODEL
  saved = os.path.join(source, "variables", "variables")
  if tf.io.gfile.exists(os.path.join(source, "saved_model.pb")) and tf.io.gfile.exists(saved + ".index"):
    return saved
  return tf.train.latest_checkpoint(os.path.join(source, CHECKPOINT_DIR)) or \
      tf.train.latest_checkpoint(source) or (source if tf.io.gfile.exists(source + ".index") else None)


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
  saved = _flatten(_config_json(src_config.model)) if src_config is not None and "model" in src_config else None
  current = _flatten(_config_json(model_config)) if model_config is not None else None
  same = saved is None or current is None or all(saved[k] == current[k] for k in saved.keys() & current.keys())
  if same:  # restore in place; a model of another shape fails here
    initial = model.get_weights()
    try:
      tf.train.Checkpoint(model=model).read(path).expect_partial().assert_existing_objects_matched()
      return path
    except (AssertionError, ValueError, tf.errors.OpError) as e:
      model.set_weights(initial)  # a failed restore may have set some of them
      mismatch += f" ({_first_line(e)[:200]})"
  if src_config is None:
    raise ConfigError(mismatch)
  try:
    src = models.build_model(src_config.model, src_config.data)
    tf.train.Checkpoint(model=src).read(path).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError, TypeError, KeyError, AttributeError, tf.errors.OpError, ConfigError):
    raise ConfigError(mismatch) from None
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
  if not copied:
    raise ConfigError(mismatch)
  logging.info("init_from: %d layers copied by name from %s; new layers at their initial values: %s; "
               "layers of the source left out: %s", copied, path, ", ".join(fresh) or "none",
               ", ".join(sorted(set(src_layers) - {layer.name for layer in model.layers})) or "none")
  return path


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written; the message names the folder, the cause and the intact one."""


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0][:300] if text else type(error).__name__


def checkpoint_candidates(checkpoint_dir: str) -> list[str]:
  """Checkpoint prefixes of checkpoint_dir, newest first: those the state file lists, then any other ckpt-N."""
  listed = []
  try:
    ckpt_state = tf.train.get_checkpoint_state(checkpoint_dir)
    if ckpt_state is not None:
      listed = [os.path.join(checkpoint_dir, os.path.basename(p)) for p in ckpt_state.all_model_checkpoint_paths]
  except (tf.errors.OpError, ValueError) as e:  # an unreadable state file: fall back to the files
    logging.warning("%s/checkpoint is unreadable (%s); looking at the checkpoint files", checkpoint_dir,
                    _first_line(e))
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
      problems.append(f"{os.path.basename(path)}: {_first_line(e)}")
      logging.warning("checkpoint %s is unreadable (%s); falling back to the previous one", path, _first_line(e))
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
        f"cannot write the checkpoint of step {step} to {manager.directory} ({_first_line(e)}); {kept}. "
        f"Free space or make the folder writable, then run the same command to resume") from None


class IndexLog:
  """train.log_indices: the sample indices of every step the run stands on (one line a step).

  At a start, lines after the restored step are dropped: those steps are
  trained again. So the file always lists each step once, with the indices
  the weights have actually been trained on.
  """

  def __init__(self, path: str, start_step: int):
    self.path = path
    kept = []
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        for line in f:
          head = line.split("\t", 1)[0]
          if line.endswith("\n") and head.isdigit() and int(head) <= start_step:
            kept.append(line)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
      f.write("".join(kept))
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    self._file = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with

  def write(self, step: int, indices: np.ndarray) -> None:
    self._file.write(f"{step}\t{','.join(str(int(i)) for i in indices)}\n")
    self._file.flush()

  def close(self) -> None:
    self._file.close()


def read_index_log(path: str) -> dict[int, list[int]]:
  """step -> indices of an IndexLog file."""
  out = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      step, _, rest = line.rstrip("\n").partition("\t")
      out[int(step)] = [int(v) for v in rest.split(",") if v]
  return out


# ------------------------------------------------------------------ inputs


def model_fields(sample: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """The sample fields the replicas need (no strings, which cannot go to accelerators)."""
  return {k: sample[k] for k in MODEL_FIELDS + ("source",) if k in sample}


def train_inputs(strategy: tf.distribute.Strategy, generator: synth.Generator, global_batch: int,
                 start_step: int, data_cfg: ml_collections.ConfigDict | None = None
                 ) -> tf.distribute.DistributedDataset:
  """Per-replica shards of the training stream from global step start_step on (see input_pipeline).

  With data_cfg.data_service_address set, the same batches come from a
  tf.data service in the same order (see ocr_tf.data_service).
  """
  address = data_cfg.get("data_service_address", "") if data_cfg is not None else ""

  def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
    local = input_pipeline.build_inputs(generator, global_batch, start_step, ctx).map(model_fields)
    if not address:
      return local
    replicas, pipelines = ctx.num_replicas_in_sync, ctx.num_input_pipelines
    b = ctx.get_per_replica_batch_size(global_batch)
    per_pipeline = replicas // pipelines
    return data_service.ordered_dataset(
        lambda i: model_fields(generator.sample(i)), local.element_spec, address, batch=b,
        units_per_step=per_pipeline, step_size=global_batch, first=ctx.input_pipeline_id * per_pipeline * b,
        start_step=start_step, lookahead=data_cfg.data_service_lookahead,
        timeout=data_cfg.data_service_timeout, on_loss=data_cfg.data_service_on_loss)
  return strategy.distribute_datasets_from_function(dataset_fn)


def validation_inputs(strategy: tf.distribute.Strategy, generator: synth.Generator, global_batch: int,
                      num_samples: int) -> tf.distribute.DistributedDataset:
  """The fixed validation stream, indices 0 .. num_samples-1 (input_pipeline.validation_dataset's), sharded."""
  def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
    ds = input_pipeline.build_inputs(generator, global_batch, 0, ctx, num_steps=num_samples // global_batch)
    return ds.map(model_fields)
  return strategy.distribute_datasets_from_function(dataset_fn)


# ------------------------------------------------------------------ steps


def _loss_weights(config: ml_collections.ConfigDict) -> dict[str, float]:
  return {name: float(w) for name, w in config.train.loss.weights.items()}


def compute_gradients(state: TrainState, batch: Mapping[str, tf.Tensor], config: ml_collections.ConfigDict,
                      global_batch: int) -> tuple[dict[str, tf.Tensor], list]:
  """Forward and backward pass of one replica: its share of the losses and of the (scaled) gradients."""
  with tf.GradientTape() as tape:
    outputs = state.model(batch["image"], training=True)
    out = losses.compute_losses(outputs, batch, _loss_weights(config), config=config.train.loss,
                                global_batch_size=global_batch)
    scaled = state.optimizer.scale_loss(out["total"])
  return out, tape.gradient(scaled, state.model.trainable_variables)


def train_step(state: TrainState, batch: Mapping[str, tf.Tensor], config: ml_collections.ConfigDict,
               global_batch: int, num_replicas: int,
               gradient_fn: Callable | None = None) -> dict[str, tf.Tensor]:
  """One optimizer step, run in each replica; returns values whose SUM over replicas is the global value.

  `gradient_fn(batch)` gives (losses, gradients); by default compute_gradients
  of this state (make_train_step passes an XLA-compiled one for jit_compile).

  The losses are divided by the global batch (tf.nn.compute_average_loss), so
  the optimizer's sum of the replicas' gradients is the gradient of the global
  mean. Clipping needs the norm of that sum: with clipping (or loss scaling)
  and several replicas the gradients are all-reduced here first, clipped,
  and handed to the optimizer divided by the number of replicas.
  """
  t = config.train
  gradient_fn = gradient_fn or functools.partial(compute_gradients, state, config=config,
                                                 global_batch=global_batch)
  out, grads = gradient_fn(batch)
  pairs = [(g, v) for g, v in zip(grads, state.model.trainable_variables) if g is not None]
  grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
  loss_scale = getattr(state.optimizer, "dynamic_scale", None)
  reduce_here = num_replicas > 1 and (t.clip_norm > 0 or loss_scale is not None)
  if reduce_here:
    grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
  if t.clip_norm > 0:
    unscale = tf.cast(loss_scale, tf.float32) if loss_scale is not None else 1.0
    norm = tf.linalg.global_norm(grads)
    grads, _ = tf.clip_by_global_norm(grads, t.clip_norm * unscale, use_norm=norm)
    out["grad_norm"] = norm / unscale / num_replicas  # every replica holds the norm: the SUM gives it
  if reduce_here:
    grads = [g / num_replicas for g in grads]
  state.optimizer.apply(grads, variables)
  return out


def eval_step(state: TrainState, batch: Mapping[str, tf.Tensor], config: ml_collections.ConfigDict,
              global_batch: int) -> dict[str, dict[str, tf.Tensor]]:
  """One replica's metric sums (metrics.metric_sums) and losses on a validation batch."""
  outputs = state.model(batch["image"], training=False)
  sums = metrics.metric_sums(outputs, batch, config.data, threshold=config.train.letter_threshold)
  loss = losses.compute_losses(outputs, batch, _loss_weights(config), config=config.train.loss,
                               global_batch_size=global_batch)
  return {"sums": sums, "losses": loss}


def distributed_step(strategy: tf.distribute.Strategy, step_fn: Callable) -> Callable:
  """A tf.function running step_fn(batch) in every replica and summing its outputs over replicas.

  Without AutoGraph: the step's code is written with TensorFlow ops (tf.where,
  tf.cond) and Python control flow only on Python values, so converting it
  would only cost time (seconds per process at the first step).
  """
  @tf.function(autograph=False)
  def run(batch):
    per_replica = strategy.run(step_fn, args=(batch,))
    return tf.nest.map_structure(lambda x: strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None),
                                 per_replica)
  return run


def make_train_step(state: TrainState, config: ml_collections.ConfigDict, strategy: tf.distribute.Strategy,
                    global_batch: int) -> Callable:
  """The distributed training step; with train.jit_compile the forward and backward pass run in XLA."""
  def gradient_fn(batch):
    return compute_gradients(state, batch, config, global_batch)

  if config.train.jit_compile:
    gradient_fn = tf.function(gradient_fn, jit_compile=True, autograph=False)
  return distributed_step(strategy, functools.partial(
      train_step, state, config=config, global_batch=global_batch,
      num_replicas=strategy.num_replicas_in_sync, gradient_fn=gradient_fn))


def evaluate(eval_fn: Callable, dataset: tf.distribute.DistributedDataset) -> dict[str, float]:
  """Metrics over the whole validation dataset: rates from summed counts, losses averaged over batches."""
  totals, batches = None, 0
  for batch in dataset:
    out = eval_fn(batch)
    totals = out if totals is None else tf.nest.map_structure(tf.add, totals, out)
    batches += 1
  result = {k: float(v) for k, v in metrics.finalize_metrics(totals["sums"]).items()}
  result.update({f"loss/{k}": float(v) / batches for k, v in totals["losses"].items()})
  return result


# ------------------------------------------------------------------ TensorBoard


def _markdown_cell(text: str) -> str:
  return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`") or " "


def _metadata(plugin: str, data_class: int, description: str = "") -> summary_pb2.SummaryMetadata:
  metadata = summary_pb2.SummaryMetadata(summary_description=description, data_class=data_class)
  metadata.plugin_data.plugin_name = plugin
  return metadata


def summary_scalar(name: str, value: float, step: int) -> None:
  """A TensorBoard scalar, written with core TensorFlow (the tensorboard package is not needed)."""
  tf.summary.write(name, tf.constant(value, tf.float32), step=step,
                   metadata=_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR))


def summary_images(name: str, images: tf.Tensor, step: int, description: str = "") -> None:
  """TensorBoard images from float images [N, H, W, C] in [0, 1] (PNG encoded)."""
  pngs = tf.map_fn(lambda x: tf.io.encode_png(tf.image.convert_image_dtype(x, tf.uint8, saturate=True)),
                   images, fn_output_signature=tf.string)
  shape = tf.shape(images)
  dims = tf.strings.as_string(tf.stack([shape[2], shape[1]]))  # width, height
  tf.summary.write(name, tf.concat([dims, pngs], 0), step=step,
                   metadata=_metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE, description))


def summary_text(name: str, text: str, step: int) -> None:
  """A TensorBoard text summary (markdown)."""
  tf.summary.write(name, tf.constant(text), step=step, metadata=_metadata("text", summary_pb2.DATA_CLASS_TENSOR))


def write_validation_images(state: TrainState, batch: Mapping[str, tf.Tensor],
                            config: ml_collections.ConfigDict, step: int) -> None:
  """Validation images with true (green) and predicted (red) letter boxes, the clean output, the texts.

  Written to the default summary writer; the texts are in the image
  summaries' descriptions and in a text summary (a markdown table).
  """
  d = config.data
  outputs = state.model(batch["image"], training=False)
  predicted = [s.decode("utf-8") for s in metrics.decode_text(outputs["text_logits"], d.charset).numpy()]
  truth = [s.decode("utf-8") for s in batch["text"].numpy()]
  boxes, scores = models.decode_letters(outputs["letters"], (d.height, d.width), d.max_length,
                                        config.train.letter_threshold)
  true_boxes, true_valid = metrics.true_letters(batch)
  images = tf.convert_to_tensor(batch["image"])
  if images.shape[-1] == 1:
    images = tf.image.grayscale_to_rgb(images)
  scale = max(1, -(-_IMAGE_MIN_HEIGHT // int(d.height)))
  images = tf.image.resize(images, (d.height * scale, d.width * scale), method="nearest")
  drawn = []
  for i in range(images.shape[0]):
    image = images[i:i + 1]
    for b, keep, color in ((true_boxes[i], true_valid[i], _TRUE_BOX_COLOR),
                           (boxes[i], scores[i] > 0, _PREDICTED_BOX_COLOR)):
      chosen = tf.boolean_mask(b, keep)
      if chosen.shape[0]:
        image = tf.image.draw_bounding_boxes(image, chosen[None], tf.constant([color]))
    drawn.append(image)
  table = ["| # | true | predicted | exact |", "| --- | --- | --- | --- |"]
  table += [f"| {i} | {_markdown_cell(t)} | {_markdown_cell(p)} | {'yes' if t == p else 'no'} |"
            for i, (t, p) in enumerate(zip(truth, predicted))]
  description = "\n".join(table)
  summary_images("validation/letters", tf.concat(drawn, 0), step,
                 "Green: true letter boxes; red: predicted.\n\n" + description)
  summary_images("validation/clean", outputs["clean"], step,
                 "The model's clean (denoised) output.\n\n" + description)
  summary_text("validation/text", description, step)


def _write_scalars(values: Mapping[str, float], step: int, prefix: str = "") -> None:
  for name, value in values.items():
    summary_scalar(f"{prefix}{name}", value, step)


# ------------------------------------------------------------------ the run


def _format_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rest = divmod(seconds, 3600)
  return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class _Window:
  """Training losses and throughput between two log lines."""

  def __init__(self):
    self.sums: dict[str, tf.Tensor] = {}
    self.steps = 0
    self.seconds = 0.0

  def add(self, out: Mapping[str, tf.Tensor], seconds: float) -> None:
    self.sums = {k: out[k] + self.sums[k] if k in self.sums else out[k] for k in out}
    self.steps += 1
    self.seconds += seconds

  def means(self) -> dict[str, float]:
    return {k: float(v) / max(self.steps, 1) for k, v in self.sums.items()}


def _log_progress(step: int, total: int, start: int, values: Mapping[str, float], lr: float,
                  samples_per_second: float, elapsed: float) -> None:
  parts = " ".join(f"{k} {v:.4g}" for k, v in values.items() if k not in ("total", "grad_norm"))
  grad = f" grad_norm {values['grad_norm']:.3g}" if "grad_norm" in values else ""
  done = step - start
  eta = elapsed / done * (total - step) if done else 0.0
  logging.info("step %d/%d (%.1f%%) loss %.4f (%s)%s lr %.3g %.1f samples/s eta %s", step, total,
               100.0 * step / max(total, 1), values.get("total", float("nan")), parts, grad, lr,
               samples_per_second, _format_duration(eta))


def _log_metrics(step: int, result: Mapping[str, float]) -> None:
  logging.info("eval at step %d: cer %.4f word_accuracy %.4f angle_mae %.3f letter_f1 %.4f clean_psnr %.2f "
               "loss %.4f", step, result["cer"], result["word_accuracy"], result["angle_mae"],
               result["letter_f1"], result["clean_psnr"], result["loss/total"])


def _next_batch(iterator):
  """next(iterator), with a data-service loss (raised inside tf.data) surfaced as DataServiceError."""
  try:
    return next(iterator)
  except tf.errors.OpError as e:
    text = str(e)
    if "DataServiceError" not in text:
      raise
    message = text.split("DataServiceError:", 1)[1].strip().splitlines()[0]
    raise data_service.DataServiceError(message) from None


def _checked_batch(field: str, global_batch: int, replicas: int) -> int:
  if global_batch % replicas:
    raise ConfigError(f"train.{field}={global_batch}: the global batch must be divisible by the "
                      f"{replicas} replicas")
  return global_batch


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       export_fn: ExportFn | None = None) -> dict[str, Any]:
  """Trains to config.train.steps in workdir (resuming from its newest checkpoint), evaluates, exports.

  Args:
    config: a full config (data, model, train blocks; see ocr_tf.config_base).
    workdir: where checkpoints, TensorBoard events, config.json and
      metrics.jsonl go; running again with the same command resumes.
    export_fn: called at the end as ``export_fn(model, config, export_dir)``
      on every worker, after the final checkpoint and evaluation;
      export_dir is ``workdir/export`` on the chief and a temporary folder
      (removed afterwards) on the other workers.

  Returns:
    step (the final step), start_step (restored), replicas, global_batch,
    losses (the last log window's means), metrics (the last evaluation)
    and export (export_fn's return value on the chief, None on the other workers).

  Raises:
    ConfigError: an invalid field, a batch that does not split over the
      replicas, or a workdir holding a run with another config (one line).
  """
  config_base.validate_config(config)
  t = config.train
  check_workdir(config, workdir)
  if t.get("deterministic", False):
    tf.config.experimental.enable_op_determinism()  # for the whole process: it cannot be switched off
  strategy = create_strategy(t)
  replicas = strategy.num_replicas_in_sync
  global_batch = _checked_batch("batch_size", t.batch_size, replicas)
  eval_batch = _checked_batch("eval_batch_size", t.eval_batch_size, replicas)
  chief = is_chief(strategy)
  atlas = atlas_lib.load_atlas(config.data.atlas or None)
  generator = input_pipeline.make_generator(config.data, atlas=atlas)
  validation_generator = input_pipeline.make_generator(config.data, validation=True, atlas=atlas)
  source = real_data.training_source(generator, config.data, log=logging.info)
  real_validation = real_data.validation_source(validation_generator, config.data, log=logging.info)
  real_samples = 0
  if real_validation is not None:
    real_samples = (len(real_validation) // eval_batch) * eval_batch
    if not real_samples:
      raise ConfigError(f"data.real_validation_dir={config.data.real_validation_dir!r}: {len(real_validation)} "
                        f"usable image(s), fewer than train.eval_batch_size={eval_batch}")
  logging.info("strategy %s: %d replica(s), global batch %d (%d per replica), task %s",
               _strategy_name(strategy), replicas, global_batch, global_batch // replicas, _task_name(strategy))

  if t.precision == "mixed_float16" and not tf.config.list_physical_devices("GPU"):
    logging.warning("train.precision='mixed_float16' without a GPU: float16 is slow on CPUs, "
                    "'mixed_bfloat16' suits them")
  previous_policy = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(t.precision)
  try:
    state = create_train_state(config, strategy)
  finally:
    keras.mixed_precision.set_global_policy(previous_policy)
  if chief:  # the config is valid: the model (and train.trainable's layers) built
    save_config(config, workdir)
  checkpoint_dir = os.path.join(workdir, CHECKPOINT_DIR)
  start_step, restored = restore_latest(state, checkpoint_dir)
  if restored is not None:
    logging.info("restored %s at step %d", restored, start_step)
  elif t.get("init_from", ""):
    logging.info("initial model weights from %s", init_weights(state.model, t.init_from, config.model))
  logging.info("model %s: %d weights", state.model.name, models.count_params(state.model))
  save_dir = checkpoint_dir if chief else os.path.join(tempfile.mkdtemp(), CHECKPOINT_DIR)
  manager = tf.train.CheckpointManager(state.checkpoint, save_dir, max_to_keep=t.keep_checkpoints)
  # Every worker reads the same records, so all take the same decisions (collectives must match).
  records = _keep_metrics_up_to(workdir, start_step, write=chief)
  last_eval_step = records[-1]["step"] if records else -1
  summary = {"step": start_step, "start_step": start_step, "replicas": replicas, "global_batch": global_batch,
             "losses": {}, "metrics": records[-1] if records else {}, "export": None}

  train_writer = tf.summary.create_file_writer(os.path.join(workdir, "train")) if chief else \
      tf.summary.create_noop_writer()
  eval_writer = tf.summary.create_file_writer(os.path.join(workdir, "eval")) if chief else \
      tf.summary.create_noop_writer()
  train_fn = make_train_step(state, config, strategy, global_batch)
  eval_fn = distributed_step(strategy, functools.partial(eval_step, state, config=config,
                                                         global_batch=eval_batch))
  validation = validation_inputs(strategy, validation_generator, eval_batch, t.eval_samples)
  real_inputs = validation_inputs(strategy, real_validation, eval_batch, real_samples) if real_samples else None
  images = None
  if chief and t.num_images:
    images = next(iter(input_pipeline.validation_dataset(validation_generator, t.num_images, t.num_images)))

  def save(step: int) -> None:
    state.step.assign(step)
    save_checkpoint(manager, step)
    logging.info("saved checkpoint at step %d", step)

  def run_eval(step: int) -> None:
    nonlocal last_eval_step
    began = time.perf_counter()
    result = evaluate(eval_fn, validation)
    if real_inputs is not None:
      real = evaluate(eval_fn, real_inputs)
      result.update({f"real/{k}": real[k] for k in REAL_METRICS})
    _log_metrics(step, result)
    if chief:
      with eval_writer.as_default():
        _write_scalars(result, step)
        if images is not None:
          write_validation_images(state, images, config, step)
      eval_writer.flush()
    record = {"step": step, "time": time.time(), **result}
    if chief:
      _append_metrics(workdir, record)
    summary["metrics"] = record
    last_eval_step = step
    logging.info("evaluation took %.1f s", time.perf_counter() - began)

  step = start_step
  if step < t.steps:
    logging.info("training from step %d to %d (sample index %d on)", step, t.steps, step * global_batch)
    if config.data.get("data_service_address", ""):
      logging.info("samples made by the tf.data service at %s", config.data.data_service_address)
    iterator = iter(train_inputs(strategy, source, global_batch, step, config.data))
    train_fn.get_concrete_function(iterator.element_spec)  # traced while the first batches are made
    window, began = _Window(), time.perf_counter()
    index_log = None
    if t.get("log_indices", False):
      name = INDEX_LOG if chief else INDEX_LOG.replace(".tsv", f".{_task_name(strategy).replace(':', '')}.tsv")
      index_log = IndexLog(os.path.join(workdir, name), step)
    while step < t.steps:
      tick = time.perf_counter()
      batch = _next_batch(iterator)
      out = train_fn(batch)
      step += 1
      if index_log is not None:
        index_log.write(step, np.concatenate([np.asarray(x).reshape(-1) for x in
                                              strategy.experimental_local_results(batch["index"])]))
      window.add(out, time.perf_counter() - tick)
      if step % t.log_every == 0 or step == t.steps or step == start_step + 1:
        values = window.means()
        lr = float(state.schedule(step))
        rate = window.steps * global_batch / max(window.seconds, 1e-9)
        _log_progress(step, t.steps, start_step, values, lr, rate, time.perf_counter() - began)
        with train_writer.as_default():
          _write_scalars({f"loss/{k}" if k != "grad_norm" else k: v for k, v in values.items()}, step)
          _write_scalars({"learning_rate": lr, "samples_per_second": rate}, step)
        summary["losses"] = values
        window = _Window()
      if t.checkpoint_every and step % t.checkpoint_every == 0 and step < t.steps:
        save(step)
      if t.eval_every and step % t.eval_every == 0 and step < t.steps:
        run_eval(step)
    train_writer.flush()
    if index_log is not None:
      index_log.close()
  else:
    logging.info("step %d already reaches train.steps=%d: no training", step, t.steps)
  summary["step"] = step
  if step > start_step or restored is None:
    save(step)
  if last_eval_step != step:
    run_eval(step)
  if export_fn is not None:
    export_dir = os.path.join(workdir, "export") if chief else tempfile.mkdtemp()
    exported = export_fn(state.model, config, export_dir)
    summary["export"] = exported if chief else None
    if not chief:  # its export only takes part in the collectives; the chief's is the run's
      shutil.rmtree(export_dir, ignore_errors=True)
  if not chief:
    shutil.rmtree(os.path.dirname(save_dir), ignore_errors=True)
  train_writer.close()
  eval_writer.close()
  return summary

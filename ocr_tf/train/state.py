"""What training updates: the model, its optimizer on a warmup-cosine schedule, the step.

:func:`create_train_state` builds them under a strategy from the config
(initial weights from ``train.seed``); :func:`freeze` leaves trainable only
the layers ``train.trainable`` names. :class:`WarmupCosine` is registered with
Keras as ``ocr_tf>WarmupCosine``, so a saved optimizer finds it again.
"""

from __future__ import annotations

import dataclasses
import math
import re

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from ocr_tf import models
from ocr_tf.config import ConfigError


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
    freeze(model, config.train.trainable)
    optimizer = create_optimizer(config.train, model)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
  return TrainState(model, optimizer, step, checkpoint, learning_rate_schedule(config.train))

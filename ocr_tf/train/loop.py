"""The training run: :func:`train_and_evaluate` (config, workdir) and the :class:`Run` it drives.

A :class:`Run` is set up in the order the package docstring gives (sample
sources, strategy and batches, state restored or initialized, checkpoint
manager, writers, evaluation inputs); its methods train to a step, save a
checkpoint, evaluate, export and close. :func:`train_and_evaluate` calls them
in turn and returns the run's summary.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import tempfile
import time
from typing import Any

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from ocr_tf import atlas as atlas_lib
from ocr_tf import config as config_lib
from ocr_tf import input_pipeline, models, real_data, synth
from ocr_tf.config import ConfigError
from ocr_tf.train.checkpoints import ExportFn, init_weights, restore_latest, save_checkpoint
from ocr_tf.train.rundir import (CHECKPOINT_DIR, IndexLog, append_metrics, check_workdir, index_log_path,
                                 keep_metrics_up_to, save_config)
from ocr_tf.train.state import TrainState, create_train_state
from ocr_tf.train.steps import distributed_step, eval_step, make_train_step, next_batch, train_inputs, validation_inputs
from ocr_tf.train.steps import evaluate as evaluate_dataset
from ocr_tf.train.strategy import checked_batch, create_strategy, is_chief, strategy_name, task_name
from ocr_tf.train.summaries import (Window, log_metrics, log_progress, write_scalars, write_training_scalars,
                                    write_validation_images)

# What a real labelled folder (data.real_validation_dir) is measured by: it has no angle, boxes or clean truth.
REAL_METRICS = ("cer", "word_accuracy", "loss/ctc")


@dataclasses.dataclass
class Sources:
  """The sample streams of a run: training (synthetic, or mixed with real images), validation, real validation."""
  training: Any  # synth.Generator, or real_data's mixed source with data.real_dir
  validation: synth.Generator
  real_validation: Any | None
  real_samples: int  # the real validation images used: whole evaluation batches of them


def make_sources(data_cfg: ml_collections.ConfigDict, eval_batch: int) -> Sources:
  """The run's streams from the data block (atlas, generators, data.real_dir, data.real_validation_dir).

  Raises ConfigError when the real validation folder has fewer usable images than one evaluation batch.
  """
  atlas = atlas_lib.load_atlas(data_cfg.atlas or None)
  generator = input_pipeline.make_generator(data_cfg, atlas=atlas)
  validation = input_pipeline.make_generator(data_cfg, validation=True, atlas=atlas)
  training = real_data.training_source(generator, data_cfg, log=logging.info)
  real_validation = real_data.validation_source(validation, data_cfg, log=logging.info)
  real_samples = 0
  if real_validation is not None:
    real_samples = (len(real_validation) // eval_batch) * eval_batch
    if not real_samples:
      raise ConfigError(f"data.real_validation_dir={data_cfg.real_validation_dir!r}: {len(real_validation)} "
                        f"usable image(s), fewer than train.eval_batch_size={eval_batch}")
  return Sources(training, validation, real_validation, real_samples)


def build_state(config: ml_collections.ConfigDict, strategy: tf.distribute.Strategy) -> TrainState:
  """create_train_state under the Keras policy train.precision; the previous global policy is put back."""
  t = config.train
  if t.precision == "mixed_float16" and not tf.config.list_physical_devices("GPU"):
    logging.warning("train.precision='mixed_float16' without a GPU: float16 is slow on CPUs, "
                    "'mixed_bfloat16' suits them")
  previous_policy = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(t.precision)
  try:
    return create_train_state(config, strategy)
  finally:
    keras.mixed_precision.set_global_policy(previous_policy)


def _writer(workdir: str, name: str, chief: bool) -> tf.summary.SummaryWriter:
  return tf.summary.create_file_writer(os.path.join(workdir, name)) if chief else tf.summary.create_noop_writer()


class Run:
  """A run in a workdir under a strategy: its state, checkpoint manager, writers and evaluation inputs.

  Only the chief writes the workdir; the other workers save their
  checkpoints to a temporary folder (removed by :meth:`close`).
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, strategy: tf.distribute.Strategy):
    t = config.train
    self.config, self.workdir, self.strategy = config, workdir, strategy
    replicas = strategy.num_replicas_in_sync
    self.global_batch = checked_batch("batch_size", t.batch_size, replicas)
    self.eval_batch = checked_batch("eval_batch_size", t.eval_batch_size, replicas)
    self.chief = is_chief(strategy)
    self.sources = make_sources(config.data, self.eval_batch)
    logging.info("strategy %s: %d replica(s), global batch %d (%d per replica), task %s", strategy_name(strategy),
                 replicas, self.global_batch, self.global_batch // replicas, task_name(strategy))
    self.state = build_state(config, strategy)
    if self.chief:  # the config is valid: the model (and train.trainable's layers) built
      save_config(config, workdir)
    self.start_step, self.restored = self._restore()
    self.step = self.start_step
    checkpoint_dir = os.path.join(workdir, CHECKPOINT_DIR)
    self.save_dir = checkpoint_dir if self.chief else os.path.join(tempfile.mkdtemp(), CHECKPOINT_DIR)
    self.manager = tf.train.CheckpointManager(self.state.checkpoint, self.save_dir, max_to_keep=t.keep_checkpoints)
    # Every worker reads the same records, so all take the same decisions (collectives must match).
    records = keep_metrics_up_to(workdir, self.start_step, write=self.chief)
    self.last_eval_step = records[-1]["step"] if records else -1
    self.metrics: dict = records[-1] if records else {}
    self.losses: dict[str, float] = {}
    self.exported: Any = None
    self.train_writer = _writer(workdir, "train", self.chief)
    self.eval_writer = _writer(workdir, "eval", self.chief)
    self.train_fn = make_train_step(self.state, config, strategy, self.global_batch)
    self._open_evaluation()

  def _restore(self) -> tuple[int, str | None]:
    """The newest readable checkpoint, else train.init_from's weights; returns (start step, checkpoint or None)."""
    t = self.config.train
    start_step, restored = restore_latest(self.state, os.path.join(self.workdir, CHECKPOINT_DIR))
    if restored is not None:
      logging.info("restored %s at step %d", restored, start_step)
    elif t.init_from:
      logging.info("initial model weights from %s", init_weights(self.state.model, t.init_from, self.config.model))
    logging.info("model %s: %d weights", self.state.model.name, models.count_params(self.state.model))
    return start_step, restored

  def _open_evaluation(self) -> None:
    t, s = self.config.train, self.sources
    self.eval_fn = distributed_step(self.strategy, functools.partial(eval_step, self.state, config=self.config,
                                                                     global_batch=self.eval_batch))
    self.validation = validation_inputs(self.strategy, s.validation, self.eval_batch, t.eval_samples)
    self.real_inputs = (validation_inputs(self.strategy, s.real_validation, self.eval_batch, s.real_samples)
                        if s.real_samples else None)
    self.images = None
    if self.chief and t.num_images:
      self.images = next(iter(input_pipeline.validation_dataset(s.validation, t.num_images, t.num_images)))

  def save(self, step: int) -> None:
    """Writes the checkpoint of `step` (CheckpointWriteError when it cannot)."""
    self.state.step.assign(step)
    save_checkpoint(self.manager, step)
    logging.info("saved checkpoint at step %d", step)

  def evaluate(self, step: int) -> None:
    """Evaluates on the validation stream (and the real one): log line, TensorBoard, metrics.jsonl."""
    began = time.perf_counter()
    result = evaluate_dataset(self.eval_fn, self.validation)
    if self.real_inputs is not None:
      real = evaluate_dataset(self.eval_fn, self.real_inputs)
      result.update({f"real/{k}": real[k] for k in REAL_METRICS})
    log_metrics(step, result)
    if self.chief:
      with self.eval_writer.as_default():
        write_scalars(result, step)
        if self.images is not None:
          write_validation_images(self.state, self.images, self.config, step)
      self.eval_writer.flush()
    record = {"step": step, "time": time.time(), **result}
    if self.chief:
      append_metrics(self.workdir, record)
    self.metrics = record
    self.last_eval_step = step
    logging.info("evaluation took %.1f s", time.perf_counter() - began)

  def train_until(self, steps: int) -> None:
    """Trains from self.step to `steps`, logging, checkpointing and evaluating at the configured intervals."""
    t, step = self.config.train, self.step
    logging.info("training from step %d to %d (sample index %d on)", step, steps, step * self.global_batch)
    if self.config.data.data_service_address:
      logging.info("samples made by the tf.data service at %s", self.config.data.data_service_address)
    iterator = iter(train_inputs(self.strategy, self.sources.training, self.global_batch, step, self.config.data))
    self.train_fn.get_concrete_function(iterator.element_spec)  # traced while the first batches are made
    window, began = Window(), time.perf_counter()
    index_log = (IndexLog(index_log_path(self.workdir, self.chief, task_name(self.strategy)), step)
                 if t.log_indices else None)
    while step < steps:
      tick = time.perf_counter()
      batch = next_batch(iterator)
      out = self.train_fn(batch)
      step += 1
      if index_log is not None:
        index_log.write(step, np.concatenate([np.asarray(x).reshape(-1) for x in
                                              self.strategy.experimental_local_results(batch["index"])]))
      window.add(out, time.perf_counter() - tick)
      if step % t.log_every == 0 or step == steps or step == self.start_step + 1:
        self._log_window(step, steps, window, time.perf_counter() - began)
        window = Window()
      if t.checkpoint_every and step % t.checkpoint_every == 0 and step < steps:
        self.save(step)
      if t.eval_every and step % t.eval_every == 0 and step < steps:
        self.evaluate(step)
    self.train_writer.flush()
    if index_log is not None:
      index_log.close()
    self.step = step

  def _log_window(self, step: int, steps: int, window: Window, elapsed: float) -> None:
    values = window.means()
    lr = float(self.state.schedule(step))
    rate = window.steps * self.global_batch / max(window.seconds, 1e-9)
    log_progress(step, steps, self.start_step, values, lr, rate, elapsed)
    with self.train_writer.as_default():
      write_training_scalars(values, lr, rate, step)
    self.losses = values

  def export(self, export_fn: ExportFn) -> None:
    """export_fn(model, config, dir) on every worker: workdir/export on the chief, a removed temporary folder
    elsewhere (its export only takes part in the collectives; the chief's is the run's)."""
    export_dir = os.path.join(self.workdir, "export") if self.chief else tempfile.mkdtemp()
    exported = export_fn(self.state.model, self.config, export_dir)
    self.exported = exported if self.chief else None
    if not self.chief:
      shutil.rmtree(export_dir, ignore_errors=True)

  def close(self) -> dict[str, Any]:
    """Closes the writers (and removes a non-chief's checkpoints); returns the summary train_and_evaluate gives."""
    if not self.chief:
      shutil.rmtree(os.path.dirname(self.save_dir), ignore_errors=True)
    self.train_writer.close()
    self.eval_writer.close()
    return {"step": self.step, "start_step": self.start_step, "replicas": self.strategy.num_replicas_in_sync,
            "global_batch": self.global_batch, "losses": self.losses, "metrics": self.metrics,
            "export": self.exported}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       export_fn: ExportFn | None = None) -> dict[str, Any]:
  """Trains to config.train.steps in workdir (resuming from its newest checkpoint), evaluates, exports.

  Args:
    config: a full config (data, model, train blocks; see ocr_tf.config).
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
  config = config_lib.checked(config)
  check_workdir(config, workdir)
  if config.train.deterministic:
    tf.config.experimental.enable_op_determinism()  # for the whole process: it cannot be switched off
  run, steps = Run(config, workdir, create_strategy(config.train)), config.train.steps
  if run.step < steps:
    run.train_until(steps)
  else:
    logging.info("step %d already reaches train.steps=%d: no training", run.step, steps)
  if run.step > run.start_step or run.restored is None:
    run.save(run.step)
  if run.last_eval_step != run.step:
    run.evaluate(run.step)
  if export_fn is not None:
    run.export(export_fn)
  return run.close()

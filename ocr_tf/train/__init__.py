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

The modules, each with one job: ``strategy`` (the machine's strategy),
``rundir`` (the workdir's files), ``checkpoints`` (restore, save, init_from,
export of a workdir), ``state`` (model, optimizer, schedule), ``steps``
(sharded inputs, train and eval steps), ``summaries`` (TensorBoard and log
lines) and ``loop`` (:func:`train_and_evaluate`). Their public names are
re-exported here.
"""

from __future__ import annotations

from ocr_tf.config import ConfigError
from ocr_tf.train.checkpoints import (CheckpointWriteError, ExportFn, checkpoint_candidates,
                                      export_workdir, init_checkpoint, init_weights, restore_latest,
                                      restore_newest_readable, save_checkpoint)
from ocr_tf.train.loop import REAL_METRICS, train_and_evaluate
from ocr_tf.train.rundir import (CHECKPOINT_DIR, CONFIG_FILE, INDEX_LOG, METRICS_FILE, RESUMABLE_DATA_FIELDS,
                                 RESUMABLE_TRAIN_FIELDS, IndexLog, check_workdir, load_run_config, read_index_log,
                                 read_metrics, save_config)
from ocr_tf.train.state import (TrainState, WarmupCosine, create_optimizer, create_train_state, freeze,
                                learning_rate_schedule)
from ocr_tf.train.steps import (MODEL_FIELDS, compute_gradients, distributed_step, eval_step, evaluate,
                                make_train_step, model_fields, train_inputs, train_step, validation_inputs)
from ocr_tf.train.strategy import create_strategy, is_chief
from ocr_tf.train.summaries import summary_images, summary_scalar, summary_text, write_validation_images

__all__ = [
    "CHECKPOINT_DIR", "CONFIG_FILE", "INDEX_LOG", "METRICS_FILE", "MODEL_FIELDS", "REAL_METRICS",
    "RESUMABLE_DATA_FIELDS", "RESUMABLE_TRAIN_FIELDS", "CheckpointWriteError", "ConfigError",
    "ExportFn", "IndexLog", "TrainState", "WarmupCosine", "check_workdir", "checkpoint_candidates",
    "compute_gradients", "create_optimizer", "create_strategy", "create_train_state", "distributed_step",
    "eval_step", "evaluate", "export_workdir", "freeze", "init_checkpoint", "init_weights", "is_chief",
    "learning_rate_schedule", "load_run_config", "make_train_step", "model_fields", "read_index_log",
    "read_metrics", "restore_latest", "restore_newest_readable", "save_checkpoint", "save_config",
    "summary_images", "summary_scalar", "summary_text", "train_and_evaluate", "train_inputs", "train_step",
    "validation_inputs", "write_validation_images",
]

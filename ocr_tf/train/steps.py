"""The replicas' inputs and steps: per-replica sharded streams, the train step, the eval step, evaluation.

:func:`train_inputs` shards the training stream from a global step on (made
locally or by a tf.data service), :func:`validation_inputs` the fixed
validation stream. :func:`make_train_step` and :func:`distributed_step` wrap
one replica's :func:`train_step` or :func:`eval_step` in a tf.function that
runs it in every replica and sums the results; :func:`evaluate` turns the
summed counts of a whole stream into metrics.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterator, Mapping

import ml_collections
import tensorflow as tf

from ocr_tf import data_service, input_pipeline, losses, metrics, synth
from ocr_tf.train.state import TrainState

# Sample fields fed to the replicas (strings stay on the host).
MODEL_FIELDS = ("image", "clean", "labels", "label_length", "angle", "letter_quads", "letter_boxes",
                "letter_mask", "index")


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
  address = data_cfg.data_service_address if data_cfg is not None else ""

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


def next_batch(iterator: Iterator):
  """next(iterator), with a data-service loss (raised inside tf.data) surfaced as DataServiceError."""
  try:
    return next(iterator)
  except tf.errors.OpError as e:
    text = str(e)
    if "DataServiceError" not in text:
      raise
    message = text.split("DataServiceError:", 1)[1].strip().splitlines()[0]
    raise data_service.DataServiceError(message) from None


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

"""tf.data pipelines: index -> stateless params -> XLA render -> batch -> prefetch.

The global stream is indexed by sample number. At global step ``s`` with a
global batch of ``G = b * R`` samples (``R`` replicas of ``b``), replica ``r``
takes indices ``s*G + r*b ... s*G + r*b + b - 1``. Every index is drawn once,
sample ``i`` is the same bytes whatever the number of replicas or the
parallelism, and starting at step ``s`` resumes the exact stream.
"""

from __future__ import annotations

import ml_collections
import tensorflow as tf

from ocr_tf import atlas as atlas_lib
from ocr_tf import config as config_lib
from ocr_tf import synth


def make_generator(data_config: ml_collections.ConfigDict, *, validation: bool = False,
                   atlas: atlas_lib.Atlas | None = None) -> synth.Generator:
  """A Generator for the training stream (data.seed) or the validation stream.

  Args:
    data_config: the data block; checked here unless it is already a checked
      one (ocr_tf.config.checked_data), so a bad value stops before the atlas loads.
    validation: the validation stream's seed (data.validation_seed) instead of data.seed.
    atlas: the atlas to render from; None loads data.atlas (or the shipped one).

  Returns:
    The Generator. Raises ConfigError or AtlasError with one line.
  """
  d = config_lib.checked_data(data_config)
  atlas = atlas or atlas_lib.load_atlas(d.atlas or None)
  seed = d.validation_seed if validation else d.seed
  return synth.Generator(d, atlas, seed)


def index_dataset(per_replica_batch: int, num_replicas: int = 1, pipeline_id: int = 0,
                  num_pipelines: int = 1, start_step: int = 0,
                  num_steps: int | None = None) -> tf.data.Dataset:
  """Sample indices of one input pipeline, in stream order, from `start_step` on.

  A pipeline feeds ``num_replicas // num_pipelines`` replicas, which
  tf.distribute deals its per-replica batches to in turn, so its indices at
  step s are the contiguous run ``s*G + p*R*b ... s*G + (p+1)*R*b - 1``.
  """
  if num_replicas % num_pipelines:
    raise ValueError(f"{num_replicas} replicas do not split over {num_pipelines} input pipelines")
  local = per_replica_batch * (num_replicas // num_pipelines)
  g = per_replica_batch * num_replicas
  stop = 2**62 if num_steps is None else start_step + num_steps
  steps = tf.data.Dataset.range(start_step, stop)
  first = pipeline_id * local
  return steps.flat_map(lambda s: tf.data.Dataset.range(s * g + first, s * g + first + local))


def sample_dataset(generator: synth.Generator, indices: tf.data.Dataset, batch_size: int,
                   num_parallel_calls: int | None = None) -> tf.data.Dataset:
  """Batched samples for a dataset of indices. Parallelism never changes a byte."""
  parallel = num_parallel_calls or tf.data.AUTOTUNE
  ds = indices.map(generator.sample, num_parallel_calls=parallel, deterministic=True)
  ds = ds.batch(batch_size, drop_remainder=True)
  return ds.prefetch(tf.data.AUTOTUNE)


def build_inputs(generator: synth.Generator, global_batch: int, start_step: int = 0,
                 input_context: tf.distribute.InputContext | None = None,
                 num_steps: int | None = None) -> tf.data.Dataset:
  """The per-replica dataset for `strategy.distribute_datasets_from_function`."""
  ctx = input_context or tf.distribute.InputContext()
  replicas = ctx.num_replicas_in_sync
  if global_batch % replicas:
    raise ValueError(f"global batch {global_batch} is not divisible by {replicas} replicas")
  b = ctx.get_per_replica_batch_size(global_batch)
  indices = index_dataset(b, replicas, ctx.input_pipeline_id, ctx.num_input_pipelines,
                          start_step, num_steps)
  return sample_dataset(generator, indices, b)


def validation_dataset(generator: synth.Generator, num_samples: int, batch_size: int) -> tf.data.Dataset:
  """The fixed validation stream: indices 0..num_samples-1 of the validation seed."""
  n = (num_samples // batch_size) * batch_size
  return sample_dataset(generator, tf.data.Dataset.range(n), batch_size)

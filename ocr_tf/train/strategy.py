"""The tf.distribute strategy of a run, from the machine: TF_CONFIG, logical CPUs, GPUs.

:func:`create_strategy` picks MultiWorkerMirroredStrategy, MirroredStrategy or
the default strategy; :func:`is_chief` tells which process writes the workdir;
:func:`checked_batch` checks that a global batch splits over the replicas.
The names of the strategy and of this process's task go into the run's log.
"""

from __future__ import annotations

import json
import os

import ml_collections
import tensorflow as tf
from absl import logging

from ocr_tf.config import ConfigError


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


def strategy_name(strategy: tf.distribute.Strategy) -> str:
  """The strategy's class name as the log shows it (MultiWorkerMirroredStrategy for its subclasses)."""
  if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return "MultiWorkerMirroredStrategy"
  return type(strategy).__name__.lstrip("_")


def task_name(strategy: tf.distribute.Strategy) -> str:
  """This process's task: 'local' out of a cluster, else e.g. 'worker_1'."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or resolver.task_type is None:
    return "local"
  return f"{resolver.task_type}_{resolver.task_id}"


def checked_batch(field: str, global_batch: int, replicas: int) -> int:
  """Returns global_batch; ConfigError (one line naming train.<field>) when it does not split over the replicas."""
  if global_batch % replicas:
    raise ConfigError(f"train.{field}={global_batch}: the global batch must be divisible by the "
                      f"{replicas} replicas")
  return global_batch

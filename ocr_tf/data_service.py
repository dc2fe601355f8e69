"""Sample generation on a pool of CPU machines with tf.data service, in the order local generation gives.

Servers (``ocr-tf data-service dispatcher|worker``) are thin wrappers of
``tf.data.experimental.service``; a training run with
``data.data_service_address`` set reads its stream from them.

Sharding policy: DYNAMIC (tf.data service's "distributed epoch"). The
dataset a trainer registers is a range of *units*, one unit being one
replica's batch of one step; the dispatcher hands units to whichever worker
asks next, so every unit is made by exactly one worker, once, and a worker
makes each of its units exactly as local generation would (the samples are
a function of their index alone). Units reach the trainer in any order:
:class:`OrderedStream` holds early ones and passes them on in step order,
so the trainer sees the same batches, byte for byte, in the same steps as
without the service.

A unit can be lost: a worker that stops takes the units it was making or
holding with it, and a dispatcher that stops ends the stream. A unit counts
as lost once ``data.data_service_lookahead`` later units have arrived, or
nothing at all has arrived for ``data.data_service_timeout`` seconds. Then,
by ``data.data_service_on_loss``: 'local' makes the unit in the training
process (same bytes, a warning per unit) and goes on, 'stop' raises
:class:`DataServiceError`.

The servers listen on every interface of their machine (tf.data service
has no bind address): run them on a private network.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable, Iterator, Mapping

from absl import logging
import tensorflow as tf

from ocr_tf.config import DATA_SERVICE_ON_LOSS, normalize_address

ON_LOSS = DATA_SERVICE_ON_LOSS  # what a lost batch does: make it here, or stop


class DataServiceError(RuntimeError):
  """The service lost a batch (or stopped) and data.data_service_on_loss is 'stop'."""


# ------------------------------------------------------------------ servers


def start_dispatcher(port: int, work_dir: str = "") -> tf.data.experimental.service.DispatchServer:
  """A dispatcher on `port` (0: any free port). With work_dir, it journals its state there and recovers it."""
  config = tf.data.experimental.service.DispatcherConfig(
      port=port, work_dir=work_dir or None, fault_tolerant_mode=bool(work_dir))
  return tf.data.experimental.service.DispatchServer(config)


def start_worker(dispatcher: str, port: int = 0, worker_host: str = "localhost"
                 ) -> tf.data.experimental.service.WorkerServer:
  """A worker registered with `dispatcher` (HOST:PORT), serving on `port` (0: any free port).

  worker_host is the name the trainers reach this worker by (its host name
  on a cluster; localhost when everything runs on one machine).
  """
  address = normalize_address(dispatcher).split("://", 1)[1]
  config = tf.data.experimental.service.WorkerConfig(
      dispatcher_address=address, worker_address=f"{worker_host}:%port%", port=port)
  return tf.data.experimental.service.WorkerServer(config)


# ------------------------------------------------------------------ client


def unit_dataset(sample_fn: Callable, batch: int, units_per_step: int, step_size: int, first: int,
                 start_unit: int, stop_unit: int = 2**62) -> tf.data.Dataset:
  """Units start_unit.. as batches: unit u is step u // units_per_step, replica slot u % units_per_step.

  Its samples are the indices (u // R) * step_size + first + (u % R) * batch + [0, batch), R =
  units_per_step: the indices input_pipeline.index_dataset gives the same replica at that step.
  Each element carries its unit number under "unit".
  """
  R = units_per_step

  def first_index(u):
    return (u // R) * step_size + first + (u % R) * batch

  units = tf.data.Dataset.range(start_unit, stop_unit)
  ds = units.flat_map(lambda u: tf.data.Dataset.range(first_index(u), first_index(u) + batch))
  ds = ds.map(sample_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(batch, drop_remainder=True)
  return ds.map(lambda b: dict(b, unit=(b["index"][0] - first) // step_size * R
                               + (b["index"][0] - first) % step_size // batch))


def service_dataset(units: tf.data.Dataset, address: str) -> tf.data.Dataset:
  """`units` made by the service's workers, each unit by one worker once (DYNAMIC sharding)."""
  return units.apply(tf.data.experimental.service.distribute(
      processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
      service=normalize_address(address)))


class OrderedStream:
  """Yields units start_unit, start_unit + 1, ... from an unordered stream of them.

  Args:
    unordered: a tf.data.Dataset of unit dicts with a "unit" field (any order,
      each unit at most once).
    make_local: unit -> the same unit dict, made in this process (for lost units).
    start_unit: the first unit to yield.
    lookahead: a missing unit is lost once this many later units have arrived.
    timeout: ... or once nothing has arrived for this many seconds.
    on_loss: 'local' (make lost units locally) or 'stop' (raise DataServiceError).
  """

  def __init__(self, unordered: tf.data.Dataset, make_local: Callable[[int], Mapping[str, Any]],
               start_unit: int, lookahead: int = 32, timeout: float = 60.0, on_loss: str = "local"):
    if on_loss not in ON_LOSS:
      raise ValueError(f"on_loss={on_loss!r}: must be one of {ON_LOSS}")
    self._unordered = unordered
    self._make_local = make_local
    self._next = start_unit
    self._lookahead = lookahead
    self._timeout = timeout
    self._on_loss = on_loss
    self._buffer: dict[int, Mapping[str, Any]] = {}
    self._cond = threading.Condition()
    self._error: BaseException | None = None
    self._done = False
    self._stop = threading.Event()
    self.lost: collections.Counter = collections.Counter()  # 'timeout', 'overtaken', 'stream ended'
    self.from_service = 0
    self._starved = False  # the last unit was lost to a timeout: do not wait the full timeout per unit
    self._thread = threading.Thread(target=self._read, name="data-service-reader", daemon=True)
    self._thread.start()

  def _read(self) -> None:
    try:
      for element in self._unordered:
        unit = int(element.pop("unit"))
        with self._cond:
          if unit >= self._next:  # a unit already made locally is dropped
            self._buffer[unit] = element
          self._cond.notify_all()
        if self._stop.is_set():
          return
    except BaseException as e:  # pylint: disable=broad-except
      with self._cond:
        self._error = e
    finally:
      with self._cond:
        self._done = True
        self._cond.notify_all()

  def _lost(self, unit: int, why: str) -> Mapping[str, Any]:
    self.lost[why] += 1
    if self._on_loss == "stop":
      detail = f" ({type(self._error).__name__}: {str(self._error).strip().splitlines()[0][:200]})" \
          if self._error is not None and str(self._error).strip() else ""
      raise DataServiceError(
          f"the tf.data service lost the batch of unit {unit} ({why}{detail}); a worker or the dispatcher "
          f"stopped? Set data.data_service_on_loss='local' to make lost batches in the trainer instead")
    logging.warning("data service: unit %d lost (%s); made in the trainer instead", unit, why)
    return self._make_local(unit)

  def __iter__(self) -> Iterator[Mapping[str, Any]]:
    return self

  def __next__(self) -> Mapping[str, Any]:
    unit = self._next
    deadline = time.monotonic() + (min(self._timeout, 0.5) if self._starved else self._timeout)
    with self._cond:
      while unit not in self._buffer:
        if len(self._buffer) >= self._lookahead:  # every buffered unit is newer than the awaited one
          why = "overtaken"
          break
        if self._done:
          why = "stream ended"
          break
        left = deadline - time.monotonic()
        if left <= 0:
          why = "timeout"
          break
        arrived = len(self._buffer)
        self._cond.wait(min(left, 1.0))
        if len(self._buffer) > arrived:
          deadline = time.monotonic() + self._timeout  # progress: wait on
      else:
        why = None
      element = self._buffer.pop(unit, None)
    if element is None:
      self._starved = why in ("timeout", "stream ended")
      element = self._lost(unit, why)
    else:
      self._starved = False
      self.from_service += 1
    self._next = unit + 1
    return element

  def close(self) -> None:
    self._stop.set()


def ordered_dataset(sample_fn: Callable, element_spec: Mapping[str, tf.TensorSpec], address: str, *,
                    batch: int, units_per_step: int, step_size: int, first: int, start_step: int,
                    lookahead: int = 32, timeout: float = 60.0, on_loss: str = "local") -> tf.data.Dataset:
  """One input pipeline's per-replica batches from start_step on, made by the service, in step order.

  The batches are those of input_pipeline.build_inputs for the same pipeline
  (same indices, same bytes); element_spec is their spec (without "unit").
  """
  start_unit = start_step * units_per_step

  def make_local(unit: int) -> Mapping[str, Any]:
    ds = unit_dataset(sample_fn, batch, units_per_step, step_size, first, unit, unit + 1)
    element = next(iter(ds))
    element.pop("unit")
    return element

  def stream():
    units = unit_dataset(sample_fn, batch, units_per_step, step_size, first, start_unit)
    ordered = OrderedStream(service_dataset(units, address), make_local, start_unit, lookahead, timeout, on_loss)
    try:
      for element in ordered:
        yield {k: element[k] for k in element_spec}
    finally:
      ordered.close()

  return tf.data.Dataset.from_generator(stream, output_signature=dict(element_spec))

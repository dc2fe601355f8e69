"""Generator throughput: samples/s, CPU cores used, samples/s per core, peak memory."""

from __future__ import annotations

import os
import resource
import time

import tensorflow as tf

from ocr_tf import input_pipeline, synth


def rss_mb() -> float:
  """Current resident memory of this process in MB (Linux /proc)."""
  try:
    with open("/proc/self/statm") as f:
      return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
  except OSError:
    return float("nan")


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def limit_threads(threads: int) -> None:
  """TensorFlow's own pools to `threads` threads (call before any TensorFlow op runs)."""
  tf.config.threading.set_intra_op_parallelism_threads(threads)
  tf.config.threading.set_inter_op_parallelism_threads(threads)


def measure(generator: synth.Generator, batch_size: int, seconds: float, warmup_batches: int = 5,
            max_samples: int | None = None, log=print, threads: int | None = None) -> dict:
  """Pulls batches from the training pipeline; times a window after the warm-up.

  With `threads`, the pipeline's map runs that many samples at once in a
  private pool of that many threads, without autotuning (threads=1: one core's
  worth of work, the fair comparison with a single-threaded generator).

  RSS is read after the warm-up (rss_start_mb), at every progress line and at
  the end; rss_window_max_mb is the largest of those readings. Throughput
  is also reported over the first and the last tenth of the progress
  windows (about 5 s each): rate_first_tenth, rate_last_tenth.
  """
  ds = input_pipeline.sample_dataset(generator, input_pipeline.index_dataset(batch_size), batch_size,
                                     num_parallel_calls=threads)
  if threads:
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.autotune.enabled = False
    ds = ds.with_options(options)
  it = iter(ds)
  for _ in range(warmup_batches):
    next(it)
  rss_start = rss_mb()
  rss_max = rss_start
  wall0, cpu0 = time.perf_counter(), time.process_time()
  n, last_log = 0, wall0
  windows = []  # (samples, seconds) between progress lines: throughput over the run
  while True:
    next(it)
    n += batch_size
    now = time.perf_counter()
    if now - last_log > 5:
      windows.append((n - sum(w[0] for w in windows), now - last_log))
      rss = rss_mb()
      rss_max = max(rss_max, rss)
      log(f"bench: {n} samples, {n / (now - wall0):.1f} samples/s, rss {rss:.0f} MB")
      last_log = now
    if (max_samples is None and now - wall0 >= seconds) or (max_samples is not None and n >= max_samples):
      break
  wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
  rss_end = rss_mb()
  tenth = max(1, len(windows) // 10)

  def rate(ws):
    return sum(w[0] for w in ws) / max(sum(w[1] for w in ws), 1e-9) if ws else n / wall

  first, last = rate(windows[:tenth]), rate(windows[-tenth:])
  return {
      "rate_first_tenth": first,
      "rate_last_tenth": last,
      "samples": n,
      "seconds": wall,
      "samples_per_second": n / wall,
      "cores_used": cpu / wall,
      "per_core": n / cpu,
      "rss_start_mb": rss_start,
      "rss_end_mb": rss_end,
      "rss_window_max_mb": max(rss_max, rss_end),
      "peak_rss_mb": peak_rss_mb(),
      "cpus_available": len(os.sched_getaffinity(0)),
  }

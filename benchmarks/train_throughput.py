r"""Is generation free? Training samples/s on the live synthetic stream against one cached batch repeated.

  python benchmarks/train_throughput.py --config=configs/default.py
  python benchmarks/train_throughput.py --config=configs/tiny.py --steps=40 --rounds=3

Both sides run the same distributed training step of ocr_tf.train (same
model, optimizer, strategy and global batch) in one process. The live side
reads the training pipeline (index -> sample -> batch -> prefetch) from the
current step on; the cached side repeats one batch of that pipeline
(`take(1).cache().repeat()`), so it measures the step alone. The sides take
turns for `--rounds` windows of `--steps` steps each; every window makes a
fresh iterator and leaves its first `--warmup` steps out of the timing, so no
prefetch buffer of one side fills while the other is timed. The last line is

  live_samples_per_second=<float> cached_samples_per_second=<float> ratio=<live/cached>

and the figure to reach is ratio >= 0.90.
"""

from __future__ import annotations

import time

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per window.", lower_bound=1)
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps at the start of each window.", lower_bound=1)
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Windows per side, alternating.", lower_bound=1)


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from ocr_tf import atlas as atlas_lib  # pylint: disable=import-outside-toplevel
  from ocr_tf import config as config_lib  # pylint: disable=import-outside-toplevel
  from ocr_tf import input_pipeline, train  # pylint: disable=import-outside-toplevel

  config = _CONFIG.value
  if config is None:
    raise app.UsageError("--config=configs/<name>.py is required")
  config = config_lib.checked(config)
  strategy = train.create_strategy(config.train)
  global_batch = int(config.train.batch_size)
  generator = input_pipeline.make_generator(config.data, atlas=atlas_lib.load_atlas(config.data.atlas or None))
  state = train.create_train_state(config, strategy)
  step_fn = train.make_train_step(state, config, strategy, global_batch)

  def live(start: int):
    return iter(train.train_inputs(strategy, generator, global_batch, start))

  def cached(start: int):
    def dataset_fn(ctx):
      ds = input_pipeline.build_inputs(generator, global_batch, start, ctx).map(train.model_fields)
      return ds.take(1).cache().repeat()
    return iter(strategy.distribute_datasets_from_function(dataset_fn))

  step = 0

  def window(make_iterator) -> float:
    """Samples/s over --steps timed steps of a fresh iterator."""
    nonlocal step
    iterator = make_iterator(step)
    for _ in range(_WARMUP.value):
      step_fn(next(iterator))
      step += 1
    out = None
    began = time.perf_counter()
    for _ in range(_STEPS.value):
      out = step_fn(next(iterator))
      step += 1
    float(out["total"])  # the last step has finished
    return _STEPS.value * global_batch / (time.perf_counter() - began)

  logging.info("compiling and warming up")
  window(cached)
  rates = {"live": [], "cached": []}
  for r in range(_ROUNDS.value):
    for name, make in (("live", live), ("cached", cached)) if r % 2 == 0 else (("cached", cached), ("live", live)):
      rates[name].append(window(make))
      print(f"round {r + 1} {name}: {rates[name][-1]:.1f} samples/s", flush=True)
  # Total samples over total time per side: the harmonic mean of equal-sized windows.
  live_rate = len(rates["live"]) / sum(1.0 / x for x in rates["live"])
  cached_rate = len(rates["cached"]) / sum(1.0 / x for x in rates["cached"])
  print(f"config={config.model.preset} model, {config.data.height}x{config.data.width}x{config.data.channels}, "
        f"global batch {global_batch}, {strategy.num_replicas_in_sync} replica(s), "
        f"{_ROUNDS.value} x {_STEPS.value} timed steps per side, tf {tf.__version__}")
  print(f"live_samples_per_second={live_rate:.1f} cached_samples_per_second={cached_rate:.1f} "
        f"ratio={live_rate / cached_rate:.3f}")


if __name__ == "__main__":
  app.run(main)

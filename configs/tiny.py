r"""A small, fast distribution for tests and CPU runs: 1-8 characters, 32x128 grey.

  ocr-tf preview --config=configs/tiny.py --count=16 --out=/tmp/tiny_preview
"""

from ocr_tf import config_base


def get_config():
  config = config_base.get_config()
  d = config.data
  d.height, d.width, d.channels = 32, 128, 1
  d.min_length, d.max_length = 1, 8
  d.font_px = (20.0, 26.0)
  d.margins_px = (0, 4)
  d.short_scratches = (0, 5)
  d.long_scratches = (0, 1)
  d.long_scratch_length = (2, 100)
  config.model = config_base.model_config("tiny")
  t = config.train
  t.steps = 3000
  t.batch_size = 32
  t.learning_rate = 2e-3
  t.warmup_steps = 200
  t.log_every = 50
  t.eval_every = 500
  t.checkpoint_every = 250
  t.eval_samples = 256
  t.eval_batch_size = 32
  return config

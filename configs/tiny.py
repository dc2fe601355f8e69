r"""A small, fast distribution for tests and CPU runs: 1-8 characters, 32x128 grey, the tiny model.

  ocr-tf preview --config=configs/tiny.py --count=16 --out=/tmp/tiny_preview
  ocr-tf train --config=configs/tiny.py --workdir=/tmp/ocr_tiny

Data: the default distribution's degradations (noise backgrounds, grain,
scratches, morphology, blur, uneven light, JPEG, downscaling, ink and paper
colours, light-on-dark) with milder extremes (contrast 0.7-1, noise up to 0.2,
grain up to 0.15, blur sigma up to 1, JPEG quality 30-70).

Training: the tiny preset with a wider last stage (16, 32, 48, 96) and text
head (128): about 0.3M weights; global batch 32, AdamW at 2e-3 with 200
warmup steps and a cosine decay over 9500 steps; evaluation on 1024
validation samples every 1000 steps.

Measured on 2 idle CPU cores (the command above, TF 2.21): 12 min 45 s wall
for the whole command (about 440 samples/s while training), final CER 0.0442,
word accuracy 0.866, letter F1 0.988, clean PSNR 25.3 dB, angle MAE 1.28
degrees. CER by minute: 0.199 (1.7), 0.173 (3.0), 0.110 (4.3), 0.089 (5.6),
0.071 (6.9), 0.056 (8.2), 0.055 (9.5), 0.047 (10.8), 0.046 (12.0), 0.044
(12.7); the curve is in benchmarks/results/tiny_curve.png and
tiny_metrics.jsonl. A third of the remaining errors are I/l/1 and O/0, which
many sans-serif fonts draw (nearly) alike. With the default distribution's
full-strength degradations the same model reached CER 0.0645 in 8500 steps.
"""

from ocr_tf import config as config_lib


def get_config():
  config = config_lib.get_config()
  d = config.data
  d.height, d.width, d.channels = 32, 128, 1
  d.min_length, d.max_length = 1, 8
  d.font_px = (20.0, 26.0)
  d.margins_px = (0, 4)
  d.short_scratches = (0, 5)
  d.long_scratches = (0, 1)
  d.long_scratch_length = (2, 100)
  # Every degradation of the default distribution, with milder extremes: tiny is for quick CPU runs.
  d.contrast = (0.7, 1.0)
  d.ink_level = (0.0, 0.3)
  d.background_noise = (0.0, 0.2)
  d.grain = (0.0, 0.15)
  d.blur_sigma = (0.0, 1.0)
  d.jpeg_quality = (30, 70)
  config.model = config_lib.model_config("tiny")
  config.model.widths = (16, 32, 48, 96)  # a wider last stage and text head than the preset: much better
  config.model.text_width = 128  # CER per step for about 20% more time per step
  t = config.train
  t.steps = 9500
  t.batch_size = 32
  t.learning_rate = 2e-3
  t.warmup_steps = 200
  t.log_every = 50
  t.eval_every = 1000
  t.checkpoint_every = 250
  t.eval_samples = 1024
  t.eval_batch_size = 32
  return config

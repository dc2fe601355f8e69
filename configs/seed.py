r"""The original Synthetic-OCR project's data distribution, as ocr_tf samples.

Random alphanumeric strings of 1 to 64 characters at 40 px, letter spacing
-6..+10 px, rotated uniformly within +-5 degrees, margins -4..30 px, the
original's morphology (close/open and erode), 20-60 short coloured scratches
(2..60 px, 1-2 px wide) and 2-20 long black ones (2..500 px, 1-5 px wide),
multi-scale noise backgrounds blended with RGB grain (weight 0.1..0.8),
Gaussian blur 0..2, contrast and brightness 0.2..1, saturation 0..1, RGB.

What the original lacked stays off here (uneven light, JPEG, downscaling,
inverted text); text that would not fit the fixed 128x1792 image (long lines
at steep angles) is scaled down to fit instead of cropped.

  ocr-tf preview --config=configs/seed.py --count=16 --out=/tmp/seed_preview
  ocr-tf bench --config=configs/seed.py
  ocr-tf train --config=configs/seed.py --workdir=/tmp/ocr_seed

Training: the default model on the full 128x1792 RGB lines (3.1M weights,
448 CTC frames for up to 64 characters), global batch 32, AdamW at 1e-3 with
2000 warmup steps and a cosine decay over 200k steps. For GPUs: on 2 CPU
cores a step runs at about 2 samples/s. Not trained to the end yet, so what
it reaches is not measured.
"""

from ocr_tf import config as config_lib


def get_config():
  config = config_lib.get_config()
  d = config.data
  d.charset = config_lib.ALNUM
  d.height, d.width, d.channels = 128, 1792, 3
  d.min_length, d.max_length = 1, 64
  d.font_px = (40.0, 40.0)
  d.spacing_em = (-6 / 40, 10 / 40)
  d.margins_px = (-4, 30)
  d.position = "start"
  d.max_angle = 5.0
  d.max_shear = 0.0
  d.morph_probability = 1.0
  d.morph_close_open = (-2, 1)  # original: open/close factor -3..1 with disk kernels
  d.morph_dilate_erode = (-1, 0)  # original: erode or nothing
  d.short_scratches = (20, 60)
  d.short_scratch_length = (2, 60)
  d.short_scratch_width = (1, 2)
  d.long_scratches = (2, 20)
  d.long_scratch_length = (2, 500)
  d.long_scratch_width = (1, 5)
  d.long_scratch_black = True
  # Background: noise image of brightness 0.7..1.8 (mid grey 0.35..0.9) with contrast 0.01..0.6.
  d.paper_level = (0.35, 0.9)
  d.paper_tint = 0.0
  d.ink_level = (0.0, 0.0)
  d.ink_tint = 0.0
  d.invert_probability = 0.0
  d.background_noise = (0.01, 0.6)
  d.background_saturation = (0.05, 0.93)
  d.grain = (0.1, 0.8)
  d.grain_contrast = (0.01, 0.6)
  d.grain_saturation = (0.05, 0.93)
  d.grain_brightness = (0.7, 1.8)
  d.blur_probability = 1.0
  d.blur_sigma = (0.0, 2.0)
  d.illumination_probability = 0.0
  d.downscale_probability = 0.0
  d.jpeg_probability = 0.0
  d.contrast = (0.2, 1.0)
  d.brightness = (0.2, 1.0)
  d.saturation = (0.0, 1.0)
  t = config.train
  t.steps = 200_000
  t.batch_size = 32
  t.warmup_steps = 2000
  t.eval_every = 5000
  t.checkpoint_every = 2000
  t.eval_samples = 512
  t.eval_batch_size = 32
  t.num_images = 4
  return config

r"""ocr_tf settings comparable to the trdg run in benchmarks/compare_trdg.sh.

32 px images like trdg's `size=32` (text about 26 px em, as trdg's 22 px text
band between its margins), 1-20 alphanumeric characters, skew up to 5 degrees,
blur, noise background, RGB; every ocr_tf degradation on (morphology,
scratches, grain, uneven light, JPEG, downscaling). ocr_tf's images have a
fixed width (384 px) that holds the longest string; trdg's follow the text.

  ocr-tf bench --config=benchmarks/trdg_comparable.py
"""

from ocr_tf import config as config_lib


def get_config():
  config = config_lib.get_config()
  d = config.data
  d.height, d.width, d.channels = 32, 384, 3
  d.min_length, d.max_length = 1, 20
  d.font_px = (26.0, 26.0)
  d.margins_px = (0, 4)
  d.max_angle = 5.0
  d.morph_probability = 1.0
  d.blur_probability = 1.0
  d.blur_sigma = (0.0, 1.5)
  d.illumination_probability = 1.0
  d.downscale_probability = 0.5
  d.jpeg_probability = 0.5
  return config

r"""Default data distribution: word-image crops as documents and photos give them.

Grey 32x256 images, 1-16 alphanumeric characters at 20-30 px em, +-5 degrees,
the full set of degradations at moderate strength (noise backgrounds, grain,
scratches, morphology, blur, uneven light, JPEG, downscaling, ink and paper
colours, light-on-dark).

  ocr-tf preview --config=configs/default.py --count=32 --out=/tmp/preview
  ocr-tf bench --config=configs/default.py
"""

from ocr_tf import config_base


def get_config():
  return config_base.get_config()

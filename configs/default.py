r"""Default data distribution: word-image crops as documents and photos give them.

Grey 32x256 images, 1-16 alphanumeric characters at 20-30 px em, +-5 degrees,
the full set of degradations at moderate strength (noise backgrounds, grain,
scratches, morphology, blur, uneven light, JPEG, downscaling, ink and paper
colours, light-on-dark).

  ocr-tf preview --config=configs/default.py --count=32 --out=/tmp/preview
  ocr-tf bench --config=configs/default.py
  ocr-tf train --config=configs/default.py --workdir=/tmp/ocr_default

Training (the defaults of ocr_tf.config): the default model (2.9M
weights), global batch 64, AdamW at 1e-3 with 1000 warmup steps and a cosine
decay over 100k steps, evaluation on 1024 validation samples every 2000
steps. Meant for one GPU (add --config.train.precision=mixed_float16 there).
On 2 CPU cores it trains at about 83 samples/s (0.8 s a step), so 100k steps
would take about a day; it has not been trained to the end yet, so what it
reaches is not measured. Generation is free here: `python
benchmarks/train_throughput.py --config=configs/default.py` measured 83.3
samples/s on the live stream against 82.4 on one cached batch repeated
(ratio 1.01, 3 alternating windows of 20 steps each).
"""

from ocr_tf import config as config_lib


def get_config():
  return config_lib.get_config()  # data, model ('default' preset) and train defaults

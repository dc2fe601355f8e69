"""ocr_tf: train OCR networks on an infinite synthetic stream made inside TensorFlow.

Importing the package (before TensorFlow is first imported) turns on
TensorFlow's oneDNN CPU kernels unless TF_ENABLE_ONEDNN_OPTS is already set.
TensorFlow enables them by itself only on CPUs with AVX-512 VNNI or newer; on
AVX2-only CPUs (many cloud machines) they make the model's forward pass about
1.5 times as fast (benchmarks/onednn_speed.py). The synthetic samples do not
depend on it (their kernels are XLA's); model outputs may differ in the last
bits of floating point, as between any two CPUs. Set TF_ENABLE_ONEDNN_OPTS=0
to keep TensorFlow's own default.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

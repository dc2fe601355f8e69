"""ocr_tf: train OCR networks on an infinite synthetic stream made inside TensorFlow."""

__version__ = "0.2.0"

"""``python -m ocr_tf ...``: the ocr-tf command (see ocr_tf.main)."""

from __future__ import annotations

from ocr_tf import main

__doc__ = main.__doc__  # what --help prints: the usage of the command

if __name__ == "__main__":
  main.run()

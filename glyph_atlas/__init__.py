"""Offline builder of the glyph atlas that ocr_tf renders its training text from.

Run ``python -m glyph_atlas --fonts PATH [PATH ...] --out FILE.npz``; see
``glyph_atlas/DEFAULT_ATLAS.md`` for how the shipped default atlas is built.
Needs Pillow and fontTools; ocr_tf itself needs neither at training time.
"""

# Relative: the folder is the top-level package glyph_atlas in a checkout and ocr_tf.glyph_atlas once installed.
from .build import DEFAULT_CHARSET, DEFAULT_PIXEL_SIZE, BuildError, Report, build_atlas, main

__all__ = ["DEFAULT_CHARSET", "DEFAULT_PIXEL_SIZE", "BuildError", "Report", "build_atlas", "main"]

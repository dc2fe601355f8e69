"""``python -m glyph_atlas`` (``python -m ocr_tf.glyph_atlas`` once installed): see ``glyph_atlas.build.main``."""

import sys

from .build import main

sys.exit(main())

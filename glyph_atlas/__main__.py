"""``python -m glyph_atlas``: see ``glyph_atlas.build.main``."""

import sys

from glyph_atlas.build import main

sys.exit(main())

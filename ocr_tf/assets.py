"""The files shipped inside the package, by name (no TensorFlow: config checks and the CLI read these paths).

=================  ==========================================================
name               file
=================  ==========================================================
DEFAULT_ATLAS      assets/default_atlas.npz: the glyph atlas of data.atlas=''
DEFAULT_MODEL      assets/default_model: the SavedModel `ocr-tf predict` reads
                   by default and train.init_from='shipped' names
WORDS              assets/words.txt: English words, data.corpus='words'
FREQUENT_WORDS     assets/frequent_words.tsv: word<TAB>count lines,
                   data.frequent_words='frequent'
MODEL_CARD         assets/MODEL_CARD.md: what the shipped model was trained
                   on and what it reaches
=================  ==========================================================
"""

from __future__ import annotations

import os

ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
DEFAULT_ATLAS = os.path.join(ASSETS_DIR, "default_atlas.npz")
DEFAULT_MODEL = os.path.join(ASSETS_DIR, "default_model")
WORDS = os.path.join(ASSETS_DIR, "words.txt")
FREQUENT_WORDS = os.path.join(ASSETS_DIR, "frequent_words.tsv")
MODEL_CARD = os.path.join(ASSETS_DIR, "MODEL_CARD.md")

# The word lists a config or the command line may name instead of giving a path.
SHIPPED_CORPORA = {"words": WORDS,  # data.corpus, ocr-tf predict --lexicon
                   "frequent": FREQUENT_WORDS}  # data.frequent_words


def corpus_path(name_or_path: str) -> str:
  """A word list as a file path.

  Args:
    name_or_path: a shipped list's name ('words', 'frequent') or a path; a
      file of that name in the working directory wins over the shipped list.

  Returns:
    The shipped list's path for a name, else `name_or_path` itself.
  """
  if name_or_path in SHIPPED_CORPORA and not os.path.isfile(name_or_path):
    return SHIPPED_CORPORA[name_or_path]
  return name_or_path

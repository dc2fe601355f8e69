"""ocr_tf: train OCR networks on an infinite synthetic stream made inside TensorFlow.

Every package is installed under the ocr_tf name: the repository's top-level
configs/ and glyph_atlas/ folders become ocr_tf.configs and ocr_tf.glyph_atlas.
"""

import os
import re

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def version() -> str:
  """__version__ of ocr_tf/__init__.py (read, not imported: installing needs none of the dependencies)."""
  with open(os.path.join(ROOT, "ocr_tf", "__init__.py"), encoding="utf-8") as f:
    return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setup(
    name="ocr_tf",
    version=version(),
    description="Train OCR networks on an infinite in-graph synthetic dataset (TensorFlow, Keras 3).",
    long_description=open(os.path.join(ROOT, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["ocr_tf", "ocr_tf.*"]) + ["ocr_tf.configs", "ocr_tf.glyph_atlas"],
    package_dir={"ocr_tf.configs": "configs", "ocr_tf.glyph_atlas": "glyph_atlas"},
    package_data={"ocr_tf": ["assets/*.npz", "assets/*.txt", "assets/*.tsv", "assets/*.md", "assets/*.COPYRIGHT",
                             "assets/default_model/*.pb", "assets/default_model/assets/*",
                             "assets/default_model/variables/*"]},
    install_requires=[
        "tensorflow>=2.16",
        "numpy",
        "absl-py",
        "ml-collections",
        "pillow",
    ],
    extras_require={
        "atlas": ["pillow", "fonttools"],
        "test": ["pytest", "pytest-xdist", "fonttools"],
    },
    entry_points={"console_scripts": ["ocr-tf=ocr_tf.main:run"]},
    license="Apache-2.0",
)

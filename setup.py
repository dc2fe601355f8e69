"""ocr_tf: train OCR networks on an infinite synthetic stream made inside TensorFlow."""

from setuptools import setup

setup(
    name="ocr_tf",
    version="0.1.0",
    description="Train OCR networks on an infinite in-graph synthetic dataset (TensorFlow, Keras 3).",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["ocr_tf", "glyph_atlas", "configs"],
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

"""Kept for code written for ocr_tf 0.1 (``from ocr_tf import model_config``): the model block is ocr_tf.config.model.

Every name here is ocr_tf.config's; new code imports it from there.
"""

from __future__ import annotations

from ocr_tf.config import (ANGLE_POOLS, PRESETS, ConfigError, letter_map_shape, level_strides,  # noqa: F401
                           model_config, output_strides, text_length, validate)

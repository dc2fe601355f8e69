"""Kept for config files written for ocr_tf 0.1 (``from ocr_tf import config_base``): the schema is ocr_tf.config.

Every name here is ocr_tf.config's (corpus_path and SHIPPED_CORPORA are
ocr_tf.assets'); new code imports those.
"""

from __future__ import annotations

from ocr_tf.assets import SHIPPED_CORPORA, corpus_path  # noqa: F401
from ocr_tf.config import (ALNUM, LOSS_NAMES, OPTIMIZERS, PRECISIONS, ConfigError, data_config,  # noqa: F401
                           get_config, loss_config, model_config, normalize_address, train_config, validate_config,
                           validate_data, validate_train)

"""Writing files that may live on any file system TensorFlow knows (local, gs://, hdfs:// ...).

A training workdir can be on a bucket, so the run's config.json, its
metrics and its index log are written through ``tf.io.gfile`` here. The
TensorFlow-free twin for local files is ``ocr_tf.errors.atomic_write``.
"""

from __future__ import annotations

import tensorflow as tf

from ocr_tf.errors import temporary_path


def atomic_write(path: str, data: str | bytes) -> None:
  """Writes `data` to a temporary file next to `path`, then renames it to `path` (replacing any file there).

  On a local disk the rename is atomic: a reader sees the old file or the
  new one. On an object store (gs://) the rename is a copy then a delete,
  so a reader may briefly find both names, but never a partial `path`.

  Args:
    path: a path tf.io.gfile opens; its folder must exist.
    data: text or bytes.
  """
  tmp = temporary_path(path)
  with tf.io.gfile.GFile(tmp, "wb" if isinstance(data, bytes) else "w") as f:
    f.write(data)
  tf.io.gfile.rename(tmp, path, overwrite=True)

"""Small helpers for reporting errors and writing files safely (no TensorFlow).

:func:`one_line` makes any exception fit the one-line messages ocr_tf
reports. :func:`atomic_write` writes a local file so that a reader (or a
crash) never sees half of it; a file that may live on another file system
TensorFlow knows (gs:// ...) goes through ``ocr_tf.files.atomic_write``,
which is the same operation on ``tf.io.gfile`` (a separate module, so that
this one stays importable without TensorFlow).
"""

from __future__ import annotations

import os

MAX_LINE = 300  # characters of a cause quoted in a one-line message


def one_line(exc: BaseException) -> str:
  """An exception as one short line.

  Args:
    exc: any exception; a TensorFlow OpError's `message` is used when it has one.

  Returns:
    The first non-blank line of its message, at most MAX_LINE characters;
    the exception's type name when the message is empty.
  """
  message = getattr(exc, "message", None)
  text = (message if isinstance(message, str) and message.strip() else str(exc)).strip()
  return text.splitlines()[0][:MAX_LINE] if text else type(exc).__name__


def temporary_path(path: str) -> str:
  """Where atomic_write puts the data before renaming it to `path`: next to it, same file system."""
  return path + ".tmp"


def atomic_write(path: str, data: str | bytes) -> None:
  """Writes `data` to a temporary file next to `path`, then renames it to `path` (replacing any file there).

  Args:
    path: a local file path; its folder must exist.
    data: text (written as UTF-8) or bytes.
  """
  tmp = temporary_path(path)
  if isinstance(data, str):
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(data)
  else:
    with open(tmp, "wb") as f:
      f.write(data)
  os.replace(tmp, path)

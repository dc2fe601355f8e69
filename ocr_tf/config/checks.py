"""Field checkers of the config blocks: each raises ConfigError with one line ``block.field=value: why``.

Each takes the block (a ConfigDict or any mapping of fields), the field's
name and the block's dotted name as it appears in a full config ('data',
'train', 'train.loss' ...), and returns the value when it passes.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NoReturn, Sequence


class ConfigError(ValueError):
  """An invalid configuration value. The message names the field and the value."""


def fail(block: str, field: str, value: Any, why: str) -> NoReturn:
  """Raises ConfigError('block.field=value!r: why')."""
  raise ConfigError(f"{block}.{field}={value!r}: {why}")


def is_number(value: Any) -> bool:
  """True for a finite int or float (not a bool)."""
  return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def is_positive_int(value: Any) -> bool:
  """True for a whole number >= 1 (not a bool)."""
  return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def check_range(d: Mapping, field: str, lo: float | None = None, hi: float | None = None, integer: bool = False,
                *, block: str) -> tuple[float, float]:
  """A (min, max) pair of finite numbers with lo <= min <= max <= hi (whole numbers when `integer`).

  Returns:
    The pair (min, max) as given.
  """
  value = d[field]
  if not isinstance(value, (tuple, list)) or len(value) != 2:
    fail(block, field, value, "expected a (min, max) pair")
  a, b = value
  for v in (a, b):
    if not is_number(v):
      fail(block, field, value, "expected two finite numbers")
    if integer and int(v) != v:
      fail(block, field, value, "expected whole numbers")
  if a > b:
    fail(block, field, value, "min is greater than max")
  if lo is not None and a < lo:
    fail(block, field, value, f"must be >= {lo}")
  if hi is not None and b > hi:
    fail(block, field, value, f"must be <= {hi}")
  return a, b


def check_int(d: Mapping, field: str, lo: int, hi: int | None = None, *, block: str) -> int:
  """A whole number (not a bool) in [lo, hi] (hi None: no upper bound). Returns it."""
  v = d[field]
  if isinstance(v, bool) or not isinstance(v, int):
    fail(block, field, v, "expected a whole number")
  if v < lo or (hi is not None and v > hi):
    fail(block, field, v, f"must be in [{lo}, {hi}]" if hi is not None else f"must be >= {lo}")
  return v


def check_float(d: Mapping, field: str, lo: float, hi: float | None = None, lo_open: bool = False, *,
                block: str) -> float:
  """A finite number (not a bool) in [lo, hi], or (lo, hi] with lo_open. Returns it as a float."""
  v = d[field]
  if not is_number(v):
    fail(block, field, v, "expected a finite number")
  if v < lo or (lo_open and v == lo):
    fail(block, field, v, f"must be > {lo}" if lo_open else f"must be >= {lo}")
  if hi is not None and v > hi:
    fail(block, field, v, f"must be <= {hi}")
  return float(v)


def check_unit(d: Mapping, field: str, why: str, *, block: str) -> float:
  """A number (not a bool) in [0, 1]; `why` is the message otherwise ('a probability must be in [0, 1]')."""
  v = d[field]
  if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
    fail(block, field, v, why)
  return v


def check_probability(d: Mapping, field: str, *, block: str) -> float:
  """A probability: a number in [0, 1]. Returns it."""
  return check_unit(d, field, "a probability must be in [0, 1]", block=block)


def check_bool(d: Mapping, field: str, *, block: str) -> bool:
  """True or False (not 0 or 1). Returns it."""
  v = d[field]
  if not isinstance(v, bool):
    fail(block, field, v, "must be True or False")
  return v


def check_choice(d: Mapping, field: str, choices: Sequence[str], why: str, *, block: str) -> str:
  """One of `choices`; `why` is the message otherwise (e.g. "must be 'l1' or 'bce'"). Returns it."""
  v = d[field]
  if v not in choices:
    fail(block, field, v, why)
  return v


def check_str(d: Mapping, field: str, why: str, *, block: str) -> str:
  """A string (possibly empty); `why` is the message otherwise. Returns it."""
  v = d[field]
  if not isinstance(v, str):
    fail(block, field, v, why)
  return v

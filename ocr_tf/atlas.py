"""The glyph atlas: file format, writer and validating loader.

An atlas holds prerasterized glyphs so that nothing needs font files at
training time. It is one ``.npz`` file (numpy arrays only, never pickles) with
these keys, for ``F`` fonts and the ``C`` characters of ``charset``:

=============  ==================  ==========================================
key            dtype, shape        meaning
=============  ==================  ==========================================
format_version int32 []            ``FORMAT_VERSION``
charset        unicode []          the characters, each once, in id order
font_names     unicode [F]         "Family Style" of each font
font_files     unicode [F]         file name each font was read from
pixel_size     int32 []            em size the glyphs were rasterized at (px)
baseline       int32 []            row of the baseline in every glyph cell
glyphs         uint8 [F, C, h, w]  coverage (0 = paper, 255 = full ink); the
                                   ink's left column is cell column 0 and the
                                   baseline is row ``baseline``
ink_boxes      int32 [F, C, 4]     (top, left, bottom, right) of the ink in
                                   the cell, bottom/right exclusive; left is 0;
                                   an empty box (top == bottom) for blank glyphs
bearings       float32 [F, C]      x of the ink's left edge relative to the pen
advances       float32 [F, C]      pen advance in px
present        bool [F, C]         False where the font has no real glyph
ascent         float32 [F]         font ascent above the baseline (px, > 0)
descent        float32 [F]         font descent below the baseline (px, >= 0)
=============  ==================  ==========================================

The builder in ``glyph_atlas/`` writes through :func:`save_atlas`, and
everything that reads an atlas goes through :func:`load_atlas`, so the two
cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import zipfile
from typing import Iterable

import numpy as np

from ocr_tf import assets
from ocr_tf.errors import atomic_write, one_line

FORMAT_VERSION = 1

DEFAULT_ATLAS_PATH = assets.DEFAULT_ATLAS


class AtlasError(ValueError):
  """A malformed, unreadable or unsuitable atlas; the message says what and where."""


@dataclasses.dataclass(frozen=True)
class Atlas:
  """An atlas in memory. See the module docstring for the meaning of each field."""

  charset: str
  font_names: tuple[str, ...]
  font_files: tuple[str, ...]
  pixel_size: int
  baseline: int
  glyphs: np.ndarray
  ink_boxes: np.ndarray
  bearings: np.ndarray
  advances: np.ndarray
  present: np.ndarray
  ascent: np.ndarray
  descent: np.ndarray

  @functools.cached_property
  def fingerprint(self) -> str:
    """SHA-1 of the whole content (fields and arrays): equal for equal atlases, whichever object holds them."""
    digest = hashlib.sha1()
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if isinstance(value, np.ndarray):
        digest.update(f"{field.name}{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).data)
      else:
        digest.update(f"{field.name}={value!r}".encode())
    return digest.hexdigest()

  @property
  def num_fonts(self) -> int:
    return len(self.font_names)

  @property
  def cell_shape(self) -> tuple[int, int]:
    return int(self.glyphs.shape[2]), int(self.glyphs.shape[3])

  def char_index(self, ch: str) -> int:
    return self.charset.index(ch)

  def subset(self, charset: str) -> tuple["Atlas", list[str]]:
    """Restricts the atlas to `charset` and to the fonts that cover all of it.

    Returns the smaller atlas and one line per font left out (naming the
    characters it lacks). Raises AtlasError when a character is in no font,
    or when no font covers the whole charset.
    """
    missing = [ch for ch in charset if ch not in self.charset]
    if missing:
      raise AtlasError(
          f"charset characters not in the atlas: {''.join(missing)!r} "
          f"(the atlas has {self.charset!r})")
    cols = np.array([self.charset.index(ch) for ch in charset], dtype=np.int64)
    present = self.present[:, cols]
    uncovered = [charset[j] for j in range(len(charset)) if not present[:, j].any()]
    if uncovered:
      raise AtlasError(f"no font in the atlas has a glyph for {''.join(uncovered)!r}")
    keep = present.all(axis=1)
    dropped = [
        f"{self.font_names[f]}: lacks {''.join(charset[j] for j in np.flatnonzero(~present[f]))!r}"
        for f in np.flatnonzero(~keep)
    ]
    if not keep.any():
      raise AtlasError(f"no single font in the atlas covers the whole charset {charset!r}")
    fonts = np.flatnonzero(keep)
    sub = Atlas(
        charset=charset,
        font_names=tuple(self.font_names[f] for f in fonts),
        font_files=tuple(self.font_files[f] for f in fonts),
        pixel_size=self.pixel_size,
        baseline=self.baseline,
        glyphs=self.glyphs[fonts][:, cols],
        ink_boxes=self.ink_boxes[fonts][:, cols],
        bearings=self.bearings[fonts][:, cols],
        advances=self.advances[fonts][:, cols],
        present=self.present[fonts][:, cols],
        ascent=self.ascent[fonts],
        descent=self.descent[fonts],
    )
    return sub, dropped


def inkless_twins(atlas: Atlas) -> tuple[Atlas, int]:
  """The atlas with an inkless twin of every character after its charset, and the twins' id offset.

  A twin has its character's advance, bearing and ink box but no pixels, so a
  sample whose labels point some letters at their twins keeps the very same
  layout, affine and quads while only the other letters leave ink: what the
  geometry tests and benchmarks/correctness.py measure each letter's ink with.
  """
  k = len(atlas.charset)
  twins = "".join(chr(0x100 + j) for j in range(k))
  if set(twins) & set(atlas.charset):
    twins = "".join(chr(0x10000 + j) for j in range(k))
  doubled = lambda a: np.concatenate([a, a], axis=1)
  return dataclasses.replace(
      atlas, charset=atlas.charset + twins, glyphs=np.concatenate([atlas.glyphs, np.zeros_like(atlas.glyphs)], axis=1),
      ink_boxes=doubled(atlas.ink_boxes), bearings=doubled(atlas.bearings), advances=doubled(atlas.advances),
      present=doubled(atlas.present)), k


_SPEC = {
    # key: (dtype kind check, ndim)
    "format_version": ("i", 0),
    "charset": ("U", 0),
    "font_names": ("U", 1),
    "font_files": ("U", 1),
    "pixel_size": ("i", 0),
    "baseline": ("i", 0),
    "glyphs": ("u1", 4),
    "ink_boxes": ("i", 3),
    "bearings": ("f", 2),
    "advances": ("f", 2),
    "present": ("b", 2),
    "ascent": ("f", 1),
    "descent": ("f", 1),
}


def _check_dtype(key: str, arr: np.ndarray, kind: str, where: str) -> None:
  ok = (arr.dtype == np.uint8) if kind == "u1" else (arr.dtype.kind == kind)
  if not ok:
    raise AtlasError(f"{where}: '{key}' has dtype {arr.dtype}, expected {'uint8' if kind == 'u1' else kind!r} kind")


def _check_keys_and_charset(arrays: dict, where: str) -> str:
  """Every array of the format with its dtype kind and rank, the version, the charset; returns the charset."""
  for key, (kind, ndim) in _SPEC.items():
    if key not in arrays:
      raise AtlasError(f"{where}: missing array '{key}' (has {sorted(arrays)})")
    arr = np.asarray(arrays[key])
    _check_dtype(key, arr, kind, where)
    if arr.ndim != ndim:
      raise AtlasError(f"{where}: '{key}' has shape {arr.shape}, expected {ndim} dimensions")
  version = int(arrays["format_version"])
  if version != FORMAT_VERSION:
    raise AtlasError(f"{where}: format_version {version}, this ocr_tf reads {FORMAT_VERSION}")
  charset = str(arrays["charset"])
  if not charset:
    raise AtlasError(f"{where}: empty charset")
  if len(set(charset)) != len(charset):
    dup = sorted({c for c in charset if charset.count(c) > 1})
    raise AtlasError(f"{where}: charset repeats characters {''.join(dup)!r}")
  return charset


def _check_shapes(arrays: dict, charset: str, where: str) -> None:
  """The glyphs' shape against the charset, every per-font and per-glyph array against the glyphs."""
  glyphs = np.asarray(arrays["glyphs"])
  num_fonts, num_chars, cell_h, cell_w = glyphs.shape
  if num_fonts < 1 or cell_h < 1 or cell_w < 1:
    raise AtlasError(f"{where}: glyphs has shape {glyphs.shape}: no fonts or empty cells")
  if num_chars != len(charset):
    raise AtlasError(f"{where}: glyphs has {num_chars} characters, charset has {len(charset)}")
  expect = {
      "font_names": (num_fonts,), "font_files": (num_fonts,),
      "ink_boxes": (num_fonts, num_chars, 4), "bearings": (num_fonts, num_chars),
      "advances": (num_fonts, num_chars), "present": (num_fonts, num_chars),
      "ascent": (num_fonts,), "descent": (num_fonts,),
  }
  for key, shape in expect.items():
    if tuple(np.shape(arrays[key])) != shape:
      raise AtlasError(f"{where}: '{key}' has shape {np.shape(arrays[key])}, expected {shape}")


def _check_metrics(arrays: dict, boxes: np.ndarray, where: str) -> None:
  """Pixel size, baseline, ink boxes inside their cells, finite and positive advances, ascent and descent."""
  cell_h, cell_w = np.shape(arrays["glyphs"])[2:]
  pixel_size, baseline = int(arrays["pixel_size"]), int(arrays["baseline"])
  if pixel_size < 4:
    raise AtlasError(f"{where}: pixel_size {pixel_size} is too small (need >= 4)")
  if not 0 <= baseline <= cell_h:
    raise AtlasError(f"{where}: baseline {baseline} outside the cell height {cell_h}")
  top, left, bottom, right = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
  if (np.any(top < 0) or np.any(bottom > cell_h) or np.any(top > bottom)
      or np.any(left != 0) or np.any(right < 0) or np.any(right > cell_w)):
    raise AtlasError(f"{where}: ink_boxes outside the {cell_h}x{cell_w} cell or not left-aligned")
  for key in ("bearings", "advances", "ascent", "descent"):
    if not np.all(np.isfinite(arrays[key])):
      raise AtlasError(f"{where}: '{key}' has non-finite values")
  present = np.asarray(arrays["present"]).astype(bool)
  if np.any(np.asarray(arrays["advances"], np.float32)[present] <= 0):
    raise AtlasError(f"{where}: a present glyph has a non-positive advance")
  if np.any(np.asarray(arrays["ascent"]) <= 0) or np.any(np.asarray(arrays["descent"]) < 0):
    raise AtlasError(f"{where}: ascent must be > 0 and descent >= 0")


def _check_ink(glyphs: np.ndarray, boxes: np.ndarray, where: str) -> None:
  """No ink outside the recorded box: it would be drawn where the boxes say there is none."""
  cell_h, cell_w = glyphs.shape[2:]
  top, bottom, right = boxes[..., 0], boxes[..., 2], boxes[..., 3]
  rows = np.arange(cell_h)[None, None, :, None]
  cols = np.arange(cell_w)[None, None, None, :]
  inside = ((rows >= top[..., None, None]) & (rows < bottom[..., None, None])
            & (cols < right[..., None, None]))
  if np.any(glyphs[~inside] != 0):
    raise AtlasError(f"{where}: glyph ink outside its recorded ink box")


def validate(arrays: dict, where: str = "atlas") -> Atlas:
  """Checks a dict of arrays against the format and returns an Atlas.

  Args:
    arrays: the arrays of an atlas file, by key (the module docstring's table).
    where: how messages name the atlas (e.g. 'atlas file PATH').

  Returns:
    The Atlas. Raises AtlasError naming `where` and the first problem.
  """
  charset = _check_keys_and_charset(arrays, where)
  _check_shapes(arrays, charset, where)
  boxes = np.asarray(arrays["ink_boxes"]).astype(np.int64)
  _check_metrics(arrays, boxes, where)
  glyphs = np.asarray(arrays["glyphs"])
  _check_ink(glyphs, boxes, where)
  return Atlas(
      charset=charset,
      font_names=tuple(str(s) for s in np.asarray(arrays["font_names"])),
      font_files=tuple(str(s) for s in np.asarray(arrays["font_files"])),
      pixel_size=int(arrays["pixel_size"]),
      baseline=int(arrays["baseline"]),
      glyphs=glyphs,
      ink_boxes=boxes.astype(np.int32),
      bearings=np.asarray(arrays["bearings"], np.float32),
      advances=np.asarray(arrays["advances"], np.float32),
      present=np.asarray(arrays["present"]).astype(bool),
      ascent=np.asarray(arrays["ascent"], np.float32),
      descent=np.asarray(arrays["descent"], np.float32),
  )


def save_atlas(path: str, atlas: Atlas) -> None:
  """Validates `atlas` and writes it to `path` (compressed .npz)."""
  arrays = to_arrays(atlas)
  validate(arrays, where=f"atlas to write to {path}")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  packed = io.BytesIO()
  np.savez_compressed(packed, **arrays)
  atomic_write(path, packed.getvalue())


def to_arrays(atlas: Atlas) -> dict:
  return {
      "format_version": np.int32(FORMAT_VERSION),
      "charset": np.array(atlas.charset),
      "font_names": np.array(list(atlas.font_names), dtype=str),
      "font_files": np.array(list(atlas.font_files), dtype=str),
      "pixel_size": np.int32(atlas.pixel_size),
      "baseline": np.int32(atlas.baseline),
      "glyphs": np.asarray(atlas.glyphs, np.uint8),
      "ink_boxes": np.asarray(atlas.ink_boxes, np.int32),
      "bearings": np.asarray(atlas.bearings, np.float32),
      "advances": np.asarray(atlas.advances, np.float32),
      "present": np.asarray(atlas.present, bool),
      "ascent": np.asarray(atlas.ascent, np.float32),
      "descent": np.asarray(atlas.descent, np.float32),
  }


# Atlas files are small (the default: 1.9 MB packed); a file claiming more is refused before unpacking.
MAX_UNPACKED_BYTES = 1 << 30


def load_atlas(path: str | None = None) -> Atlas:
  """Reads and validates an atlas file (the shipped default when `path` is empty).

  Never unpickles: object arrays are refused. Every problem is raised as an
  AtlasError whose message names the file and what is wrong.
  """
  path = path or DEFAULT_ATLAS_PATH
  where = f"atlas file {path}"
  if not os.path.exists(path):
    raise AtlasError(f"{where}: no such file")
  if os.path.isdir(path):
    raise AtlasError(f"{where}: is a folder, expected an .npz file")
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise AtlasError(f"{where}: cannot read ({e.strerror})") from None
  if not data.startswith(b"PK"):
    raise AtlasError(f"{where}: not an .npz (zip) file")
  try:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
      unpacked = sum(info.file_size for info in archive.infolist())
  except Exception as e:  # pylint: disable=broad-except  (untrusted bytes: any failure is a bad file)
    raise AtlasError(f"{where}: corrupt .npz ({type(e).__name__}: {one_line(e)})") from None
  if unpacked > MAX_UNPACKED_BYTES:
    raise AtlasError(f"{where}: its arrays would take {unpacked} bytes unpacked, more than the "
                     f"{MAX_UNPACKED_BYTES} an atlas may")
  try:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
      arrays = {key: npz[key] for key in npz.files}
  except ValueError as e:
    raise AtlasError(f"{where}: holds pickled objects or a malformed array ({one_line(e)})") from None
  except Exception as e:  # pylint: disable=broad-except  (untrusted bytes: any failure is a bad file)
    raise AtlasError(f"{where}: corrupt .npz ({type(e).__name__}: {one_line(e)})") from None
  return validate(arrays, where=where)


def describe(atlas: Atlas) -> Iterable[str]:
  """Human-readable summary lines."""
  yield (f"{atlas.num_fonts} fonts, {len(atlas.charset)} characters, "
         f"{atlas.pixel_size} px em, cell {atlas.cell_shape[0]}x{atlas.cell_shape[1]}, "
         f"baseline row {atlas.baseline}")
  missing = int((~atlas.present).sum())
  if missing:
    yield f"{missing} (font, character) pairs have no glyph"

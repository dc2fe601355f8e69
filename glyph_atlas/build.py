"""Rasterizes font files into one glyph atlas (see ``ocr_tf.atlas`` for the format).

Every font face is rendered with Pillow at ``pixel_size`` px per em, one
character at a time, with the pen on the baseline (anchor "ls"). A character
counts as present in a face only when

* the face's Unicode cmap maps it to a real glyph (not ``.notdef``, and for
  an ASCII letter or digit not a glyph named for another character, as symbol
  faces map 'A' to "Alpha"),
* its rendering differs from the face's ``.notdef`` rendering (the "tofu" box
  drawn for a codepoint the face surely lacks), and
* it leaves some ink, unless it is whitespace.

Missing (face, character) pairs are kept as ``present=False`` with an all-zero
bitmap. A face that lacks any of the 62 ASCII letters and digits is left out
altogether, whatever the charset (this drops most symbol, dingbat and
math-only faces; one whose cmap maps ASCII codepoints to unrelated glyphs with
uninformative names has to be left out with ``--exclude``), and so is a second
face with the same "Family Style" name as one already kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import string
import sys
import textwrap
from typing import Iterable, Sequence, TextIO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocr_tf.atlas import Atlas, save_atlas

DEFAULT_CHARSET = "".join(chr(c) for c in range(0x20, 0x7F))
DEFAULT_PIXEL_SIZE = 40
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
ALNUM = string.ascii_letters + string.digits
# Codepoints no text font maps (the last private-use points of plane 16);
# rendering one shows the face's .notdef glyph.
NOTDEF_PROBES = (0x10FFFD, 0x10FFFC, 0x10FFFB, 0xFFFFD)


class BuildError(Exception):
  """A problem that stops the build; the message is one line for the user."""


class UnreadableFont(Exception):
  """A font file Pillow or fontTools cannot read; it is skipped with a warning."""


@dataclasses.dataclass(frozen=True)
class FaceSource:
  """One face to read: a font file and the face's index inside it (TTC)."""

  path: str
  index: int = 0

  @property
  def label(self) -> str:
    """The file name, with the face index for a collection."""
    name = os.path.basename(self.path)
    return f"{name}#{self.index}" if self.path.lower().endswith(".ttc") else name


@dataclasses.dataclass
class Glyph:
  """One rendered character: the cropped ink and where it sits against the pen."""

  bitmap: np.ndarray  # uint8 [h, w], ink only (0x0 when blank)
  top: int  # ink top row relative to the baseline (negative above it)
  bearing: int  # ink left column relative to the pen
  advance: float
  present: bool


@dataclasses.dataclass
class Face:
  """A face rendered for the charset, with its missing characters and why."""

  source: FaceSource
  name: str
  glyphs: dict[str, Glyph]
  missing: dict[str, str]  # character -> reason
  ascent: float
  descent: float

  def num_present(self, charset: str) -> int:
    return sum(self.glyphs[ch].present for ch in charset)


@dataclasses.dataclass
class Report:
  """What the build kept, left out and why."""

  kept: list[Face] = dataclasses.field(default_factory=list)
  excluded: list[str] = dataclasses.field(default_factory=list)
  left_out: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (what, why)
  uncovered: str = ""
  cell_extremes: list[str] = dataclasses.field(default_factory=list)

  def lines(self, charset: str) -> Iterable[str]:
    """The report as text lines."""
    yield f"kept {len(self.kept)} faces, charset of {len(charset)} characters"
    yield from self.cell_extremes
    if self.uncovered:
      yield f"no kept face has a glyph for {self.uncovered!r} (present=False in every font)"
    yield ""
    yield f"left out ({len(self.left_out)}):"
    for what, why in self.left_out:
      yield f"  {what}: {why}"
    yield ""
    gaps = [face for face in self.kept if any(ch in face.missing for ch in charset)]
    yield f"kept faces lacking some characters ({len(gaps)}):"
    for face in gaps:
      lacks = "".join(ch for ch in charset if ch in face.missing)
      reasons = sorted({face.missing[ch] for ch in lacks})
      yield f"  {face.name} ({face.source.label}): lacks {lacks!r} ({'; '.join(reasons)})"
    yield ""
    yield f"excluded by --exclude ({len(self.excluded)} files):"
    if self.excluded:
      yield from textwrap.wrap(", ".join(self.excluded), width=100,
                               initial_indent="  ", subsequent_indent="  ",
                               break_on_hyphens=False)


def report_path(out: str) -> str:
  """FILE.npz -> FILE.report.txt, next to the atlas."""
  base = out[:-4] if out.lower().endswith(".npz") else out
  return base + ".report.txt"


def find_font_files(paths: Sequence[str],
                    exclude: Sequence[str] = ()) -> tuple[list[str], list[str]]:
  """Font files named by `paths` (files, or folders searched recursively).

  Returns (files, excluded): files in argument order, each folder's in sorted
  order, each file once; excluded holds the files a regex of `exclude`
  matched (searched anywhere in the path).
  """
  try:
    patterns = [re.compile(p) for p in exclude]
  except re.error as e:
    raise BuildError(f"bad --exclude regex {e.pattern!r}: {e}") from None
  found: list[str] = []
  for path in paths:
    if os.path.isdir(path):
      found.extend(_fonts_under(path))
    elif os.path.exists(path):
      found.append(path)
    else:
      raise BuildError(f"no such font file or folder: {path}")
  files, excluded, seen = [], [], set()
  for path in found:
    real = os.path.realpath(path)
    if real in seen:
      continue
    seen.add(real)
    if any(p.search(path) for p in patterns):
      excluded.append(path)
    else:
      files.append(path)
  return files, excluded


def _fonts_under(folder: str) -> list[str]:
  """Font files under `folder`, recursively, in sorted order."""
  out = []
  for root, dirs, names in os.walk(folder):
    dirs.sort()
    out.extend(os.path.join(root, n) for n in sorted(names) if n.lower().endswith(FONT_SUFFIXES))
  return out


def face_sources(files: Sequence[str]) -> list[FaceSource]:
  """One source per face: a .ttc collection gives one per face it holds."""
  sources = []
  for path in files:
    sources.extend(FaceSource(path, i) for i in range(_num_faces(path)))
  return sources


def _num_faces(path: str) -> int:
  """How many faces the file holds: the count in a TTC header, else 1."""
  try:
    with open(path, "rb") as f:
      head = f.read(12)
  except OSError:
    return 1  # reported as unreadable when it is opened
  if len(head) == 12 and head[:4] == b"ttcf":
    return max(1, int.from_bytes(head[8:12], "big"))
  return 1


def require_fonttools() -> None:
  """Raises BuildError when fontTools, needed to read cmaps, is not installed."""
  try:
    import fontTools.ttLib  # noqa: F401
  except ImportError:
    raise BuildError("glyph_atlas needs fontTools to read cmaps: pip install fonttools") from None


def read_cmap(source: FaceSource) -> dict[int, str]:
  """The face's Unicode cmap (codepoint -> glyph name); empty when it has none."""
  from fontTools.ttLib import TTFont
  with TTFont(source.path, fontNumber=source.index, lazy=True) as font:
    return dict(font.getBestCmap() or {})


def render(font: ImageFont.FreeTypeFont, ch: str) -> tuple[np.ndarray, int, int]:
  """Renders `ch` with the pen on the baseline; returns (ink, top, bearing).

  `ink` is the bitmap cropped to its nonzero pixels (0x0 when blank), `top`
  its first row relative to the baseline and `bearing` its first column
  relative to the pen.
  """
  left, top, right, bottom = font.getbbox(ch, anchor="ls")
  margin = max(4, font.size // 4)
  while True:
    width, height = right - left + 2 * margin, bottom - top + 2 * margin
    pen_x, pen_y = margin - left, margin - top
    image = Image.new("L", (width, height), 0)
    ImageDraw.Draw(image).text((pen_x, pen_y), ch, font=font, fill=255, anchor="ls")
    pixels = np.asarray(image, dtype=np.uint8)
    touches = (pixels[0].any() or pixels[-1].any() or pixels[:, 0].any() or pixels[:, -1].any())
    if not touches or margin > 8 * font.size:
      break
    margin *= 2
  rows = np.flatnonzero(pixels.any(axis=1))
  cols = np.flatnonzero(pixels.any(axis=0))
  if rows.size == 0:
    return np.zeros((0, 0), np.uint8), 0, 0
  ink = pixels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy()
  return ink, int(rows[0]) - pen_y, int(cols[0]) - pen_x


def _notdef_ink(font: ImageFont.FreeTypeFont, cmap: dict[int, str]) -> np.ndarray | None:
  """The .notdef ("tofu") rendering, or None when it is blank or cannot be probed."""
  for cp in NOTDEF_PROBES:
    if cp not in cmap:
      ink, _, _ = render(font, chr(cp))
      return ink if ink.size else None
  return None


def _names_other_char(ch: str, glyph_name: str) -> bool:
  """True when an ASCII letter or digit maps to a glyph named for another character.

  Symbol faces map A-Z to Greek or math glyphs ('A' -> "Alpha"). Only ASCII
  letters and digits are checked: text faces legitimately share one glyph
  between, say, space and no-break space.
  """
  if ch not in ALNUM:
    return False
  from fontTools import agl
  named = agl.toUnicode(glyph_name)
  return bool(named) and named != ch


def _missing_reason(ch: str, cmap: dict[int, str], ink: np.ndarray, notdef: np.ndarray | None,
                    advance: float) -> str | None:
  glyph_name = cmap.get(ord(ch), ".notdef")
  if glyph_name == ".notdef":
    return "not in cmap"
  if _names_other_char(ch, glyph_name):
    return "mapped to a glyph named for another character"
  if notdef is not None and ink.shape == notdef.shape and np.array_equal(ink, notdef):
    return "renders as .notdef"
  if ink.size == 0 and not ch.isspace():
    return "renders blank"
  if advance <= 0:
    return "no advance"
  return None


def load_face(source: FaceSource, chars: str, pixel_size: int) -> Face:
  """Opens and renders one face for `chars`; raises UnreadableFont for a bad file."""
  try:
    font = ImageFont.truetype(source.path, size=pixel_size, index=source.index,
                              layout_engine=ImageFont.Layout.BASIC)
    cmap = read_cmap(source)
  except Exception as e:  # Pillow and fontTools raise many kinds on bad files
    raise UnreadableFont(f"unreadable ({type(e).__name__}: {e})") from None
  family, style = font.getname()
  name = f"{family} {style}" if style else str(family)
  ascent, descent = font.getmetrics()
  notdef = _notdef_ink(font, cmap)
  glyphs, missing = {}, {}
  for ch in chars:
    ink, top, bearing = render(font, ch)
    advance = float(font.getlength(ch))
    reason = _missing_reason(ch, cmap, ink, notdef, advance)
    if reason:
      missing[ch] = reason
      glyphs[ch] = Glyph(np.zeros((0, 0), np.uint8), 0, 0, 0.0, False)
    else:
      glyphs[ch] = Glyph(ink, top, bearing, advance, True)
  return Face(source, name, glyphs, missing, float(ascent), float(descent))


def _why_unusable(face: Face) -> str | None:
  lacks = "".join(ch for ch in ALNUM if ch in face.missing)
  if lacks:
    reasons = "; ".join(sorted({face.missing[ch] for ch in lacks}))
    return f"lacks ASCII letters/digits {lacks!r} ({reasons})"
  if face.ascent <= 0 or face.descent < 0:
    return f"unusable metrics (ascent {face.ascent:g}, descent {face.descent:g})"
  return None


def _where(source: FaceSource) -> str:
  return f"{source.path}#{source.index}" if source.path.lower().endswith(".ttc") else source.path


def collect_faces(sources: Sequence[FaceSource], charset: str, pixel_size: int,
                  report: Report, log: TextIO) -> None:
  """Renders every source, keeping the usable ones in `report.kept`."""
  chars = charset + "".join(ch for ch in ALNUM if ch not in charset)
  names: dict[str, FaceSource] = {}  # kept face name -> where it came from
  total = len(sources)
  for i, source in enumerate(sources, 1):
    prefix = f"[{i}/{total}]"
    try:
      face = load_face(source, chars, pixel_size)
    except UnreadableFont as e:
      print(f"{prefix} {source.label}: warning: skipped, {e}", file=log, flush=True)
      report.left_out.append((_where(source), str(e)))
      continue
    count = f"{face.num_present(charset)} glyphs"
    why = _why_unusable(face)
    if why is None and face.name in names:
      why = f"duplicate of the same face in {names[face.name].path}"
    if why:
      print(f"{prefix} {face.name}: {count}, left out ({why})", file=log, flush=True)
      report.left_out.append((f"{face.name} ({_where(source)})", why))
      continue
    names[face.name] = source
    report.kept.append(face)
    print(f"{prefix} {face.name}: {count}", file=log, flush=True)


def _extremes(faces: Sequence[Face], charset: str) -> list[tuple[int, int, int, str, str]]:
  """(above, below, width, face name, char) of every present glyph with ink."""
  out = []
  for face in faces:
    for ch in charset:
      g = face.glyphs[ch]
      if g.present and g.bitmap.size:
        h, w = g.bitmap.shape
        out.append((-g.top, g.top + h, w, face.name, ch))
  return out


def _describe_extremes(ext: list[tuple[int, int, int, str, str]], top_n: int = 3) -> list[str]:
  lines = []
  for label, k in (("rows above the baseline", 0), ("rows below the baseline", 1), ("columns", 2)):
    best = sorted(ext, key=lambda e: (-e[k], e[3], e[4]))[:top_n]
    lines.append(f"most {label}: " + ", ".join(f"{e[k]} ({e[3]} {e[4]!r})" for e in best))
  return lines


def assemble(faces: Sequence[Face], charset: str, pixel_size: int) -> Atlas:
  """Places every face's glyphs into the shared cells of one Atlas."""
  ext = _extremes(faces, charset)
  baseline = max([0] + [e[0] for e in ext])
  cell_h = max(1, baseline + max([0] + [e[1] for e in ext]))
  cell_w = max([1] + [e[2] for e in ext])
  shape = (len(faces), len(charset))
  glyphs = np.zeros(shape + (cell_h, cell_w), np.uint8)
  boxes = np.zeros(shape + (4,), np.int32)
  boxes[..., 0] = boxes[..., 2] = baseline
  bearings = np.zeros(shape, np.float32)
  advances = np.zeros(shape, np.float32)
  present = np.zeros(shape, bool)
  for f, face in enumerate(faces):
    for c, ch in enumerate(charset):
      g = face.glyphs[ch]
      if not g.present:
        continue
      present[f, c] = True
      bearings[f, c], advances[f, c] = g.bearing, g.advance
      if g.bitmap.size:
        h, w = g.bitmap.shape
        row = baseline + g.top
        glyphs[f, c, row:row + h, :w] = g.bitmap
        boxes[f, c] = (row, 0, row + h, w)
  return Atlas(
      charset=charset,
      font_names=tuple(face.name for face in faces),
      font_files=tuple(face.source.label for face in faces),
      pixel_size=pixel_size,
      baseline=baseline,
      glyphs=glyphs,
      ink_boxes=boxes,
      bearings=bearings,
      advances=advances,
      present=present,
      ascent=np.array([face.ascent for face in faces], np.float32),
      descent=np.array([face.descent for face in faces], np.float32),
  )


def check_charset(charset: str) -> None:
  """Raises BuildError for an empty charset or one that repeats characters."""
  if not charset:
    raise BuildError("empty --charset")
  dup = sorted({ch for ch in charset if charset.count(ch) > 1})
  if dup:
    raise BuildError(f"--charset repeats characters {''.join(dup)!r}")


def build_atlas(paths: Sequence[str], charset: str = DEFAULT_CHARSET,
                pixel_size: int = DEFAULT_PIXEL_SIZE, exclude: Sequence[str] = (),
                log: TextIO = sys.stderr) -> tuple[Atlas, Report]:
  """Renders the fonts under `paths` into an Atlas; progress goes to `log`.

  Raises BuildError when no font is usable or no kept font covers any
  character of the charset.
  """
  check_charset(charset)
  require_fonttools()
  if pixel_size < 4:
    raise BuildError(f"--pixel-size {pixel_size} is too small (need >= 4)")
  files, excluded = find_font_files(paths, exclude)
  report = Report(excluded=[os.path.join(os.path.basename(os.path.dirname(p)), os.path.basename(p))
                            for p in excluded])
  sources = face_sources(files)
  if not sources:
    raise BuildError(f"no font files (.ttf, .otf, .ttc) found in {' '.join(paths)}")
  collect_faces(sources, charset, pixel_size, report, log)
  if not report.kept:
    raise BuildError(
        f"none of the {len(sources)} faces is usable (each must have all of A-Z a-z 0-9)")
  report.uncovered = "".join(
      ch for ch in charset if not any(face.glyphs[ch].present for face in report.kept))
  if report.uncovered == charset:
    raise BuildError(f"no font covers the charset {charset!r}")
  if report.uncovered:
    print(f"warning: no kept face has a glyph for {report.uncovered!r}", file=log, flush=True)
  report.cell_extremes = _describe_extremes(_extremes(report.kept, charset))
  return assemble(report.kept, charset, pixel_size), report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog="python -m glyph_atlas",
      description="Rasterize font files into a glyph atlas (.npz) for ocr_tf.")
  parser.add_argument("--fonts", nargs="+", required=True, metavar="PATH",
                      help="font files (.ttf/.otf/.ttc) or folders searched recursively")
  parser.add_argument("--out", required=True, metavar="FILE.npz", help="atlas file to write")
  parser.add_argument("--charset", default=DEFAULT_CHARSET, metavar="STR",
                      help="characters to render (default: printable ASCII, space through '~')")
  parser.add_argument("--pixel-size", type=int, default=DEFAULT_PIXEL_SIZE, metavar="PX",
                      help=f"em size in pixels (default {DEFAULT_PIXEL_SIZE})")
  parser.add_argument("--exclude", action="append", default=[], metavar="REGEX",
                      help="leave out font files whose path matches REGEX (repeatable)")
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  """The command line: builds, writes FILE.npz and FILE.report.txt; 2 on errors."""
  args = parse_args(argv)
  try:
    atlas, report = build_atlas(args.fonts, args.charset, args.pixel_size, args.exclude)
  except BuildError as e:
    print(f"glyph_atlas: error: {e}", file=sys.stderr)
    return 2
  text = "\n".join(report.lines(atlas.charset)) + "\n"
  try:
    save_atlas(args.out, atlas)
    with open(report_path(args.out), "w", encoding="utf-8") as f:
      f.write(text)
  except OSError as e:
    where = f" ({e.filename})" if e.filename else ""
    print(f"glyph_atlas: error: cannot write {args.out}: {e.strerror}{where}", file=sys.stderr)
    return 2
  sys.stdout.write(text)
  size = os.path.getsize(args.out)
  print(f"wrote {args.out} ({size / 1e6:.2f} MB): {atlas.num_fonts} fonts, cell "
        f"{atlas.cell_shape[0]}x{atlas.cell_shape[1]}, baseline row {atlas.baseline}; "
        f"report in {report_path(args.out)}", file=sys.stderr)
  return 0

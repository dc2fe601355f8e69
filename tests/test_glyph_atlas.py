"""The atlas builder, on fonts from Debian's fonts-dejavu-core package."""

from __future__ import annotations

import io
import os
import shutil
import string
import subprocess
import sys

import pytest

DEJAVU = "/usr/share/fonts/truetype/dejavu"
SANS = os.path.join(DEJAVU, "DejaVuSans.ttf")
SERIF_BOLD = os.path.join(DEJAVU, "DejaVuSerif-Bold.ttf")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    not (os.path.exists(SANS) and os.path.exists(SERIF_BOLD)),
    reason=f"needs DejaVuSans.ttf and DejaVuSerif-Bold.ttf in {DEJAVU} "
           "(Debian package fonts-dejavu-core)")

from fontTools import subset  # noqa: E402
from fontTools.ttLib import TTCollection, TTFont  # noqa: E402

from glyph_atlas import build  # noqa: E402
from ocr_tf.atlas import load_atlas  # noqa: E402

ALNUM = string.ascii_letters + string.digits
CHARSET = "xpHg0.,' |" + "\u4e2d"  # the last one is a CJK character DejaVu lacks


def run_cli(*args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.run([sys.executable, "-m", "glyph_atlas", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """The CLI run on two DejaVu faces: (process, atlas path, loaded atlas)."""
  out = str(tmp_path_factory.mktemp("atlas") / "two.npz")
  proc = run_cli("--fonts", SANS, SERIF_BOLD, "--out", out, "--charset", CHARSET)
  assert proc.returncode == 0, proc.stderr
  return proc, out, load_atlas(out)


def build_quiet(paths, charset=CHARSET, **kwargs):
  log = io.StringIO()
  atlas, report = build.build_atlas(paths, charset=charset, log=log, **kwargs)
  return atlas, report, log.getvalue()


def test_cli_writes_a_loadable_atlas(built):
  _, _, atlas = built
  assert atlas.charset == CHARSET
  assert atlas.font_names == ("DejaVu Sans Book", "DejaVu Serif Bold")
  assert atlas.font_files == ("DejaVuSans.ttf", "DejaVuSerif-Bold.ttf")
  assert atlas.pixel_size == build.DEFAULT_PIXEL_SIZE
  h, w = atlas.cell_shape
  assert atlas.glyphs.shape == (2, len(CHARSET), h, w)
  assert atlas.ink_boxes.shape == (2, len(CHARSET), 4)
  assert 0 < atlas.baseline < h
  assert (atlas.ascent > 0).all() and (atlas.descent > 0).all()


def test_cli_progress_and_report(built):
  proc, out, _ = built
  assert "[1/2] DejaVu Sans Book: 10 glyphs" in proc.stderr
  assert "[2/2] DejaVu Serif Bold: 10 glyphs" in proc.stderr
  report_file = out[:-len(".npz")] + ".report.txt"
  with open(report_file, encoding="utf-8") as f:
    report = f.read()
  assert proc.stdout == report
  assert report.startswith("kept 2 faces, charset of 11 characters")
  assert "no kept face has a glyph for '\u4e2d'" in report
  assert "DejaVu Sans Book (DejaVuSans.ttf): lacks '\u4e2d' (not in cmap)" in report


def test_every_present_glyph_is_inked_within_its_box(built):
  _, _, atlas = built
  for f in range(atlas.num_fonts):
    for c, ch in enumerate(atlas.charset):
      top, left, bottom, right = atlas.ink_boxes[f, c]
      glyph = atlas.glyphs[f, c]
      if ch == " " or not atlas.present[f, c]:
        assert not glyph.any() and top == bottom, (f, ch)
        continue
      assert left == 0 and top < bottom and right > 0, (f, ch)
      assert not glyph[:top].any() and not glyph[bottom:].any() and not glyph[:, right:].any()
      # the box is tight: ink touches all four of its sides
      inner = glyph[top:bottom, :right]
      sides = (inner[0], inner[-1], inner[:, 0], inner[:, -1])
      assert all(side.any() for side in sides), (f, ch)
      assert atlas.advances[f, c] > 0


def test_baseline_is_shared(built):
  _, _, atlas = built
  x, p, h, g = (atlas.char_index(ch) for ch in "xpHg")
  for f in range(atlas.num_fonts):
    assert abs(atlas.ink_boxes[f, x, 2] - atlas.baseline) <= 1  # 'x' sits on the baseline
    assert abs(atlas.ink_boxes[f, h, 2] - atlas.baseline) <= 1
    assert atlas.ink_boxes[f, p, 2] > atlas.baseline + atlas.pixel_size // 8  # 'p' descends
    assert atlas.ink_boxes[f, g, 2] > atlas.baseline + atlas.pixel_size // 8
    assert atlas.ink_boxes[f, h, 0] < atlas.ink_boxes[f, x, 0]  # 'H' is taller than 'x'
  # the tallest and the deepest glyph set the cell
  assert atlas.ink_boxes[..., 0][atlas.present].min() == 0
  assert atlas.ink_boxes[..., 2][atlas.present].max() == atlas.cell_shape[0]


def test_missing_char_is_absent_not_tofu(built):
  _, _, atlas = built
  c = atlas.char_index("\u4e2d")
  assert not atlas.present[:, c].any()
  assert not atlas.glyphs[:, c].any()
  assert (atlas.advances[:, c] == 0).all()
  space = atlas.char_index(" ")
  assert atlas.present[:, space].all() and (atlas.advances[:, space] > 0).all()


def test_tofu_is_caught_even_when_the_cmap_claims_the_char(monkeypatch):
  claims_all = {ord(ch): f"uni{ord(ch):04X}" for ch in CHARSET + ALNUM}
  monkeypatch.setattr(build, "read_cmap", lambda source: claims_all)
  atlas, report, _ = build_quiet([SANS])
  assert report.kept[0].missing == {"\u4e2d": "renders as .notdef"}
  assert not atlas.present[0, atlas.char_index("\u4e2d")]


def test_blank_non_space_char_is_missing():
  atlas, report, _ = build_quiet([SANS], charset="a \u200b")  # zero width space: no ink
  assert report.kept[0].missing == {"\u200b": "renders blank"}
  assert atlas.present[0].tolist() == [True, True, False]


def test_uncovered_charset_is_an_error_with_exit_code_2(tmp_path):
  out = str(tmp_path / "cjk.npz")
  proc = run_cli("--fonts", SANS, "--out", out, "--charset", "\u4e2d\u6587")
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert lines[-1].startswith("glyph_atlas: error: no font covers the charset")
  assert "Traceback" not in proc.stderr
  assert not os.path.exists(out)


@pytest.mark.parametrize("args, message", [
    (["--fonts", "/nonexistent/fonts"], "no such font file or folder"),
    (["--fonts", SANS, "--charset", "abca"], "repeats characters 'a'"),
    (["--fonts", SANS, "--pixel-size", "2"], "too small"),
    (["--fonts", SANS, "--exclude", "("], "bad --exclude regex"),
    (["--fonts", SANS, "--exclude", "DejaVu"], "no font files"),
])
def test_cli_usage_errors(tmp_path, args, message):
  proc = run_cli(*args, "--out", str(tmp_path / "a.npz"))
  assert proc.returncode == 2
  assert message in proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1


def test_unwritable_output_is_an_error(tmp_path):
  (tmp_path / "a_file").write_text("")
  proc = run_cli("--fonts", SANS, "--out", str(tmp_path / "a_file" / "atlas.npz"))
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith("glyph_atlas: error: cannot write")


def _font_without(tmp_path, name: str, drop: str) -> str:
  """DejaVu Sans cut down to printable ASCII less `drop`, saved as tmp_path/name."""
  options = subset.Options()
  options.notdef_outline = True
  options.drop_tables.append("FFTM")
  sub = subset.Subsetter(options)
  keep = "".join(ch for ch in string.printable if ch not in drop)
  sub.populate(unicodes=[ord(ch) for ch in keep])
  font = TTFont(SANS)
  sub.subset(font)
  path = str(tmp_path / name)
  font.save(path)
  return path


def _font_with_symbol_mapping(tmp_path) -> str:
  """DejaVu Serif Bold with 'A' mapped to the Greek Alpha glyph, as symbol faces do."""
  font = TTFont(SERIF_BOLD)
  for table in font["cmap"].tables:
    if table.isUnicode() and ord("A") in table.cmap:
      table.cmap[ord("A")] = "Alpha"
  path = str(tmp_path / "symbolic.ttf")
  font.save(path)
  return path


def test_folder_scan_leaves_out_unusable_fonts(tmp_path):
  fonts = tmp_path / "fonts"
  (fonts / "nested").mkdir(parents=True)
  shutil.copy(SANS, fonts / "a_sans.ttf")
  shutil.copy(SANS, fonts / "nested" / "copy_of_sans.ttf")
  _font_without(fonts, "b_no_q.ttf", drop="q")
  _font_with_symbol_mapping(fonts)
  (fonts / "c_broken.ttf").write_bytes(b"\x00\x01\x00\x00 not really a font")
  (fonts / "readme.txt").write_text("not a font file")
  atlas, report, log = build_quiet([str(fonts)])
  assert atlas.font_names == ("DejaVu Sans Book",)
  assert "[1/5] DejaVu Sans Book: 10 glyphs" in log
  assert "c_broken.ttf: warning: skipped, unreadable" in log
  why = dict(report.left_out)
  assert why[f"DejaVu Sans Book ({fonts / 'b_no_q.ttf'})"].startswith(
      "lacks ASCII letters/digits 'q'")
  assert why[f"DejaVu Sans Book ({fonts / 'nested' / 'copy_of_sans.ttf'})"].startswith(
      "duplicate of the same face in")
  assert "mapped to a glyph named for another character" in why[
      f"DejaVu Serif Bold ({fonts / 'symbolic.ttf'})"]
  assert any(what.endswith("c_broken.ttf") for what in why)
  lines = list(report.lines(atlas.charset))
  assert "left out (4):" in lines


def test_exclude_and_collections(tmp_path):
  small = _font_without(tmp_path, "small.ttf", drop="")
  collection = TTCollection()
  collection.fonts = [TTFont(small), TTFont(_font_with_symbol_mapping(tmp_path))]
  ttc = str(tmp_path / "pair.ttc")
  collection.save(ttc)
  atlas, report, log = build_quiet([ttc, SERIF_BOLD], exclude=["Serif"])
  assert atlas.font_names == ("DejaVu Sans Book",)
  assert atlas.font_files == ("pair.ttc#0",)
  assert "[2/2] DejaVu Serif Bold" in log and "[1/2] DejaVu Sans Book" in log
  assert report.excluded == ["dejavu/DejaVuSerif-Bold.ttf"]


def test_cell_holds_the_largest_glyph():
  atlas, _, _ = build_quiet([SANS, SERIF_BOLD], charset="W|")
  h, w = atlas.cell_shape
  assert w == atlas.ink_boxes[..., 3].max()
  assert atlas.ink_boxes[:, atlas.char_index("W"), 3].max() == w  # bold serif W is the widest
  assert atlas.ink_boxes[..., 0].min() == 0 and atlas.ink_boxes[..., 2].max() == h

"""The atlas loader's validation, on small atlases made with numpy (no fonts)."""

from __future__ import annotations

import dataclasses
import os
import string
import zipfile

import numpy as np
import pytest

from ocr_tf.atlas import (DEFAULT_ATLAS_PATH, Atlas, AtlasError, describe, load_atlas, save_atlas,
                          to_arrays)

CELL_H, CELL_W, BASELINE = 8, 6, 6


def make_atlas(charset: str = "ab ", num_fonts: int = 2,
               lacking: dict[int, str] | None = None) -> Atlas:
  """A tiny valid atlas: each inked glyph is a block standing on the baseline.

  `lacking` maps a font index to the characters it has no glyph for.
  """
  lacking = lacking or {}
  shape = (num_fonts, len(charset))
  glyphs = np.zeros(shape + (CELL_H, CELL_W), np.uint8)
  boxes = np.zeros(shape + (4,), np.int32)
  boxes[..., 0] = boxes[..., 2] = BASELINE
  present = np.ones(shape, bool)
  advances = np.full(shape, 5.0, np.float32)
  for f in range(num_fonts):
    for c, ch in enumerate(charset):
      if ch in lacking.get(f, ""):
        present[f, c] = False
        advances[f, c] = 0.0
      elif not ch.isspace():
        top, width = 2 + c % 3, 2 + f
        glyphs[f, c, top:BASELINE, :width] = 100 + 20 * f + c
        boxes[f, c] = (top, 0, BASELINE, width)
  return Atlas(
      charset=charset,
      font_names=tuple(f"Test Face {f}" for f in range(num_fonts)),
      font_files=tuple(f"face{f}.ttf" for f in range(num_fonts)),
      pixel_size=8,
      baseline=BASELINE,
      glyphs=glyphs,
      ink_boxes=boxes,
      bearings=np.ones(shape, np.float32),
      advances=advances,
      present=present,
      ascent=np.full(num_fonts, 6.0, np.float32),
      descent=np.full(num_fonts, 2.0, np.float32),
  )


def write_arrays(path: str, **changes) -> str:
  """Writes make_atlas()'s arrays with `changes` applied, bypassing save_atlas's checks."""
  arrays = to_arrays(make_atlas())
  arrays.update(changes)
  with open(path, "wb") as f:
    np.savez_compressed(f, **arrays)
  return path


def assert_same(a: Atlas, b: Atlas) -> None:
  for field in dataclasses.fields(Atlas):
    x, y = getattr(a, field.name), getattr(b, field.name)
    if isinstance(x, np.ndarray):
      assert x.dtype == y.dtype, field.name
      np.testing.assert_array_equal(x, y, err_msg=field.name)
    else:
      assert x == y, field.name


def test_round_trip(tmp_path):
  atlas = make_atlas(lacking={1: "b"})
  path = str(tmp_path / "sub" / "atlas.npz")
  save_atlas(path, atlas)
  loaded = load_atlas(path)
  assert_same(atlas, loaded)
  assert loaded.num_fonts == 2 and loaded.cell_shape == (CELL_H, CELL_W)
  assert not os.path.exists(path + ".tmp")


def test_save_refuses_an_invalid_atlas(tmp_path):
  atlas = make_atlas()
  atlas.glyphs[0, 0, 0, CELL_W - 1] = 9
  path = str(tmp_path / "atlas.npz")
  with pytest.raises(AtlasError, match="outside its recorded ink box"):
    save_atlas(path, atlas)
  assert not os.path.exists(path)


def test_missing_file(tmp_path):
  path = str(tmp_path / "nope.npz")
  with pytest.raises(AtlasError, match="no such file") as err:
    load_atlas(path)
  assert path in str(err.value)


def test_folder(tmp_path):
  with pytest.raises(AtlasError, match="is a folder"):
    load_atlas(str(tmp_path))


def test_not_a_zip_file(tmp_path):
  path = tmp_path / "atlas.npz"
  path.write_text("glyphs, but as text\n")
  with pytest.raises(AtlasError, match=r"not an \.npz"):
    load_atlas(str(path))


def test_truncated_file(tmp_path):
  path = str(tmp_path / "atlas.npz")
  save_atlas(path, make_atlas())
  with open(path, "rb") as f:
    data = f.read()
  for cut in (len(data) // 2, len(data) - 10, 30):
    with open(path, "wb") as f:
      f.write(data[:cut])
    with pytest.raises(AtlasError, match="corrupt|malformed"):
      load_atlas(path)


def test_corrupt_compressed_data(tmp_path):
  path = str(tmp_path / "atlas.npz")
  save_atlas(path, make_atlas())
  with zipfile.ZipFile(path) as z:
    info = z.getinfo("glyphs.npy")
  data = bytearray(open(path, "rb").read())
  start = info.header_offset + 30 + len(info.filename) + 25  # inside the deflate stream
  for i in range(start, start + 20):
    data[i] ^= 0xFF
  with open(path, "wb") as f:
    f.write(data)
  with pytest.raises(AtlasError, match="corrupt"):
    load_atlas(path)


class _Trap:
  """Unpickling this creates a file: proof that the loader unpickled it."""

  def __init__(self, marker: str):
    self.marker = marker

  def __reduce__(self):
    return (open, (self.marker, "w"))


def test_pickled_object_array_is_refused_unopened(tmp_path):
  marker = str(tmp_path / "unpickled")
  names = np.empty(2, dtype=object)
  names[:] = [_Trap(marker), "Test Face 1"]
  path = str(tmp_path / "atlas.npz")
  arrays = to_arrays(make_atlas())
  arrays["font_names"] = names
  np.savez(path, **arrays)  # np.savez pickles object arrays
  with pytest.raises(AtlasError, match="pickled"):
    load_atlas(path)
  assert not os.path.exists(marker)


def test_wrong_dtype(tmp_path):
  glyphs = to_arrays(make_atlas())["glyphs"].astype(np.float32)
  path = write_arrays(str(tmp_path / "atlas.npz"), glyphs=glyphs)
  with pytest.raises(AtlasError, match="'glyphs' has dtype float32"):
    load_atlas(path)


def test_missing_array(tmp_path):
  arrays = to_arrays(make_atlas())
  del arrays["advances"]
  path = str(tmp_path / "atlas.npz")
  np.savez_compressed(path, **arrays)
  with pytest.raises(AtlasError, match="missing array 'advances'"):
    load_atlas(path)


def test_other_format_version(tmp_path):
  path = write_arrays(str(tmp_path / "atlas.npz"), format_version=np.int32(99))
  with pytest.raises(AtlasError, match="format_version 99"):
    load_atlas(path)


@pytest.mark.parametrize("key, value, message", [
    ("ink_boxes", np.zeros((3, 3, 4), np.int32), "'ink_boxes' has shape"),
    ("font_names", np.array(["only one"]), "'font_names' has shape"),
    ("present", np.ones((2, 2), bool), "'present' has shape"),
    ("charset", np.array("abcd"), "glyphs has 3 characters, charset has 4"),
])
def test_inconsistent_shapes(tmp_path, key, value, message):
  path = write_arrays(str(tmp_path / "atlas.npz"), **{key: value})
  with pytest.raises(AtlasError, match=message):
    load_atlas(path)


def test_ink_outside_box(tmp_path):
  glyphs = to_arrays(make_atlas())["glyphs"].copy()
  glyphs[1, 0, 0, 0] = 1  # above the box of 'a'
  path = write_arrays(str(tmp_path / "atlas.npz"), glyphs=glyphs)
  with pytest.raises(AtlasError, match="outside its recorded ink box"):
    load_atlas(path)


def test_box_outside_cell(tmp_path):
  boxes = to_arrays(make_atlas())["ink_boxes"].copy()
  boxes[0, 0] = (0, 0, CELL_H + 1, 2)
  path = write_arrays(str(tmp_path / "atlas.npz"), ink_boxes=boxes)
  with pytest.raises(AtlasError, match="ink_boxes outside"):
    load_atlas(path)


def test_charset_with_duplicates(tmp_path):
  path = write_arrays(str(tmp_path / "atlas.npz"), charset=np.array("aba"))
  with pytest.raises(AtlasError, match="repeats characters 'a'"):
    load_atlas(path)


def test_present_glyph_needs_an_advance(tmp_path):
  advances = to_arrays(make_atlas())["advances"].copy()
  advances[0, 1] = 0
  path = write_arrays(str(tmp_path / "atlas.npz"), advances=advances)
  with pytest.raises(AtlasError, match="non-positive advance"):
    load_atlas(path)


def test_subset_drops_a_font_lacking_a_char():
  atlas = make_atlas(charset="abc ", num_fonts=3, lacking={1: "b"})
  sub, dropped = atlas.subset("ba")
  assert sub.charset == "ba"
  assert sub.font_names == ("Test Face 0", "Test Face 2")
  assert sub.glyphs.shape == (2, 2, CELL_H, CELL_W)
  np.testing.assert_array_equal(sub.glyphs[1, 0], atlas.glyphs[2, 1])
  np.testing.assert_array_equal(sub.ink_boxes[0, 1], atlas.ink_boxes[0, 0])
  assert dropped == ["Test Face 1: lacks 'b'"]
  sub, dropped = atlas.subset("ac")
  assert sub.num_fonts == 3 and dropped == []


def test_subset_errors():
  atlas = make_atlas(charset="abc", num_fonts=2, lacking={0: "c", 1: "bc"})
  with pytest.raises(AtlasError, match="not in the atlas: 'z'"):
    atlas.subset("az")
  with pytest.raises(AtlasError, match="no font in the atlas has a glyph for 'c'"):
    atlas.subset("ac")
  with pytest.raises(AtlasError, match="no single font"):
    make_atlas(charset="ab", lacking={0: "a", 1: "b"}).subset("ab")


def test_describe():
  lines = list(describe(make_atlas(lacking={0: "a"})))
  assert lines[0].startswith("2 fonts, 3 characters, 8 px em, cell 8x6")
  assert lines[1] == "1 (font, character) pairs have no glyph"


def test_shipped_default_atlas():
  if not os.path.exists(DEFAULT_ATLAS_PATH):
    pytest.fail(f"the default atlas is not shipped at {DEFAULT_ATLAS_PATH}")
  atlas = load_atlas()
  assert atlas.charset == "".join(chr(c) for c in range(0x20, 0x7F))
  assert atlas.num_fonts >= 40
  assert len(set(atlas.font_names)) == atlas.num_fonts
  sub, dropped = atlas.subset(string.ascii_letters + string.digits)
  assert sub.num_fonts == atlas.num_fonts and dropped == []
  assert os.path.getsize(DEFAULT_ATLAS_PATH) < 5_000_000


def test_fuzzed_atlas_files_only_ever_raise_atlas_error(tmp_path):
  """Atlas files from untrusted sources: 300 random mutations (bit flips, truncation, spliced bytes,
  arrays of other shapes and dtypes) load or raise AtlasError with one line; nothing else escapes,
  nothing is unpickled."""
  import random
  rng = random.Random(0)
  good = str(tmp_path / "good.npz")
  save_atlas(good, make_atlas())
  data = open(good, "rb").read()
  base = to_arrays(make_atlas())
  outcomes = {"loaded": 0, "refused": 0}
  for k in range(300):
    path = str(tmp_path / f"fuzz_{k}.npz")
    kind = k % 4
    if kind == 0:  # flipped bits
      blob = bytearray(data)
      for _ in range(rng.randint(1, 16)):
        i = rng.randrange(len(blob))
        blob[i] ^= 1 << rng.randrange(8)
      open(path, "wb").write(bytes(blob))
    elif kind == 1:  # truncated
      open(path, "wb").write(data[:rng.randrange(len(data))])
    elif kind == 2:  # random bytes spliced in
      at = rng.randrange(len(data))
      open(path, "wb").write(data[:at] + rng.randbytes(rng.randint(1, 200)) + data[at:])
    else:  # a valid zip whose arrays have other shapes, dtypes or values
      arrays = dict(base)
      key = rng.choice(sorted(arrays))
      arrays[key] = rng.choice([np.zeros((0,), np.uint8), np.full((3, 3), -1, np.int64), np.array(["x"] * 3),
                                np.float64(rng.random()), np.zeros((2, 2, 2, 2, 2), np.float32),
                                np.full(np.shape(arrays[key]), 1e30, np.float32)])
      np.savez(path, **arrays)
    try:
      load_atlas(path)
      outcomes["loaded"] += 1
    except AtlasError as e:
      assert str(e) and "\n" not in str(e), str(e)
      outcomes["refused"] += 1
  assert outcomes["refused"] > 200, outcomes

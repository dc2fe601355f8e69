r"""Builds evaluation sets of real word images from PDF manuals (never used for training).

  python benchmarks/real_words.py --out=/tmp/real_words [--words_per_pdf=150]

Each PDF is rasterized by poppler (`pdftoppm`, a different rasterizer from the
atlas' Pillow/FreeType) at a resolution drawn from 100-150 dpi per page, and
its word boxes come from `pdftotext -bbox` (the box height is the font's
ascent plus descent, as a document gives a word). Words made only of
charset characters (letters and digits) whose box is at least 13 px tall
(--min_height) are kept; a word is cut from the
page image at its box, rounded outwards. Three sets, each a folder with
labels.tsv (filename<TAB>text) that `ocr-tf evaluate` and
benchmarks/tesseract_compare.py read:

  clean/     the crops as they are (grey PNG);
  degraded/  the same words rotated by a uniform angle in [-5, 5] degrees
             (Pillow, bicubic, around the word's centre; the crop is the
             rotated box's bounding box), then one to three of: Gaussian
             blur, Gaussian noise, lower contrast, coloured ink on tinted
             paper, JPEG at quality 30-70; angles.tsv gives each angle
             (degrees, counter-clockwise as seen);
  and, with --trdg_python, unseen_fonts/: random alphanumeric strings of
             1-16 characters drawn by TextRecognitionDataGenerator with its
             own fonts that the default atlas does not contain and its own
             backgrounds (noise, plain, quasicrystal), skew up to 5 degrees
             and random blur (made by benchmarks/trdg_words.py in trdg's
             own environment; see compare_trdg.sh for installing it).

The PDFs default to documentation shipped in Debian packages (Computer
Modern, Times, Helvetica, Courier, Palatino, Century Schoolbook):

  apt-get install poppler-utils r-doc-pdf python-reportlab-doc camlidl-doc \
    libtasn1-doc gri gri-pdf-doc nettle-dev valgrind fontconfig shared-mime-info bzip2-doc \
    texlive-fonts-recommended-doc texlive-fonts-extra-doc texlive-base
"""

from __future__ import annotations

import gzip
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from html import unescape

from absl import app, flags
import numpy as np
from PIL import Image, ImageFilter

DEFAULT_PDFS = (
    "/usr/share/doc/r-doc-pdf/manual/R-intro.pdf",          # Computer Modern (texinfo)
    "/usr/share/doc/r-doc-pdf/manual/R-FAQ.pdf",
    "/usr/share/doc/nettle-dev/nettle.pdf.gz",
    "/usr/share/doc/gri/gri.pdf.gz",
    "/usr/share/doc/camlidl/camlidl-1.04.doc.pdf",
    "/usr/share/doc/libtasn1-doc/libtasn1.pdf",
    "/usr/share/doc/valgrind/valgrind_manual.pdf.gz",      # Times, Helvetica, Courier
    "/usr/share/doc/python-reportlab-doc/reportlab-userguide.pdf",
    "/usr/share/doc/bzip2/manual.pdf.gz",
    "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
    "/usr/share/doc/fontconfig/fontconfig-user.pdf.gz",    # Palatino
    "/usr/share/doc/texlive-doc/fonts/fouriernc/test_fouriernc.pdf",  # New Century Schoolbook
    "/usr/share/doc/texlive-doc/latex/eulervm/eulervm.pdf",           # Palatino
    "/usr/share/doc/texlive-doc/luatex/base/graphics/luaharfbuzz.pdf",  # Times New Roman
)
# Earlier sets took Century Schoolbook, Palatino and Times from the TeX Gyre
# font sheets (fonts-texgyre's qcs/qpl/qtm-info.pdf), then Palatino and Times
# from the pxfonts and txfonts manuals (texlive-doc/fonts/{px,tx}fonts/
# {px,tx}fontsdoc.pdf). Both are mostly glyph tables, not document text:
# cells are labelled by a letter or an octal digit while they show another
# glyph (a small capital, a math symbol: '7' over a division sign). Their
# places went to the Euler-VM manual (prose in Palatino) and the luaharfbuzz
# manual (Times New Roman); `--pdfs=...` still builds the older sets.
CHARSET = re.compile(r"^[0-9A-Za-z]+$")
WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>')
PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">')

_OUT = flags.DEFINE_string("out", None, "Output folder (clean/, degraded/, unseen_fonts/).", required=True)
_PDFS = flags.DEFINE_list("pdfs", list(DEFAULT_PDFS), "PDF files (.pdf or .pdf.gz); missing ones are skipped.")
_WORDS = flags.DEFINE_integer("words_per_pdf", 150, "Words drawn from each PDF.", lower_bound=1)
_PAGES = flags.DEFINE_integer("pages_per_pdf", 6, "Pages rendered from each PDF, spread over it.", lower_bound=1)
_MAX_LEN = flags.DEFINE_integer("max_length", 32, "Longest word kept.", lower_bound=1)
_MIN_HEIGHT = flags.DEFINE_integer("min_height", 13, "Word boxes less tall (px) are left out: body text and up.",
                                   lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 20261124, "Random seed of the draws.")
_MAX_CUT = flags.DEFINE_float("max_cut", 0.25, "PDFs whose word boxes cut the glyphs of more than this fraction "
                              "of their words are left out.")
_TRDG_PYTHON = flags.DEFINE_string("trdg_python", "", "Python of trdg's environment: also build unseen_fonts/.")
_TRDG_COUNT = flags.DEFINE_integer("trdg_count", 1000, "Images in unseen_fonts/.", lower_bound=1)


def _run(cmd: list[str]) -> bytes:
  try:
    return subprocess.run(cmd, check=True, capture_output=True, timeout=300).stdout
  except FileNotFoundError:
    sys.exit(f"{cmd[0]} not found: apt-get install poppler-utils")
  except subprocess.CalledProcessError as e:
    raise RuntimeError(f"{' '.join(cmd)} failed: {e.stderr.decode(errors='replace').strip()[:300]}") from None


def _num_pages(pdf: str) -> int:
  info = _run(["pdfinfo", pdf]).decode(errors="replace")
  m = re.search(r"^Pages:\s+(\d+)", info, re.M)
  if not m:
    raise RuntimeError(f"{pdf}: pdfinfo gives no page count")
  return int(m.group(1))


def page_words(pdf: str, page: int, dpi: int) -> tuple[Image.Image, list[tuple[str, tuple[int, int, int, int]]]]:
  """One page as a grey image at `dpi`, and its charset words with pixel boxes (x0, y0, x1, y1)."""
  png = _run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-gray", "-png", pdf])
  image = Image.open(io.BytesIO(png)).convert("L")
  html = _run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), pdf, "-"]).decode("utf-8", "replace")
  k = dpi / 72.0
  words = []
  for x0, y0, x1, y1, text in WORD.findall(html):
    text = unescape(text)
    if not CHARSET.match(text) or len(text) > _MAX_LEN.value:
      continue
    box = (int(np.floor(float(x0) * k)), int(np.floor(float(y0) * k)),
           int(np.ceil(float(x1) * k)), int(np.ceil(float(y1) * k)))
    if box[2] - box[0] < 2 or box[3] - box[1] < _MIN_HEIGHT.value or box[0] < 0 or box[1] < 0 \
        or box[2] > image.width or box[3] > image.height:
      continue
    words.append((text, box))
  return image, words


def rotated_crop(page: Image.Image, box: tuple[int, int, int, int], angle: float) -> Image.Image:
  """The word at `box` turned by `angle` degrees (counter-clockwise as seen) about its centre."""
  x0, y0, x1, y1 = box
  cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
  w, h = x1 - x0, y1 - y0
  r = int(np.ceil(np.hypot(w, h) / 2)) + 2
  region = page.crop((int(cx) - r, int(cy) - r, int(cx) + r, int(cy) + r))  # pads with black outside
  # Keep only the word: everything outside its box becomes paper, so neighbours do not rotate in.
  mask = Image.new("L", region.size, 0)
  ox, oy = x0 - (int(cx) - r), y0 - (int(cy) - r)
  mask.paste(255, (ox, oy, ox + w, oy + h))
  paper = Image.new("L", region.size, int(np.median(np.asarray(page.crop(box)))))
  region = Image.composite(region, paper, mask)
  turned = region.rotate(angle, resample=Image.BICUBIC, fillcolor=paper.getpixel((0, 0)))
  t = np.deg2rad(angle)
  c, s = abs(np.cos(t)), abs(np.sin(t))
  bw, bh = w * c + h * s, w * s + h * c
  mx, my = region.width / 2 + (cx - int(cx)), region.height / 2 + (cy - int(cy))
  return turned.crop((int(np.floor(mx - bw / 2)), int(np.floor(my - bh / 2)),
                      int(np.ceil(mx + bw / 2)), int(np.ceil(my + bh / 2))))


def degrade(image: Image.Image, rng: random.Random) -> tuple[Image.Image, list[str]]:
  """One to three degradations (Pillow and NumPy), and their names."""
  kinds = rng.sample(["blur", "noise", "contrast", "colour", "jpeg"], rng.randint(1, 3))
  img = image.convert("RGB") if "colour" in kinds else image
  applied = []
  for kind in ["colour", "contrast", "blur", "noise", "jpeg"]:
    if kind not in kinds:
      continue
    a = np.asarray(img).astype(np.float32) / 255.0
    if kind == "colour":
      ink = np.array([rng.uniform(0, 0.6) for _ in range(3)], np.float32)
      paper = np.array([rng.uniform(0.75, 1.0) for _ in range(3)], np.float32)
      a = paper + (ink - paper) * (1.0 - a)  # grey 0 (ink) -> ink colour, 1 (paper) -> paper colour
    elif kind == "contrast":
      lo, hi = rng.uniform(0.2, 0.45), rng.uniform(0.65, 0.95)
      a = lo + (hi - lo) * a
    elif kind == "blur":
      img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2)))
      applied.append(kind)
      continue
    elif kind == "noise":
      a = a + np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(0.03, 0.08), a.shape)
    elif kind == "jpeg":
      buf = io.BytesIO()
      img.save(buf, "JPEG", quality=rng.randint(30, 70))
      img = Image.open(io.BytesIO(buf.getvalue()))
      img.load()
      applied.append(kind)
      continue
    img = Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8))
    applied.append(kind)
  return img, applied


def _pdf_path(path: str, tmp: str) -> str:
  if not path.endswith(".gz"):
    return path
  out = os.path.join(tmp, os.path.basename(path)[:-3])
  with gzip.open(path, "rb") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
  return out


def _cut_fraction(found: list) -> float:
  """Of a PDF's words, the fraction with ink in the pixel row just above the box.

  Some PDFs' fonts declare an ascent below their letters' tops (seen in
  OpenType-based TeX documents); their boxes cut the ascenders off (a 't'
  looks like an 'r'), so the crop no longer shows its label.
  """
  cut = 0
  for image, _, (x0, y0, x1, _), _, _ in found:
    if y0 > 0 and np.asarray(image.crop((x0, y0 - 1, x1, y0))).min() < 128:
      cut += 1
  return cut / max(len(found), 1)


def _write(folder: str, name: str, image: Image.Image) -> None:
  image.save(os.path.join(folder, name))


def build_pdf_sets(out: str, rng: random.Random) -> None:
  clean, degraded = os.path.join(out, "clean"), os.path.join(out, "degraded")
  for folder in (clean, degraded):
    os.makedirs(folder, exist_ok=True)
  labels_clean, labels_deg, angles, sources = [], [], [], []
  with tempfile.TemporaryDirectory() as tmp:
    for path in _PDFS.value:
      if not os.path.exists(path):
        print(f"skipped (missing): {path}", flush=True)
        continue
      pdf = _pdf_path(path, tmp)
      n = _num_pages(pdf)
      pages = sorted({1 + int(i * n / _PAGES.value) for i in range(_PAGES.value)})
      found = []
      for page in pages:
        dpi = rng.choice([100, 110, 120, 133, 150])
        image, words = page_words(pdf, page, dpi)
        found += [(image, text, box, page, dpi) for text, box in words]
      cut = _cut_fraction(found)
      if cut > _MAX_CUT.value:
        print(f"skipped: {os.path.basename(path)}: its text layer's word boxes cut the glyphs of "
              f"{100 * cut:.0f}% of its words (ink in the row above the box; --max_cut={_MAX_CUT.value})",
              flush=True)
        continue
      picked = rng.sample(found, min(_WORDS.value, len(found)))
      stem = re.sub(r"[^A-Za-z0-9]+", "_", os.path.basename(pdf)[:-4])
      for k, (image, text, box, page, dpi) in enumerate(picked):
        name = f"{stem}_{k:04d}.png"
        _write(clean, name, image.crop(box))
        labels_clean.append(f"{name}\t{text}")
        angle = rng.uniform(-5.0, 5.0)
        turned, kinds = degrade(rotated_crop(image, box, angle), rng)
        _write(degraded, name, turned)
        labels_deg.append(f"{name}\t{text}")
        angles.append(f"{name}\t{angle:.4f}")
        sources.append(f"{name}\t{os.path.basename(path)}\tpage {page}\t{dpi} dpi\t{box[3] - box[1]} px\t"
                       f"{'+'.join(kinds)}")
      print(f"{os.path.basename(path)}: {len(picked)} words from pages {pages} ({len(found)} candidates)",
            flush=True)
  for folder, rows in ((clean, labels_clean), (degraded, labels_deg)):
    with open(os.path.join(folder, "labels.tsv"), "w", encoding="utf-8") as f:
      f.write("\n".join(rows) + "\n")
  with open(os.path.join(degraded, "angles.tsv"), "w", encoding="utf-8") as f:
    f.write("\n".join(angles) + "\n")
  with open(os.path.join(out, "sources.tsv"), "w", encoding="utf-8") as f:
    f.write("file\tpdf\tpage\tresolution\theight\tdegradations\n" + "\n".join(sources) + "\n")
  heights = [int(s.split("\t")[4].split()[0]) for s in sources]
  print(f"clean: {len(labels_clean)} words, heights {min(heights)}-{max(heights)} px "
        f"(median {int(np.median(heights))}); degraded: {len(labels_deg)}", flush=True)


def build_trdg_set(out: str) -> None:
  folder = os.path.join(out, "unseen_fonts")
  os.makedirs(folder, exist_ok=True)
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trdg_words.py")
  subprocess.run([_TRDG_PYTHON.value, script, "--out", folder, "--count", str(_TRDG_COUNT.value),
                  "--seed", str(_SEED.value)], check=True)


def main(argv):
  del argv
  rng = random.Random(_SEED.value)
  os.makedirs(_OUT.value, exist_ok=True)
  build_pdf_sets(_OUT.value, rng)
  if _TRDG_PYTHON.value:
    build_trdg_set(_OUT.value)


if __name__ == "__main__":
  app.run(main)

"""Random alphanumeric strings drawn by TextRecognitionDataGenerator in fonts the default atlas lacks.

Runs inside trdg's own environment (benchmarks/compare_trdg.sh installs trdg
1.8.0 into a virtualenv); benchmarks/real_words.py calls it as

  TRDG_PYTHON benchmarks/trdg_words.py --out=FOLDER --count=1000

It writes FOLDER/*.png and FOLDER/labels.tsv (filename<TAB>text) and lists
the fonts it used in FOLDER/fonts.txt. Fonts: trdg's fonts/latin without the
families the default atlas has (Roboto, Open Sans, Lato) and without fonts
that draw lower case as capitals (their labels would be wrong). Each image:
1-16 characters, height 24, 32 or 40 px, skew up to 5 degrees, random blur
below 1 px, one of trdg's backgrounds (Gaussian noise, plain, quasicrystal),
trdg's random text colour.
"""

from __future__ import annotations

import argparse
import os
import random
import string
import sys

ALNUM = string.digits + string.ascii_uppercase + string.ascii_lowercase
IN_ATLAS = ("Roboto", "OpenSans", "Lato")


def distinguishes_case(font_path: str) -> bool:
  """False when the font's lower-case letters are its capitals (small caps, all-caps display faces)."""
  from PIL import ImageFont  # pylint: disable=import-outside-toplevel
  font = ImageFont.truetype(font_path, 64)
  lower = [font.getbbox(c) for c in "xaen"]
  upper = [font.getbbox(c) for c in "XAEN"]
  lower_h = sum(b[3] - b[1] for b in lower)
  upper_h = sum(b[3] - b[1] for b in upper)
  return upper_h > 0 and lower_h < 0.85 * upper_h


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--out", required=True)
  p.add_argument("--count", type=int, default=1000)
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args(argv)
  import cv2  # pylint: disable=import-outside-toplevel
  import trdg  # pylint: disable=import-outside-toplevel
  from trdg.generators import GeneratorFromStrings  # pylint: disable=import-outside-toplevel

  font_dir = os.path.join(os.path.dirname(trdg.__file__), "fonts", "latin")
  fonts = sorted(os.path.join(font_dir, f) for f in os.listdir(font_dir)
                 if f.lower().endswith(".ttf") and not f.startswith(IN_ATLAS))
  fonts = [f for f in fonts if distinguishes_case(f)]
  if not fonts:
    print("trdg_words: no usable font", file=sys.stderr)
    return 1
  os.makedirs(args.out, exist_ok=True)
  rng = random.Random(args.seed)
  random.seed(args.seed)  # trdg draws skew, blur and colours from the global random module
  cv2.setRNGSeed(args.seed)
  rows = []
  while len(rows) < args.count:
    text = "".join(rng.choices(ALNUM, k=rng.randint(1, 16)))
    gen = GeneratorFromStrings([text], count=1, fonts=[rng.choice(fonts)], language="en",
                               size=rng.choice([24, 32, 40]), skewing_angle=5, random_skew=True,
                               blur=1, random_blur=True, background_type=rng.choice([0, 1, 2]),
                               distorsion_type=0, image_mode="RGB", text_color="#000000,#888888")
    image, label = next(gen)
    if image is None:  # trdg gives up on text too close to the background in tone
      continue
    name = f"trdg_{len(rows):05d}.png"
    image.save(os.path.join(args.out, name))
    rows.append(f"{name}\t{label}")
  with open(os.path.join(args.out, "labels.tsv"), "w", encoding="utf-8") as f:
    f.write("\n".join(rows) + "\n")
  with open(os.path.join(args.out, "fonts.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(os.path.basename(x) for x in fonts) + "\n")
  print(f"unseen_fonts: {len(rows)} images in {len(fonts)} fonts", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())

"""Throughput of TextRecognitionDataGenerator (trdg 1.8.0) in one process.

Runs inside the trdg virtualenv that benchmarks/compare_trdg.sh creates (trdg
needs Pillow<10, so it cannot share ocr_tf's environment). Images are made in
memory with trdg's GeneratorFromStrings, nothing is written to disk:

  32 px output height (size=32), random alphanumeric strings of 1-20
  characters, skew up to 5 degrees (random_skew), random Gaussian blur
  (random_blur), Gaussian-noise background (background_type=0), no
  distorsion, RGB, the fonts trdg ships (fonts/latin).

trdg's own GeneratorFromRandom builds strings out of 2-10 character "words"
joined by spaces, so the strings are drawn here with Python's random module
instead (a pool drawn before the clock starts; trdg cycles through it and
through its fonts).

After a warm-up, a window of --seconds is timed with the wall clock and the
process CPU clock. Last two lines of output:

  trdg: images=N seconds=S cores_used=C cpus_available=K ...
  trdg_images_per_second=<float> per_core=<float>

per_core = images / process CPU seconds.
"""

from __future__ import annotations

import argparse
import os
import random
import string
import sys
import time

ALNUM = string.digits + string.ascii_uppercase + string.ascii_lowercase


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--seconds", type=float, default=30.0, help="measured window after the warm-up")
  p.add_argument("--warmup", type=int, default=100,
                 help="images made before the clock starts (100 = every shipped latin font once)")
  p.add_argument("--size", type=int, default=32, help="output height in px")
  p.add_argument("--min_length", type=int, default=1)
  p.add_argument("--max_length", type=int, default=20)
  p.add_argument("--skew", type=int, default=5, help="skewing_angle, with random_skew")
  p.add_argument("--blur", type=float, default=1.0,
                 help="blur radius upper bound, with random_blur (radius uniform in [0, blur))")
  p.add_argument("--pool", type=int, default=20000, help="number of distinct strings")
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args(argv)
  if args.seconds <= 0:
    p.error(f"--seconds={args.seconds}: must be positive")
  if not 1 <= args.min_length <= args.max_length:
    p.error(f"--min_length={args.min_length} --max_length={args.max_length}: need 1 <= min <= max")
  if args.pool < 1 or args.warmup < 0:
    p.error("--pool must be >= 1 and --warmup >= 0")
  return args


def random_strings(rng: random.Random, count: int, min_length: int, max_length: int) -> list[str]:
  return ["".join(rng.choices(ALNUM, k=rng.randint(min_length, max_length))) for _ in range(count)]


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    import cv2
    import PIL
    from importlib.metadata import version
    from trdg.generators import GeneratorFromStrings
  except ImportError as e:
    print(f"trdg_bench: cannot import trdg or its dependencies: {e}", file=sys.stderr)
    return 2

  random.seed(args.seed)  # trdg draws skew, blur and colours from the global random module
  cv2.setRNGSeed(args.seed)  # background noise
  strings = random_strings(random.Random(args.seed), args.pool, args.min_length, args.max_length)
  gen = GeneratorFromStrings(
      strings,
      count=-1,
      language="en",
      size=args.size,
      skewing_angle=args.skew,
      random_skew=True,
      blur=args.blur,
      random_blur=True,
      background_type=0,
      distorsion_type=0,
      image_mode="RGB",
  )
  print(f"trdg {version('trdg')}, Pillow {PIL.__version__}, opencv {cv2.__version__}; "
        f"{len(gen.fonts)} fonts; size={args.size} length {args.min_length}-{args.max_length} "
        f"skew<={args.skew} blur<{args.blur} background=gaussian noise RGB", flush=True)

  for _ in range(args.warmup):
    next(gen)

  images = skipped = width_sum = 0
  wall0, cpu0 = time.perf_counter(), time.process_time()
  last_log = wall0
  while True:
    image, _ = next(gen)
    if image is None:  # trdg drops an image whose text is too close to the background in tone
      skipped += 1
    else:
      images += 1
      width_sum += image.size[0]
      if image.mode != "RGB" or image.size[1] != args.size:
        print(f"trdg_bench: unexpected image {image.mode} {image.size}", file=sys.stderr)
        return 1
    now = time.perf_counter()
    if now - last_log > 5:
      print(f"trdg: {images} images, {images / (now - wall0):.1f} images/s", file=sys.stderr)
      last_log = now
    if now - wall0 >= args.seconds:
      break
  wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
  if images == 0 or cpu <= 0:
    print("trdg_bench: no image was made in the window", file=sys.stderr)
    return 1
  print(f"trdg: images={images} skipped={skipped} seconds={wall:.2f} cores_used={cpu / wall:.2f} "
        f"cpus_available={len(os.sched_getaffinity(0))} mean_width={width_sum / images:.0f} "
        f"height={args.size}")
  print(f"trdg_images_per_second={images / wall:.1f} per_core={images / cpu:.1f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())

r"""Fuzzes an exported model's serving signature and `ocr-tf predict` with random and mutated image bytes.

  python benchmarks/fuzz_serving.py [--model=SAVEDMODEL] [--inputs=10000] [--cli_inputs=2000]

Inputs (drawn with --seed): valid PNG (grey, RGB, RGBA, 16-bit), JPEG, GIF
and BMP images of random sizes, and mutations of them: truncated at a random
length, 1-32 flipped bits, width/height fields in the header set to huge or
zero values, a wrong magic, a valid header followed by random bytes, pure
random bytes, the empty string. Each input goes alone through
serving_default; the script checks that every call returns (no exception
escapes), that it takes under --max_seconds, that an input either reads
(text, no error) or gives a one-line error result, and reads the process'
resident memory every 500 inputs. Then --cli_inputs of them are written
to files and read by one `ocr-tf predict --json` process, which must exit
with 0 or 1 (never crash) and give one JSON line per file.

Last line: JSON with inputs, errors (inputs with an error result), read
(inputs with text), by_error (count per error message kind), max_seconds,
rss_start_mb, rss_peak_mb, rss_end_mb, cli_exit, cli_lines, ok.
"""

from __future__ import annotations

import collections
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

from absl import app, flags
import numpy as np



def valid_image(rng: random.Random) -> bytes:
  """A valid image file of a random format, size and mode."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  h, w = rng.randint(1, 120), rng.randint(1, 400)
  fmt = rng.choice(["PNG", "PNG16", "JPEG", "GIF", "BMP"])
  mode = rng.choice(["L", "RGB", "RGBA"]) if fmt == "PNG" else ("RGB" if fmt != "PNG16" else "I;16")
  a = np.random.default_rng(rng.getrandbits(32)).integers(0, 256, (h, w, 4), dtype=np.uint8)
  if mode == "I;16":
    image = Image.fromarray(a[..., 0].astype(np.uint16) * 257)
  else:
    image = Image.fromarray(a[..., :{"L": 1, "RGB": 3, "RGBA": 4}[mode]].squeeze(-1) if mode == "L"
                            else a[..., :{"RGB": 3, "RGBA": 4}[mode]], mode)
  buf = io.BytesIO()
  image.save(buf, "PNG" if fmt == "PNG16" else fmt)
  return buf.getvalue()


# Where each format keeps width and height: (offset, bytes, big endian).
_DIMS = {b"\x89PNG": [(16, 4, True), (20, 4, True)], b"GIF8": [(6, 2, False), (8, 2, False)],
         b"BM": [(18, 4, False), (22, 4, False)]}


def _set_dims(data: bytearray, rng: random.Random) -> None:
  for magic, fields in _DIMS.items():
    if data.startswith(magic):
      for offset, size, big in fields:
        value = rng.choice([0, 1, 2**(8 * size) - 1, 2**(8 * size - 1), 65535, 100_000]) % 2**(8 * size)
        if offset + size <= len(data):
          data[offset:offset + size] = value.to_bytes(size, "big" if big else "little")
      return
  if data.startswith(b"\xff\xd8"):  # JPEG: the SOF segment's height and width
    at = data.find(b"\xff\xc0")
    if at > 0 and at + 9 <= len(data):
      data[at + 5:at + 9] = rng.choice([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x00\x01\xff\xff"])


def fuzz_input(rng: random.Random) -> tuple[str, bytes]:
  """One input and the name of how it was made."""
  kind = rng.choices(["valid", "truncated", "bitflip", "dims", "magic", "header+random", "random", "empty"],
                     [10, 20, 25, 15, 5, 10, 10, 5])[0]
  if kind == "empty":
    return kind, b""
  if kind == "random":
    return kind, rng.randbytes(rng.randint(1, 4096))
  data = bytearray(valid_image(rng))
  if kind == "truncated":
    data = data[:rng.randint(1, max(1, len(data) - 1))]
  elif kind == "bitflip":
    for _ in range(rng.randint(1, 32)):
      i = rng.randrange(len(data))
      data[i] ^= 1 << rng.randrange(8)
  elif kind == "dims":
    _set_dims(data, rng)
  elif kind == "magic":
    data[0] ^= 0xFF
  elif kind == "header+random":
    data = data[:rng.randint(8, 64)] + rng.randbytes(rng.randint(0, 2048))
  return kind, bytes(data)


def error_kind(message: str) -> str:
  return re.sub(r"\(.*", "", message).strip() or "?"


def fuzz(model_dir: str, inputs: int, cli_inputs: int, seed: int, max_seconds: float, log=print) -> dict:
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from ocr_tf import predict  # pylint: disable=import-outside-toplevel
  from ocr_tf.bench import rss_mb  # pylint: disable=import-outside-toplevel
  signature = predict.load_model(model_dir).signatures["serving_default"]
  rng = random.Random(seed)
  made = [fuzz_input(rng) for _ in range(inputs)]
  signature(image_bytes=tf.constant([made[0][1]]))  # warm-up
  rss_start = rss_peak = rss_mb()
  by_error: collections.Counter = collections.Counter()
  problems, slowest, read = [], 0.0, 0
  for k, (kind, data) in enumerate(made):
    began = time.perf_counter()
    try:
      out = signature(image_bytes=tf.constant([data]))
      error = out["error"].numpy()[0].decode()
      text = out["text"].numpy()[0].decode()
    except Exception as e:  # pylint: disable=broad-except
      problems.append(f"input {k} ({kind}): exception {type(e).__name__}: {str(e)[:200]}")
      continue
    seconds = time.perf_counter() - began
    slowest = max(slowest, seconds)
    if seconds > max_seconds:
      problems.append(f"input {k} ({kind}): {seconds:.1f} s")
    if error:
      by_error[error_kind(error)] += 1
      if "\n" in error or text:
        problems.append(f"input {k} ({kind}): error {error!r} with text {text!r}")
    else:
      read += 1
    if (k + 1) % 500 == 0:
      rss_peak = max(rss_peak, rss_mb())
      log(f"fuzz: {k + 1}/{inputs} inputs, slowest {slowest:.2f} s, rss {rss_mb():.0f} MB")
  rss_end = rss_mb()
  rss_peak = max(rss_peak, rss_end)
  cli_exit, cli_lines = None, 0
  if cli_inputs:
    with tempfile.TemporaryDirectory(prefix="fuzz_cli_") as tmp:
      files = []
      for k, (_, data) in enumerate(made[:cli_inputs]):
        path = os.path.join(tmp, f"in_{k:05d}.img")
        with open(path, "wb") as f:
          f.write(data)
        files.append(path)
      command = [sys.executable, "-m", "ocr_tf.main", "predict", f"--model={model_dir}", "--json", *files]
      result = subprocess.run(command, capture_output=True, text=True, timeout=60 + 5 * cli_inputs, check=False)
      cli_exit = result.returncode
      lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
      cli_lines = len(lines)
      if cli_exit not in (0, 1) or cli_lines != cli_inputs:
        problems.append(f"ocr-tf predict: exit {cli_exit}, {cli_lines} JSON lines for {cli_inputs} files; "
                        f"stderr tail: {result.stderr[-500:]}")
  figures = {"inputs": inputs, "errors": sum(by_error.values()), "read": read,
             "by_error": dict(by_error.most_common()), "max_seconds": round(slowest, 3),
             "rss_start_mb": round(rss_start), "rss_peak_mb": round(rss_peak), "rss_end_mb": round(rss_end),
             "cli_exit": cli_exit, "cli_lines": cli_lines, "problems": problems[:20]}
  figures["ok"] = not problems
  return figures


FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command-line flags (defined only when run as a script, so tests can import this module)."""
  flags.DEFINE_string("model", None, "SavedModel folder (default: the shipped model).")
  flags.DEFINE_integer("inputs", 10_000, "Inputs through serving_default.", lower_bound=1)
  flags.DEFINE_integer("cli_inputs", 2000, "Of those, how many `ocr-tf predict` reads from files.",
                       lower_bound=0)
  flags.DEFINE_integer("seed", 0, "Random seed.")
  flags.DEFINE_float("max_seconds", 5.0, "Longest a single input may take.")


def main(argv):
  del argv
  from ocr_tf import predict  # pylint: disable=import-outside-toplevel
  model = FLAGS.model or predict.default_model_path()
  figures = fuzz(model, FLAGS.inputs, FLAGS.cli_inputs, FLAGS.seed, FLAGS.max_seconds)
  print(json.dumps(figures))
  sys.exit(0 if figures["ok"] else 1)


if __name__ == "__main__":
  define_flags()
  app.run(main)

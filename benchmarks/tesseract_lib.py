"""Running Tesseract on word images, and the character error rate, for the comparison scripts."""

from __future__ import annotations

import subprocess
import time


def run_tesseract(paths: list[str], charset: str, command: str = "tesseract", psm: int = 8
                  ) -> tuple[list[str], float]:
  """Tesseract's text of each image (one process per image, eng model, charset whitelist), and the seconds taken."""
  texts = []
  began = time.perf_counter()
  for path in paths:
    result = subprocess.run([command, path, "stdout", "--psm", str(psm), "-l", "eng",
                             "-c", f"tessedit_char_whitelist={charset}"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
      raise RuntimeError(f"tesseract failed on {path}: {result.stderr.strip()[-300:]}")
    texts.append("".join(result.stdout.split()))
  return texts, time.perf_counter() - began


def version(command: str = "tesseract") -> str:
  out = subprocess.run([command, "--version"], capture_output=True, text=True, check=False)
  first = (out.stdout or out.stderr).splitlines()[:1]
  return first[0].strip() if first else command


def cer(predictions: list[str], truths: list[str]) -> float:
  """Summed edit distances over summed label lengths."""
  from ocr_tf import predict  # pylint: disable=import-outside-toplevel
  edits = sum(predict.edit_distance(p, t) for p, t in zip(predictions, truths))
  return edits / max(1, sum(len(t) for t in truths))

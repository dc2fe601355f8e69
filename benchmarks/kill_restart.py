r"""Kills training with SIGKILL at random moments, restarts it each time, and checks that nothing was lost.

  python benchmarks/kill_restart.py --workdir=/tmp/kill_restart [--kills=5] [--steps=40]

Runs `ocr-tf train` (configs/tiny.py, small batches, a checkpoint every step,
train.deterministic and train.log_indices on) and kills it with SIGKILL
a random time (uniform in --min_wait..--max_wait seconds, drawn with --seed)
after that start logged its first training step, --kills times, restarting it after each kill; the last start runs
to --steps. Then it trains the same config uninterrupted in another folder
and compares:

  - the index log (WORKDIR/indices.tsv): every step 1..steps once, and the
    sample indices exactly 0 .. steps * batch - 1, none skipped or repeated;
  - the final checkpoints' variables (all but the checkpoint save counter):
    equal bit for bit.

The last line is JSON with kills, killed_at (the newest checkpoint at each
kill), final_step, steps_logged, indices_missing,
indices_repeated, variables, variables_different and ok.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_command(workdir: str, steps: int, batch: int) -> list[str]:
  changes = {"steps": steps, "batch_size": batch, "warmup_steps": 2, "decay_steps": 1000, "log_every": 1,
             "eval_every": 0, "checkpoint_every": 1, "keep_checkpoints": 2, "eval_samples": batch,
             "eval_batch_size": batch, "num_images": 0, "deterministic": True, "log_indices": True}
  return [sys.executable, "-m", "ocr_tf.main", "train", "--config=configs/tiny.py", f"--workdir={workdir}",
          "--noexport", *(f"--config.train.{k}={v}" for k, v in changes.items())]  # weights are compared, not exports


def _newest(workdir: str) -> str | None:
  """The newest checkpoint prefix, found as training resumes (ocr_tf.train.checkpoint_candidates)."""
  from ocr_tf import train  # pylint: disable=import-outside-toplevel
  candidates = train.checkpoint_candidates(os.path.join(workdir, "checkpoints"))
  return candidates[0] if candidates else None


def newest_step(workdir: str) -> int | None:
  path = _newest(workdir)
  return int(path.rsplit("-", 1)[1]) if path else None


def variables(workdir: str) -> dict:
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  path = _newest(workdir)
  reader = tf.train.load_checkpoint(path)
  return {k: reader.get_tensor(k) for k, _ in tf.train.list_variables(path)
          if k not in ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE")}


def _first_step(log_path: str, process: subprocess.Popen) -> float | None:
  """Waits until this start of the run logs a training step; its monotonic time (None: it exited first)."""
  with open(log_path, encoding="utf-8", errors="replace") as f:
    f.seek(0, os.SEEK_END)
    while True:
      line = f.readline()
      if not line:
        if process.poll() is not None:
          return None
        time.sleep(0.05)
        continue
      if "] step " in line:
        return time.monotonic()


def run(root: str, kills: int, steps: int, batch: int, min_wait: float, max_wait: float, seed: int,
        env: dict | None = None, log=print) -> dict:
  """The whole experiment; returns the figures (see the module docstring)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from ocr_tf import train  # pylint: disable=import-outside-toplevel
  shutil.rmtree(root, ignore_errors=True)
  os.makedirs(root)
  killed, rng = [], random.Random(seed)
  workdir = os.path.join(root, "killed")
  command = train_command(workdir, steps, batch)
  with open(os.path.join(root, "killed.log"), "w", encoding="utf-8") as out:
    for k in range(kills + 1):
      process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
      if k == kills:
        if process.wait() != 0:
          raise RuntimeError(f"the last start failed (exit {process.returncode}); see {root}/killed.log")
        break
      wait = rng.uniform(min_wait, max_wait)
      began = _first_step(out.name, process)  # the clock starts when this start trains its first step
      if began is None:
        raise RuntimeError(f"start {k + 1} ended before training (exit {process.returncode}); see {out.name}")
      try:
        process.wait(timeout=max(0.0, wait - (time.monotonic() - began)))
        log(f"start {k + 1} finished before its kill at {wait:.1f} s")
        break
      except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
      killed.append(newest_step(workdir))
      log(f"kill {k + 1}: SIGKILL {wait:.1f} s into training, newest checkpoint: step {killed[-1]}")
  whole = os.path.join(root, "whole")
  with open(os.path.join(root, "whole.log"), "w", encoding="utf-8") as out:
    subprocess.run(train_command(whole, steps, batch), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                   check=True)
  log_steps = train.read_index_log(os.path.join(workdir, train.INDEX_LOG))
  indices = [i for s in sorted(log_steps) for i in log_steps[s]]
  expected = set(range(steps * batch))
  a, b = variables(workdir), variables(whole)
  different = sorted(k for k in a.keys() | b.keys() if k not in a or k not in b or not np.array_equal(a[k], b[k]))
  figures = {"kills": len(killed), "killed_at": killed, "final_step": newest_step(workdir),
             "steps_logged": sorted(log_steps) == list(range(1, steps + 1)),
             "indices_missing": len(expected - set(indices)), "indices_repeated": len(indices) - len(set(indices)),
             "indices_unexpected": len(set(indices) - expected), "variables": len(a),
             "variables_different": len(different)}
  figures["ok"] = (figures["final_step"] == steps and figures["steps_logged"] and not figures["indices_missing"]
                   and not figures["indices_repeated"] and not figures["indices_unexpected"] and not different)
  return figures


FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command-line flags (defined only when run as a script, so tests can import this module)."""
  flags.DEFINE_string("workdir", None, "Folder for the two runs (emptied first).", required=True)
  flags.DEFINE_integer("kills", 5, "SIGKILLs before the run may finish.", lower_bound=0)
  flags.DEFINE_integer("steps", 40, "train.steps.", lower_bound=1)
  flags.DEFINE_integer("batch_size", 8, "train.batch_size.", lower_bound=1)
  flags.DEFINE_float("min_wait", 0.0, "Shortest time from a start's first step to its kill (s).")
  flags.DEFINE_float("max_wait", 10.0, "Longest time from a start's first step to its kill (s).")
  flags.DEFINE_integer("seed", 0, "Seed of the waits.")


def main(argv):
  del argv
  figures = run(FLAGS.workdir, FLAGS.kills, FLAGS.steps, FLAGS.batch_size, FLAGS.min_wait, FLAGS.max_wait,
                FLAGS.seed)
  print(json.dumps(figures))
  sys.exit(0 if figures["ok"] else 1)


if __name__ == "__main__":
  define_flags()
  app.run(main)

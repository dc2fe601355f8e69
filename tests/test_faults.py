"""Nothing lost under faults: SIGKILL at random moments, corrupted and half-written checkpoints, failing writes."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

import pytest
import tensorflow as tf

from conftest import one_line
from ocr_tf import train
from test_train import tiny_config


def _checkpoint_files(workdir: str, step: int) -> list[str]:
  return tf.io.gfile.glob(os.path.join(workdir, "checkpoints", f"ckpt-{step}.*"))


@pytest.fixture(scope="module")
def three_checkpoints(tmp_path_factory) -> str:
  """A run of 3 steps with a checkpoint after each, kept as a template."""
  workdir = str(tmp_path_factory.mktemp("faults") / "template")
  train.train_and_evaluate(tiny_config(steps=3, checkpoint_every=1, keep_checkpoints=5), workdir)
  assert train.checkpoint_candidates(os.path.join(workdir, "checkpoints"))[0].endswith("ckpt-3")
  return workdir


def test_a_finished_run_started_again_neither_trains_nor_evaluates(three_checkpoints, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(three_checkpoints, workdir)
  records = train.read_metrics(workdir)
  result = train.train_and_evaluate(tiny_config(steps=3, checkpoint_every=1, keep_checkpoints=5), workdir)
  assert result["start_step"] == result["step"] == 3
  assert train.read_metrics(workdir) == records
  assert train.checkpoint_candidates(os.path.join(workdir, "checkpoints"))[0].endswith("ckpt-3")


def test_unreadable_latest_checkpoints_fall_back_to_the_newest_readable_one(three_checkpoints, tmp_path, caplog):
  """The process died after writing ckpt-3's data, before its index; ckpt-2's data was overwritten."""
  workdir = str(tmp_path / "run")
  shutil.copytree(three_checkpoints, workdir)
  os.remove(os.path.join(workdir, "checkpoints", "ckpt-3.index"))
  (data,) = [p for p in _checkpoint_files(workdir, 2) if ".data-" in p]
  size = os.path.getsize(data)
  with open(data, "r+b") as f:
    f.seek(size // 3)
    f.write(b"\xde\xad\xbe\xef" * 64)
    f.truncate(size - 100)
  caplog.set_level(logging.WARNING)
  result = train.train_and_evaluate(tiny_config(steps=4, checkpoint_every=1, keep_checkpoints=5), workdir)
  assert result["start_step"] == 1 and result["step"] == 4
  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  for step in (3, 2):
    assert any(f"ckpt-{step}" in w and "falling back to the previous one" in w for w in warnings), warnings
  assert train.checkpoint_candidates(os.path.join(workdir, "checkpoints"))[0].endswith("ckpt-4")


def test_no_readable_checkpoint_is_one_line(three_checkpoints, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(three_checkpoints, workdir)
  for path in tf.io.gfile.glob(os.path.join(workdir, "checkpoints", "ckpt-*.index")):
    with open(path, "wb") as f:
      f.write(b"not an index")
  with pytest.raises(train.ConfigError) as e:
    train.train_and_evaluate(tiny_config(steps=4), workdir)
  one_line(e, "none of its 3 checkpoint(s) reads", "ckpt-3")


def _make_unwritable(folder: str, monkeypatch) -> callable:
  """Makes folder refuse new files, even to root (chattr +i); else makes checkpoint writes fail with ENOSPC."""
  chattr = shutil.which("chattr")
  if chattr and subprocess.run([chattr, "+i", folder], capture_output=True, check=False).returncode == 0:
    return lambda: subprocess.run([chattr, "-i", folder], check=True)

  def no_space(self, *args, **kwargs):
    raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
  monkeypatch.setattr(tf.train.CheckpointManager, "save", no_space)
  return lambda: None


def test_failing_checkpoint_write_is_one_line_and_keeps_the_previous_one(three_checkpoints, tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  shutil.copytree(three_checkpoints, workdir)
  checkpoints = os.path.join(workdir, "checkpoints")
  before = sorted(os.listdir(checkpoints))
  restore = _make_unwritable(checkpoints, monkeypatch)
  try:
    with pytest.raises(train.CheckpointWriteError) as e:
      train.train_and_evaluate(tiny_config(steps=4, checkpoint_every=1, keep_checkpoints=5), workdir)
  finally:
    restore()
  one_line(e, "cannot write the checkpoint of step 4", "ckpt-3 is intact", "run the same command to resume")
  assert sorted(os.listdir(checkpoints)) == before
  assert train.checkpoint_candidates(checkpoints)[0].endswith("ckpt-3")  # the run resumes from it

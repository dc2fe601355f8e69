"""SIGKILL at a random moment of a training run: nothing skipped, repeated or changed."""

from __future__ import annotations

from test_train import subprocess_env  # noqa: F401  pylint: disable=unused-import


def test_sigkills_lose_nothing(tmp_path, subprocess_env):  # noqa: F811
  """benchmarks/kill_restart.py at a small scale (it measures five kills): every step and sample index once, weights bit-identical."""
  from benchmarks import kill_restart
  figures = kill_restart.run(str(tmp_path / "kills"), kills=1, steps=24, batch=8, min_wait=0.0, max_wait=1.0,
                             seed=3, env=subprocess_env, log=lambda _: None)
  assert figures["kills"] == 1, figures
  assert figures["final_step"] == 24 and figures["steps_logged"], figures
  assert figures["indices_missing"] == figures["indices_repeated"] == figures["indices_unexpected"] == 0
  assert figures["variables"] > 100 and figures["variables_different"] == 0, figures

"""Distributed training on CPU: MirroredStrategy over two logical CPUs, two multi-worker processes on loopback."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess

import tensorflow as tf

from conftest import ROOT
from ocr_tf import train
from test_train import FAST, cli_args, event_values, run_script, subprocess_env, tiny_config  # noqa: F401,F811  pylint: disable=unused-import


# ------------------------------------------------------------------ distribution


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, subprocess_env):  # noqa: F811
  out = run_script("""
      config = tiny_config(num_cpu_devices=2)
      strategy = train.create_strategy(config.train)
      generator = input_pipeline.make_generator(config.data)
      batches = iter(train.train_inputs(strategy, generator, 8, start_step=3))
      steps = []
      for _ in range(2):
        batch = next(batches)
        steps.append([t.numpy().tolist() for t in strategy.experimental_local_results(batch["index"])])
      second_replica = strategy.experimental_local_results(batch["image"])[1].numpy()
      alone = generator.generate([36, 37, 38, 39])["image"].numpy()
      try:
        train.train_and_evaluate(tiny_config(num_cpu_devices=2, batch_size=7), sys.argv[2] + "/odd")
        odd = None
      except config_base.ConfigError as e:
        odd = str(e)
      config = tiny_config(num_cpu_devices=2, steps=2)
      config.train.loss.weights.clean = 0.0
      result = train.train_and_evaluate(config, sys.argv[2] + "/run")
      print(json.dumps({"replicas": strategy.num_replicas_in_sync, "kind": type(strategy).__name__,
                        "steps": steps, "same_pixels": bool(np.array_equal(second_replica, alone)),
                        "odd": odd, "result": {k: result[k] for k in ("step", "replicas", "global_batch")},
                        "losses": result["losses"]}))
  """, subprocess_env, str(tmp_path))
  assert out["kind"] == "MirroredStrategy" and out["replicas"] == 2
  # Global step s, global batch 8: replica 0 takes s*8 .. s*8+3, replica 1 s*8+4 .. s*8+7.
  assert out["steps"] == [[[24, 25, 26, 27], [28, 29, 30, 31]], [[32, 33, 34, 35], [36, 37, 38, 39]]]
  assert out["same_pixels"]
  assert out["odd"] == "train.batch_size=7: the global batch must be divisible by the 2 replicas"
  assert out["result"] == {"step": 2, "replicas": 2, "global_batch": 8}
  assert "clean" not in out["losses"] and all(math.isfinite(v) for v in out["losses"].values())
  assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("ckpt-2")


# ------------------------------------------------------------------ resume


def _free_ports(n: int) -> list[int]:
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_multi_worker_two_local_processes(tmp_path, subprocess_env):  # noqa: F811
  workdir = str(tmp_path / "run")
  workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
  processes = []
  for task in range(2):
    env = dict(subprocess_env, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": task}}))
    log = open(tmp_path / f"worker{task}.log", "w")  # pylint: disable=consider-using-with
    processes.append((subprocess.Popen(cli_args(workdir, steps=2, num_images=2), cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT), log))
  try:
    for process, _ in processes:
      process.wait(timeout=400)
  finally:
    for process, log in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
      log.close()
  logs = [(tmp_path / f"worker{task}.log").read_text() for task in range(2)]
  for (process, _), log in zip(processes, logs):
    assert process.returncode == 0, log[-4000:]
    assert "strategy MultiWorkerMirroredStrategy: 2 replica(s), global batch 8 (4 per replica)" in log
  assert "task worker_0" in logs[0] and "task worker_1" in logs[1]
  assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-2")
  assert [r["step"] for r in train.read_metrics(workdir)] == [2]
  assert sorted(os.listdir(workdir)) == ["checkpoints", "config.json", "eval", "export", "metrics.jsonl", "train"]
  assert os.path.isfile(os.path.join(workdir, "export", "saved_model.pb"))  # the chief exported
  assert f"exported SavedModel to {os.path.join(workdir, 'export')}" in logs[0]
  assert "exported SavedModel" not in logs[1]
  assert "validation/letters" in event_values(os.path.join(workdir, "eval"))

"""Distributed training on CPU: MirroredStrategy over two logical CPUs; two multi-worker processes on loopback
trained from the command line, then the run exported, and the export used to predict and evaluate."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys

import tensorflow as tf

from conftest import ROOT
from ocr_tf import input_pipeline, train
from test_train import FAST, METRIC_KEYS, cli_args, event_values, run_script, subprocess_env, tiny_config  # noqa: F401,F811  pylint: disable=unused-import


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
      except config_lib.ConfigError as e:
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


# ------------------------------------------------------------------ multi-worker, and the command line


def _free_ports(n: int) -> list[int]:
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def check_workdir(workdir: str, records: list[dict], steps: int) -> None:
  """What `steps` steps of the tiny config (num_images=2) leave in a workdir: checkpoint, config, metrics, events."""
  assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith(f"ckpt-{steps}")
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["train"]["batch_size"] == 8
  for key in METRIC_KEYS:
    assert math.isfinite(records[0][key]), (key, records[0])
  assert 0.0 <= records[0]["cer"] and 0.0 <= records[0]["letter_f1"] <= 1.0

  scalars = event_values(os.path.join(workdir, "train"))
  for tag in ("loss/total", "loss/ctc", "loss/angle", "loss/letters", "loss/clean", "learning_rate",
              "samples_per_second", "grad_norm"):
    assert tag in scalars, sorted(scalars)
    assert [step for step, _ in scalars[tag]] == list(range(1, steps + 1)), tag  # log_every=1, the chief only
    assert all(math.isfinite(float(tf.make_ndarray(value.tensor))) for _, value in scalars[tag]), tag
  evals = event_values(os.path.join(workdir, "eval"))
  for tag in ("cer", "word_accuracy", "angle_mae", "letter_f1", "clean_psnr", "loss/total",
              "validation/letters", "validation/clean", "validation/text"):
    assert tag in evals, sorted(evals)
  _, letters = evals["validation/letters"][0]
  assert letters.metadata.plugin_data.plugin_name == "images"
  blobs = tf.make_ndarray(letters.tensor)
  assert len(blobs) == 2 + 2  # width, height, two PNGs
  png = tf.io.decode_png(blobs[2]).numpy()
  assert png.shape == (96, 384, 3)  # 32x128 grey enlarged 3x, RGB for the coloured boxes
  assert "| # | true | predicted | exact |" in letters.metadata.summary_description
  _, text = evals["validation/text"][0]
  assert tf.make_ndarray(text.tensor).item().decode().startswith("| # | true | predicted")


def test_multi_worker_train_then_export_predict_evaluate(tmp_path, subprocess_env):  # noqa: F811
  """The README's main job with two local worker processes: ocr-tf train (the chief exports), then
  ocr-tf export of the run's checkpoint, predict and evaluate with that export."""
  workdir, out = str(tmp_path / "run"), str(tmp_path / "model")
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
  records = train.read_metrics(workdir)
  assert [r["step"] for r in records] == [2]
  assert (f"trained to step 2 in {workdir} (replicas=2): cer={records[0]['cer']:.4f} "
          f"word_accuracy={records[0]['word_accuracy']:.4f}") in logs[0]
  assert sorted(os.listdir(workdir)) == ["checkpoints", "config.json", "eval", "export", "metrics.jsonl", "train"]
  check_workdir(workdir, records, 2)
  assert os.path.isfile(os.path.join(workdir, "export", "saved_model.pb"))  # the chief exported
  assert f"exported SavedModel to {os.path.join(workdir, 'export')}" in logs[0]
  assert "exported SavedModel" not in logs[1]

  def ocr_tf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ocr_tf.main", *args], cwd=ROOT, env=subprocess_env,
                          capture_output=True, text=True, timeout=300, check=False)

  # ocr-tf export: the run's newest checkpoint again, as a user exports a run trained with --noexport.
  result = ocr_tf("export", f"--workdir={workdir}", f"--out={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"exported step 2 of {workdir} to {out}" in result.stdout
  with open(os.path.join(out, "assets", "config.json")) as f:
    assert json.load(f)["train"]["batch_size"] == 8

  images = tmp_path / "images"
  images.mkdir()
  sample = next(iter(input_pipeline.validation_dataset(
      input_pipeline.make_generator(tiny_config().data, validation=True), 2, 2)))
  rows = []
  for i in range(2):
    png = tf.io.encode_png(tf.cast(tf.round(sample["image"][i] * 255), tf.uint8)).numpy()
    (images / f"w{i}.png").write_bytes(png)
    rows.append(f"w{i}.png\t{sample['text'][i].numpy().decode()}")
  (images / "labels.tsv").write_text("\n".join(rows) + "\n")
  (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")

  result = ocr_tf("predict", f"--model={out}", str(images / "w0.png"), str(images / "broken.png"),
                  str(images / "w1.png"), "--json")
  assert result.returncode == 1, result.stderr[-3000:]
  lines = [json.loads(line) for line in result.stdout.splitlines()]
  assert [os.path.basename(line["file"]) for line in lines] == ["w0.png", "broken.png", "w1.png"]
  assert "error" in lines[1] and all("text" in lines[i] and "angle" in lines[i] for i in (0, 2))
  assert sum(line.startswith(f"ocr-tf predict: {images / 'broken.png'}:")
             for line in result.stderr.splitlines()) == 1

  result = ocr_tf("evaluate", f"--model={out}", f"--data={images}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "n=2 errors=0" in result.stdout and "word_accuracy=" in result.stdout

  for args, expected in ((("export", f"--workdir={tmp_path}", f"--out={out}"), "config.json: not found"),
                         (("export", f"--workdir={workdir}", f"--out={tmp_path / 'more'}", "--angle_views=0"),
                          "angle_views=0: expected a whole number from 1"),
                         (("evaluate", f"--model={out}"), "evaluate needs --data=")):
    result = ocr_tf(*args)
    assert result.returncode == 2 and expected in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

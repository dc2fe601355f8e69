"""Training: config and workdir errors, the schedule, train.trainable, one-line errors of the command line.

Resuming after SIGKILL, damaged checkpoints and failing writes are in test_faults.py.

Runs that need a fresh TensorFlow (logical devices, op determinism, a killed
process, the command line) go to subprocesses; they share a persistent XLA
cache so the sample generator is compiled once per session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

import configs.tiny
from conftest import ROOT, one_line
from ocr_tf import config as config_lib
from ocr_tf import train
from ocr_tf.config import ConfigError

# Small runs: batch 8, one validation batch, no periodic work unless a test asks.
FAST = {"steps": 1, "batch_size": 8, "warmup_steps": 0, "log_every": 1, "eval_every": 0,
        "checkpoint_every": 0, "eval_samples": 8, "eval_batch_size": 8, "num_images": 0}
METRIC_KEYS = ("cer", "word_accuracy", "angle_mae", "letter_precision", "letter_recall", "letter_f1",
               "clean_psnr", "loss/total")


def tiny_config(**train_changes) -> ml_collections.ConfigDict:
  config = configs.tiny.get_config()
  for key, value in {**FAST, **train_changes}.items():
    config.train[key] = value
  return config


def event_values(folder: str) -> dict[str, list]:
  """tag -> [(step, summary value)] of the TensorBoard event files in folder."""
  out: dict[str, list] = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(folder, "events.out.tfevents.*"))):
    for record in tf.data.TFRecordDataset(path):
      event = event_pb2.Event.FromString(record.numpy())
      for value in event.summary.value:
        out.setdefault(value.tag, []).append((event.step, value))
  return out


@pytest.fixture(scope="session")
def subprocess_env() -> dict[str, str]:
  """Two TF threads, quiet C++ logs, and the run's XLA cache (TF_XLA_FLAGS, set in conftest)."""
  return dict(os.environ, TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="2", TF_CPP_MIN_LOG_LEVEL="1",
              PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))


SCRIPT_PRELUDE = """
import json, os, sys
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)
import numpy as np
import configs.tiny
from ocr_tf import config as config_lib
from ocr_tf import input_pipeline, train

FAST = json.loads(sys.argv[1])

def tiny_config(**changes):
  config = configs.tiny.get_config()
  for key, value in {**FAST, **changes}.items():
    config.train[key] = value
  return config
"""


def run_script(body: str, env: dict[str, str], *args: str, timeout: float = 300) -> dict:
  """Runs SCRIPT_PRELUDE + body in a fresh Python; returns the JSON it prints last."""
  code = SCRIPT_PRELUDE + textwrap.dedent(body)
  result = subprocess.run([sys.executable, "-c", code, json.dumps(FAST), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
  assert result.returncode == 0, result.stderr[-4000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def cli_args(workdir: str, **train_changes) -> list[str]:
  flags = {**FAST, **train_changes}
  return [sys.executable, "-m", "ocr_tf.main", "train", "--config=configs/tiny.py", f"--workdir={workdir}",
          *(f"--config.train.{k}={v}" for k, v in flags.items())]


# ------------------------------------------------------------------ end to end


# ------------------------------------------------------------------ config and workdir


@pytest.mark.parametrize("name", ["tiny", "default", "seed", "multi_gpu"])
def test_shipped_configs_are_valid(name):
  module = __import__(f"configs.{name}", fromlist=["get_config"])
  config = module.get_config()
  config_lib.validate_config(config)
  assert "ocr-tf train --config=configs/" in module.__doc__


def test_learning_rate_schedule():
  config = tiny_config(learning_rate=1e-3, warmup_steps=4, decay_steps=14, final_learning_rate_factor=0.1,
                       steps=100)
  schedule = train.learning_rate_schedule(config.train)
  lr = [float(schedule(s)) for s in range(20)]
  np.testing.assert_allclose(lr[:4], [2.5e-4, 5e-4, 7.5e-4, 1e-3], rtol=1e-6)
  np.testing.assert_allclose(lr[9], 1e-4 + 0.9e-3 * 0.5, rtol=1e-5)  # halfway down the cosine
  np.testing.assert_allclose(lr[14:], 1e-4, rtol=1e-6)
  assert all(a >= b for a, b in zip(lr[4:], lr[5:]))
  rebuilt = train.WarmupCosine.from_config(schedule.get_config())
  assert float(rebuilt(7)) == lr[7]


@pytest.mark.parametrize("field,value,expected", [
    ("train.batch_size", 0, "train.batch_size=0"),
    ("train.steps", -1, "train.steps=-1"),
    ("train.optimizer", "sgd", "train.optimizer='sgd'"),
    ("train.learning_rate", -0.1, "train.learning_rate=-0.1"),
    ("train.learning_rate", float("nan"), "train.learning_rate=nan"),
    ("train.clip_norm", -1.0, "train.clip_norm=-1.0"),
    ("train.precision", "float16", "train.precision='float16'"),
    ("train.num_cpu_devices", 0, "train.num_cpu_devices=0"),
    ("train.eval_samples", 12, "train.eval_samples=12 is not a multiple of train.eval_batch_size=8"),
    ("train.decay_steps", 3, "train.decay_steps=3 must be greater than train.warmup_steps=5"),
    ("train.final_learning_rate_factor", 2.0, "train.final_learning_rate_factor=2.0"),
    ("train.loss.weights.ctc", -1.0, "train.loss.weights.ctc=-1.0"),
    ("train.loss.clean_loss", "l2", "train.loss.clean_loss='l2'"),
    ("train.loss.angle_huber_delta", 0.0, "train.loss.angle_huber_delta=0.0"),
    ("train.trainable", "angle(", "train.trainable='angle('"),
    ("train.trainable", "^nothing_named_so", "train.trainable='^nothing_named_so': matches no layer"),
    ("model.angle_branch", (8, 0), "model.angle_branch=(8, 0)"),
    ("model.text_width", 63, "model.text_width=63"),
    ("model.letter_stride", 3, "model.letter_stride=3"),
    ("data.height", 0, "data.height=0"),
])
def test_bad_config_value_gives_one_line(field, value, expected, tmp_path):
  config = tiny_config(warmup_steps=5)
  block, *path, name = field.split(".")
  target = config[block]
  for part in path:
    target = target[part]
  target[name] = value
  with pytest.raises(ConfigError) as e:
    train.train_and_evaluate(config, str(tmp_path / "run"))
  one_line(e, expected)
  assert not os.path.exists(tmp_path / "run"), "nothing may be written for an invalid config"


def test_trainable_trains_only_the_layers_it_names(tiny_gen):
  """A frozen layer keeps its weights and its BatchNormalization statistics; the named ones move."""
  config = tiny_config(trainable="^angle", learning_rate=1e-2)
  config.model.angle_branch = (8, 12, 16)
  strategy = tf.distribute.get_strategy()
  state = train.create_train_state(config, strategy)
  model = state.model
  named = {layer.name for layer in model.layers if layer.weights and layer.name.startswith("angle")}
  assert {"angle_stem_conv", "angle_block2_a_bn", "angle_value", "angle_mix"} <= named
  assert {v.path for v in model.trainable_variables} == \
      {v.path for layer in model.layers if layer.name in named for v in layer.trainable_weights}
  before = {v.path: v.numpy() for v in model.weights}
  batch = train.model_fields(tiny_gen.generate(list(range(8))))
  train.train_step(state, batch, config, global_batch=8, num_replicas=1)  # eager: no tracing
  for v in model.weights:
    moved = not np.array_equal(before[v.path], v.numpy())
    layer = v.path.split("/")[0]
    assert moved == (layer in named), v.path  # BN moving statistics included
  assert train.freeze(model, "") == [layer.name for layer in model.layers if layer.weights]
  assert len(model.trainable_variables) > len(before) // 2


def test_all_loss_weights_zero_is_an_error():
  config = tiny_config()
  for name in config.train.loss.weights:
    config.train.loss.weights[name] = 0.0
  with pytest.raises(ConfigError) as e:
    config_lib.validate_config(config)
  one_line(e, "train.loss.weights", "at least one weight must be > 0")


def test_workdir_with_another_config_stops_before_training(tmp_path):
  workdir = str(tmp_path)
  train.save_config(tiny_config(), workdir)
  other = tiny_config()
  other.data.max_angle = 10.0
  with pytest.raises(ConfigError) as e:
    train.train_and_evaluate(other, workdir)
  one_line(e, f"workdir {workdir} holds a run with another config", "data.max_angle=5.0 there, 10.0 here")
  assert sorted(os.listdir(workdir)) == ["config.json"]
  changed_model = tiny_config()
  changed_model.model.text_width = 32
  with pytest.raises(ConfigError) as e:
    train.check_workdir(changed_model, workdir)
  one_line(e, "model.text_width=128 there, 32 here")
  changed_lr = tiny_config(learning_rate=0.5)
  with pytest.raises(ConfigError) as e:
    train.check_workdir(changed_lr, workdir)
  one_line(e, "train.learning_rate=0.002 there, 0.5 here")
  # A resumed run may change the length of the run and the logging/eval/checkpoint cadence.
  train.check_workdir(tiny_config(steps=500, log_every=7, eval_every=50, checkpoint_every=10, num_images=4,
                                  eval_samples=16, jit_compile=True), workdir)
  # A run started before a field existed resumes while the field keeps its default.
  saved = json.loads((tmp_path / "config.json").read_text())
  del saved["data"]["short_probability"], saved["model"]["angle_pool"]
  (tmp_path / "config.json").write_text(json.dumps(saved))
  train.check_workdir(tiny_config(), workdir)
  changed = tiny_config()
  changed.model.angle_pool = "attention"
  with pytest.raises(ConfigError) as e:
    train.check_workdir(changed, workdir)
  one_line(e, "model.angle_pool='<absent>' there, 'attention' here")


def test_resume_drops_evaluations_newer_than_the_checkpoint(tmp_path):
  lines = [json.dumps({"step": step, "cer": 0.5}) for step in (100, 200, 300)]
  (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 40')  # killed while appending
  assert [r["step"] for r in train.read_metrics(str(tmp_path))] == [100, 200, 300]
  kept = train.rundir.keep_metrics_up_to(str(tmp_path), 200, write=True)
  assert [r["step"] for r in kept] == [100, 200]
  assert [r["step"] for r in train.read_metrics(str(tmp_path))] == [100, 200]


def test_corrupt_config_json_gives_one_line(tmp_path):
  (tmp_path / "config.json").write_text("{not json")
  with pytest.raises(ConfigError) as e:
    train.check_workdir(tiny_config(), str(tmp_path))
  one_line(e, "config.json: unreadable config of a previous run")


def test_cli_errors_are_one_line(tmp_path, subprocess_env):
  train.save_config(configs.tiny.get_config(), str(tmp_path))
  for flags, expected in (
      (["--config.data.max_angle=10"], "data.max_angle=5.0 there, 10.0 here"),
      (["--config.train.optimizer=sgd"], "train.optimizer='sgd': must be one of 'adam', 'adamw'"),
  ):
    args = [sys.executable, "-m", "ocr_tf.main", "train", "--config=tiny", f"--workdir={tmp_path}", *flags]
    result = subprocess.run(args, cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("ocr-tf:")]
    assert len(lines) == 1 and expected in lines[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
  assert sorted(os.listdir(tmp_path)) == ["config.json"]

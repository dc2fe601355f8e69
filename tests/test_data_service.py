"""tf.data service: step order and lost units (no server), then servers on loopback in a private network namespace.

tf.data service servers listen on every interface of their machine, so the
tests that start them run in a network namespace of their own (`unshare -n`,
with only the loopback interface up): nothing they open is reachable from
outside it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import ROOT, one_line
from ocr_tf import config as config_lib
from ocr_tf import data_service, train
from test_train import subprocess_env  # noqa: F401  pylint: disable=unused-import

UNSHARE = shutil.which("unshare")
IP = shutil.which("ip")


def _namespace_works() -> bool:
  if not (UNSHARE and IP):
    return False
  result = subprocess.run([UNSHARE, "-n", IP, "link", "set", "lo", "up"], capture_output=True, check=False)
  return result.returncode == 0


LOOPBACK_ONLY = _namespace_works()
needs_namespace = pytest.mark.skipif(
    not LOOPBACK_ONLY, reason="needs unshare -n and ip (util-linux, iproute2) with the right to make a "
                              "network namespace: .ci/run installs them and runs as root")


def in_loopback_namespace(command: list[str]) -> list[str]:
  """command run in a fresh network namespace with only loopback up."""
  return [UNSHARE, "-n", "sh", "-c", f'{IP} link set lo up && exec "$@"', "sh", *command]


# ------------------------------------------------------------------ ordering (no server)


def _units(order, spec_value=lambda u: u):
  return tf.data.Dataset.from_tensor_slices({"unit": tf.constant(order, tf.int64),
                                             "x": tf.constant([spec_value(u) for u in order], tf.int64)})


def test_ordered_stream_gives_units_in_order():
  stream = data_service.OrderedStream(_units([2, 0, 1, 4, 3, 5]), lambda u: {"x": -1}, 0, lookahead=8,
                                      timeout=30)
  got = [int(next(stream)["x"]) for _ in range(6)]
  assert got == [0, 1, 2, 3, 4, 5]
  assert stream.from_service == 6 and not stream.lost


def test_ordered_stream_makes_lost_units_locally():
  # Unit 1 never comes: once 3 later units have arrived it is made locally, the others come from the stream.
  stream = data_service.OrderedStream(_units([0, 2, 3, 4, 5]), lambda u: {"x": 100 + u}, 0, lookahead=3,
                                      timeout=30)
  got = [int(next(stream)["x"]) for _ in range(6)]
  assert got == [0, 101, 2, 3, 4, 5]
  assert stream.lost == {"overtaken": 1}
  # The stream ended: unit 6 is made locally at once.
  assert int(next(stream)["x"]) == 106 and stream.lost["stream ended"] == 1


def test_ordered_stream_stop_raises_one_line():
  stream = data_service.OrderedStream(_units([0, 2, 3]), lambda u: {"x": -1}, 0, lookahead=2, timeout=30,
                                      on_loss="stop")
  assert int(next(stream)["x"]) == 0
  with pytest.raises(data_service.DataServiceError) as e:
    next(stream)
  one_line(e, "lost the batch of unit 1", "overtaken", "data_service_on_loss='local'")


def test_ordered_stream_starts_at_a_later_unit_and_drops_older_ones():
  stream = data_service.OrderedStream(_units([3, 4, 5, 6]), lambda u: {"x": -1}, 4, lookahead=8, timeout=30)
  assert [int(next(stream)["x"]) for _ in range(3)] == [4, 5, 6]


@pytest.mark.parametrize("address,ok", [("localhost:5050", True), ("grpc://10.0.0.2:1", True),
                                        ("localhost", False), ("http://h:1", False), ("h:0", False),
                                        (":5050", False), ("h:99999", False)])
def test_address_check(address, ok):
  config = config_lib.get_config()
  config.data.data_service_address = address
  if ok:
    config_lib.validate_data(config.data)
  else:
    with pytest.raises(config_lib.ConfigError) as e:
      config_lib.validate_data(config.data)
    one_line(e, "data.data_service_address")


def test_unit_dataset_matches_index_dataset():
  """Unit u holds the indices index_dataset gives that replica at that step (2 replicas, pipeline 1 of 2)."""
  from ocr_tf import input_pipeline
  ds = data_service.unit_dataset(lambda i: {"index": i}, batch=3, units_per_step=2, step_size=12, first=6,
                                 start_unit=4, stop_unit=8)
  got = [(int(e["unit"]), list(e["index"].numpy())) for e in ds]
  want = list(input_pipeline.index_dataset(3, 4, pipeline_id=1, num_pipelines=2, start_step=2, num_steps=2))
  assert [u for u, _ in got] == [4, 5, 6, 7]
  assert [i for _, idx in got for i in idx] == [int(i) for i in want]


# ------------------------------------------------------------------ servers on loopback


SERVICE_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import configs.tiny
from ocr_tf import data_service, input_pipeline, train

config = configs.tiny.get_config()
d = data_service.start_dispatcher(0)
address = d.target.split("://")[1]
workers = [data_service.start_worker(address) for _ in range(2)]
config.data.data_service_address = address
config.data.data_service_lookahead = 6
config.data.data_service_timeout = 10.0
gen = input_pipeline.make_generator(config.data)
strategy = tf.distribute.get_strategy()
it = iter(train.train_inputs(strategy, gen, 8, 3, config.data))
service = [next(it) for _ in range(4)]
workers[0].stop()  # a worker gone mid-run: its units are lost and made in the trainer
service += [next(it) for _ in range(8)]
local = list(input_pipeline.build_inputs(gen, 8, 3).map(train.model_fields).take(12))
same = [all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in b) for a, b in zip(service, local)]

# 'stop': with no worker left, the next batch fails with one clear line.
config.data.data_service_on_loss = "stop"
config.data.data_service_timeout = 3.0
it = iter(train.train_inputs(strategy, gen, 8, 0, config.data))
workers[1].stop()
try:
  for _ in range(200):
    train.steps.next_batch(it)
  stopped = "no error"
except data_service.DataServiceError as e:
  stopped = str(e)
print(json.dumps({"same": same, "first_index": int(service[0]["index"][0]), "stopped": stopped}))
"""


@needs_namespace
def test_service_batches_equal_local_ones_and_survive_a_worker_stop(tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
  result = subprocess.run(in_loopback_namespace([sys.executable, "-c", SERVICE_SCRIPT]), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400, check=False)
  assert result.returncode == 0, result.stderr[-4000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  assert out["first_index"] == 24  # step 3 of global batch 8
  assert out["same"] == [True] * 12
  assert "lost the batch of unit" in out["stopped"] and "\n" not in out["stopped"], out["stopped"]


CLI_SCRIPT = r"""
import json, os, signal, socket, subprocess, sys, time
workdir = sys.argv[1]
def free_port():
  s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port
dport = free_port()
ocr = [sys.executable, "-m", "ocr_tf.main"]
logs = {name: open(os.path.join(workdir, name + ".log"), "w") for name in ("dispatcher", "worker1", "worker2")}
procs = {"dispatcher": subprocess.Popen(ocr + ["data-service", "dispatcher", f"--port={dport}"],
                                        stdout=logs["dispatcher"], stderr=subprocess.STDOUT)}
for name in ("worker1", "worker2"):
  procs[name] = subprocess.Popen(ocr + ["data-service", "worker", f"--dispatcher=localhost:{dport}",
                                        f"--port={free_port()}"], stdout=logs[name], stderr=subprocess.STDOUT)
steps = 6
train_cmd = ocr + ["train", "--config=configs/tiny.py", f"--workdir={workdir}/run", "--noexport",
  f"--config.data.data_service_address=localhost:{dport}", "--config.data.data_service_lookahead=2",
  "--config.data.data_service_timeout=10", f"--config.train.steps={steps}", "--config.train.batch_size=8",
  "--config.train.log_every=1", "--config.train.eval_every=0", "--config.train.checkpoint_every=0",
  "--config.train.eval_samples=8", "--config.train.eval_batch_size=8", "--config.train.num_images=0",
  "--config.train.log_indices=True"]
trainer = subprocess.Popen(train_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
lines, killed = [], False
for line in trainer.stdout:
  lines.append(line)
  if not killed and "step 2/" in line:
    procs["worker2"].send_signal(signal.SIGKILL)  # a worker killed mid-run
    killed = True
trainer.wait()
for p in procs.values():
  p.kill(); p.wait()
for f in logs.values():
  f.close()
def own_lines(name):  # the server's own lines (TensorFlow's log lines around them vary, XLA cache loads among them)
  with open(os.path.join(workdir, name + ".log")) as f:
    return "".join(l for l in f if "data-service" in l)
print(json.dumps({"rc": trainer.returncode, "killed": killed, "tail": "".join(lines[-30:]),
                  "service": any("samples made by the tf.data service" in l for l in lines),
                  "dispatcher_log": own_lines("dispatcher"), "worker_log": own_lines("worker1")}))
"""


@needs_namespace
def test_cli_dispatcher_two_workers_train_and_a_killed_worker(tmp_path, subprocess_env):  # noqa: F811
  env = dict(subprocess_env, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")  # four processes on 2 cores
  result = subprocess.run(in_loopback_namespace([sys.executable, "-c", CLI_SCRIPT, str(tmp_path)]), cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-4000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  assert out["rc"] == 0, out["tail"]
  assert out["killed"] and out["service"], out["tail"]
  assert "data-service dispatcher serving at grpc://" in out["dispatcher_log"]
  assert "data-service worker serving on port" in out["worker_log"]
  assert "trained to step 6" in out["tail"] and "exported SavedModel" not in out["tail"]
  assert not (tmp_path / "run" / "export").exists()  # --noexport
  logged = train.read_index_log(str(tmp_path / "run" / train.INDEX_LOG))
  assert sorted(logged) == list(range(1, 7))
  indices = [i for s in sorted(logged) for i in logged[s]]
  assert indices == list(range(48))  # each sample index once, in step order

r"""How generation and training scale with replicas and data-service workers here, and what that predicts.

  python benchmarks/scaling.py [--config=configs/tiny.py] [--seconds=20] [--gpu_samples_per_second=3000]

Measures, one after another (the machine should be otherwise idle):

  1. generation on one thread (`ocr-tf bench --threads=1`): its CPU cost per
     sample c_g, and with AUTOTUNE over every core;
  2. training with 1 and 2 replicas (benchmarks/train_throughput.py with
     train.num_cpu_devices=1 and 2: MirroredStrategy over logical CPUs),
     live stream and one cached batch;
  3. reading the stream from a tf.data service with 1 and then 2 workers (a
     dispatcher and in-process workers in a loopback-only network namespace;
     samples/s the trainer receives).

The model: a step of global batch B costs B * c_s on the accelerators and the
batch costs B * c_g CPU-seconds to generate; generation keeps up when the
CPUs feeding the accelerators have at least N * S * c_g cores, S being one
accelerator's training throughput (samples/s) and N the number of them.
The last lines print c_g and that prediction for --gpus accelerators at
--gpu_samples_per_second each (a figure to measure on the GPU; the default is
only an example).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = flags.DEFINE_string("config", "configs/tiny.py", "Config file.")
_SECONDS = flags.DEFINE_float("seconds", 20.0, "Measured window of each generation run.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed training steps per window.")
_GPUS = flags.DEFINE_integer("gpus", 8, "Accelerators of the prediction.")
_GPU_RATE = flags.DEFINE_float("gpu_samples_per_second", 3000.0, "One accelerator's training samples/s.")
_CORES_PER_WORKER = flags.DEFINE_integer("cores_per_worker", 16, "Cores of one data-service worker machine.")
_PROBE = flags.DEFINE_integer("service_probe", 0, "Internal: measure the service with this many workers.")


def _run(command: list[str], env=None) -> str:
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
  if result.returncode != 0:
    raise RuntimeError(f"{' '.join(command[:6])} ... failed: {result.stderr[-1500:]}")
  return result.stdout


def _value(text: str, key: str) -> float:
  m = re.findall(rf"{key}=([0-9.]+)", text)
  if not m:
    raise RuntimeError(f"no {key}= in output: {text[-500:]}")
  return float(m[-1])


def service_probe(workers: int, seconds: float) -> float:
  """Samples/s read from a local dispatcher with `workers` in-process workers."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from ml_collections.config_flags import config_flags  # pylint: disable=import-outside-toplevel
  from ocr_tf import data_service, input_pipeline, train  # pylint: disable=import-outside-toplevel
  config = config_flags.ConfigFileFlagParser(name="config").parse(os.path.join(ROOT, _CONFIG.value))
  dispatcher = data_service.start_dispatcher(0)
  address = dispatcher.target.split("://")[1]
  servers = [data_service.start_worker(address) for _ in range(workers)]
  gen = input_pipeline.make_generator(config.data)
  b = int(config.train.batch_size)
  units = data_service.unit_dataset(lambda i: train.model_fields(gen.sample(i)), b, 1, b, 0, 0)
  it = iter(data_service.service_dataset(units, address))
  for _ in range(20):  # warm-up: workers compile the generator
    next(it)
  n, began = 0, time.perf_counter()
  while time.perf_counter() - began < seconds:
    next(it)
    n += b
  rate = n / (time.perf_counter() - began)
  del servers, tf
  return rate


def main(argv):
  del argv
  if _PROBE.value:
    print(f"service_samples_per_second={service_probe(_PROBE.value, _SECONDS.value):.1f}", flush=True)
    os._exit(0)  # pylint: disable=protected-access  (skip the servers' slow teardown)
  ocr = [sys.executable, "-m", "ocr_tf.main"]
  out: dict = {}
  one = _run(ocr + ["bench", f"--config={_CONFIG.value}", "--threads=1", f"--seconds={_SECONDS.value}"])
  out["gen_one_thread_samples_per_second"] = _value(one, "samples_per_second")
  out["gen_cpu_seconds_per_sample"] = 1.0 / _value(one, "per_core")
  auto = _run(ocr + ["bench", f"--config={_CONFIG.value}", f"--seconds={_SECONDS.value}"])
  out["gen_autotune_samples_per_second"] = _value(auto, "samples_per_second")
  print(f"generation: one thread {out['gen_one_thread_samples_per_second']:.0f} samples/s "
        f"({out['gen_cpu_seconds_per_sample'] * 1e3:.3f} CPU-ms a sample), AUTOTUNE "
        f"{out['gen_autotune_samples_per_second']:.0f} samples/s", flush=True)
  for replicas in (1, 2):
    text = _run([sys.executable, "benchmarks/train_throughput.py", f"--config={_CONFIG.value}",
                 f"--config.train.num_cpu_devices={replicas}", f"--steps={_STEPS.value}", "--rounds=2"])
    out[f"train_{replicas}_live"] = _value(text, "live_samples_per_second")
    out[f"train_{replicas}_cached"] = _value(text, "cached_samples_per_second")
    print(f"training, {replicas} replica(s): live {out[f'train_{replicas}_live']:.0f} samples/s, cached batch "
          f"{out[f'train_{replicas}_cached']:.0f}", flush=True)
  unshare, ip = shutil.which("unshare"), shutil.which("ip")
  if unshare and ip:
    for workers in (1, 2):
      text = _run([unshare, "-n", "sh", "-c", f'{ip} link set lo up && exec "$@"', "sh", sys.executable,
                   "benchmarks/scaling.py", f"--config={_CONFIG.value}", f"--seconds={_SECONDS.value}",
                   f"--service_probe={workers}"], env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
      out[f"service_{workers}_workers"] = _value(text, "service_samples_per_second")
      print(f"data service, {workers} worker(s): {out[f'service_{workers}_workers']:.0f} samples/s", flush=True)
  else:
    print("data service: skipped (needs unshare and ip for a loopback-only namespace)")
  cores = _GPUS.value * _GPU_RATE.value * out["gen_cpu_seconds_per_sample"]
  print(f"model: generation needs N * S * c_g cores; c_g={out['gen_cpu_seconds_per_sample'] * 1e3:.3f} CPU-ms; "
        f"for N={_GPUS.value} accelerators at S={_GPU_RATE.value:.0f} samples/s each: {cores:.1f} cores, "
        f"{cores / _CORES_PER_WORKER.value:.1f} data-service workers of {_CORES_PER_WORKER.value} cores")
  out["predicted_cores"] = cores
  print(json.dumps(out))


if __name__ == "__main__":
  app.run(main)

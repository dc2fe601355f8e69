r"""The default data distribution with the large model, for one host with several GPUs.

The large model (17M weights), global batch 256 split evenly over the visible
GPUs (MirroredStrategy; with TF_CONFIG naming a cluster, across hosts with
MultiWorkerMirroredStrategy), mixed float16 with dynamic loss scaling, AdamW
at 2e-3 with 2000 warmup steps and a cosine decay over 200k steps.

  ocr-tf train --config=configs/multi_gpu.py --workdir=/tmp/ocr_multi_gpu
  ocr-tf train --config=configs/multi_gpu.py --workdir=/tmp/ocr_multi_gpu --config.train.batch_size=192  # 3 or 6 GPUs

The batch must be divisible by the number of GPUs. The sample generator runs
on the host's CPU cores: check with `ocr-tf bench --config=configs/multi_gpu.py`
that they make samples faster than the GPUs use them. Not run on GPUs yet, so
its speed and what it reaches are not measured.
"""

from ocr_tf import config as config_lib


def get_config():
  config = config_lib.get_config()
  config.model = config_lib.model_config("large")
  t = config.train
  t.steps = 200_000
  t.batch_size = 256
  t.learning_rate = 2e-3
  t.warmup_steps = 2000
  t.precision = "mixed_float16"
  t.log_every = 200
  t.eval_every = 5000
  t.checkpoint_every = 2000
  t.eval_samples = 4096
  t.eval_batch_size = 256
  return config

"""The `train` block (the training run) and its `loss` block: fields with their defaults, and their checks."""

from __future__ import annotations

import re

import ml_collections

from ocr_tf.config.checks import ConfigError, check_bool, check_float, check_int, check_str, fail

LOSS_NAMES = ("ctc", "angle", "letters", "clean")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
OPTIMIZERS = ("adam", "adamw")
CLEAN_LOSSES = ("l1", "bce")
BLOCK = "train"
LOSS_BLOCK = "train.loss"


def loss_config() -> ml_collections.ConfigDict:
  """The `train.loss` block: loss weights (0 switches a head's loss off) and settings.

  Fields:
    weights: one weight per loss in LOSS_NAMES; 0 skips that loss.
    angle_huber_delta: degrees where the angle loss turns from quadratic to linear.
    focal_alpha, focal_beta: exponents of the CenterNet focal loss.
    letter_offset_weight, letter_size_weight: L1 terms of the letter loss.
    sigma_scale, min_sigma: gaussian of a letter center on the letter map, in
      cells: sigma = max(min_sigma, sigma_scale * box size / stride) per axis.
    clean_loss: 'l1' or 'bce'.

  Returns:
    A new ConfigDict with the defaults.
  """
  c = ml_collections.ConfigDict()
  c.weights = ml_collections.ConfigDict({"ctc": 1.0, "angle": 0.1, "letters": 1.0, "clean": 1.0})
  c.angle_huber_delta = 1.0
  c.focal_alpha = 2.0
  c.focal_beta = 4.0
  c.letter_offset_weight = 1.0
  c.letter_size_weight = 1.0
  c.sigma_scale = 1.0 / 6.0
  c.min_sigma = 0.5
  c.clean_loss = "l1"
  return c


def train_config() -> ml_collections.ConfigDict:
  """The training run's fields with their defaults. Step counts are optimizer steps of one global batch.

  Returns:
    A new ConfigDict, its `loss` block from loss_config().
  """
  t = ml_collections.ConfigDict()
  t.steps = 100_000  # train until this step; a resumed run may change it
  t.batch_size = 64  # GLOBAL batch: split evenly over the replicas
  # Optimizer: Adam or AdamW, linear warmup then cosine decay.
  t.optimizer = "adamw"  # 'adam' or 'adamw' (weight_decay applies to 'adamw' only)
  t.learning_rate = 1e-3  # peak, reached after warmup_steps
  t.warmup_steps = 1000
  t.decay_steps = 0  # step where the cosine reaches its floor; 0 = train.steps
  t.final_learning_rate_factor = 0.01  # the floor, as a fraction of learning_rate
  t.weight_decay = 1e-4  # decoupled; biases and normalization scales are left out
  t.clip_norm = 1.0  # clip the global gradient norm (over all replicas) to this; 0 = off
  t.loss = loss_config()
  # Numerics and devices.
  t.seed = 0  # initial weights
  # Fine-tuning: a first start takes the model weights of this workdir's (or checkpoint's) newest checkpoint, or of
  # an exported SavedModel folder; 'shipped' is the model shipped in the package (ocr_tf/assets/default_model).
  t.init_from = ""
  t.trainable = ""  # a regular expression: only layers whose name it matches (re.search) are trained; "" = all
  t.precision = "float32"  # 'float32', 'mixed_bfloat16' (CPU, TPU, recent GPUs) or 'mixed_float16' (GPU)
  t.jit_compile = False  # XLA-compile the forward and backward pass
  t.num_cpu_devices = 1  # > 1: that many logical CPU devices under MirroredStrategy
  # Logging, evaluation, checkpoints.
  t.log_every = 100  # steps between log lines and TensorBoard training scalars
  t.eval_every = 2000  # steps between evaluations; 0 = only at the end
  t.checkpoint_every = 1000  # steps between checkpoints; 0 = only at the end
  t.keep_checkpoints = 3
  t.eval_samples = 1024  # the first eval_samples of the validation stream
  t.eval_batch_size = 64  # GLOBAL batch of evaluation; must divide eval_samples
  t.num_images = 8  # validation images written to TensorBoard with true and predicted text
  t.letter_threshold = 0.3  # score of a letter-map peak to count as a predicted letter
  t.log_indices = False  # append each step's sample indices to WORKDIR/indices.tsv (step<TAB>i,j,...)
  t.deterministic = False  # tf.config.experimental.enable_op_determinism: a resumed run ends bit-identical
  return t


def validate_loss(loss: ml_collections.ConfigDict) -> None:
  """Checks the `train.loss` block: a weight >= 0 for each loss (one > 0), positive settings, the clean loss."""
  weights = loss.weights
  names = sorted(weights.keys()) if hasattr(weights, "keys") else None
  if names != sorted(LOSS_NAMES):
    fail(LOSS_BLOCK, "weights", weights, f"expected one weight for each of {', '.join(LOSS_NAMES)}")
  for name in LOSS_NAMES:
    check_float(weights, name, 0.0, block=f"{LOSS_BLOCK}.weights")
  if not any(weights[name] > 0 for name in LOSS_NAMES):
    fail(LOSS_BLOCK, "weights", weights.to_dict(), "at least one weight must be > 0")
  check_float(loss, "angle_huber_delta", 0.0, lo_open=True, block=LOSS_BLOCK)
  for field in ("focal_alpha", "focal_beta", "letter_offset_weight", "letter_size_weight"):
    check_float(loss, field, 0.0, block=LOSS_BLOCK)
  check_float(loss, "sigma_scale", 0.0, lo_open=True, block=LOSS_BLOCK)
  check_float(loss, "min_sigma", 0.0, lo_open=True, block=LOSS_BLOCK)
  if loss.clean_loss not in CLEAN_LOSSES:
    fail(LOSS_BLOCK, "clean_loss", loss.clean_loss, "must be 'l1' or 'bce'")


def _check_optimizer(t: ml_collections.ConfigDict) -> None:
  """Steps, batch, where the weights start and which train, the optimizer and its schedule."""
  check_int(t, "steps", 0, block=BLOCK)
  check_int(t, "batch_size", 1, block=BLOCK)
  check_str(t, "init_from", "must be a workdir or checkpoint path", block=BLOCK)
  trainable = check_str(t, "trainable", "must be a regular expression of layer names", block=BLOCK)
  try:
    re.compile(trainable)
  except re.error as e:
    fail(BLOCK, "trainable", trainable, f"not a regular expression ({e})")
  if t.optimizer not in OPTIMIZERS:
    fail(BLOCK, "optimizer", t.optimizer, f"must be one of {', '.join(map(repr, OPTIMIZERS))}")
  check_float(t, "learning_rate", 0.0, 10.0, lo_open=True, block=BLOCK)
  check_int(t, "warmup_steps", 0, block=BLOCK)
  check_int(t, "decay_steps", 0, block=BLOCK)
  if 0 < t.decay_steps <= t.warmup_steps:
    raise ConfigError(f"train.decay_steps={t.decay_steps} must be greater than "
                      f"train.warmup_steps={t.warmup_steps} (or 0: train.steps)")
  check_float(t, "final_learning_rate_factor", 0.0, 1.0, block=BLOCK)
  check_float(t, "weight_decay", 0.0, 1.0, block=BLOCK)
  check_float(t, "clip_norm", 0.0, block=BLOCK)


def _check_run(t: ml_collections.ConfigDict) -> None:
  """Seed, numerics, devices, and the logging, evaluation and checkpoint cadence."""
  check_int(t, "seed", 0, 2**31 - 1, block=BLOCK)
  if t.precision not in PRECISIONS:
    fail(BLOCK, "precision", t.precision, f"must be one of {', '.join(map(repr, PRECISIONS))}")
  check_bool(t, "jit_compile", block=BLOCK)
  check_int(t, "num_cpu_devices", 1, 64, block=BLOCK)
  check_int(t, "log_every", 1, block=BLOCK)
  check_int(t, "eval_every", 0, block=BLOCK)
  check_int(t, "checkpoint_every", 0, block=BLOCK)
  check_int(t, "keep_checkpoints", 1, block=BLOCK)
  check_int(t, "eval_samples", 1, block=BLOCK)
  check_int(t, "eval_batch_size", 1, block=BLOCK)
  if t.eval_samples % t.eval_batch_size:
    raise ConfigError(f"train.eval_samples={t.eval_samples} is not a multiple of "
                      f"train.eval_batch_size={t.eval_batch_size}")
  check_int(t, "num_images", 0, 64, block=BLOCK)
  check_float(t, "letter_threshold", 0.0, 1.0, lo_open=True, block=BLOCK)
  for field in ("log_indices", "deterministic"):
    check_bool(t, field, block=BLOCK)


def validate_train(t: ml_collections.ConfigDict) -> None:
  """Checks the `train` block alone (the replica count is checked when the strategy is known).

  Raises:
    ConfigError: one line naming the first bad field and its value.
  """
  _check_optimizer(t)
  validate_loss(t.loss)
  _check_run(t)

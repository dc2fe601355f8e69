"""The configuration schema: every field with its default, and its validation.

Config files in ``configs/`` start from :func:`get_config` and override a few
fields. A config has three blocks:

* ``data``: the generator (:func:`data_config`);
* ``model``: the network (``ocr_tf.model_config.model_config``; a preset's fields,
  so changing ``model.preset`` alone does not change the network: a config
  file picks the preset with :func:`model_config`);
* ``train``: the training run (:func:`train_config`), with its ``loss`` block
  (:func:`loss_config`).

:func:`validate_data`, :func:`validate_train` and :func:`validate_config`
check the blocks before any work starts and raise :class:`ConfigError` with
one line naming the field and the value.
"""

from __future__ import annotations

import math
import os
import re
import string

import ml_collections

ALNUM = string.digits + string.ascii_uppercase + string.ascii_lowercase


_ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
SHIPPED_CORPORA = {"words": os.path.join(_ASSETS, "words.txt"),  # data.corpus
                   "frequent": os.path.join(_ASSETS, "frequent_words.tsv")}  # data.frequent_words


def corpus_path(corpus: str) -> str:
  """data.corpus as a file path: a shipped corpus by name ('words'), else the path itself."""
  if corpus in SHIPPED_CORPORA and not os.path.isfile(corpus):
    return SHIPPED_CORPORA[corpus]
  return corpus


def normalize_address(address: str) -> str:
  """A tf.data service address: 'host:port' or 'grpc://host:port' -> 'grpc://host:port'; ValueError otherwise."""
  address = address.strip()
  if "://" not in address:
    address = "grpc://" + address
  protocol, _, rest = address.partition("://")
  host, _, port = rest.rpartition(":")
  if protocol != "grpc" or not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(f"{address!r}: expected HOST:PORT or grpc://HOST:PORT")
  return address


class ConfigError(ValueError):
  """An invalid configuration value. The message names the field and the value."""


def data_config() -> ml_collections.ConfigDict:
  """The generator's fields. Ranges are (min, max), probabilities in [0, 1]."""
  d = ml_collections.ConfigDict()
  d.atlas = ""  # '' = the atlas shipped with ocr_tf
  d.charset = ALNUM
  d.height = 32
  d.width = 256
  d.channels = 1  # 1 (grey) or 3 (RGB)
  d.seed = 0  # training stream
  d.validation_seed = 1  # the fixed validation stream
  # Text.
  d.min_length = 1
  d.max_length = 16
  d.corpus = ""  # a text file, or 'words' (the shipped English word list); sampled with corpus_probability
  d.corpus_mode = "words"  # 'words' or 'lines'
  d.corpus_probability = 0.0
  d.corpus_upper_probability = 0.0  # a corpus entry is set in CAPITALS ...
  d.corpus_title_probability = 0.0  # ... or with its first letter capitalized
  d.short_probability = 0.0  # a string (word or random) is cut to a length drawn from short_length ...
  d.short_length = (1, 4)  # ... (below min_length too), as pages give many short words
  d.digits_probability = 0.0  # a random (non-corpus) string is a number: digits only ...
  d.digits_length = (1, 6)  # ... of this many digits
  # Frequent words drawn by how often text uses them ('the', 'of', 'to', 'a' ...), which a uniform draw from a word
  # list almost never gives: a file of word<TAB>count lines, or 'frequent' (the shipped English list).
  d.frequent_words = ""
  d.frequent_probability = 0.0  # the chance a string is one of them (not cut short, not a number)
  # Real labelled images (a folder with labels.tsv: filename<TAB>text; see ocr_tf.real_data).
  d.real_dir = ""  # mixed into the training stream ...
  d.real_ratio = 0.0  # ... as this fraction of the samples (only the text head learns from them)
  d.real_validation_dir = ""  # evaluated as its own source: real/cer, real/word_accuracy
  # Generation on a tf.data service (ocr-tf data-service; see ocr_tf.data_service).
  d.data_service_address = ""  # HOST:PORT of the dispatcher; '' = generate in the training process
  d.data_service_on_loss = "local"  # a batch lost with a worker: 'local' = make it here, 'stop' = fail
  d.data_service_lookahead = 32  # a missing batch is lost once this many later ones have arrived ...
  d.data_service_timeout = 60.0  # ... or nothing has arrived for this many seconds
  # Layout, in em units of the rendered font (1 em = font size).
  d.font_px = (20.0, 30.0)  # em size in output pixels, before fitting
  d.spacing_em = (-0.05, 0.15)  # added to each advance
  d.max_overlap = 3  # at most this many consecutive letters may overlap one column
  d.margins_px = (0, 6)  # per side, around the line box (negative: tighter, ink is never cut)
  # Crop boxes as PDF word boxes give them: True fits [baseline - a em, baseline + b em] (a, b drawn
  # from the ranges below) instead of the font's whole line box and ink; ink beyond it is cut off.
  d.crop_box = False
  d.crop_ascent_em = (0.68, 0.8)
  d.crop_descent_em = (0.18, 0.28)
  d.position = "random"  # 'random' or 'start' (top-left after margins)
  d.min_fit_em_px = 6.0  # text scaled to fit may not get smaller than this
  # Geometry.
  d.max_angle = 5.0  # degrees, uniform in [-max_angle, max_angle]
  d.max_shear = 0.0  # degrees of italic-like shear, uniform in [-max_shear, max_shear] ...
  d.shear_right_only = False  # ... or in [0, max_shear]: tops lean right, as italics do
  d.shear_probability = 1.0  # the other samples are not sheared (upright type)
  d.italic_probability = -1.0  # < 0: every atlas font equally likely; else the chance of an italic or oblique one
  # Morphology on the text mask: integer ranges of 3x3 steps.
  d.morph_probability = 0.3
  d.morph_close_open = (-1, 1)  # < 0: close with that many steps, > 0: open
  d.morph_dilate_erode = (-1, 1)  # < 0: erode, > 0: dilate
  # Scratches: counts, lengths (output px), widths (px).
  d.short_scratches = (0, 10)
  d.short_scratch_length = (2, 20)
  d.short_scratch_width = (1, 2)
  d.long_scratches = (0, 2)
  d.long_scratch_length = (2, 200)
  d.long_scratch_width = (1, 3)
  d.long_scratch_black = True  # long scratches black (random alpha), as in the original
  # Colours (levels in [0, 1]).
  d.paper_level = (0.6, 1.0)
  d.paper_tint = 0.1  # per-channel jitter of the paper colour (RGB)
  d.ink_level = (0.0, 0.35)
  d.ink_tint = 0.15
  d.invert_probability = 0.1  # light text on dark paper
  # Background: multi-scale noise.
  d.background_noise = (0.0, 0.3)  # amplitude
  d.background_saturation = (0.0, 0.5)
  d.grain = (0.0, 0.25)  # blend weight of per-pixel noise
  d.grain_contrast = (0.2, 0.6)
  d.grain_saturation = (0.0, 0.5)
  d.grain_brightness = (0.8, 1.2)
  # Optics and sensor.
  d.blur_probability = 0.5
  d.blur_sigma = (0.0, 1.2)  # output px
  d.illumination_probability = 0.3
  d.illumination_strength = (0.0, 0.4)  # depth of a smooth light gradient
  d.downscale_probability = 0.15  # render at a lower resolution and scale back up ...
  d.downscale_factor = (2.0, 2.0)  # ... by this factor (area-average down, bilinear up)
  d.low_res_noise = (0.0, 0.0)  # std of Gaussian noise added at that lower resolution (a small crop's own noise)
  d.low_res_noise_after_contrast = False  # low_res_noise is the std in the final image, whatever the contrast
  d.blur_at_low_res = False  # blur_sigma counts pixels of the lower resolution when a sample is downscaled
  d.jpeg_probability = 0.15
  d.jpeg_quality = (15, 60)
  d.contrast = (0.5, 1.0)
  d.brightness = (0.8, 1.1)
  d.saturation = (0.0, 1.0)
  return d


def model_config(preset: str = "default") -> ml_collections.ConfigDict:
  """The `model` block of one preset ('tiny', 'default', 'large'; see ocr_tf.model_config)."""
  from ocr_tf import model_config as model_config_lib  # pylint: disable=import-outside-toplevel
  return model_config_lib.model_config(preset)


LOSS_NAMES = ("ctc", "angle", "letters", "clean")


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
  """The training run's fields. Step counts are optimizer steps of one global batch."""
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
  t.letter_threshold = 0.3
  t.log_indices = False  # append each step's sample indices to WORKDIR/indices.tsv (step<TAB>i,j,...)
  t.deterministic = False  # tf.config.experimental.enable_op_determinism: a resumed run ends bit-identical  # score of a letter-map peak to count as a predicted letter
  return t


def get_config() -> ml_collections.ConfigDict:
  """Defaults for every field; configs/*.py start from here."""
  config = ml_collections.ConfigDict()
  config.data = data_config()
  config.model = model_config("default")
  config.train = train_config()
  return config


_PROBABILITIES = ("corpus_probability", "corpus_upper_probability", "corpus_title_probability",
                  "morph_probability", "invert_probability", "blur_probability", "illumination_probability",
                  "downscale_probability", "jpeg_probability", "short_probability",
                  "digits_probability", "shear_probability", "frequent_probability")
_RANGES_NONNEG = ("margins_px",)  # may be negative: handled below
_LEVEL_RANGES = ("paper_level", "ink_level", "background_noise", "background_saturation", "grain",
                 "grain_contrast", "grain_saturation", "contrast", "saturation",
                 "illumination_strength")


def _fail(field: str, value, why: str, block: str = "data"):
  raise ConfigError(f"{block}.{field}={value!r}: {why}")


def _range(d, field: str, lo=None, hi=None, integer=False):
  value = d[field]
  if not isinstance(value, (tuple, list)) or len(value) != 2:
    _fail(field, value, "expected a (min, max) pair")
  a, b = value
  for v in (a, b):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
      _fail(field, value, "expected two finite numbers")
    if integer and int(v) != v:
      _fail(field, value, "expected whole numbers")
  if a > b:
    _fail(field, value, "min is greater than max")
  if lo is not None and a < lo:
    _fail(field, value, f"must be >= {lo}")
  if hi is not None and b > hi:
    _fail(field, value, f"must be <= {hi}")
  return a, b


def _int(d, field: str, lo: int, hi: int | None = None, block: str = "data") -> int:
  v = d[field]
  if isinstance(v, bool) or not isinstance(v, int):
    _fail(field, v, "expected a whole number", block)
  if v < lo or (hi is not None and v > hi):
    _fail(field, v, f"must be in [{lo}, {hi}]" if hi is not None else f"must be >= {lo}", block)
  return v


def _float(d, field: str, lo: float, hi: float | None = None, block: str = "train",
           lo_open: bool = False) -> float:
  v = d[field]
  if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
    _fail(field, v, "expected a finite number", block)
  if v < lo or (lo_open and v == lo):
    _fail(field, v, f"must be > {lo}" if lo_open else f"must be >= {lo}", block)
  if hi is not None and v > hi:
    _fail(field, v, f"must be <= {hi}", block)
  return float(v)


def validate_data(d: ml_collections.ConfigDict) -> None:
  """Checks the `data` block alone (the atlas-dependent checks are in synth)."""
  _int(d, "height", 8, 4096)
  _int(d, "width", 8, 16384)
  if d.channels not in (1, 3):
    _fail("channels", d.channels, "must be 1 or 3")
  _int(d, "min_length", 1)
  _int(d, "max_length", 1, 1024)
  if d.min_length > d.max_length:
    raise ConfigError(f"data.min_length={d.min_length} is greater than data.max_length={d.max_length}")
  if not isinstance(d.charset, str) or not d.charset:
    _fail("charset", d.charset, "must be a non-empty string")
  if len(set(d.charset)) != len(d.charset):
    _fail("charset", d.charset, "repeats characters")
  for field in ("seed", "validation_seed"):
    _int(d, field, 0, 2**31 - 1)
  for field in _PROBABILITIES:
    v = d.get(field, 0.0)  # fields added later are absent from older runs' configs
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
      _fail(field, v, "a probability must be in [0, 1]")
  if d.corpus_probability > 0 and not d.corpus:
    _fail("corpus_probability", d.corpus_probability, "needs data.corpus (a text file)")
  if d.corpus:
    if not isinstance(d.corpus, str) or not os.path.isfile(corpus_path(d.corpus)):
      _fail("corpus", d.corpus, "no such file (nor a shipped corpus name: words)")
    if d.corpus_mode not in ("words", "lines"):
      _fail("corpus_mode", d.corpus_mode, "must be 'words' or 'lines'")
  frequent = d.get("frequent_words", "")
  if d.get("frequent_probability", 0.0) > 0 and not frequent:
    _fail("frequent_probability", d.frequent_probability, "needs data.frequent_words (a file of word<TAB>count lines)")
  if frequent and (not isinstance(frequent, str) or not os.path.isfile(corpus_path(frequent))):
    _fail("frequent_words", frequent, "no such file (nor a shipped list name: frequent)")
  ratio = d.get("real_ratio", 0.0)
  if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
    _fail("real_ratio", ratio, "a fraction must be in [0, 1]")
  if ratio > 0 and not d.get("real_dir", ""):
    _fail("real_ratio", ratio, "needs data.real_dir (a folder with labels.tsv)")
  if d.get("real_dir", "") and not ratio:
    _fail("real_dir", d.real_dir, "is set but data.real_ratio is 0: give the fraction of real samples")
  for field in ("real_dir", "real_validation_dir"):
    folder = d.get(field, "")
    if not isinstance(folder, str):
      _fail(field, folder, "must be a folder path")
    if folder and not os.path.isfile(os.path.join(folder, "labels.tsv")):
      _fail(field, folder, "has no labels.tsv" if os.path.isdir(folder) else "no such folder")
  if d.corpus_upper_probability + d.corpus_title_probability > 1.0:
    _fail("corpus_title_probability", d.corpus_title_probability,
          f"plus data.corpus_upper_probability={d.corpus_upper_probability} must be <= 1")
  _range(d, "downscale_factor", lo=1.0, hi=8.0)
  if "low_res_noise" in d:
    _range(d, "low_res_noise", lo=0.0, hi=1.0)
  if "short_length" in d:
    _range(d, "short_length", lo=1, hi=1024, integer=True)
  digits = d.get("digits_probability", 0.0) > 0
  if "digits_length" in d:
    _range(d, "digits_length", lo=1, hi=1024, integer=True)
    if digits and d.digits_length[1] > d.max_length:
      _fail("digits_length", d.digits_length, f"must fit in data.max_length={d.max_length}")
  if digits and not any(c.isdigit() for c in d.charset):
    _fail("digits_probability", d.digits_probability, "the charset has no digits")
  italic = d.get("italic_probability", -1.0)
  if isinstance(italic, bool) or not isinstance(italic, (int, float)) or not (italic < 0 or italic <= 1.0):
    _fail("italic_probability", italic, "must be in [0, 1], or negative for every font equally likely")
  for field in ("crop_box", "blur_at_low_res", "low_res_noise_after_contrast",
                "shear_right_only"):  # absent from older runs' configs
    if not isinstance(d.get(field, False), bool):
      _fail(field, d[field], "must be True or False")
  if "crop_ascent_em" in d:
    _range(d, "crop_ascent_em", lo=0.2, hi=2.0)
    _range(d, "crop_descent_em", lo=0.0, hi=1.0)
  address = d.get("data_service_address", "")
  if not isinstance(address, str):
    _fail("data_service_address", address, "expected HOST:PORT")
  if address:
    try:
      normalize_address(address)
    except ValueError:
      _fail("data_service_address", address, "expected HOST:PORT or grpc://HOST:PORT")
  if d.get("data_service_on_loss", "local") not in ("local", "stop"):
    _fail("data_service_on_loss", d.data_service_on_loss, "must be 'local' or 'stop'")
  if "data_service_lookahead" in d:
    _int(d, "data_service_lookahead", 1, 100_000)
  if "data_service_timeout" in d:
    _float(d, "data_service_timeout", 0.0, 86_400.0, block="data", lo_open=True)
  if d.position not in ("random", "start"):
    _fail("position", d.position, "must be 'random' or 'start'")
  _range(d, "font_px", lo=1.0)
  if d.font_px[0] <= 0:
    _fail("font_px", d.font_px, "sizes must be > 0")
  _range(d, "spacing_em", lo=-1.0, hi=4.0)
  _int(d, "max_overlap", 1, 8)
  _range(d, "margins_px", lo=-64, hi=4096, integer=True)
  if not (isinstance(d.min_fit_em_px, (int, float)) and d.min_fit_em_px > 0):
    _fail("min_fit_em_px", d.min_fit_em_px, "must be > 0")
  _float(d, "max_angle", 0.0, 45.0, block="data")
  _float(d, "max_shear", 0.0, 30.0, block="data")
  _range(d, "morph_close_open", lo=-4, hi=4, integer=True)
  _range(d, "morph_dilate_erode", lo=-4, hi=4, integer=True)
  _range(d, "short_scratches", lo=0, hi=500, integer=True)
  _range(d, "long_scratches", lo=0, hi=100, integer=True)
  _range(d, "short_scratch_length", lo=1, hi=4096, integer=True)
  _range(d, "long_scratch_length", lo=1, hi=8192, integer=True)
  _range(d, "short_scratch_width", lo=1, hi=16, integer=True)
  _range(d, "long_scratch_width", lo=1, hi=32, integer=True)
  for field in _LEVEL_RANGES:
    _range(d, field, lo=0.0, hi=1.0)
  for field in ("paper_tint", "ink_tint"):
    _float(d, field, 0.0, 1.0, block="data")
  _range(d, "grain_brightness", lo=0.0, hi=3.0)
  _range(d, "brightness", lo=0.0, hi=3.0)
  _range(d, "blur_sigma", lo=0.0, hi=8.0)
  _range(d, "jpeg_quality", lo=1, hi=100, integer=True)


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
OPTIMIZERS = ("adam", "adamw")


def _validate_loss(loss: ml_collections.ConfigDict) -> None:
  block = "train.loss"
  weights = loss.weights
  names = sorted(weights.keys()) if hasattr(weights, "keys") else None
  if names != sorted(LOSS_NAMES):
    _fail("weights", weights, f"expected one weight for each of {', '.join(LOSS_NAMES)}", block)
  for name in LOSS_NAMES:
    _float(weights, name, 0.0, block=f"{block}.weights")
  if not any(weights[name] > 0 for name in LOSS_NAMES):
    _fail("weights", weights.to_dict(), "at least one weight must be > 0", block)
  _float(loss, "angle_huber_delta", 0.0, block=block, lo_open=True)
  for field in ("focal_alpha", "focal_beta", "letter_offset_weight", "letter_size_weight"):
    _float(loss, field, 0.0, block=block)
  _float(loss, "sigma_scale", 0.0, block=block, lo_open=True)
  _float(loss, "min_sigma", 0.0, block=block, lo_open=True)
  if loss.clean_loss not in ("l1", "bce"):
    _fail("clean_loss", loss.clean_loss, "must be 'l1' or 'bce'", block)


def validate_train(t: ml_collections.ConfigDict) -> None:
  """Checks the `train` block alone (the replica count is checked when the strategy is known)."""
  b = "train"
  _int(t, "steps", 0, block=b)
  _int(t, "batch_size", 1, block=b)
  init_from = t.get("init_from", "")
  if not isinstance(init_from, str):
    _fail("init_from", init_from, "must be a workdir or checkpoint path", b)
  trainable = t.get("trainable", "")
  if not isinstance(trainable, str):
    _fail("trainable", trainable, "must be a regular expression of layer names", b)
  try:
    re.compile(trainable)
  except re.error as e:
    _fail("trainable", trainable, f"not a regular expression ({e})", b)
  if t.optimizer not in OPTIMIZERS:
    _fail("optimizer", t.optimizer, f"must be one of {', '.join(map(repr, OPTIMIZERS))}", b)
  _float(t, "learning_rate", 0.0, 10.0, lo_open=True)
  _int(t, "warmup_steps", 0, block=b)
  _int(t, "decay_steps", 0, block=b)
  if 0 < t.decay_steps <= t.warmup_steps:
    raise ConfigError(f"train.decay_steps={t.decay_steps} must be greater than "
                      f"train.warmup_steps={t.warmup_steps} (or 0: train.steps)")
  _float(t, "final_learning_rate_factor", 0.0, 1.0)
  _float(t, "weight_decay", 0.0, 1.0)
  _float(t, "clip_norm", 0.0)
  _validate_loss(t.loss)
  _int(t, "seed", 0, 2**31 - 1, block=b)
  if t.precision not in PRECISIONS:
    _fail("precision", t.precision, f"must be one of {', '.join(map(repr, PRECISIONS))}", b)
  if not isinstance(t.jit_compile, bool):
    _fail("jit_compile", t.jit_compile, "must be True or False", b)
  _int(t, "num_cpu_devices", 1, 64, block=b)
  _int(t, "log_every", 1, block=b)
  _int(t, "eval_every", 0, block=b)
  _int(t, "checkpoint_every", 0, block=b)
  _int(t, "keep_checkpoints", 1, block=b)
  _int(t, "eval_samples", 1, block=b)
  _int(t, "eval_batch_size", 1, block=b)
  if t.eval_samples % t.eval_batch_size:
    raise ConfigError(f"train.eval_samples={t.eval_samples} is not a multiple of "
                      f"train.eval_batch_size={t.eval_batch_size}")
  _int(t, "num_images", 0, 64, block=b)
  _float(t, "letter_threshold", 0.0, 1.0, lo_open=True)
  for field in ("log_indices", "deterministic"):
    if not isinstance(t.get(field, False), bool):
      _fail(field, t[field], "must be True or False", b)


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Checks every block of a full config: data, model (against data), train."""
  for block in ("data", "model", "train"):
    if block not in config:
      raise ConfigError(f"config has no `{block}` block: start the config file from "
                        f"ocr_tf.config_base.get_config()")
  validate_data(config.data)
  from ocr_tf import model_config as model_config_lib  # pylint: disable=import-outside-toplevel
  model_config_lib.validate(config.model, config.data)
  validate_train(config.train)

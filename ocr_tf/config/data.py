"""The `data` block: the generator's fields with their defaults, and their checks.

:func:`validate_data` checks the block alone (the checks that need the atlas
are in ocr_tf.synth), one topic at a time; each bad value stops it with a
ConfigError of one line naming the field and the value.
"""

from __future__ import annotations

import os
import string

import ml_collections

from ocr_tf.assets import corpus_path
from ocr_tf.config.checks import (ConfigError, check_bool, check_float, check_int, check_probability, check_range,
                                  check_str, check_unit, fail)

ALNUM = string.digits + string.ascii_uppercase + string.ascii_lowercase
DATA_SERVICE_ON_LOSS = ("local", "stop")  # data.data_service_on_loss
BLOCK = "data"


# ------------------------------------------------------------------ defaults


def _stream_and_text_fields(d: ml_collections.ConfigDict) -> None:
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


def _real_and_service_fields(d: ml_collections.ConfigDict) -> None:
  # Real labelled images (a folder with labels.tsv: filename<TAB>text; see ocr_tf.real_data).
  d.real_dir = ""  # mixed into the training stream ...
  d.real_ratio = 0.0  # ... as this fraction of the samples (only the text head learns from them)
  d.real_validation_dir = ""  # evaluated as its own source: real/cer, real/word_accuracy
  # Generation on a tf.data service (ocr-tf data-service; see ocr_tf.data_service).
  d.data_service_address = ""  # HOST:PORT of the dispatcher; '' = generate in the training process
  d.data_service_on_loss = "local"  # a batch lost with a worker: 'local' = make it here, 'stop' = fail
  d.data_service_lookahead = 32  # a missing batch is lost once this many later ones have arrived ...
  d.data_service_timeout = 60.0  # ... or nothing has arrived for this many seconds


def _layout_and_geometry_fields(d: ml_collections.ConfigDict) -> None:
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


def _mask_and_paper_fields(d: ml_collections.ConfigDict) -> None:
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


def _optics_fields(d: ml_collections.ConfigDict) -> None:
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


def data_config() -> ml_collections.ConfigDict:
  """The generator's fields with their defaults. Ranges are (min, max), probabilities in [0, 1].

  Returns:
    A new ConfigDict; configs/*.py change some of its fields.
  """
  d = ml_collections.ConfigDict()
  for fields in (_stream_and_text_fields, _real_and_service_fields, _layout_and_geometry_fields,
                 _mask_and_paper_fields, _optics_fields):
    fields(d)
  return d


# ------------------------------------------------------------------ checks


PROBABILITIES = ("corpus_probability", "corpus_upper_probability", "corpus_title_probability",
                 "morph_probability", "invert_probability", "blur_probability", "illumination_probability",
                 "downscale_probability", "jpeg_probability", "short_probability",
                 "digits_probability", "shear_probability", "frequent_probability")
LEVEL_RANGES = ("paper_level", "ink_level", "background_noise", "background_saturation", "grain",
                "grain_contrast", "grain_saturation", "contrast", "saturation", "illumination_strength")


def normalize_address(address: str) -> str:
  """A tf.data service address in the form tf.data takes it.

  Args:
    address: 'host:port' or 'grpc://host:port'.

  Returns:
    'grpc://host:port'. Raises ValueError (naming the address) for anything else.
  """
  address = address.strip()
  if "://" not in address:
    address = "grpc://" + address
  protocol, _, rest = address.partition("://")
  host, _, port = rest.rpartition(":")
  if protocol != "grpc" or not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(f"{address!r}: expected HOST:PORT or grpc://HOST:PORT")
  return address


def _check_image(d: ml_collections.ConfigDict) -> None:
  """Image size and channels, and the two stream seeds."""
  check_int(d, "height", 8, 4096, block=BLOCK)
  check_int(d, "width", 8, 16384, block=BLOCK)
  if d.channels not in (1, 3):
    fail(BLOCK, "channels", d.channels, "must be 1 or 3")
  for field in ("seed", "validation_seed"):
    check_int(d, field, 0, 2**31 - 1, block=BLOCK)


def _check_text(d: ml_collections.ConfigDict) -> None:
  """The strings: lengths, charset, every probability, case of corpus entries, short strings, numbers, fonts."""
  check_int(d, "min_length", 1, block=BLOCK)
  check_int(d, "max_length", 1, 1024, block=BLOCK)
  if d.min_length > d.max_length:
    raise ConfigError(f"data.min_length={d.min_length} is greater than data.max_length={d.max_length}")
  if not isinstance(d.charset, str) or not d.charset:
    fail(BLOCK, "charset", d.charset, "must be a non-empty string")
  if len(set(d.charset)) != len(d.charset):
    fail(BLOCK, "charset", d.charset, "repeats characters")
  for field in PROBABILITIES:
    check_probability(d, field, block=BLOCK)
  if d.corpus_upper_probability + d.corpus_title_probability > 1.0:
    fail(BLOCK, "corpus_title_probability", d.corpus_title_probability,
         f"plus data.corpus_upper_probability={d.corpus_upper_probability} must be <= 1")
  check_range(d, "short_length", lo=1, hi=1024, integer=True, block=BLOCK)
  check_range(d, "digits_length", lo=1, hi=1024, integer=True, block=BLOCK)
  if d.digits_probability > 0 and d.digits_length[1] > d.max_length:
    fail(BLOCK, "digits_length", d.digits_length, f"must fit in data.max_length={d.max_length}")
  if d.digits_probability > 0 and not any(c.isdigit() for c in d.charset):
    fail(BLOCK, "digits_probability", d.digits_probability, "the charset has no digits")
  italic = d.italic_probability
  if isinstance(italic, bool) or not isinstance(italic, (int, float)) or not (italic < 0 or italic <= 1.0):
    fail(BLOCK, "italic_probability", italic, "must be in [0, 1], or negative for every font equally likely")


def _check_word_lists(d: ml_collections.ConfigDict) -> None:
  """The corpus and the frequent-word list: set when their probability is > 0, and readable files."""
  if d.corpus_probability > 0 and not d.corpus:
    fail(BLOCK, "corpus_probability", d.corpus_probability, "needs data.corpus (a text file)")
  if d.corpus:
    if not isinstance(d.corpus, str) or not os.path.isfile(corpus_path(d.corpus)):
      fail(BLOCK, "corpus", d.corpus, "no such file (nor a shipped corpus name: words)")
    if d.corpus_mode not in ("words", "lines"):
      fail(BLOCK, "corpus_mode", d.corpus_mode, "must be 'words' or 'lines'")
  frequent = d.frequent_words
  if d.frequent_probability > 0 and not frequent:
    fail(BLOCK, "frequent_probability", d.frequent_probability,
         "needs data.frequent_words (a file of word<TAB>count lines)")
  if frequent and (not isinstance(frequent, str) or not os.path.isfile(corpus_path(frequent))):
    fail(BLOCK, "frequent_words", frequent, "no such file (nor a shipped list name: frequent)")


def _check_real(d: ml_collections.ConfigDict) -> None:
  """Real labelled images: a fraction with its folder, and folders that hold a labels.tsv."""
  ratio = check_unit(d, "real_ratio", "a fraction must be in [0, 1]", block=BLOCK)
  if ratio > 0 and not d.real_dir:
    fail(BLOCK, "real_ratio", ratio, "needs data.real_dir (a folder with labels.tsv)")
  if d.real_dir and not ratio:
    fail(BLOCK, "real_dir", d.real_dir, "is set but data.real_ratio is 0: give the fraction of real samples")
  for field in ("real_dir", "real_validation_dir"):
    folder = check_str(d, field, "must be a folder path", block=BLOCK)
    if folder and not os.path.isfile(os.path.join(folder, "labels.tsv")):
      fail(BLOCK, field, folder, "has no labels.tsv" if os.path.isdir(folder) else "no such folder")


def _check_data_service(d: ml_collections.ConfigDict) -> None:
  """The tf.data service: its address, what a lost batch does, when a batch counts as lost."""
  address = check_str(d, "data_service_address", "expected HOST:PORT", block=BLOCK)
  if address:
    try:
      normalize_address(address)
    except ValueError:
      fail(BLOCK, "data_service_address", address, "expected HOST:PORT or grpc://HOST:PORT")
  if d.data_service_on_loss not in DATA_SERVICE_ON_LOSS:
    fail(BLOCK, "data_service_on_loss", d.data_service_on_loss, "must be 'local' or 'stop'")
  check_int(d, "data_service_lookahead", 1, 100_000, block=BLOCK)
  check_float(d, "data_service_timeout", 0.0, 86_400.0, lo_open=True, block=BLOCK)


def _check_layout(d: ml_collections.ConfigDict) -> None:
  """Where the text goes: crop box, position, em size, spacing, overlap, margins, smallest fitted size."""
  check_bool(d, "crop_box", block=BLOCK)
  check_range(d, "crop_ascent_em", lo=0.2, hi=2.0, block=BLOCK)
  check_range(d, "crop_descent_em", lo=0.0, hi=1.0, block=BLOCK)
  if d.position not in ("random", "start"):
    fail(BLOCK, "position", d.position, "must be 'random' or 'start'")
  check_range(d, "font_px", lo=1.0, block=BLOCK)
  if d.font_px[0] <= 0:
    fail(BLOCK, "font_px", d.font_px, "sizes must be > 0")
  check_range(d, "spacing_em", lo=-1.0, hi=4.0, block=BLOCK)
  check_int(d, "max_overlap", 1, 8, block=BLOCK)
  check_range(d, "margins_px", lo=-64, hi=4096, integer=True, block=BLOCK)
  if not (isinstance(d.min_fit_em_px, (int, float)) and d.min_fit_em_px > 0):
    fail(BLOCK, "min_fit_em_px", d.min_fit_em_px, "must be > 0")


def _check_geometry(d: ml_collections.ConfigDict) -> None:
  """Rotation and shear."""
  check_float(d, "max_angle", 0.0, 45.0, block=BLOCK)
  check_float(d, "max_shear", 0.0, 30.0, block=BLOCK)
  check_bool(d, "shear_right_only", block=BLOCK)


def _check_mask_and_paper(d: ml_collections.ConfigDict) -> None:
  """Morphology, scratches, colour levels and tints, background and grain."""
  check_range(d, "morph_close_open", lo=-4, hi=4, integer=True, block=BLOCK)
  check_range(d, "morph_dilate_erode", lo=-4, hi=4, integer=True, block=BLOCK)
  check_range(d, "short_scratches", lo=0, hi=500, integer=True, block=BLOCK)
  check_range(d, "long_scratches", lo=0, hi=100, integer=True, block=BLOCK)
  check_range(d, "short_scratch_length", lo=1, hi=4096, integer=True, block=BLOCK)
  check_range(d, "long_scratch_length", lo=1, hi=8192, integer=True, block=BLOCK)
  check_range(d, "short_scratch_width", lo=1, hi=16, integer=True, block=BLOCK)
  check_range(d, "long_scratch_width", lo=1, hi=32, integer=True, block=BLOCK)
  for field in LEVEL_RANGES:
    check_range(d, field, lo=0.0, hi=1.0, block=BLOCK)
  for field in ("paper_tint", "ink_tint"):
    check_float(d, field, 0.0, 1.0, block=BLOCK)
  check_range(d, "grain_brightness", lo=0.0, hi=3.0, block=BLOCK)


def _check_optics(d: ml_collections.ConfigDict) -> None:
  """Brightness, blur, downscaling and its noise, JPEG quality."""
  check_range(d, "brightness", lo=0.0, hi=3.0, block=BLOCK)
  check_range(d, "blur_sigma", lo=0.0, hi=8.0, block=BLOCK)
  check_range(d, "downscale_factor", lo=1.0, hi=8.0, block=BLOCK)
  check_range(d, "low_res_noise", lo=0.0, hi=1.0, block=BLOCK)
  for field in ("blur_at_low_res", "low_res_noise_after_contrast"):
    check_bool(d, field, block=BLOCK)
  check_range(d, "jpeg_quality", lo=1, hi=100, integer=True, block=BLOCK)


# Each topic's checks, in the order they run: a later one may rely on the types an earlier one checked.
_TOPICS = (_check_image, _check_text, _check_word_lists, _check_real, _check_data_service, _check_layout,
           _check_geometry, _check_mask_and_paper, _check_optics)


def validate_data(d: ml_collections.ConfigDict) -> None:
  """Checks the `data` block alone (the atlas-dependent checks are in synth).

  Args:
    d: a full data block (as data_config() gives, or ocr_tf.config.upgrade
      makes of an older config.json).

  Raises:
    ConfigError: one line naming the first bad field and its value.
  """
  for check in _TOPICS:
    check(d)

r"""The ocr-tf command: thin flag parsing around the library.

  ocr-tf preview --config=configs/seed.py --count=16 --out=/tmp/preview
  ocr-tf bench --config=configs/seed.py --seconds=30
  ocr-tf train --config=configs/tiny.py --workdir=/tmp/ocr_tiny --config.train.steps=100
  ocr-tf export --workdir=/tmp/ocr_tiny --out=/tmp/ocr_tiny_model
  ocr-tf predict --model=/tmp/ocr_tiny/export word1.png word2.jpg [--json] [--draw=/tmp/drawn]
  ocr-tf evaluate --model=/tmp/ocr_tiny/export --data=folder_with_labels_tsv
  ocr-tf predict word.png   # the model shipped with the package (ocr_tf/assets/MODEL_CARD.md)
  ocr-tf predict --lexicon=none word.png   # the model's own reading, without the word list
  ocr-tf data-service dispatcher --port=5050
  ocr-tf data-service worker --dispatcher=HOST:5050 --port=5051 [--worker_host=NAME]
  ocr-tf train ... --config.data.data_service_address=HOST:5050

`train` resumes from the workdir's newest checkpoint when run again, and
exports the final model to WORKDIR/export (not with --noexport).

`--config` takes a config file, or the name of a shipped one (tiny, default,
seed, words, multi_gpu: the package's ocr_tf.configs); fields are overridden
with `--config.data.max_length=20`. `python -m ocr_tf ...` is the same command.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from ocr_tf import config as config_lib

_COMMANDS = ("preview", "bench", "train", "export", "predict", "evaluate", "data-service")

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (or shipped config name).",
                                          lock_config=True)
_OUT = flags.DEFINE_string("out", None, "preview: output folder; export: SavedModel folder.")
_COUNT = flags.DEFINE_integer("count", 16, "preview: number of samples.", lower_bound=1)
_START = flags.DEFINE_integer("start", 0, "preview: first sample index.", lower_bound=0)
_SEED = flags.DEFINE_integer("seed", None, "Stream seed (default: the config's data.seed).",
                             lower_bound=0)
_VALIDATION = flags.DEFINE_bool("validation", False, "Use the validation stream's seed.")
_SECONDS = flags.DEFINE_float("seconds", 30.0, "bench: measured window after warm-up.")
_SAMPLES = flags.DEFINE_integer("samples", None, "bench: measure this many samples instead.")
_THREADS = flags.DEFINE_integer("threads", None, "bench: run the pipeline on this many threads (default: "
                                "AUTOTUNE over all cores); 1 measures one core's worth.", lower_bound=1)
_WARMUP = flags.DEFINE_integer("warmup_batches", 5, "bench: batches pulled before the window (and the start RSS "
                               "reading); a few hundred let the prefetch buffers fill first.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 32, "bench/preview/predict/evaluate: batch size.", lower_bound=1)
_WORKDIR = flags.DEFINE_string("workdir", None,
                                "train: checkpoints, TensorBoard events, metrics (resumes); export: the run to export.")
_MODEL = flags.DEFINE_string("model", None, "predict/evaluate: SavedModel folder (default: the shipped model).")
_JSON = flags.DEFINE_bool("json", False, "predict: one JSON object per image.")
_DRAW = flags.DEFINE_string("draw", None, "predict: write each image with its letter boxes, and its cleaned image, here.")
_DATA = flags.DEFINE_string("data", None, "evaluate: folder with images and labels.tsv (filename<TAB>text).")
_ANGLE_MIRROR = flags.DEFINE_bool("angle_mirror", False, "export: the angle is the half difference of the "
                                   "estimates for the image and its mirror image (the model runs twice).")
_ANGLE_VIEWS = flags.DEFINE_integer("angle_views", 1, "export: the angle is the mean of the estimates for the image "
                                    "and N-1 copies moved by a pixel or two (serving.ANGLE_SHIFTS). A copy runs "
                                    "the backbone and the angle head: about 0.8 of a pass of the model, half "
                                    "that for a crop at most 3/8 of the canvas wide, twice with --angle_mirror.")
_EXPORT = flags.DEFINE_bool("export", True, "train: export the final model to WORKDIR/export (--noexport: "
                            "checkpoints only; `ocr-tf export` can export them later).")
_LEXICON = flags.DEFINE_string("lexicon", "words", "predict/evaluate: word list that corrects readings the model "
                               "was unsure of ('words': the shipped English list; a file of words; 'none': the "
                               "model's own reading).")
_PORT = flags.DEFINE_integer("port", 0, "data-service: port to serve on (0: any free port, printed).",
                             lower_bound=0, upper_bound=65535)
_DISPATCHER = flags.DEFINE_string("dispatcher", None, "data-service worker: the dispatcher's HOST:PORT.")
_WORKER_HOST = flags.DEFINE_string("worker_host", "localhost", "data-service worker: the name trainers reach "
                                   "this machine by (its host name on a cluster).")
_WORK_DIR = flags.DEFINE_string("work_dir", "", "data-service dispatcher: journal its state here, so a restarted "
                                "dispatcher recovers its jobs.")


def shipped_config_folder() -> str:
  """The folder of the shipped config files.

  Returns:
    Run from a checkout (installed in editable mode or not), the repository's
    configs/ folder next to ocr_tf/; else the installed package ocr_tf.configs.
  """
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  checkout = os.path.join(root, "configs")
  if os.path.isfile(os.path.join(root, "setup.py")) and os.path.isdir(checkout):
    return checkout
  try:
    spec = importlib.util.find_spec("ocr_tf.configs")
  except ImportError:
    spec = None
  if spec is not None and spec.submodule_search_locations:
    return list(spec.submodule_search_locations)[0]
  return checkout


def shipped_config_path(name: str) -> str | None:
  """The file of the shipped config `name` ('tiny', 'default' ...), for --config=<name>; None if there is none."""
  path = os.path.join(shipped_config_folder(), f"{name}.py")
  return path if os.path.isfile(path) else None


def _resolve_config_arg(argv: list[str]) -> list[str]:
  out = []
  for arg in argv:
    if arg.startswith("--config=") and not arg.endswith(".py") and ":" not in arg:
      name = arg.split("=", 1)[1]
      path = shipped_config_path(name)
      if path:
        arg = f"--config={path}"
    out.append(arg)
  return out


def _fail(message: str) -> None:
  print(f"ocr-tf: {message}", file=sys.stderr)
  sys.exit(2)


def _checked(check, config):
  """check(config) (ocr_tf.config.checked or checked_data) before TensorFlow is imported: a bad value is
  reported in a fraction of a second, and every part of the command takes the checked config as it is."""
  try:
    return check(config)
  except config_lib.ConfigError as e:
    _fail(str(e))


def _generator(d: config_lib.CheckedConfig):
  """The generator of a checked data block, on the stream --seed or --validation pick."""
  from ocr_tf import atlas as atlas_lib  # pylint: disable=import-outside-toplevel
  from ocr_tf import synth  # pylint: disable=import-outside-toplevel
  try:
    atlas = atlas_lib.load_atlas(d.atlas or None)
    seed = _SEED.value if _SEED.value is not None else (d.validation_seed if _VALIDATION.value else d.seed)
    gen = synth.Generator(d, atlas, seed)
  except (config_lib.ConfigError, atlas_lib.AtlasError) as e:
    _fail(str(e))
  for line in gen.dropped_fonts:
    logging.info("font left out for this charset: %s", line)
  return gen


def cmd_preview(config) -> None:
  if not _OUT.value:
    _fail("preview needs --out=FOLDER")
  data = _checked(config_lib.checked_data, config.data)
  from ocr_tf import preview  # pylint: disable=import-outside-toplevel
  gen = _generator(data)
  files = preview.write_preview(gen, _OUT.value, _COUNT.value, _START.value,
                                batch_size=min(_BATCH.value, _COUNT.value),
                                log=lambda m: print(m, file=sys.stderr))
  print(f"wrote {len(files)} files to {_OUT.value} (contact_sheet.png shows all samples)")


def cmd_bench(config) -> None:
  data = _checked(config_lib.checked_data, config.data)
  from ocr_tf import bench  # pylint: disable=import-outside-toplevel
  if _THREADS.value:
    bench.limit_threads(_THREADS.value)
  gen = _generator(data)
  r = bench.measure(gen, _BATCH.value, _SECONDS.value, max_samples=_SAMPLES.value, warmup_batches=_WARMUP.value,
                    threads=_THREADS.value,
                    log=lambda m: print(m, file=sys.stderr))
  print(f"samples={r['samples']} seconds={r['seconds']:.2f} cores_used={r['cores_used']:.2f} "
        f"cpus_available={r['cpus_available']} rss_start_mb={r['rss_start_mb']:.0f} "
        f"rss_end_mb={r['rss_end_mb']:.0f} rss_window_max_mb={r['rss_window_max_mb']:.0f} "
        f"rss_growth_mb={r['rss_end_mb'] - r['rss_start_mb']:.0f} peak_rss_mb={r['peak_rss_mb']:.0f}")
  print(f"rate_first_tenth={r['rate_first_tenth']:.1f} rate_last_tenth={r['rate_last_tenth']:.1f} "
        f"throughput_last_over_first={r['rate_last_tenth'] / r['rate_first_tenth']:.3f}")
  print(f"samples_per_second={r['samples_per_second']:.1f} per_core={r['per_core']:.1f}")


def cmd_train(config) -> None:
  if not _WORKDIR.value:
    _fail("train needs --workdir=FOLDER")
  config = _checked(config_lib.checked, config)
  from ocr_tf import atlas as atlas_lib  # pylint: disable=import-outside-toplevel
  from ocr_tf import data_service, serving, train  # pylint: disable=import-outside-toplevel
  try:
    result = train.train_and_evaluate(config, _WORKDIR.value,
                                      export_fn=serving.export_saved_model if _EXPORT.value else None)
  except (config_lib.ConfigError, atlas_lib.AtlasError, train.CheckpointWriteError) as e:
    _fail(str(e))
  except data_service.DataServiceError as e:
    _fail(str(e))
  m = result["metrics"]
  print(f"trained to step {result['step']} in {_WORKDIR.value} (replicas={result['replicas']}): "
        f"cer={m.get('cer', float('nan')):.4f} word_accuracy={m.get('word_accuracy', float('nan')):.4f}")
  if result["export"]:
    print(f"exported SavedModel to {result['export']}")


def cmd_export(config) -> None:
  del config  # the run's own config.json is used
  from ocr_tf import serving, train  # pylint: disable=import-outside-toplevel
  if not _WORKDIR.value or not _OUT.value:
    _fail("export needs --workdir=TRAINING_WORKDIR and --out=SAVEDMODEL_FOLDER")
  try:
    serving.check_angle_views(_ANGLE_VIEWS.value)  # before the model is built
  except ValueError as e:
    _fail(f"--{e}")
  try:
    path, step = train.export_workdir(_WORKDIR.value, _OUT.value, functools.partial(
        serving.export_saved_model, angle_mirror=_ANGLE_MIRROR.value, angle_views=_ANGLE_VIEWS.value))
  except config_lib.ConfigError as e:
    _fail(str(e))
  print(f"exported step {step} of {_WORKDIR.value} to {path}")


def _model_path() -> str:
  """--model, or the model shipped with the package."""
  if _MODEL.value:
    return _MODEL.value
  from ocr_tf import predict  # pylint: disable=import-outside-toplevel
  try:
    return predict.default_model_path()
  except predict.PredictError as e:
    _fail(str(e))


def cmd_predict(files: list[str]) -> int:
  from ocr_tf import predict  # pylint: disable=import-outside-toplevel
  return predict.cmd_predict(_model_path(), files, as_json=_JSON.value, draw_dir=_DRAW.value,
                             batch_size=_BATCH.value, lexicon=_LEXICON.value)


def cmd_evaluate() -> int:
  if not _DATA.value:
    _fail("evaluate needs --data=FOLDER (images plus labels.tsv: filename<TAB>text)")
  from ocr_tf import predict  # pylint: disable=import-outside-toplevel
  return predict.cmd_evaluate(_model_path(), _DATA.value, batch_size=_BATCH.value, lexicon=_LEXICON.value)


def cmd_data_service(args: list[str]) -> None:
  """ocr-tf data-service dispatcher|worker: runs one tf.data service server until killed."""
  if len(args) != 1 or args[0] not in ("dispatcher", "worker"):
    _fail(f"usage: ocr-tf data-service {{dispatcher --port=P | worker --dispatcher=HOST:P --port=Q}}; "
          f"got {' '.join(args) or 'nothing'}")
  from ocr_tf import data_service  # pylint: disable=import-outside-toplevel
  if args[0] == "dispatcher":
    server = data_service.start_dispatcher(_PORT.value, _WORK_DIR.value)
    print(f"data-service dispatcher serving at {server.target}", flush=True)
  else:
    if not _DISPATCHER.value:
      _fail("data-service worker needs --dispatcher=HOST:PORT")
    try:
      server = data_service.start_worker(_DISPATCHER.value, _PORT.value, _WORKER_HOST.value)
    except ValueError as e:
      _fail(f"--dispatcher={_DISPATCHER.value!r}: {e}")
    print(f"data-service worker serving on port {server._address.rsplit(':', 1)[-1]} "  # pylint: disable=protected-access
          f"for dispatcher {_DISPATCHER.value}", flush=True)
  server.join()


def main(argv: list[str]) -> None:
  if len(argv) < 2 or argv[1] not in _COMMANDS:
    _fail(f"usage: ocr-tf {{{','.join(_COMMANDS)}}} --config=CONFIG [flags]; got {argv[1:2] or 'nothing'}")
  command = argv[1]
  if command == "predict":
    sys.exit(cmd_predict(argv[2:]))
  if command == "data-service":
    cmd_data_service(argv[2:])
    return
  if len(argv) > 2:
    _fail(f"unexpected arguments: {' '.join(argv[2:])}")
  if command == "evaluate":
    sys.exit(cmd_evaluate())
  config = _CONFIG.value
  if config is None:
    path = shipped_config_path("default")
    from ml_collections.config_flags import config_flags as cf  # pylint: disable=import-outside-toplevel
    config = cf.ConfigFileFlagParser(name="config").parse(path)
  {"preview": cmd_preview, "bench": cmd_bench, "train": cmd_train, "export": cmd_export}[command](config)


def run() -> None:
  """Console-script entry point."""
  sys.argv = _resolve_config_arg(sys.argv)
  app.run(main)


if __name__ == "__main__":
  run()

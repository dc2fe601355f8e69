#!/usr/bin/env bash
# Throughput per CPU core of trdg 1.8.0 and of ocr_tf on comparable settings, one after the other.
#
#   benchmarks/compare_trdg.sh [SECONDS]      (measured window of each side, default 30)
#
# Environment:
#   TRDG_VENV     virtualenv for trdg (default ${TMPDIR:-/tmp}/ocr_tf_trdg_venv); created and
#                 filled on first use, reused afterwards
#   TRDG_PYTHON   interpreter that creates that virtualenv (default python3)
#   OCR_TF        the ocr-tf command (default ocr-tf, from `pip install -e .`)
#   BENCH_SECONDS same as the SECONDS argument
#
# Last line: ratio_per_core=<float> (ocr_tf on one thread / trdg; both images per CPU-second).
# ocr_tf also runs with AUTOTUNE over all cores, for its samples/s.
set -uo pipefail

die() { echo "compare_trdg: error: $*" >&2; exit 1; }

cd "$(dirname "${BASH_SOURCE[0]}")/.." || die "cannot cd to the repository root"

window="${1:-${BENCH_SECONDS:-30}}"
[[ "$window" =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v s="$window" 'BEGIN { exit !(s > 0) }' \
  || die "SECONDS must be a positive number, got '$window'"

venv="${TRDG_VENV:-${TMPDIR:-/tmp}/ocr_tf_trdg_venv}"
base_python="${TRDG_PYTHON:-python3}"
ocr_tf="${OCR_TF:-ocr-tf}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

# trdg 1.8.0 is installed without its declared dependencies, which cannot be installed as
# declared: arabic-reshaper==2.1.3 has metadata that pip >= 24.1 rejects, opencv-python (the
# GUI build) wants libGL, and diffimg and tqdm are not imported by the generator. What the
# generator does import is pinned here: Pillow < 10 (trdg calls ImageFont.getsize), numpy and
# OpenCV (noise background), arabic-reshaper and python-bidi (imported unconditionally),
# wikipedia (imported by trdg.generators; not used for generation).
TRDG_DEPS=(
  "Pillow==9.5.0"
  "numpy==2.4.6"
  "opencv-python-headless==5.0.0.93"
  "arabic-reshaper==2.1.4"
  "python-bidi==0.4.2"
  "wikipedia==1.4.0"
)

trdg_ready() {
  "$venv/bin/python" - <<'EOF' >/dev/null 2>&1
from importlib.metadata import version
import PIL, cv2, numpy
import trdg.generators
assert version("trdg") == "1.8.0", version("trdg")
assert int(PIL.__version__.split(".")[0]) < 10, PIL.__version__
EOF
}

if ! trdg_ready; then
  echo "== installing trdg 1.8.0 into $venv"
  command -v "$base_python" >/dev/null || die "'$base_python' not found (set TRDG_PYTHON)"
  [[ -x "$venv/bin/python" ]] || "$base_python" -m venv "$venv" \
    || die "could not create the virtualenv $venv"
  "$venv/bin/python" -m pip install -q "${TRDG_DEPS[@]}" \
    || die "pip could not install trdg's dependencies into $venv: ${TRDG_DEPS[*]}"
  "$venv/bin/python" -m pip install -q --no-deps "trdg==1.8.0" \
    || die "pip could not install trdg 1.8.0 into $venv"
  trdg_ready || die "trdg does not import in $venv after installing (run: $venv/bin/python -c 'import trdg.generators')"
fi
command -v "$ocr_tf" >/dev/null || die "'$ocr_tf' not found: install ocr_tf (pip install -e .) or set OCR_TF"

logs="$(mktemp -d "${TMPDIR:-/tmp}/compare_trdg.XXXXXX")" || die "mktemp failed"
trap 'rm -rf "$logs"' EXIT

echo "== trdg 1.8.0 ($window s window)"
"$venv/bin/python" benchmarks/trdg_bench.py --seconds="$window" 2>&1 | tee "$logs/trdg.txt" \
  || die "the trdg benchmark failed (output above)"
echo "== ocr_tf, config benchmarks/trdg_comparable.py, one thread ($window s window)"
"$ocr_tf" bench --config=benchmarks/trdg_comparable.py --seconds="$window" --threads=1 2>&1 \
  | tee "$logs/ocr_tf.txt" || die "the ocr_tf benchmark failed (output above)"
echo "== ocr_tf, config benchmarks/trdg_comparable.py, AUTOTUNE over all cores ($window s window)"
"$ocr_tf" bench --config=benchmarks/trdg_comparable.py --seconds="$window" 2>&1 | tee "$logs/ocr_tf_all.txt" \
  || die "the ocr_tf benchmark failed (output above)"

# value KEY FILE PATTERN: the number after KEY= on the last line of FILE matching PATTERN.
value() {
  grep -E "$3" "$2" | tail -n 1 | sed -nE "s/.*(^|[ ])$1=([0-9.eE+-]+).*/\2/p"
}
trdg_rate="$(value trdg_images_per_second "$logs/trdg.txt" '^trdg_images_per_second=')"
trdg_core="$(value per_core "$logs/trdg.txt" '^trdg_images_per_second=')"
trdg_cores="$(value cores_used "$logs/trdg.txt" '^trdg: images=')"
ocr_rate="$(value samples_per_second "$logs/ocr_tf.txt" '^samples_per_second=')"
ocr_core="$(value per_core "$logs/ocr_tf.txt" '^samples_per_second=')"
ocr_cores="$(value cores_used "$logs/ocr_tf.txt" '^samples=')"
cpus="$(value cpus_available "$logs/ocr_tf.txt" '^samples=')"
all_rate="$(value samples_per_second "$logs/ocr_tf_all.txt" '^samples_per_second=')"
all_core="$(value per_core "$logs/ocr_tf_all.txt" '^samples_per_second=')"
all_cores="$(value cores_used "$logs/ocr_tf_all.txt" '^samples=')"
[[ -n "$trdg_rate" && -n "$trdg_core" && -n "$trdg_cores" ]] \
  || die "could not read the trdg result line (trdg_images_per_second=... per_core=...)"
[[ -n "$ocr_rate" && -n "$ocr_core" && -n "$ocr_cores" ]] \
  || die "could not read the ocr_tf result line (samples_per_second=... per_core=...)"
awk -v t="$trdg_core" 'BEGIN { exit !(t > 0) }' || die "trdg per_core is $trdg_core"

echo
echo "== summary: ${window} s windows, ${cpus:-?} CPUs available to each process, run one after the other"
printf '%-8s %10s /s %8s cores used %10s per CPU-second\n' \
  trdg "$trdg_rate" "$trdg_cores" "$trdg_core" \
  "ocr_tf/1" "$ocr_rate" "$ocr_cores" "$ocr_core" \
  "ocr_tf/all" "${all_rate:-?}" "${all_cores:-?}" "${all_core:-?}"
awk -v o="$ocr_core" -v t="$trdg_core" \
  'BEGIN { printf "ratio_per_core=%.2f (ocr_tf on one thread / trdg, images per CPU-second)\n", o / t }'

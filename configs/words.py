r"""Word images as documents give them: the distribution of the shipped default model.

  ocr-tf preview --config=configs/words.py --count=32 --out=/tmp/words_preview
  ocr-tf train --config=configs/words.py --workdir=/tmp/ocr_words

Data: grey 32x256 crops of 1-32 characters. Six strings in ten are
English words (ocr_tf/assets/words.txt, from SCOWL via Debian's wamerican;
a fifth of them set in capitals and a quarter capitalized), the rest random
alphanumeric strings, a third of which are numbers (1-6 digits); a third of
all strings are cut to 1-4 letters, as pages give many short words. Mostly
tight crops: the em size is drawn above what fits, so the line box (ascent +
descent) fills the height as in a word box cut from a page, within -2..+3 px
margins; about a quarter of the samples are smaller (loose crops).
Italic-like shear up to 8 degrees on top of the atlas' own italics, rotation
within +-5 degrees. Every degradation of the default distribution (contrast
down to 0.3), and seven samples in ten are rendered at 1/1.2 to 1/3 of the
resolution and scaled back up (a 13-27 px tall crop fitted to 32 px) with
their blur (sigma up to 1.2 px) and noise (std up to 0.06 in the final
image, whatever the contrast) at that low resolution, as a small crop gets
them.

The shipped model (ocr_tf/assets/default_model) was trained with this config
in nine stages on 2 CPU cores, about 8.5 hours of wall time in all, each stage
starting from the weights of the one before (details and commits in
ocr_tf/assets/MODEL_CARD.md). Stage 6 trained the whole network, 20000 steps
in 82 minutes (before model.angle_branch existed: its config had none):

  ocr-tf train --config=configs/words.py --workdir=RUN6 --config.train.init_from=RUN5

Stage 7 trained only the angle head, with its new full-resolution branch,
on mostly upright type (a tenth of the samples in italic fonts, a tenth
sheared) and more 1-3 letter words; every other layer kept stage 6's weights,
so the text it reads is stage 6's. 32000 steps in 57 minutes:

  ocr-tf train --config=configs/words.py --workdir=RUN7 --config.train.init_from=RUN6 \
      --config.train.trainable='^angle' --config.train.steps=32000 \
      --config.train.loss.weights.ctc=0 --config.train.loss.weights.letters=0 \
      --config.train.loss.weights.clean=0 --config.train.loss.weights.angle=1 \
      --config.train.loss.angle_huber_delta=0.5 --config.data.shear_right_only=True \
      --config.data.shear_probability=0.1 --config.data.italic_probability=0.1 \
      --config.data.short_probability=0.5 --config.data.short_length='(1,3)'

Stages 8 and 9 trained the angle head further on a slower machine (AVX2 only,
about 80 samples/s with oneDNN): stage 8 from the stage-7 model as shipped,
the same flags with --config.train.learning_rate=3e-4 --config.data.seed=8
--config.train.steps=7000 (stopped at checkpoint 5000 after 36 minutes); stage 9
from it, 6000 steps in 45 minutes (both shared the machine with test runs),
with frequent English words ('of', 'to', 'is' ...) drawn by count in 35% of
the samples (data.frequent_words):

  ocr-tf train --config=configs/words.py --workdir=RUN8 --config.train.init_from=shipped ...  # stage 8
  ocr-tf train --config=configs/words.py --workdir=RUN9 --config.train.init_from=RUN8 \
      --config.train.trainable='^angle' --config.train.steps=6000 --config.train.learning_rate=3e-4 \
      --config.train.loss.weights.ctc=0 --config.train.loss.weights.letters=0 \
      --config.train.loss.weights.clean=0 --config.train.loss.weights.angle=1 \
      --config.train.loss.angle_huber_delta=0.5 --config.data.shear_right_only=True \
      --config.data.shear_probability=0.1 --config.data.italic_probability=0.1 \
      --config.data.short_probability=0.5 --config.data.short_length='(1,3)' \
      --config.data.frequent_words=frequent --config.data.frequent_probability=0.35 --config.data.seed=9

Stage 6 at step 20000, on 1024 validation samples of this (harder) stream: CER 0.161,
word accuracy 0.734, angle MAE 0.78 degrees, letter F1 0.922, clean PSNR
22.4 dB. On real word crops from 14 PDF documents (benchmarks/real_eval.py,
read as `ocr-tf predict` reads, with the shipped word list; the model alone
in brackets): CER 0.57% clean (0.64%; Tesseract 4.58%), 1.27% rotated and
degraded (1.75%; Tesseract 5.92%), 22.1% on random strings in unseen fonts
(22.0%; Tesseract 43.9%). Angle error on the rotated words: 0.71 degrees
after stage 6, 0.66 after stage 7 (0.23 for words of 6 letters or more,
1.68 for one letter). The shipped stage-9 model, exported with the angle
averaged over three views (benchmarks/ship_model.py --angle_views=3):
0.4923 degrees on the current set (one view: 0.523). Speed and the other
figures: MODEL_CARD.md.
"""

from ocr_tf import config as config_lib


def get_config():
  config = config_lib.get_config()
  d = config.data
  d.height, d.width, d.channels = 32, 256, 1
  d.min_length, d.max_length = 1, 32
  d.corpus = "words"  # ocr_tf/assets/words.txt
  d.corpus_probability = 0.6
  d.corpus_upper_probability = 0.2
  d.corpus_title_probability = 0.25
  d.short_probability = 0.3  # pages give many words of 1-4 letters
  d.short_length = (1, 4)
  d.digits_probability = 0.3  # a third of the other strings are numbers (page, section, code point)
  d.digits_length = (1, 6)
  d.font_px = (18.0, 44.0)  # line box fills 32 px at about 26 px per em: most samples are fitted
  d.margins_px = (-2, 3)
  d.crop_box = True  # fit the word box a PDF gives (about 0.9-1 em tall), not the font's line box
  d.crop_ascent_em = (0.63, 0.82)
  d.crop_descent_em = (0.17, 0.3)
  d.spacing_em = (-0.03, 0.06)  # set text: letters close to their advances
  d.min_fit_em_px = 5.0
  d.max_shear = 8.0
  d.short_scratches = (0, 4)
  d.long_scratches = (0, 1)
  d.long_scratch_length = (2, 120)
  d.paper_level = (0.7, 1.0)
  d.contrast = (0.3, 1.0)
  d.ink_level = (0.0, 0.4)
  d.background_noise = (0.0, 0.2)
  d.grain = (0.0, 0.3)
  d.blur_probability = 0.5
  d.blur_sigma = (0.0, 1.2)
  d.blur_at_low_res = True  # a small crop is blurred at its own resolution, then scaled up to 32 px
  d.downscale_probability = 0.7  # most body-text crops are 13-27 px tall
  d.downscale_factor = (1.2, 3.0)
  d.low_res_noise = (0.0, 0.06)  # and its noise is scaled up with it ...
  d.low_res_noise_after_contrast = True  # ... at that std whatever the print contrast, as a sensor gives it
  d.jpeg_quality = (30, 80)
  config.model = config_lib.model_config("tiny")
  m = config.model
  m.stem_width = 16
  m.widths = (24, 48, 96, 128)
  m.decoder_widths = (8, 16, 24, 32)
  m.text_width = 192
  m.text_layers = 2
  m.angle_pool = "attention"  # a short word's angle is not diluted by the blank rest of the image
  m.angle_branch = (16, 24, 32, 48, 64)  # the angle also from full-resolution strokes (stage 7)
  t = config.train
  t.steps = 20000
  t.batch_size = 32
  t.learning_rate = 1e-3
  t.warmup_steps = 300
  t.log_every = 100
  t.eval_every = 2000
  t.checkpoint_every = 500
  t.eval_samples = 1024
  t.eval_batch_size = 32
  t.loss.weights.angle = 0.4
  return config

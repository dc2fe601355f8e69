"""The in-graph sample generator: (config, atlas, seed, index) -> one sample.

Generation has two stages, both pure TensorFlow (see ocr_tf.synth.generator):

1. :meth:`Generator.sample_params` draws every random choice of sample ``i``
   with stateless ops from a seed folded from ``(seed, i)``: named uniforms
   (ocr_tf.synth.draws), the text and the font (ocr_tf.synth.text).
2. :meth:`Generator.render` turns those parameters into pixels with two
   XLA-compiled programs: the parameters decoded (ocr_tf.synth.params), the
   glyph layout from the atlas (layout), one affine warp with the letter quads
   through the same matrix and the clean target (geometry); then the
   degradations, one function a step (degrade, noise, filters). Both run per
   sample (inside ``Dataset.map``), always with the same compiled code, so the
   bytes of sample ``i`` never depend on the batch, the parallelism or the
   replica it is made in.

The sample contract (per sample; batched: a leading batch axis):

============  ===================  ============================================
key           dtype, shape         meaning
============  ===================  ============================================
image         float32 [H, W, C]    the degraded input in [0, 1] (C = 1 or 3)
clean         float32 [H, W, 1]    same geometry, dark text on white, no
                                   degradations (the autoencoder target)
text          string []            the ground-truth string
labels        int32 [L]            charset ids, padded with 0 past
                                   ``label_length``; L = ``data.max_length``
label_length  int32 []             number of characters
angle         float32 []           degrees, counter-clockwise positive as seen
letter_quads  float32 [L, 4, 2]    each letter's ink box after the affine:
                                   (x, y) pixel corners TL, TR, BR, BL (pixel
                                   (i, j) covers [j, j+1] x [i, i+1]); zeros in
                                   unused slots; blank glyphs (space) give a
                                   zero-area quad
letter_boxes  float32 [L, 4]       axis-aligned [ymin, xmin, ymax, xmax] of the
                                   quad, normalized to [0, 1]
letter_cells  float32 [L, 4, 2]    each letter's layout cell after the same
                                   affine: pen position to pen + advance, the
                                   atlas line box tall; the cells of a line sit
                                   side by side on it, so their centres lie on
                                   one line at ``angle`` (ink-box centres do
                                   not: a 'g' and an 'A' have their ink at
                                   different heights); zeros in unused slots
letter_mask   bool [L]             which of the L slots hold a letter
index         int64 []             the sample's index in its stream
============  ===================  ============================================
"""

from ocr_tf.synth.draws import STREAM_VERSION
from ocr_tf.synth.filters import gaussian_kernel
from ocr_tf.synth.generator import PROGRAMS, Generator, ProgramCache

__all__ = ["Generator", "PROGRAMS", "ProgramCache", "STREAM_VERSION", "gaussian_kernel"]

"""Image bytes -> model inputs, one image at a time, with an error code per image instead of an exception.

Two guards, so that bad bytes never fail a batch: :func:`sniff` reads the
format and size from the header with string ops only (they cannot raise), and
:func:`decode_images` runs the size checks, the decoder and the fitting in a
``tf.data`` pipeline ending in ``ignore_errors()``, which drops an image whose
decoder raises (reported as CORRUPT) while the others go on.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from ocr_tf.serving.preprocess import blank, fit_image

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MIN_SIDE = 4
_HEADER_BYTES = 32

# Error codes of the serving graph; messages are built from them in-graph.
OK, EMPTY, UNKNOWN_FORMAT, SHORT_HEADER, ZERO_SIZE, TOO_LARGE, TOO_SMALL, CORRUPT = range(8)
# Formats recognised by their magic bytes.
_PNG, _JPEG, _GIF, _BMP, _NONE = range(5)


def _bytes_at(header: tf.Tensor, start: int, count: int, big_endian: bool) -> tf.Tensor:
  """Unsigned integer of `count` bytes of header [B, N] (uint8) at `start`, int64 [B]."""
  value = tf.zeros(tf.shape(header)[:1], tf.int64)
  order = range(count) if big_endian else reversed(range(count))
  for i in order:
    value = value * 256 + tf.cast(header[:, start + i], tf.int64)
  return value


def _signed32(value: tf.Tensor) -> tf.Tensor:
  return tf.where(value >= 2**31, value - 2**32, value)


def _matches(header: tf.Tensor, start: int, magic: bytes) -> tf.Tensor:
  expected = tf.constant(list(magic), tf.uint8)
  return tf.reduce_all(tf.equal(header[:, start:start + len(magic)], expected), axis=-1)


def sniff(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
  """Format, header size and first error code of each string, with string ops that cannot raise.

  Args:
    image_bytes: tf.string [B].

  Returns:
    dict of int32 [B] ``format`` (_PNG ... _NONE), ``status`` (OK, EMPTY,
    UNKNOWN_FORMAT or SHORT_HEADER) and int64 [B] ``height``, ``width`` as
    the header says (-1 for JPEG, whose size is read later, and when unknown).
  """
  image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
  length = tf.strings.length(image_bytes)
  padding = tf.fill(tf.shape(image_bytes), b"\0" * _HEADER_BYTES)
  fixed = tf.strings.substr(tf.strings.join([tf.strings.substr(image_bytes, 0, _HEADER_BYTES), padding]),
                            0, _HEADER_BYTES)
  header = tf.reshape(tf.io.decode_raw(fixed, tf.uint8), [-1, _HEADER_BYTES])
  is_png = _matches(header, 0, b"\x89PNG\r\n\x1a\n")
  is_jpeg = _matches(header, 0, b"\xff\xd8\xff")
  is_gif = _matches(header, 0, b"GIF87a") | _matches(header, 0, b"GIF89a")
  is_bmp = _matches(header, 0, b"BM")
  fmt = tf.where(is_png, _PNG, tf.where(is_jpeg, _JPEG, tf.where(is_gif, _GIF, tf.where(is_bmp, _BMP, _NONE))))
  # Bytes needed to read the size from the header.
  needed = tf.gather(tf.constant([24, 4, 10, 26, 0]), fmt)
  png_ok = _matches(header, 12, b"IHDR")
  bmp_core = _bytes_at(header, 14, 4, False) == 12
  missing = tf.fill(tf.shape(length), tf.constant(-1, tf.int64))

  def dimension(png_at: int, gif_at: int, bmp_core_at: int, bmp_info_at: int) -> tf.Tensor:
    """One side from the header, by format: PNG IHDR, (JPEG: later), GIF screen, BMP core or info header."""
    bmp = tf.where(bmp_core, _bytes_at(header, bmp_core_at, 2, False),
                   tf.abs(_signed32(_bytes_at(header, bmp_info_at, 4, False))))
    by_format = tf.stack([_bytes_at(header, png_at, 4, True), missing, _bytes_at(header, gif_at, 2, False),
                          bmp, missing], axis=1)
    return tf.gather(by_format, fmt, batch_dims=1)

  height = dimension(20, 8, 20, 22)
  width = dimension(16, 6, 18, 18)
  status = tf.where(length == 0, EMPTY,
                    tf.where(fmt == _NONE, UNKNOWN_FORMAT,
                             tf.where((length < needed) | ((fmt == _PNG) & ~png_ok), SHORT_HEADER, OK)))
  return {"format": tf.cast(fmt, tf.int32), "status": tf.cast(status, tf.int32), "height": height,
          "width": width}


def _dims_text(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
  return tf.strings.join([tf.strings.as_string(width), "x", tf.strings.as_string(height)])


def error_messages(status: tf.Tensor, height: tf.Tensor, width: tf.Tensor, max_pixels: int,
                   min_side: int) -> tf.Tensor:
  """One-line message per error code ('' for OK), naming the size where it matters."""
  height, width = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
  dims = _dims_text(height, width)
  fixed = tf.constant([
      "",
      "empty input (0 bytes)",
      "not a decodable image (unknown format; PNG, JPEG, GIF or BMP expected)",
      "truncated image header",
      "",
      "",
      "",
      "corrupt or truncated image data (the decoder failed)",
  ])
  zero = tf.strings.join(["image has zero size (", dims, " pixels)"])
  large = tf.strings.join(["image too large (", dims, " = ", tf.strings.as_string(height * width),
                           f" pixels; limit {max_pixels})"])
  small = tf.strings.join(["image too small (", dims, f" pixels; each side must be at least {min_side})"])
  out = tf.gather(fixed, status)
  out = tf.where(status == ZERO_SIZE, zero, out)
  out = tf.where(status == TOO_LARGE, large, out)
  return tf.where(status == TOO_SMALL, small, out)


def _decode_one(index, data, fmt, status, height, width, *, size: tuple[int, int, int], max_pixels: int,
                min_side: int):
  """One image of the tf.data pipeline: size checks, decode, fit. May raise (the pipeline drops it).

  `size` is the model's (height, width, channels); the other arguments are one
  element of the pipeline (row, bytes, and what :func:`sniff` read).
  """
  height, width = tf.cond(
      tf.equal(status, OK) & tf.equal(fmt, _JPEG),
      lambda: tuple(tf.unstack(tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64))),
      lambda: (height, width))
  status = tf.where(tf.equal(status, OK) & ((height <= 0) | (width <= 0)), ZERO_SIZE, status)
  status = tf.where(tf.equal(status, OK) & (height * width > max_pixels), TOO_LARGE, status)
  status = tf.where(tf.equal(status, OK) & ((height < min_side) | (width < min_side)), TOO_SMALL, status)

  def decode():
    image = tf.io.decode_image(data, channels=0, dtype=tf.float32, expand_animations=False)
    shape = tf.shape(image, out_type=tf.int64)
    bad = tf.where((shape[0] < min_side) | (shape[1] < min_side), TOO_SMALL, OK)
    bad = tf.where(shape[0] * shape[1] > max_pixels, TOO_LARGE, bad)
    prepared, geometry = tf.cond(tf.equal(bad, OK), lambda: fit_image(image[None], *size), lambda: blank(1, *size))
    return prepared[0], geometry[0], tf.cast(bad, tf.int32), shape[0], shape[1]

  def skip():
    prepared, geometry = blank(1, *size)
    return prepared[0], geometry[0], tf.cast(status, tf.int32), height, width

  prepared, geometry, status, height, width = tf.cond(tf.equal(status, OK), decode, skip)
  return index, prepared, geometry, status, height, width


def decode_images(image_bytes: tf.Tensor, size: tuple[int, int, int], max_pixels: int, min_side: int
                  ) -> dict[str, tf.Tensor]:
  """Each string of a batch decoded and fitted to the model's input, or its error code.

  Args:
    image_bytes: tf.string [B].
    size: the model's input (height, width, channels).
    max_pixels: images claiming more pixels are refused (TOO_LARGE) before decoding.
    min_side: images with a shorter side are refused (TOO_SMALL).

  Returns:
    dict of ``images`` float32 [B, height, width, channels] (white for an
    image in error), ``geometry`` float32 [B, 6] (see preprocess.fit_image),
    ``status`` int32 [B] (OK or an error code) and int64 [B] ``height``,
    ``width`` of each input as far as they are known.
  """
  n = tf.shape(image_bytes)[0]
  head = sniff(image_bytes)
  ds = tf.data.Dataset.from_tensor_slices((tf.range(n), image_bytes, head["format"], head["status"],
                                           head["height"], head["width"]))
  decode = functools.partial(_decode_one, size=size, max_pixels=max_pixels, min_side=min_side)
  ds = ds.map(decode, num_parallel_calls=2, deterministic=False).ignore_errors()
  empty = tf.data.Dataset.from_tensors((
      tf.zeros([0], tf.int32), tf.zeros([0, *size]), tf.zeros([0, 6]), tf.zeros([0], tf.int32),
      tf.zeros([0], tf.int64), tf.zeros([0], tf.int64)))
  index, prepared, geometry, status, height, width = (
      ds.batch(2**30).concatenate(empty).take(1).get_single_element())
  rows = index[:, None]
  blank_images, blank_geometry = blank(n, *size)
  return {
      "images": tf.tensor_scatter_nd_update(blank_images, rows, prepared),
      "geometry": tf.tensor_scatter_nd_update(blank_geometry, rows, geometry),
      "status": tf.tensor_scatter_nd_update(tf.fill([n], CORRUPT), rows, status),
      "height": tf.tensor_scatter_nd_update(head["height"], rows, height),
      "width": tf.tensor_scatter_nd_update(head["width"], rows, width),
  }

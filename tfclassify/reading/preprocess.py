"""Decode, resize and normalize one stored image: the reader's per-image work.

Kept apart from the pipeline (`dataset.py`) because more than the pipeline runs it:
both of the reader's paths, `infer`'s one-image-at-a-time mode (`decode_and_resize`),
and tests that compare it with a reference decode. Each graph step has a plain
Python twin (`resize_target`, `choose_ratio`) that does the same arithmetic, so the
geometry can be checked and explained without running a graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tfclassify.core.options import ReadOptions

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "JPEG_RATIOS",
    "choose_ratio",
    "decode_and_resize",
    "decode_one",
    "decode_placed",
    "finish_batch",
    "geometry",
    "resize_target",
    "to_pixels",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
JPEG_RATIOS = (1, 2, 4, 8)  # the scales libjpeg can produce in the DCT domain

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Resize methods whose output can leave the input's value range.
_OVERSHOOTING = ("bicubic", "lanczos3", "lanczos5", "mitchellcubic", "area", "gaussian")


def resize_target(height: int, width: int, options: ReadOptions) -> tuple[int, int]:
    """Size an image of `height` x `width` is resized to, before any crop or pad.

    `squash`: image_size. `center_crop`: aspect kept, just covering
    image_size / crop_fraction (never smaller than image_size). `pad`: aspect
    kept, just fitting inside image_size. Mirrors the graph code exactly (same
    float64 operations, round half to even).
    """
    th, tw = options.image_size
    if options.resize == "squash":
        return th, tw
    if options.resize == "center_crop":
        scale = max(th / height, tw / width) / options.crop_fraction
        return max(th, round(height * scale)), max(tw, round(width * scale))
    scale = min(th / height, tw / width)
    return min(th, max(1, round(height * scale))), min(tw, max(1, round(width * scale)))


def choose_ratio(height: int, width: int, target_height: int, target_width: int) -> int:
    """Largest JPEG DCT downscale (8, 4, 2) leaving at least the target size, else 1.

    `decode_jpeg(ratio=r)` yields ceil(h/r) x ceil(w/r) at a fraction of the full
    decode's cost. r qualifies when h >= r * target_height and w >= r * target_width,
    so the resize that follows still only shrinks (or keeps) the image.
    """
    for r in (8, 4, 2):
        if height >= r * target_height and width >= r * target_width:
            return r
    return 1


def decode_and_resize(
    encoded: Any,
    options: ReadOptions | None = None,
    *,
    height: Any = None,
    width: Any = None,
) -> tf.Tensor:
    """Decodes one encoded image exactly as `make_dataset` does; eager or in graph.

    The format is sniffed from the bytes: JPEG (DCT-domain downscale when allowed),
    PNG, else anything `tf.io.decode_image` reads (GIF: first frame; BMP; WebP).
    Always 3 channels. EXIF orientation is not applied: the converter bakes it in.

    Args:
      encoded: scalar string tensor (or bytes) of the encoded image.
      options: resize, normalize and dtype settings; defaults to `ReadOptions()`.
      height, width: the stored image size (a record's image/height, image/width).
        They pick the JPEG decode scale without parsing the header. None reads the
        JPEG header instead; 0 (unknown) decodes at full scale.

    Returns:
      A [height, width, 3] tensor of `options.image_size` and `options.dtype`.
    """
    options = options or ReadOptions()
    encoded = tf.convert_to_tensor(encoded, tf.string)
    if height is None or width is None:
        # Read the size from the JPEG header: it picks the DCT scale.
        size = tf.cond(
            tf.io.is_jpeg(encoded) & options.allow_ratio_decode,
            lambda: tf.cast(tf.io.extract_jpeg_shape(encoded)[:2], tf.int64),
            lambda: tf.zeros([2], tf.int64),
        )
        height, width = size[0], size[1]
    return decode_one(encoded, height, width, options)


def decode_one(encoded: tf.Tensor, height: Any, width: Any, options: ReadOptions) -> tf.Tensor:
    """`decode_placed` for one image whose stored size may be unknown (0)."""
    size = tf.cast(tf.stack([height, width]), tf.int64)[None]
    need, ratio = geometry(size, options)
    known = tf.reduce_all(size > 0)
    return decode_placed(encoded, need[0], ratio[0], options, size_known=known)


def geometry(size: tf.Tensor, options: ReadOptions) -> tuple[tf.Tensor, tf.Tensor]:
    """Resize target and JPEG scale for stored sizes, vectorized over a batch.

    Args:
      size: int64 [B, 2] stored (height, width); 0 where unknown.

    Returns:
      need: int64 [B, 2], the size to resize to before any crop or pad
        (`resize_target`'s graph twin: the same float64 steps).
      ratio: int32 [B], an index into JPEG_RATIOS: the largest DCT downscale that
        still leaves `need` (`choose_ratio`'s twin), 0 for an unknown size.
    """
    known = tf.reduce_all(size > 0, axis=1)
    size = tf.maximum(size, 1)
    target = tf.constant(options.image_size, tf.int64)
    if options.resize == "squash":
        need = tf.broadcast_to(target, tf.shape(size))
    else:
        sizef = tf.cast(size, tf.float64)
        ratios = tf.cast(target, tf.float64) / sizef
        if options.resize == "center_crop":
            scale = tf.reduce_max(ratios, axis=1, keepdims=True) / options.crop_fraction
            need = tf.maximum(target, tf.cast(tf.round(sizef * scale), tf.int64))
        else:
            scale = tf.reduce_min(ratios, axis=1, keepdims=True)
            need = tf.minimum(target, tf.maximum(tf.cast(tf.round(sizef * scale), tf.int64), 1))
    if not options.allow_ratio_decode:
        return need, tf.zeros(tf.shape(size)[:1], tf.int32)
    # Qualifying ratios are nested (8 fits => 4 fits => 2 fits): their count is the
    # index of the largest.
    steps = tf.constant(JPEG_RATIOS[1:], tf.int64)[None, :, None]
    fits = tf.reduce_all(size[:, None, :] >= steps * need[:, None, :], axis=2)
    ratio = tf.reduce_sum(tf.cast(fits, tf.int32), axis=1)
    return need, tf.where(known, ratio, 0)


def decode_placed(
    encoded: tf.Tensor,
    need: tf.Tensor,
    ratio: tf.Tensor,
    options: ReadOptions,
    *,
    size_known: Any = True,
) -> tf.Tensor:
    """One image of `options.image_size`, normalized, of `options.dtype`: the
    per-image work.

    Inside tf.data every op of a map function is dispatched once per image, and for
    small images that dispatch costs as much as the decode. So the geometry comes in
    precomputed (`geometry`, vectorized over a batch), one Case op picks the decoder,
    and normalization is one multiply-add.

    Args:
      encoded: scalar string, the encoded image.
      need, ratio: this image's row of `geometry`.
      options: the read options.
      size_known: False (or a bool tensor) when `need` was not computed from the
        stored size; it is then recomputed from the decoded image. A converted
        dataset always stores the size.
    """
    is_jpeg = tf.io.is_jpeg(encoded)
    is_png = tf.equal(tf.strings.substr(encoded, 0, len(_PNG_MAGIC)), _PNG_MAGIC)

    def jpeg(r):
        # `ratio` must be a Python int, so each scale gets its own branch.
        return lambda: tf.io.decode_jpeg(
            encoded, channels=3, ratio=r, dct_method=options.dct_method
        )

    def png():
        return tf.io.decode_png(encoded, channels=3)

    def other():
        return tf.io.decode_image(encoded, channels=3, expand_animations=False)

    index = tf.where(is_jpeg, ratio, tf.where(is_png, len(JPEG_RATIOS), len(JPEG_RATIOS) + 1))
    image = tf.switch_case(index, [jpeg(r) for r in JPEG_RATIOS] + [png, other])
    image.set_shape([None, None, 3])
    if size_known is not True and options.resize != "squash":
        decoded = tf.shape(image, out_type=tf.int64)[None, :2]
        need = tf.where(size_known, need, geometry(decoded, options)[0][0])
    return _normalize(_resize_and_place(image, need, options), options)


def _resize_and_place(image: tf.Tensor, need: tf.Tensor, options: ReadOptions) -> tf.Tensor:
    """float32 [H, W, 3] in [0, 255]: `image` resized to `need`, then cropped or padded.

    An image that already has the size `need` (shards pre-resized at conversion) is
    cropped or padded as stored, before its conversion to float: every resize method
    is the identity then.
    """
    size = tf.cast(need, tf.int32)

    def resized() -> tf.Tensor:
        if options.resize_method == "bilinear" and not options.antialias:
            # What tf.image.resize runs for these settings, without its wrapper's
            # per-call checks and reshapes (a dozen ops per image).
            return tf.raw_ops.ResizeBilinear(
                images=image[None], size=size, half_pixel_centers=True
            )[0]
        resize = tf.image.resize(
            image, size, method=options.resize_method, antialias=options.antialias
        )
        return tf.cast(resize, tf.float32)  # `nearest` keeps uint8

    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
    return tf.cond(
        same,
        lambda: tf.cast(_place(image, need, options), tf.float32),
        lambda: _place(resized(), need, options),
    )


def _place(image: tf.Tensor, need: tf.Tensor, options: ReadOptions) -> tf.Tensor:
    """The resized image cropped (center_crop) or padded (pad) to image_size."""
    th, tw = options.image_size
    target = tf.constant(options.image_size, tf.int64)
    if options.resize == "center_crop":
        start = tf.concat([(need - target) // 2, [0]], 0)
        image = tf.slice(image, start, [th, tw, 3])
    elif options.resize == "pad":
        before = (target - need) // 2
        paddings = tf.stack([before, target - need - before], axis=1)
        image = tf.pad(image, tf.concat([paddings, [[0, 0]]], 0))
    image.set_shape([th, tw, 3])
    return image


def _normalize(image: tf.Tensor, options: ReadOptions) -> tf.Tensor:
    """Per image, right after the resize: the pixels are still in cache, and the work
    is spread over the map's threads, instead of one more pass over the whole batch
    in memory. One multiply-add.
    """
    if options.antialias or options.resize_method in _OVERSHOOTING:
        # These kernels can leave [0, 255] (negative lobes, or rounding in a weighted
        # sum); plain bilinear interpolation and nearest cannot.
        image = tf.clip_by_value(image, 0.0, 255.0)
    if options.normalize == "unit":
        image = image * (1 / 255)
    elif options.normalize == "symmetric":
        image = image * (1 / 127.5) - 1.0
    elif options.normalize == "imagenet":
        # (x / 255 - mean) / std, folded into one scale and offset per channel.
        scale = [1 / (255 * s) for s in IMAGENET_STD]
        offset = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]
        image = image * scale + offset
    if options.dtype == "uint8":
        return tf.cast(tf.round(image), tf.uint8)
    return tf.cast(image, options.dtype)


def to_pixels(images: Any, normalize: str) -> np.ndarray:
    """Images as the reader gave them, back to pixel values: float32 in [0, 255], for
    showing them. Undoes `normalize` (a `ReadOptions.normalize`) as `_normalize`
    applied it.
    """
    x = np.asarray(images, np.float32)
    if normalize == "unit":
        x = x * 255
    elif normalize == "symmetric":
        x = (x + 1) * 127.5
    elif normalize == "imagenet":
        x = (x * np.float32(IMAGENET_STD) + np.float32(IMAGENET_MEAN)) * 255
    return np.clip(x, 0, 255)


def finish_batch(batch: dict[str, tf.Tensor], options: ReadOptions) -> dict[str, tf.Tensor]:
    """Once per batch, one op: channels-first for a GPU model."""
    if options.data_format == "NCHW":
        return {**batch, "image": tf.transpose(batch["image"], [0, 3, 1, 2])}
    return batch

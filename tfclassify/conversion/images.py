"""Per-image inspection and normalisation for the converter.

Decides, for one file's bytes, whether it can be stored as-is (TF's JPEG/PNG
decoders read it exactly as Pillow does) or must be converted to a plain RGB /
grayscale JPEG or PNG, or skipped with a reason. Pure: bytes in, result out, so
the same code runs in a thread pool and in a Beam DoFn.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import threading
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps

from tfclassify.core.options import ImageConfig

# Skip reasons: a stable code (counted in dataset.json) + ": " + a human detail.
EMPTY = "empty"
NOT_IMAGE = "not_image"
TRUNCATED = "truncated"
UNDECODABLE = "undecodable"
TOO_LARGE = "too_large"
UNSUPPORTED = "unsupported"
MISSING = "missing"
UNREADABLE = "unreadable"

_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)

# Modes the TF decoders turn into the same pixels Pillow sees (8-bit gray / RGB).
_TF_NATIVE_MODES = ("RGB", "L")
_EXIF_ORIENTATION = 0x0112


@dataclasses.dataclass(frozen=True)
class Inspected:
    """Outcome for one input. Exactly one of `skip_reason` and `format` is set.

    `data` holds new bytes when the image was converted; None means "store the
    original file bytes unchanged".
    """

    skip_reason: str | None = None
    format: str | None = None
    height: int = 0
    width: int = 0
    channels: int = 0
    data: bytes | None = None
    converted: str = ""  # why it was converted (empty when kept as-is)

    @property
    def ok(self) -> bool:
        return self.skip_reason is None


class _Skip(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")


HEAD_BYTES = 16  # enough for every signature `sniff` knows


def sniff(head: bytes) -> str | None:
    """Image format from magic bytes; extensions lie, content does not."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def reason_code(reason: str) -> str:
    return reason.split(":", 1)[0]


def _has_trailer(data: bytes, fmt: str) -> bool:
    """Cheap truncation check for `validate=header`: the end-of-image marker exists."""
    tail = data[-4096:]
    if fmt == "jpeg":
        return b"\xff\xd9" in tail
    if fmt == "png":
        return b"IEND" in tail
    return True


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk: 8 signature + 4 length + 4 type + 8 (w, h).
    return data[24] if len(data) > 24 else 8


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # malformed EXIF must not lose an otherwise good image
        return 1


def _why_convert(im: Image.Image, fmt: str, data: bytes) -> str:
    """Why TF's decoders would not give the pixels Pillow gives; '' when they would."""
    if fmt not in ("jpeg", "png"):
        return f"{fmt} is not read by the JPEG/PNG decoders"
    if im.mode not in _TF_NATIVE_MODES:
        return f"mode {im.mode}"
    if fmt == "png" and _png_bit_depth(data) != 8:
        return f"{_png_bit_depth(data)}-bit PNG"
    if fmt == "png" and "transparency" in im.info:
        return "PNG transparency"
    orientation = _orientation(im)
    if orientation != 1:
        return f"EXIF orientation {orientation}"
    return ""


def _target_size(width: int, height: int, cfg: ImageConfig) -> tuple[int, int]:
    """Shrink-only size honouring both resize_shorter_side and max_side."""
    scale = 1.0
    if cfg.resize_shorter_side:
        scale = min(scale, cfg.resize_shorter_side / min(width, height))
    if cfg.max_side:
        scale = min(scale, cfg.max_side / max(width, height))
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_8bit(im: Image.Image) -> Image.Image:
    """Flatten every mode to 8-bit RGB or L; alpha is composited over white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im).astype(np.uint32)
        # 16-bit samples keep their top 8 bits; Pillow's convert('L') would clip instead.
        return Image.fromarray((arr >> 8).clip(0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    elif im.mode in ("RGB", "L") and "transparency" in im.info:
        im = im.convert("RGBA" if im.mode == "RGB" else "LA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(background, rgba)
        return flat.convert("L" if im.mode in ("LA", "La") else "RGB")
    if im.mode in ("RGB", "L"):
        return im
    if im.mode == "1":
        return im.convert("L")
    if im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return im.convert("RGB")
    raise _Skip(UNSUPPORTED, f"pixel mode {im.mode} cannot be converted to RGB")


def _encode(im: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        # At high quality keep full-resolution chroma (4:4:4): conversions should
        # not visibly blur colour edges; below 90 the usual 4:2:0 saves more bytes.
        im.save(out, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    else:
        im.save(out, "PNG", compress_level=6)
    return out.getvalue()


_pillow_limit_lock = threading.Lock()
_pillow_limit_users = 0
_pillow_limit_saved: int | None = None


@contextlib.contextmanager
def _pillow_limit_lifted() -> Iterator[None]:
    """Pillow's decompression-bomb limit off while a header is parsed, so our own
    `max_pixels` decides, even above Pillow's limit (2 x 89,478,485 pixels).

    The limit is a process-wide setting: the converter's threads share one lift,
    restored when the last leaves. It is lifted only to read a header, and every
    image opened here is checked against max_pixels before any pixel is decoded.
    """
    global _pillow_limit_users, _pillow_limit_saved
    with _pillow_limit_lock:
        if _pillow_limit_users == 0:
            _pillow_limit_saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _pillow_limit_users += 1
    try:
        yield
    finally:
        with _pillow_limit_lock:
            _pillow_limit_users -= 1
            if _pillow_limit_users == 0:
                Image.MAX_IMAGE_PIXELS = _pillow_limit_saved


def _open(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        # Our own max_pixels check replaces Pillow's bomb warning (a global setting).
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            # Only the sniffed format's plugin: Pillow need not try the others.
            try:
                im = Image.open(io.BytesIO(data), formats=[fmt.upper()])
            except Image.DecompressionBombError:
                # Over Pillow's limit: read the header again without it, for the size
                # that max_pixels (which may be higher) decides on.
                with _pillow_limit_lifted():
                    im = Image.open(io.BytesIO(data), formats=[fmt.upper()])
        except Image.UnidentifiedImageError as e:
            # Its message names the in-memory file object (an address): not in reports.
            raise _Skip(UNDECODABLE, f"cannot read image header (not a valid {fmt})") from e
        except Exception as e:  # Pillow raises many types for bad headers
            raise _Skip(UNDECODABLE, f"cannot read image header ({e})") from e
    width, height = im.size
    if width * height > max_pixels:
        raise _Skip(
            TOO_LARGE, f"{width}x{height} = {width * height} pixels > max_pixels {max_pixels}"
        )
    if width == 0 or height == 0:
        raise _Skip(UNDECODABLE, f"zero-sized image {width}x{height}")
    return im


def _load(im: Image.Image) -> None:
    """Decode all pixels: the step where truncated or corrupt data fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im.load()
        except OSError as e:
            code = TRUNCATED if "truncated" in str(e) else UNDECODABLE
            raise _Skip(code, f"decode failed ({e})") from e
        except Exception as e:  # SyntaxError, ValueError, struct.error from plugins
            raise _Skip(UNDECODABLE, f"decode failed ({type(e).__name__}: {e})") from e


def _convert(im: Image.Image, src_fmt: str, cfg: ImageConfig) -> Image.Image:
    target = _target_size(im.width, im.height, cfg)
    if src_fmt == "jpeg" and target != im.size:
        # DCT-domain downscale while decoding: much cheaper than a full decode.
        im.draft(im.mode if im.mode in ("RGB", "L") else None, target)
    if src_fmt == "gif":
        im.seek(0)  # first frame of an animation
    _load(im)
    im = ImageOps.exif_transpose(im) or im
    im = _to_8bit(im)
    # Limits apply to the upright image; rotation by EXIF may have swapped the sides.
    target = _target_size(im.width, im.height, cfg)
    if im.size != target:
        im = im.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return im


# Segment markers a plain JPEG has before its first scan; any other marker sends the
# file down the Pillow path. SOF0/1/2: Huffman baseline, extended, progressive.
_JPEG_SOF = (0xC0, 0xC1, 0xC2)
_JPEG_PLAIN_SEGMENTS = frozenset((0xC4, 0xDB, 0xDD, 0xFE, *range(0xE0, 0xF0), *_JPEG_SOF))
_JPEG_SOS = 0xDA
_EXIF_PREFIX = b"Exif\0\0"


def _exif_orientation(tiff: bytes) -> int | None:
    """Orientation from IFD0 of an EXIF block (1 when absent); None if not plain."""
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return None

    def u(at: int, size: int) -> int:
        return int.from_bytes(tiff[at : at + size], order)  # type: ignore[arg-type]

    ifd = u(4, 4)
    if u(2, 2) != 42 or ifd + 2 > len(tiff):
        return None
    for entry in range(ifd + 2, ifd + 2 + 12 * u(ifd, 2), 12):
        if entry + 12 > len(tiff):
            return None
        if u(entry, 2) == _EXIF_ORIENTATION:
            # SHORT, count 1: anything else is left to Pillow's EXIF reader.
            return u(entry + 8, 2) if (u(entry + 2, 2), u(entry + 4, 4)) == (3, 1) else None
    return 1


def _plain_jpeg(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) of a JPEG that TF's decoder reads exactly as
    Pillow does: 8-bit gray or YCbCr/RGB, Huffman-coded, upright (EXIF orientation
    1 or none, no XMP). None for anything else, which Pillow then examines.

    A walk over the segment headers before the first scan: an order of magnitude
    cheaper than Pillow's parser (every table, every APP segment, in Python), which
    would otherwise dominate a header-only conversion.
    """
    at, sof, exif = 2, None, False
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == _JPEG_SOS:
            break
        if marker not in _JPEG_PLAIN_SEGMENTS:
            return None
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        segment = data[at + 4 : end]
        if end > len(data) or end < at + 4:
            return None
        if marker == 0xE1:  # EXIF (Pillow merges repeats) or XMP (may hold an orientation)
            if exif or not segment.startswith(_EXIF_PREFIX):
                return None
            exif = True
            if _exif_orientation(segment[len(_EXIF_PREFIX) :]) not in (0, 1):
                return None  # Pillow reads 0 as 1 too
        elif marker in _JPEG_SOF:
            if sof is not None or len(segment) < 6 or segment[0] != 8:
                return None
            sof = segment
        at = end
    else:
        return None  # no scan
    if sof is None:
        return None
    height, width, components = (
        int.from_bytes(sof[1:3], "big"),
        int.from_bytes(sof[3:5], "big"),
        sof[5],
    )
    if components not in (1, 3) or not width or not height:
        return None
    return width, height, components


def _inspect_plain_jpeg(data: bytes, cfg: ImageConfig) -> Inspected | None:
    """The verdict for a plain JPEG kept as-is without Pillow; None: ask Pillow."""
    header = _plain_jpeg(data)
    if header is None:
        return None
    width, height, components = header
    if width * height > cfg.max_pixels:
        raise _Skip(
            TOO_LARGE, f"{width}x{height} = {width * height} pixels > max_pixels {cfg.max_pixels}"
        )
    if cfg.image_format not in ("keep", "jpeg") or _target_size(width, height, cfg) != (
        width,
        height,
    ):
        return None  # re-encoded or resized: Pillow decodes it anyway
    if cfg.validate == "header" and not _has_trailer(data, "jpeg"):
        raise _Skip(TRUNCATED, "no end-of-image marker (jpeg)")
    return Inspected(format="jpeg", height=height, width=width, channels=components)


def inspect(data: bytes, cfg: ImageConfig, reencode: str = "") -> Inspected:
    """Classify one file's bytes: keep, convert (with new bytes) or skip (with reason).

    `reencode`: why the file must not be kept as-is even if Pillow reads it (TF's
    decoder rejected it): then it is decoded by Pillow and written anew, or skipped.
    """
    quick = refuse_by_head(data) if reencode else inspect_without_pillow(data, cfg)
    if quick is not None:
        return quick
    try:
        return _inspect_with_pillow(data, sniff(data[:HEAD_BYTES]) or "", cfg, reencode)
    except _Skip as e:
        return Inspected(skip_reason=str(e))


def inspect_without_pillow(data: bytes, cfg: ImageConfig) -> Inspected | None:
    """`inspect`'s verdict when it needs no Pillow work (a plain JPEG kept as-is, an
    empty or unrecognised file); None when it does (decoding, converting).

    The converter runs this inline and hands only the None cases to its threads.
    """
    fmt = sniff(data[:HEAD_BYTES])
    refused = _refusal(data, fmt)
    if refused is not None:
        return refused
    try:
        if fmt == "jpeg" and cfg.validate != "full":  # full: Pillow decodes it
            return _inspect_plain_jpeg(data, cfg)
        return None
    except _Skip as e:
        return Inspected(skip_reason=str(e))


def refuse_by_head(head: bytes) -> Inspected | None:
    """The skip verdict a file's first bytes (HEAD_BYTES suffice) already give: empty,
    or not an image. The scan reads the rest of a file only when this is None, so a
    stray video or archive in the corpus is not read whole."""
    return _refusal(head, sniff(head[:HEAD_BYTES]))


def _refusal(head: bytes, fmt: str | None) -> Inspected | None:
    """`refuse_by_head` for a head already sniffed as `fmt`."""
    if not head:
        return Inspected(skip_reason=f"{EMPTY}: zero-byte file")
    if fmt is None:
        return Inspected(skip_reason=f"{NOT_IMAGE}: content is not a recognised image format")
    return None


def _inspect_with_pillow(data: bytes, fmt: str, cfg: ImageConfig, reencode: str = "") -> Inspected:
    im = _open(data, fmt, cfg.max_pixels)
    why = _why_convert(im, fmt, data) or reencode
    out_fmt = cfg.image_format
    if out_fmt == "keep":
        out_fmt = "jpeg" if fmt == "jpeg" else "png"
    resize = _target_size(im.width, im.height, cfg) != im.size
    if not why and out_fmt != fmt:
        why = f"re-encode {fmt} as {out_fmt}"
    if not why and resize:
        why = "resize"
    if not why:
        width, height, channels = im.width, im.height, 1 if im.mode == "L" else 3
        if cfg.validate == "full":
            if fmt == "jpeg":
                # Entropy-decode every block at 1/8 scale. Truncated or corrupt data
                # fails in the Huffman/marker stage, which a scaled decode runs in full;
                # the skipped IDCT/upsampling/colour steps cannot fail, and cost time.
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            _load(im)
        elif cfg.validate == "header" and not _has_trailer(data, fmt):
            raise _Skip(TRUNCATED, f"no end-of-image marker ({fmt})")
        return Inspected(format=fmt, height=height, width=width, channels=channels)
    converted = _convert(im, fmt, cfg)
    return Inspected(
        format=out_fmt,
        height=converted.height,
        width=converted.width,
        channels=1 if converted.mode == "L" else 3,
        data=_encode(converted, out_fmt, cfg.jpeg_quality),
        converted=why,
    )

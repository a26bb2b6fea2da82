"""Deterministic generators of small image corpora for tests, examples, the demo and benchmarks.

Every generator takes a `seed` (or a `numpy.random.Generator`) and writes the same bytes on
every run, so a test failure reproduces and a benchmark measures the same files twice. Only
numpy, Pillow and the standard library are used: importing this module never starts
TensorFlow, so test collection stays fast.

Four kinds of corpora:

* `make_class_tree` - a small, varied folder-per-class tree (sizes, JPEG/PNG, RGB/grayscale)
  that exercises the converter's listing, decoding and per-format paths.
* `make_hostile_files` - one file per awkward case the image layer must handle or reject
  (truncated, CMYK, 16-bit, animated, EXIF-rotated, decompression bombs, wrong extensions...).
* `make_shapes_corpus` - a *learnable* corpus (one shape per image) so the demo can show a
  small CNN reaching high accuracy in seconds.
* `make_photo_corpus` - photo-sized JPEGs whose size on disk is like a real photo, so
  benchmark throughput figures mean something.
"""

from __future__ import annotations

import csv
import io
import math
import os
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from tfclassify.core.errors import OptionsError

# Extension written for each Pillow format name; the converter sniffs magic bytes, but
# realistic extensions keep the listing code honest too.
_EXTENSIONS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "GIF": ".gif",
    "BMP": ".bmp",
    "WEBP": ".webp",
    "TIFF": ".tif",
}

# Every key `make_hostile_files` returns, in the order the files are written.
HOSTILE_KINDS: tuple[str, ...] = (
    "zero_byte",
    "not_an_image",
    "truncated_jpeg",
    "truncated_png",
    "corrupt_jpeg",
    "cmyk_jpeg",
    "grayscale_jpeg",
    "grayscale_png",
    "rgba_png",
    "la_png",
    "palette_png",
    "png16_gray",
    "png16_rgb",
    "gif_animated",
    "bmp",
    "webp",
    "tiff",
    "exif_rotated_jpeg",
    "huge_png",
    "unicode_name",
    "jpeg_wrong_ext",
    "png_wrong_ext",
)

# Kinds that no decoder should turn into a training image: empty, not an image, cut short,
# scrambled, or (huge_png) over any sane pixel cap. Every other kind is a valid image that
# the image layer is expected to normalize and accept.
UNREADABLE_KINDS: frozenset[str] = frozenset(
    {"zero_byte", "not_an_image", "truncated_jpeg", "truncated_png", "corrupt_jpeg", "huge_png"}
)

# Side of the decompression-bomb PNG: 400 M pixels, well above Pillow's and any sane cap.
_HUGE_SIDE = 20000


# --------------------------------------------------------------------------------------------
# Pixels


def _smooth_field(
    rng: np.random.Generator, width: int, height: int, cell: float, channels: int
) -> np.ndarray:
    """Returns unit-variance-ish noise that varies smoothly over `cell` pixels.

    A coarse random grid upsampled with bicubic interpolation is a cheap stand-in for the
    soft shapes and shading of a photo; stacking several cell sizes gives detail at several
    scales, which is what makes JPEG spend realistic bytes on it.
    """
    grid_w = max(2, round(width / cell) + 1)
    grid_h = max(2, round(height / cell) + 1)
    out = np.empty((height, width, channels), np.float32)
    for c in range(channels):
        grid = rng.standard_normal((grid_h, grid_w), dtype=np.float32)
        field = Image.fromarray(grid, "F").resize((width, height), Image.Resampling.BICUBIC)
        out[..., c] = np.asarray(field)
    return out


def _photo_array(
    width: int, height: int, rng: np.random.Generator, noise: float = 3.0
) -> np.ndarray:
    """Float32 HxWx3 pixels (unclipped) of a photo-like scene; see `photo_like`."""
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    angle = rng.uniform(0.0, 2.0 * math.pi)
    ramp = math.cos(angle) * xs + math.sin(angle) * ys
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    start = rng.uniform(30.0, 225.0, 3).astype(np.float32)
    end = rng.uniform(30.0, 225.0, 3).astype(np.float32)
    pixels = start + (end - start) * ramp[..., None]
    short = min(width, height)
    # Amplitudes tuned so a 640x480 RGB at JPEG quality 90 is about 50 KB, like a
    # mid-detail phone photo downscaled to VGA.
    for amplitude, cell in ((50.0, short / 2), (25.0, short / 12), (10.0, short / 48)):
        pixels += amplitude * _smooth_field(rng, width, height, max(cell, 1.0), 3)
    if noise > 0:
        pixels += noise * rng.standard_normal(pixels.shape, dtype=np.float32)
    return pixels


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(pixels, 0, 255).astype(np.uint8)


def photo_like(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """Makes an RGB image with a photo's statistics: gradients, soft blobs and mild noise.

    Flat or purely random images give misleading sizes and timings (flat JPEGs are tiny,
    white noise is huge and slow to decode); this sits in between like a real photo, so a
    640x480 at JPEG quality 90 is roughly 50 KB.

    Args:
        width: Width in pixels (>= 1).
        height: Height in pixels (>= 1).
        rng: Source of all randomness; the same generator state gives the same pixels.

    Returns:
        A new `PIL.Image.Image` in mode "RGB" of size (width, height).

    Raises:
        OptionsError: If a side is smaller than 1.
    """
    if width < 1 or height < 1:
        raise OptionsError(f"photo_like needs positive sides, got width={width} height={height}")
    return Image.fromarray(_to_uint8(_photo_array(width, height, rng)), "RGB")


# --------------------------------------------------------------------------------------------
# Writing


def write_image(
    path: str | os.PathLike[str], image: Image.Image, fmt: str, **save_kwargs: Any
) -> str:
    """Saves `image` in format `fmt`, creating parent folders first.

    Generators write deep trees (split/class/file); creating folders here keeps each of them
    to one line per file.

    Args:
        path: Destination file; its extension is not used to pick the format.
        image: The image to save.
        fmt: Pillow format name, e.g. "JPEG", "PNG", "WEBP".
        **save_kwargs: Passed to `PIL.Image.Image.save` (e.g. quality=90).

    Returns:
        `path` as a string.
    """
    path = _with_parent(path)
    image.save(path, format=fmt, **save_kwargs)
    return path


def _encode(image: Image.Image, fmt: str, **save_kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_kwargs)
    return buffer.getvalue()


def _with_parent(path: str | os.PathLike[str]) -> str:
    """`path` as a string, its parent folder created: generators write anywhere."""
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    return path


def _write_bytes(path: str, data: bytes) -> str:
    path = _with_parent(path)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_from_rows(width: int, height: int, bit_depth: int, color_type: int, idat: bytes) -> bytes:
    """Assembles a PNG from already-compressed, already-filtered scanlines.

    Pillow cannot write 16-bit RGB, and writing a 20000x20000 image through Pillow would
    allocate 400 MB, so the two PNGs that need it are built from chunks here.
    """
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _png16_rgb(pixels: np.ndarray) -> bytes:
    """Encodes an HxWx3 uint16 array as a 16-bit-per-channel RGB PNG (colour type 2)."""
    height, width, _ = pixels.shape
    rows = pixels.astype(">u2").reshape(height, width * 3).view(np.uint8)
    # Filter type 0 (None) before every scanline.
    filtered = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)
    return _png_from_rows(width, height, 16, 2, zlib.compress(filtered.tobytes(), 9))


def _huge_png(side: int) -> bytes:
    """A 1-bit all-black PNG whose header claims side x side pixels (a decompression bomb).

    1-bit rows keep the raw stream at side*side/8 bytes (50 MB for 20000), compressed in
    slices so memory stays small; zeros deflate ~1000:1, so the file is tens of KB.
    """
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    slice_rows = 1000
    compressor = zlib.compressobj(9)
    parts = []
    block = row * slice_rows
    for start in range(0, side, slice_rows):
        count = min(slice_rows, side - start)
        parts.append(compressor.compress(block if count == slice_rows else row * count))
    parts.append(compressor.flush())
    return _png_from_rows(side, side, 1, 0, b"".join(parts))


# --------------------------------------------------------------------------------------------
# Folder trees


def _layout(
    root: str | os.PathLike[str],
    classes: Sequence[str],
    per_class: int,
    splits: Mapping[str, int] | None,
) -> Iterator[tuple[str, str, int]]:
    """Yields (folder, class name, index within that folder) for every file to write.

    Without splits the tree is root/<class>/; with splits it is root/<split>/<class>/ with
    `splits[split]` files per class, and `per_class` is ignored.
    """
    if not classes:
        raise OptionsError("classes must name at least one class, got an empty sequence")
    if len(set(classes)) != len(classes):
        raise OptionsError(f"classes must be distinct, got {tuple(classes)!r}")
    root = os.fspath(root)
    if splits is None:
        if per_class < 0:
            raise OptionsError(f"per_class must be >= 0, got {per_class}")
        for name in classes:
            for index in range(per_class):
                yield os.path.join(root, name), name, index
        return
    for split, count in splits.items():
        if count < 0:
            raise OptionsError(f"split counts must be >= 0, got {split!r}: {count}")
        for name in classes:
            for index in range(count):
                yield os.path.join(root, split, name), name, index


def _check_sides(min_side: int, max_side: int) -> None:
    if not 1 <= min_side <= max_side:
        raise OptionsError(
            f"need 1 <= min_side <= max_side, got min_side={min_side} max_side={max_side}"
        )


def make_class_tree(
    root: str | os.PathLike[str],
    *,
    classes: Sequence[str] = ("cat", "dog", "bird"),
    per_class: int = 10,
    seed: int = 0,
    min_side: int = 32,
    max_side: int = 256,
    formats: Sequence[str] = ("JPEG", "PNG"),
    modes: Sequence[str] = ("RGB", "L"),
    splits: Mapping[str, int] | None = None,
) -> list[str]:
    """Writes a small folder-per-class image tree with varied sizes, formats and modes.

    Real folders mix phone JPEGs, screenshots and scans; a tree that varies width and height
    independently and cycles through every format x mode combination catches code that
    assumes one shape, three channels or one codec. Format and mode are assigned by index
    (not drawn at random) so every class holds every combination once it has
    len(formats) * len(modes) files.

    Args:
        root: Folder to write into (created if missing).
        classes: Class names; one folder each.
        per_class: Files per class when `splits` is None.
        seed: Seed for sizes and pixels; the same seed writes the same bytes.
        min_side: Smallest width or height, inclusive.
        max_side: Largest width or height, inclusive.
        formats: Pillow format names to cycle through (e.g. "JPEG", "PNG", "WEBP").
        modes: Pillow modes to cycle through ("RGB", "L", or anything RGB converts to).
        splits: Optional {split name: files per class}, e.g. {"train": 8, "validation": 2};
            files then go to root/<split>/<class>/ and `per_class` is ignored.

    Returns:
        Sorted list of the paths written.

    Raises:
        OptionsError: On empty/duplicate classes, bad counts or bad side limits.
    """
    _check_sides(min_side, max_side)
    if not formats or not modes:
        raise OptionsError(f"formats and modes must be non-empty, got {formats!r} {modes!r}")
    rng = np.random.default_rng(seed)
    paths = []
    for folder, name, index in _layout(root, classes, per_class, splits):
        fmt = formats[index % len(formats)]
        mode = modes[(index // len(formats)) % len(modes)]
        width, height = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
        image = photo_like(width, height, rng)
        if mode != "RGB":
            image = image.convert(mode)
        ext = _EXTENSIONS.get(fmt.upper(), "." + fmt.lower())
        kwargs = {"quality": 90} if fmt.upper() == "JPEG" else {}
        path = os.path.join(folder, f"{name}_{index:04d}{ext}")
        paths.append(write_image(path, image, fmt, **kwargs))
    return sorted(paths)


def _shape_polygon(
    shape: str, cx: float, cy: float, radius: float, angle: float
) -> list[tuple[float, float]]:
    """Vertices of `shape` inscribed in a circle of `radius` about (cx, cy), rotated."""
    if shape == "square":
        corners = [math.pi / 4 + k * math.pi / 2 for k in range(4)]
        points = [(math.cos(a), math.sin(a)) for a in corners]
    elif shape == "triangle":
        corners = [-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3)]
        points = [(math.cos(a), math.sin(a)) for a in corners]
    elif shape == "cross":
        # A plus sign whose arms are 0.7 of the radius wide: thick enough to survive a
        # downscale to 64x64 and still look nothing like a square.
        a, r = 0.35 / math.hypot(1.0, 0.35), 1.0 / math.hypot(1.0, 0.35)
        points = [
            (a, r), (a, a), (r, a), (r, -a), (a, -a), (a, -r),
            (-a, -r), (-a, -a), (-r, -a), (-r, a), (-a, a), (-a, r),
        ]  # fmt: skip
    else:
        raise OptionsError(f"unknown shape {shape!r}; known: circle, square, triangle, cross")
    cos, sin = math.cos(angle), math.sin(angle)
    return [
        (cx + radius * (x * cos - y * sin), cy + radius * (x * sin + y * cos)) for x, y in points
    ]


def _contrasting_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A dark background colour and a bright foreground colour, each channel drawn at random.

    Hue is free but polarity is fixed (every channel of the shape is at least 55 brighter
    than the background): with free polarity a small CNN must learn every edge twice, and
    a demo-sized corpus is not enough for that (benchmarks/NOTES.md).
    """
    return rng.integers(0, 100, 3), rng.integers(155, 256, 3)


def make_shapes_corpus(
    root: str | os.PathLike[str],
    *,
    classes: Sequence[str] = ("circle", "square", "triangle", "cross"),
    per_class: int = 250,
    seed: int = 0,
    min_side: int = 48,
    max_side: int = 160,
    splits: Mapping[str, int] | None = None,
) -> list[str]:
    """Writes a learnable corpus: one large filled shape per image, named by its class folder.

    The demo must show a model actually learning in seconds on a CPU; photo-like noise has
    no signal, so each image is a shape (circle, square, triangle, cross) in a random
    colour, position, size (circumscribed circle 60-95 % of the shorter side) and rotation,
    brighter than its random dark, noisy background. Aspect ratio stays within 4:3 so a
    squash to a square input keeps shapes recognisable. Saved as JPEG quality 90.

    A plain CNN on 64x64 inputs learns it in a few epochs (benchmarks/NOTES.md). Models
    that global-average-pool a small receptive field learn far slower, as the classes
    differ only in global outline.

    Args:
        root: Folder to write into (created if missing).
        classes: Shape names, each one of "circle", "square", "triangle", "cross"; the
            folder name is the class name.
        per_class: Images per class when `splits` is None.
        seed: Seed for everything; the same seed writes the same bytes.
        min_side: Smallest width or height, inclusive.
        max_side: Largest width or height, inclusive (height is also kept within 4:3 of
            the width).
        splits: Optional {split name: images per class}; see `make_class_tree`.

    Returns:
        Sorted list of the paths written.

    Raises:
        OptionsError: On unknown shapes, empty/duplicate classes, bad counts or side limits.
    """
    _check_sides(min_side, max_side)
    known = {"circle", "square", "triangle", "cross"}
    unknown = [name for name in classes if name not in known]
    if unknown:
        raise OptionsError(f"unknown shape classes {unknown!r}; known: {sorted(known)}")
    rng = np.random.default_rng(seed)
    # One shared noise bank, cropped at a random offset per image: generating fresh
    # Gaussian noise for every image would dominate the run time.
    bank = rng.normal(0.0, 12.0, (2 * max_side, 2 * max_side, 3)).astype(np.float32)
    paths = []
    for folder, name, index in _layout(root, classes, per_class, splits):
        # Aspect ratio stays within 4:3 either way: pipelines squash to a square input, and a
        # 3:1 squash turns circles into ellipses and squares into slabs.
        width = int(rng.integers(min_side, max_side + 1))
        low, high = max(min_side, math.ceil(width * 0.75)), min(max_side, int(width / 0.75))
        height = int(rng.integers(low, max(low, high) + 1))
        background, foreground = _contrasting_colours(rng)
        image = Image.new("RGB", (width, height), tuple(int(v) for v in background))
        draw = ImageDraw.Draw(image)
        short = min(width, height)
        radius = rng.uniform(0.6, 0.95) * short / 2
        cx = rng.uniform(radius, width - radius)
        cy = rng.uniform(radius, height - radius)
        fill = tuple(int(v) for v in foreground)
        if name == "circle":
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
        else:
            angle = rng.uniform(0.0, 2.0 * math.pi)
            draw.polygon(_shape_polygon(name, cx, cy, radius, angle), fill=fill)
        oy, ox = (int(v) for v in rng.integers(0, max_side, size=2))
        pixels = np.asarray(image, np.float32) + bank[oy : oy + height, ox : ox + width]
        path = os.path.join(folder, f"{name}_{index:04d}.jpg")
        paths.append(
            write_image(path, Image.fromarray(_to_uint8(pixels), "RGB"), "JPEG", quality=90)
        )
    return sorted(paths)


def make_photo_corpus(
    root: str | os.PathLike[str],
    *,
    num_images: int = 1000,
    classes: Sequence[str] = ("a", "b", "c", "d"),
    width: int = 640,
    height: int = 480,
    quality: int = 90,
    seed: int = 0,
) -> list[str]:
    """Writes photo-sized JPEGs (~50 KB at 640x480, quality 90) in class folders.

    Benchmarks need many realistic files: decode cost and bytes read per image should be
    those of a photo. Drawing every image from scratch is slow, so a few base
    scenes are drawn once and each file is a base scene rolled by a random offset, maybe
    mirrored, with its own crop of a shared noise bank and a brightness shift. Every file
    has distinct bytes, so caches and dedup cannot flatter a benchmark.

    Images are dealt to classes round-robin, so class sizes differ by at most one.

    Args:
        root: Folder to write into (created if missing).
        num_images: Total number of files.
        classes: Class folder names.
        width: Image width in pixels.
        height: Image height in pixels.
        quality: JPEG quality (1-100).
        seed: Seed for everything; the same seed writes the same bytes.

    Returns:
        Sorted list of the paths written.

    Raises:
        OptionsError: On a negative count, empty/duplicate classes or bad size/quality.
    """
    if num_images < 0:
        raise OptionsError(f"num_images must be >= 0, got {num_images}")
    if width < 1 or height < 1:
        raise OptionsError(f"width and height must be >= 1, got {width}x{height}")
    if not 1 <= quality <= 100:
        raise OptionsError(f"quality must be in 1..100, got {quality}")
    if not classes or len(set(classes)) != len(classes):
        raise OptionsError(f"classes must be non-empty and distinct, got {tuple(classes)!r}")
    rng = np.random.default_rng(seed)
    # Base noise is lower than photo_like's 3.0 because each file adds its own noise crop;
    # the two together land on the same ~50 KB at 640x480.
    bases = [_photo_array(width, height, rng, noise=1.5) for _ in range(min(num_images, 6))]
    bank = rng.normal(0.0, 2.6, (height + 64, width + 64, 3)).astype(np.float32)
    root = os.fspath(root)
    paths = []
    for index in range(num_images):
        name = classes[index % len(classes)]
        base = bases[int(rng.integers(len(bases)))]
        dy, dx = int(rng.integers(height)), int(rng.integers(width))
        pixels = np.roll(base, (dy, dx), axis=(0, 1))
        if rng.integers(2):
            pixels = pixels[:, ::-1]
        oy, ox = (int(v) for v in rng.integers(0, 64, size=2))
        pixels = pixels + bank[oy : oy + height, ox : ox + width] + rng.uniform(-20.0, 20.0)
        path = os.path.join(root, name, f"{name}_{index // len(classes):05d}.jpg")
        paths.append(
            write_image(path, Image.fromarray(_to_uint8(pixels), "RGB"), "JPEG", quality=quality)
        )
    return sorted(paths)


# --------------------------------------------------------------------------------------------
# Hostile files


def _valid_small(rng: np.random.Generator, width: int = 120, height: int = 80) -> Image.Image:
    """A small non-square RGB image: non-square so transposed sides are detectable."""
    return photo_like(width, height, rng)


def make_hostile_files(directory: str | os.PathLike[str]) -> dict[str, str]:
    """Writes one file per awkward input the image layer must accept or reject cleanly.

    Each kind is a case seen in real folders: empty and non-image files, truncated and
    corrupt data, colour models TF decoders do not return as RGB (CMYK, palette, LA, 16-bit),
    animation, EXIF rotation, a decompression bomb, non-ASCII names and lying extensions.
    Valid kinds are all smaller than 200x200 and non-square, so a swapped width/height or
    ignored EXIF rotation shows up as a wrong shape. Output is identical on every call.

    Kinds (see `HOSTILE_KINDS`; `UNREADABLE_KINDS` are the ones that are not valid images):
    zero_byte, not_an_image (text named .jpg), truncated_jpeg, truncated_png (cut to half),
    corrupt_jpeg (valid header, garbage scan data), cmyk_jpeg, grayscale_jpeg,
    grayscale_png, rgba_png (partial transparency), la_png, palette_png (mode P),
    png16_gray (16-bit gray), png16_rgb (16 bits per channel), gif_animated (3 distinct
    frames), bmp, webp, tiff, exif_rotated_jpeg (stored 120x80, Orientation=6 so shown
    80x120), huge_png (header says 20000x20000; tens of KB on disk), unicode_name
    (café_日本語_🙂.jpg), jpeg_wrong_ext (JPEG named .png), png_wrong_ext (PNG named .jpg).

    Args:
        directory: Folder to write into (created if missing).

    Returns:
        {kind: path} for every kind in `HOSTILE_KINDS`.
    """
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(1234)

    def at(name: str) -> str:
        return os.path.join(directory, name)

    rgb = _valid_small(rng)
    jpeg = _encode(rgb, "JPEG", quality=90)
    png = _encode(rgb, "PNG")
    files: dict[str, str] = {}

    files["zero_byte"] = _write_bytes(at("zero_byte.jpg"), b"")
    files["not_an_image"] = _write_bytes(
        at("not_an_image.jpg"), b"This is a text file with a .jpg extension.\n" * 4
    )
    files["truncated_jpeg"] = _write_bytes(at("truncated_jpeg.jpg"), jpeg[: len(jpeg) // 2])
    files["truncated_png"] = _write_bytes(at("truncated_png.png"), png[: len(png) // 2])

    # Keep everything up to and including the SOS header, then replace the entropy-coded
    # data with random bytes (no 0xFF, so no accidental markers). Random scan data alone is
    # NOT an error: libjpeg only warns and both Pillow and tf.io.decode_jpeg return noise.
    # A second SOF marker in the middle of the scan is a hard libjpeg error ("two SOF
    # markers"), so both decoders reject the file while its header still parses.
    sos = jpeg.index(b"\xff\xda")
    scan_start = sos + 2 + struct.unpack(">H", jpeg[sos + 2 : sos + 4])[0]
    garbage = rng.integers(0, 255, len(jpeg) - 2 - scan_start, dtype=np.uint8).tobytes()
    middle = len(garbage) // 2
    files["corrupt_jpeg"] = _write_bytes(
        at("corrupt_jpeg.jpg"),
        jpeg[:scan_start] + garbage[:middle] + b"\xff\xc0\x00\x11" + garbage[middle:] + b"\xff\xd9",
    )

    files["cmyk_jpeg"] = write_image(
        at("cmyk_jpeg.jpg"), _valid_small(rng, 90, 130).convert("CMYK"), "JPEG", quality=90
    )
    files["grayscale_jpeg"] = write_image(
        at("grayscale_jpeg.jpg"), _valid_small(rng, 100, 70).convert("L"), "JPEG", quality=90
    )
    files["grayscale_png"] = write_image(
        at("grayscale_png.png"), _valid_small(rng, 70, 100).convert("L"), "PNG"
    )

    # Alpha ramps 0..255 left to right: fully transparent, partial and opaque pixels, so
    # "drop alpha" and "composite on white" give visibly different results.
    rgba = _valid_small(rng, 110, 90).convert("RGBA")
    ramp = np.tile(np.linspace(0, 255, 110).astype(np.uint8), (90, 1))
    rgba.putalpha(Image.fromarray(ramp, "L"))
    files["rgba_png"] = write_image(at("rgba_png.png"), rgba, "PNG")
    la = _valid_small(rng, 90, 110).convert("LA")
    # Alpha ramps top to bottom here, so the two alpha files are not the same test twice.
    la.putalpha(
        Image.fromarray(np.tile(np.linspace(0, 255, 110).astype(np.uint8)[:, None], (1, 90)), "L")
    )
    files["la_png"] = write_image(at("la_png.png"), la, "PNG")

    palette = _valid_small(rng, 130, 60).quantize(colors=32, dither=Image.Dither.NONE)
    files["palette_png"] = write_image(at("palette_png.png"), palette, "PNG")

    # 16-bit gradients use values that are not multiples of 257, so reading only the high
    # byte (or the low byte) is detectably different from a proper 16 -> 8 bit conversion.
    ys = np.linspace(0.0, 1.0, 60)[:, None]
    xs = np.linspace(0.0, 1.0, 100)[None, :]
    gray16 = (65535 * (0.6 * xs + 0.4 * ys)).astype(np.uint16)
    files["png16_gray"] = write_image(at("png16_gray.png"), Image.fromarray(gray16), "PNG")
    rgb16 = np.stack([65535 * xs * np.ones_like(ys), 65535 * ys * np.ones_like(xs),
                      65535 * (1 - xs) * ys], axis=-1).astype(np.uint16)  # fmt: skip
    files["png16_rgb"] = _write_bytes(at("png16_rgb.png"), _png16_rgb(rgb16))

    frames = [_valid_small(rng, 80, 64).quantize(colors=64) for _ in range(3)]
    gif_path = at("gif_animated.gif")
    frames[0].save(
        gif_path, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0
    )
    files["gif_animated"] = gif_path

    files["bmp"] = write_image(at("bmp.bmp"), _valid_small(rng, 96, 72), "BMP")
    files["webp"] = write_image(at("webp.webp"), _valid_small(rng, 104, 78), "WEBP", quality=90)
    files["tiff"] = write_image(at("tiff.tif"), _valid_small(rng, 88, 66), "TIFF")

    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    files["exif_rotated_jpeg"] = write_image(
        at("exif_rotated_jpeg.jpg"), _valid_small(rng, 120, 80), "JPEG", quality=90, exif=exif
    )

    files["huge_png"] = _write_bytes(at("huge_png.png"), _huge_png(_HUGE_SIDE))
    files["unicode_name"] = _write_bytes(at("café_日本語_🙂.jpg"), jpeg)
    files["jpeg_wrong_ext"] = _write_bytes(at("jpeg_wrong_ext.png"), jpeg)
    files["png_wrong_ext"] = _write_bytes(at("png_wrong_ext.jpg"), png)
    return {kind: files[kind] for kind in HOSTILE_KINDS}


# --------------------------------------------------------------------------------------------
# Manifests


def make_manifest(
    csv_path: str | os.PathLike[str],
    rows: Sequence[tuple[str, str] | tuple[str, str, str]],
    header: Sequence[str] | None = ("path", "label"),
) -> str:
    """Writes a UTF-8 CSV manifest (header then rows) with the csv module's quoting.

    Manifest tests need paths with commas, quotes and non-ASCII characters written exactly
    as a spreadsheet would, which only the csv module gets right.

    Args:
        csv_path: Destination file; parent folders are created.
        rows: (path, label) or (path, label, split) tuples, written in order.
        header: Column names, or None for no header row.

    Returns:
        `csv_path` as a string.
    """
    csv_path = _with_parent(csv_path)
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return csv_path

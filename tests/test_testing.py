"""Checks that the corpus generators write what they claim: formats, modes, sizes, bytes.

Other test modules trust these files (a "cmyk_jpeg" must really be CMYK, a "truncated_png"
must really fail to decode), so each claim is checked here by opening the file with Pillow
or reading its bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import struct

import numpy as np
import pytest
from PIL import Image, ImageOps, UnidentifiedImageError

from tfclassify import testing
from tfclassify.core.errors import OptionsError

MAGIC = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "GIF": (b"GIF89a", b"GIF87a"),
    "BMP": (b"BM",),
    "TIFF": (b"II*\x00", b"MM\x00*"),
}


def _magic_format(path: str) -> str | None:
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for fmt, prefixes in MAGIC.items():
        if head.startswith(prefixes):
            return fmt
    return None


def _digests(paths: list[str], root: str) -> dict[str, str]:
    out = {}
    for path in paths:
        with open(path, "rb") as f:
            out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def _ihdr(path: str) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) straight from the PNG header bytes."""
    with open(path, "rb") as f:
        head = f.read(33)
    assert head[:8] == MAGIC["PNG"][0] and head[12:16] == b"IHDR"
    return struct.unpack(">IIBB", head[16:26])


# --------------------------------------------------------------------------------------------
# photo_like / write_image


def test_photo_like_is_rgb_deterministic_and_compresses_like_a_photo():
    image = testing.photo_like(640, 480, np.random.default_rng(7))
    again = testing.photo_like(640, 480, np.random.default_rng(7))
    assert image.mode == "RGB" and image.size == (640, 480)
    assert image.tobytes() == again.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    assert 40_000 <= len(buffer.getvalue()) <= 70_000
    # Not flat: every channel spans a real range.
    pixels = np.asarray(image)
    assert (pixels.max(axis=(0, 1)).astype(int) - pixels.min(axis=(0, 1)) > 60).all()


def test_photo_like_handles_tiny_and_rejects_empty():
    assert testing.photo_like(1, 3, np.random.default_rng(0)).size == (1, 3)
    with pytest.raises(OptionsError, match="width=0"):
        testing.photo_like(0, 5, np.random.default_rng(0))


def test_write_image_creates_parents_and_returns_path(tmp_path):
    target = tmp_path / "a" / "b" / "x.webp"
    out = testing.write_image(target, Image.new("RGB", (5, 4), "red"), "WEBP", quality=80)
    assert out == str(target)
    assert _magic_format(out) == "WEBP"


# --------------------------------------------------------------------------------------------
# make_class_tree


def test_class_tree_layout_formats_modes_and_sizes(tmp_path):
    paths = testing.make_class_tree(tmp_path, per_class=4, min_side=20, max_side=90)
    assert paths == sorted(paths) and len(paths) == 12
    by_class: dict[str, set[tuple[str, str]]] = {}
    sizes = set()
    for path in paths:
        name = os.path.basename(os.path.dirname(path))
        assert os.path.dirname(os.path.dirname(path)) == str(tmp_path)
        with Image.open(path) as image:
            assert _magic_format(path) == image.format
            assert path.endswith({"JPEG": ".jpg", "PNG": ".png"}[image.format])
            assert 20 <= image.width <= 90 and 20 <= image.height <= 90
            by_class.setdefault(name, set()).add((image.format, image.mode))
            sizes.add(image.size)
    combos = {(f, m) for f in ("JPEG", "PNG") for m in ("RGB", "L")}
    assert by_class == {name: combos for name in ("cat", "dog", "bird")}
    assert len(sizes) > 6  # widths and heights vary independently


def test_class_tree_splits_and_determinism(tmp_path):
    splits = {"train": 3, "validation": 1}
    first = testing.make_class_tree(tmp_path / "a", classes=("x", "y"), splits=splits, seed=3)
    second = testing.make_class_tree(tmp_path / "b", classes=("x", "y"), splits=splits, seed=3)
    counts = {}
    for path in first:
        rel = os.path.relpath(path, tmp_path / "a").split(os.sep)
        counts[(rel[0], rel[1])] = counts.get((rel[0], rel[1]), 0) + 1
    assert counts == {("train", "x"): 3, ("train", "y"): 3, ("validation", "x"): 1,
                      ("validation", "y"): 1}  # fmt: skip
    assert _digests(first, str(tmp_path / "a")) == _digests(second, str(tmp_path / "b"))
    other = testing.make_class_tree(tmp_path / "c", classes=("x", "y"), splits=splits, seed=4)
    assert _digests(other, str(tmp_path / "c")) != _digests(first, str(tmp_path / "a"))


def test_class_tree_other_formats(tmp_path):
    paths = testing.make_class_tree(
        tmp_path, classes=("k",), per_class=3, formats=("WEBP", "BMP", "TIFF"), modes=("RGB",)
    )
    assert sorted(_magic_format(p) for p in paths) == ["BMP", "TIFF", "WEBP"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_side": 50, "max_side": 40}, "min_side=50"),
        ({"classes": ("a", "a")}, "distinct"),
        ({"classes": ()}, "at least one"),
        ({"per_class": -1}, "-1"),
        ({"splits": {"train": -2}}, "'train': -2"),
    ],
)
def test_class_tree_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(OptionsError, match=message):
        testing.make_class_tree(tmp_path, **kwargs)


# --------------------------------------------------------------------------------------------
# make_hostile_files

# kind -> (format, mode, size) as Pillow reports them after open().
VALID_HOSTILE = {
    "cmyk_jpeg": ("JPEG", "CMYK", (90, 130)),
    "grayscale_jpeg": ("JPEG", "L", (100, 70)),
    "grayscale_png": ("PNG", "L", (70, 100)),
    "rgba_png": ("PNG", "RGBA", (110, 90)),
    "la_png": ("PNG", "LA", (90, 110)),
    "palette_png": ("PNG", "P", (130, 60)),
    "png16_gray": ("PNG", "I;16", (100, 60)),
    "png16_rgb": ("PNG", "RGB", (100, 60)),  # Pillow reduces 16-bit RGB to 8 bits on read
    "gif_animated": ("GIF", "P", (80, 64)),
    "bmp": ("BMP", "RGB", (96, 72)),
    "webp": ("WEBP", "RGB", (104, 78)),
    "tiff": ("TIFF", "RGB", (88, 66)),
    "exif_rotated_jpeg": ("JPEG", "RGB", (120, 80)),
    "unicode_name": ("JPEG", "RGB", (120, 80)),
    "jpeg_wrong_ext": ("JPEG", "RGB", (120, 80)),
    "png_wrong_ext": ("PNG", "RGB", (120, 80)),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return testing.make_hostile_files(tmp_path_factory.mktemp("hostile"))


def test_hostile_kinds_are_complete(hostile):
    assert tuple(hostile) == testing.HOSTILE_KINDS
    assert set(VALID_HOSTILE) | testing.UNREADABLE_KINDS == set(testing.HOSTILE_KINDS)
    assert all(os.path.isfile(path) for path in hostile.values())
    assert len(set(hostile.values())) == len(hostile)


@pytest.mark.parametrize("kind", sorted(VALID_HOSTILE))
def test_hostile_valid_kinds_decode_as_claimed(hostile, kind):
    fmt, mode, size = VALID_HOSTILE[kind]
    path = hostile[kind]
    assert _magic_format(path) == fmt
    with Image.open(path) as image:
        assert (image.format, image.mode, image.size) == (fmt, mode, size)
        image.load()
        assert max(size) < 200 and size[0] != size[1]


def test_hostile_names_and_extensions(hostile):
    assert os.path.basename(hostile["unicode_name"]) == "café_日本語_🙂.jpg"
    assert hostile["jpeg_wrong_ext"].endswith(".png")
    assert hostile["png_wrong_ext"].endswith(".jpg")
    assert hostile["not_an_image"].endswith(".jpg")


def test_hostile_unreadable_kinds_fail(hostile):
    assert os.path.getsize(hostile["zero_byte"]) == 0
    for kind in ("zero_byte", "not_an_image"):
        with pytest.raises(UnidentifiedImageError):
            Image.open(hostile[kind])
    # Truncated/corrupt files have a valid header (open works) but fail on decode.
    for kind, fmt in (("truncated_jpeg", "JPEG"), ("truncated_png", "PNG"),
                      ("corrupt_jpeg", "JPEG")):  # fmt: skip
        assert _magic_format(hostile[kind]) == fmt
        with Image.open(hostile[kind]) as image, pytest.raises(OSError):
            image.load()
    full = os.path.getsize(hostile["jpeg_wrong_ext"])
    assert os.path.getsize(hostile["truncated_jpeg"]) == full // 2
    assert os.path.getsize(hostile["corrupt_jpeg"]) == full + 4  # + the injected SOF marker
    assert (
        os.path.getsize(hostile["truncated_png"]) == os.path.getsize(hostile["png_wrong_ext"]) // 2
    )


def test_hostile_huge_png_is_a_small_decompression_bomb(hostile):
    path = hostile["huge_png"]
    assert os.path.getsize(path) < 5_000_000
    assert _ihdr(path) == (20000, 20000, 1, 0)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)


def test_hostile_png16_files_carry_16_bit_data(hostile):
    assert _ihdr(hostile["png16_gray"])[2:] == (16, 0)
    assert _ihdr(hostile["png16_rgb"])[2:] == (16, 2)
    with Image.open(hostile["png16_gray"]) as image:
        values = np.asarray(image).astype(np.int64)
    assert values.max() > 60000 and values.min() < 1000
    assert (values % 257 != 0).any()  # not just 8-bit values scaled up


def test_hostile_alpha_is_partial(hostile):
    for kind in ("rgba_png", "la_png"):
        with Image.open(hostile[kind]) as image:
            alpha = np.asarray(image.getchannel("A"))
        assert alpha.min() == 0 and alpha.max() == 255
        assert ((alpha > 0) & (alpha < 255)).mean() > 0.5


def test_hostile_gif_has_three_distinct_frames(hostile):
    with Image.open(hostile["gif_animated"]) as image:
        assert image.n_frames == 3 and image.is_animated
        frames = []
        for index in range(3):
            image.seek(index)
            frames.append(image.convert("RGB").tobytes())
    assert len(set(frames)) == 3


def test_hostile_exif_rotation_changes_shape(hostile):
    with Image.open(hostile["exif_rotated_jpeg"]) as image:
        assert image.getexif()[0x0112] == 6
        assert ImageOps.exif_transpose(image).size == (80, 120)


def test_hostile_files_are_deterministic(hostile, tmp_path):
    again = testing.make_hostile_files(tmp_path)
    assert _digests(list(hostile.values()), os.path.dirname(hostile["bmp"])) == _digests(
        list(again.values()), str(tmp_path)
    )


# --------------------------------------------------------------------------------------------
# make_shapes_corpus


def test_shapes_corpus_layout_and_contrast(tmp_path):
    splits = {"train": 6, "test": 2}
    paths = testing.make_shapes_corpus(tmp_path, splits=splits, min_side=40, max_side=120)
    assert len(paths) == 4 * 8 and paths == sorted(paths)
    for path in paths:
        split, name, base = os.path.relpath(path, tmp_path).split(os.sep)
        assert split in splits and base.startswith(name) and base.endswith(".jpg")
        with Image.open(path) as image:
            assert (image.format, image.mode) == ("JPEG", "RGB")
            width, height = image.size
            assert 40 <= width <= 120 and 40 <= height <= 120
            assert max(width, height) / min(width, height) <= 4 / 3 + 0.02
            gray = np.asarray(image, np.float32).mean(axis=2)
        # The shape is every channel >= 155 on a background of channels < 100: a fixed
        # threshold separates them, and the shape covers a large part of the image.
        assert 0.08 <= (gray > 127).mean() <= 0.8


def test_shapes_corpus_deterministic_and_validates(tmp_path):
    first = testing.make_shapes_corpus(tmp_path / "a", per_class=3, seed=5)
    second = testing.make_shapes_corpus(tmp_path / "b", per_class=3, seed=5)
    assert _digests(first, str(tmp_path / "a")) == _digests(second, str(tmp_path / "b"))
    with pytest.raises(OptionsError, match="hexagon"):
        testing.make_shapes_corpus(tmp_path / "c", classes=("circle", "hexagon"))


# --------------------------------------------------------------------------------------------
# make_photo_corpus


def test_photo_corpus_sizes_distinct_and_deterministic(tmp_path):
    paths = testing.make_photo_corpus(tmp_path / "a", num_images=10, seed=1)
    assert len(paths) == 10 and paths == sorted(paths)
    per_class = {}
    for path in paths:
        name = os.path.basename(os.path.dirname(path))
        per_class[name] = per_class.get(name, 0) + 1
        assert 35_000 <= os.path.getsize(path) <= 75_000
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (640, 480))
    assert per_class == {"a": 3, "b": 3, "c": 2, "d": 2}
    digests = _digests(paths, str(tmp_path / "a"))
    assert len(set(digests.values())) == 10
    again = testing.make_photo_corpus(tmp_path / "b", num_images=10, seed=1)
    assert _digests(again, str(tmp_path / "b")) == digests


def test_photo_corpus_small_sizes_and_validation(tmp_path):
    paths = testing.make_photo_corpus(tmp_path, num_images=3, classes=("only",), width=64,
                                      height=48, quality=75)  # fmt: skip
    assert [os.path.basename(p) for p in paths] == ["only_00000.jpg", "only_00001.jpg",
                                                    "only_00002.jpg"]  # fmt: skip
    with pytest.raises(OptionsError, match="quality"):
        testing.make_photo_corpus(tmp_path, num_images=1, quality=0)


# --------------------------------------------------------------------------------------------
# make_manifest


def test_manifest_round_trips_awkward_paths(tmp_path):
    rows = [("dir/a, b.jpg", "cat"), ('quote"d/ü.png', "dög"), ("c.jpg", "bird")]
    path = testing.make_manifest(tmp_path / "sub" / "m.csv", rows)
    with open(path, encoding="utf-8", newline="") as f:
        read = list(csv.reader(f))
    assert read == [["path", "label"]] + [list(row) for row in rows]


def test_manifest_three_columns_and_no_header(tmp_path):
    rows = [("a.jpg", "x", "train"), ("b.jpg", "y", "validation")]
    path = testing.make_manifest(tmp_path / "m.csv", rows, header=("path", "label", "split"))
    with open(path, encoding="utf-8", newline="") as f:
        assert list(csv.DictReader(f))[1] == {"path": "b.jpg", "label": "y", "split": "validation"}
    bare = testing.make_manifest(tmp_path / "bare.csv", rows[:1], header=None)
    with open(bare, encoding="utf-8", newline="") as f:
        assert f.read() == "a.jpg,x,train\r\n"  # the csv module's (excel) line ending

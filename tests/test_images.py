"""The per-image decision (keep / convert / skip) for every hostile kind and validate mode."""

import io

import numpy as np
import pytest
from PIL import Image

from tfclassify import testing
from tfclassify.conversion import images

KEPT = {
    "grayscale_jpeg": ("jpeg", 1),
    "grayscale_png": ("png", 1),
    "unicode_name": ("jpeg", 3),
    "jpeg_wrong_ext": ("jpeg", 3),
    "png_wrong_ext": ("png", 3),
}
CONVERTED = {
    "cmyk_jpeg": ("jpeg", 3),
    "rgba_png": ("png", 3),
    "la_png": ("png", 1),
    "palette_png": ("png", 3),
    "png16_gray": ("png", 1),
    "png16_rgb": ("png", 3),
    "gif_animated": ("png", 3),
    "bmp": ("png", 3),
    "webp": ("png", 3),
    "tiff": ("png", 3),
    "exif_rotated_jpeg": ("jpeg", 3),
}
SKIPPED_FULL = {
    "zero_byte": "empty",
    "not_an_image": "not_image",
    "truncated_jpeg": "truncated",
    "truncated_png": "truncated",
    "corrupt_jpeg": "undecodable",
    "huge_png": "too_large",
}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    paths = testing.make_hostile_files(tmp_path_factory.mktemp("hostile"))
    return {k: open(p, "rb").read() for k, p in paths.items()}


def test_every_kind_is_covered(kinds):
    assert set(kinds) == set(KEPT) | set(CONVERTED) | set(SKIPPED_FULL)


@pytest.mark.parametrize("kind", sorted(KEPT))
def test_kept_as_is(kinds, kind):
    r = images.inspect(kinds[kind], images.ImageConfig())
    assert r.ok and r.data is None and r.converted == ""
    assert (r.format, r.channels) == KEPT[kind]


@pytest.mark.parametrize("kind", sorted(CONVERTED))
def test_converted_to_tf_readable(kinds, kind):
    r = images.inspect(kinds[kind], images.ImageConfig())
    assert r.ok and r.data is not None and r.converted
    assert (r.format, r.channels) == CONVERTED[kind]
    im = Image.open(io.BytesIO(r.data))
    assert im.format.lower() == r.format and im.mode == ("L" if r.channels == 1 else "RGB")
    assert im.size == (r.width, r.height)


@pytest.mark.parametrize("kind", sorted(SKIPPED_FULL))
def test_skipped_with_reason(kinds, kind):
    r = images.inspect(kinds[kind], images.ImageConfig())
    assert not r.ok
    assert images.reason_code(r.skip_reason) == SKIPPED_FULL[kind]
    assert len(r.skip_reason) > len(SKIPPED_FULL[kind]) + 5  # says why, not just a code


def test_header_mode_catches_truncation_from_the_trailer(kinds):
    cfg = images.ImageConfig(validate="header")
    for kind in ("truncated_jpeg", "truncated_png"):
        assert images.reason_code(images.inspect(kinds[kind], cfg).skip_reason) == "truncated"
    # Garbage scan data with an intact trailer needs a decode to find: header mode keeps it.
    assert images.inspect(kinds["corrupt_jpeg"], cfg).ok


def test_max_pixels_refused_before_decoding(kinds):
    data = kinds["png_wrong_ext"]  # 120x80 = 9600 pixels
    r = images.inspect(data, images.ImageConfig(max_pixels=9599))
    assert r.skip_reason.startswith("too_large: 120x80 = 9600 pixels > max_pixels 9599")
    assert images.inspect(data, images.ImageConfig(max_pixels=9600)).ok


@pytest.mark.parametrize("kind", ["png_wrong_ext", "bmp"])
def test_max_pixels_above_pillows_own_limit_is_honoured(kinds, monkeypatch, kind):
    """Pillow refuses images over twice its MAX_IMAGE_PIXELS by itself; max_pixels
    decides instead, higher or lower, and Pillow's setting is left as it was."""
    data = kinds[kind]
    w, h = Image.open(io.BytesIO(data)).size
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses > 2000 pixels
    assert images.inspect(data, images.ImageConfig(max_pixels=w * h)).ok
    refused = images.inspect(data, images.ImageConfig(max_pixels=w * h - 1)).skip_reason
    assert refused.startswith(f"too_large: {w}x{h} = {w * h} pixels > max_pixels {w * h - 1}")
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_exif_rotation_applied(kinds):
    r = images.inspect(kinds["exif_rotated_jpeg"], images.ImageConfig())
    assert (r.width, r.height) == (80, 120)  # stored 120x80 with Orientation=6


def test_alpha_composited_over_white():
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :3, 3] = 0  # left half fully transparent
    rgba[:, 3:, 3] = 255
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    r = images.inspect(buf.getvalue(), images.ImageConfig())
    px = np.asarray(Image.open(io.BytesIO(r.data)))
    assert (px[:, :3] == 255).all()
    assert (px[:, 3:] == [200, 0, 0]).all()


def test_png16_keeps_top_bits():
    arr = np.array([[0, 256, 65535, 32768]], np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")  # uint16 -> mode I;16
    r = images.inspect(buf.getvalue(), images.ImageConfig())
    assert np.asarray(Image.open(io.BytesIO(r.data))).tolist() == [[0, 1, 255, 128]]


@pytest.mark.parametrize(
    "shorter, max_side, expected",
    [
        (None, None, (120, 80)),
        (40, None, (60, 40)),
        (None, 60, (60, 40)),
        (100, 90, (90, 60)),
        (200, None, (120, 80)),
    ],  # never enlarges
)
def test_resize_at_conversion(kinds, shorter, max_side, expected):
    cfg = images.ImageConfig(resize_shorter_side=shorter, max_side=max_side)
    r = images.inspect(kinds["jpeg_wrong_ext"], cfg)
    assert (r.width, r.height) == expected
    assert (r.data is None) == (expected == (120, 80))


def test_forced_format(kinds):
    r = images.inspect(kinds["jpeg_wrong_ext"], images.ImageConfig(image_format="png"))
    assert r.format == "png" and r.data.startswith(b"\x89PNG")
    assert (
        images.inspect(kinds["png_wrong_ext"], images.ImageConfig(image_format="png")).data is None
    )


def test_sniff():
    assert images.sniff(b"\xff\xd8\xff\xe0") == "jpeg"
    assert images.sniff(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert images.sniff(b"hello") is None


# ----------------------------------------------- the header-only JPEG path vs Pillow


def _jpeg(size=(40, 30), mode="RGB", **save) -> bytes:
    rng = np.random.default_rng(sum(size))
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), np.uint8))
    buf = io.BytesIO()
    rgb.convert(mode).save(buf, "JPEG", **save)
    return buf.getvalue()


def _exif(orientation=None, **tags) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    for tag, value in tags.items():
        exif[int(tag[1:])] = value
    return exif.tobytes()


_XMP = b'<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
PLAIN_JPEGS = {
    "baseline": _jpeg(),
    "gray": _jpeg(mode="L"),
    "progressive": _jpeg(progressive=True),
    "optimized_420": _jpeg((33, 17), optimize=True, subsampling=2),
    "restart_markers": _jpeg((64, 64), restart_marker_blocks=2),
    "icc_and_comment": _jpeg(icc_profile=b"\0" * 300, comment=b"hello"),
    "exif_without_orientation": _jpeg(exif=_exif(t305="tfclassify")),
    "exif_orientation_1": _jpeg(exif=_exif(1)),
    "exif_orientation_0": _jpeg(exif=_exif(0)),
    "one_pixel": _jpeg((1, 1)),
}
PILLOW_JPEGS = {
    "cmyk": _jpeg(mode="CMYK"),
    **{f"exif_orientation_{o}": _jpeg(exif=_exif(o)) for o in range(2, 9)},
    "xmp_orientation": _jpeg(xmp=_XMP),
    "truncated_header": _jpeg()[:120],
    "not_a_scan": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
}
CONFIGS = {
    "header": images.ImageConfig(validate="header"),
    "none": images.ImageConfig(validate="none"),
    "full": images.ImageConfig(),  # Pillow decodes: the walk must not answer
    "small_max_pixels": images.ImageConfig(validate="header", max_pixels=100),
    "resize": images.ImageConfig(validate="header", max_side=20),
    "as_png": images.ImageConfig(validate="header", image_format="png"),
}


def _pillow_verdict(data: bytes, cfg: images.ImageConfig) -> images.Inspected:
    try:
        return images._inspect_with_pillow(data, "jpeg", cfg)
    except images._Skip as e:
        return images.Inspected(skip_reason=str(e))


def test_plain_jpeg_walk_recognises_exactly_the_plain_ones():
    for name, data in PLAIN_JPEGS.items():
        assert images._plain_jpeg(data) is not None, name
        assert images.inspect_without_pillow(data, CONFIGS["header"]) is not None, name
        assert images.inspect_without_pillow(data, CONFIGS["full"]) is None, name
    for name, data in PILLOW_JPEGS.items():
        assert images._plain_jpeg(data) is None, name


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("name", sorted(PLAIN_JPEGS) + sorted(PILLOW_JPEGS))
def test_header_walk_agrees_with_pillow(name, config):
    """Same verdict, reason and numbers as Pillow's parser, whichever path ran."""
    data = {**PLAIN_JPEGS, **PILLOW_JPEGS}[name]
    cfg = CONFIGS[config]
    assert images.inspect(data, cfg) == _pillow_verdict(data, cfg)


def test_header_walk_agrees_with_pillow_on_the_hostile_jpegs(kinds):
    for kind, data in kinds.items():
        if images.sniff(data[:16]) != "jpeg":
            continue
        for cfg in CONFIGS.values():
            assert images.inspect(data, cfg) == _pillow_verdict(data, cfg), kind

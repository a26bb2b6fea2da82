"""`convert` end to end on the inputs and options a review found untested: the
remaining skip reasons, the command line's one-line errors, validate/image_format/
max_side/max_pixels through a whole conversion, and a split-less manifest with a
validation_fraction. Every corpus here is tiny and converted with one worker."""

from __future__ import annotations

import collections
import csv
import os
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from commands import run_in_process
from PIL import Image
from recordlib import read_records
from test_convert import opts

from tfclassify import convert, testing
from tfclassify.conversion import images
from tfclassify.core import metadata, schema
from tfclassify.core.errors import OptionsError
from tfclassify.core.metadata import DatasetInfo
from tfclassify.models.predictor import read_labels

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- helpers


def tiny(path, width: int, height: int, fmt: str = "JPEG", mode: str = "RGB", seed: int = 0):
    """Writes a small photo-like image (JPEG at quality 90, so a plain baseline JPEG)."""
    im = testing.photo_like(width, height, np.random.default_rng(seed))
    if mode != "RGB":
        im = im.convert(mode)
    kw = {"quality": 90} if fmt == "JPEG" else {}
    return testing.write_image(path, im, fmt, **kw)


def run(tmp_path, **kw) -> DatasetInfo:
    kw.setdefault("num_workers", 1)
    return convert(opts(tmp_path, **kw))


def skipped_csv(info: DatasetInfo) -> dict[str, str]:
    """skipped.csv as {relpath: reason}."""
    with open(os.path.join(info.directory, metadata.SKIPPED_FILE), encoding="utf-8") as f:
        return {row["path"]: row["reason"] for row in csv.DictReader(f)}


def records_by_split(directory: str) -> dict[str, list[schema.Record]]:
    info = metadata.load(directory)
    return {
        split: [
            schema.parse(raw)
            for path in info.shard_paths(split)
            for raw in tf.data.TFRecordDataset(path).as_numpy_iterator()
        ]
        for split in info.splits
    }


def source_pixels(path: str) -> np.ndarray:
    """Pillow's pixels of a plain RGB/L file, HxWxC like tf.io.decode_png."""
    arr = np.asarray(Image.open(path))
    return arr[..., None] if arr.ndim == 2 else arr


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> str:
    """2 classes x 4 files: JPEG and PNG, RGB and L, sides 24..72 (some above 40)."""
    root = tmp_path_factory.mktemp("small_tree")
    testing.make_class_tree(
        root, classes=("a", "b"), per_class=4, seed=11, min_side=24, max_side=72
    )
    return str(root)


# ---------------------------------------------------------------- skip reasons


def test_unsupported_pixel_mode_is_skipped(tmp_path):
    """32-bit float ('F') is the one mode Pillow opens from a file that _to_8bit
    refuses (I;16*, I, 1, P, LA, RGBA, CMYK, YCbCr, LAB, HSV all convert): a float
    TIFF must be skipped as `unsupported`, not crash or be stored wrongly."""
    src = tmp_path / "in"
    tiny(src / "c" / "good.png", 16, 12, "PNG")
    arr = np.linspace(0.0, 1.0, 12 * 16, dtype=np.float32).reshape(12, 16)
    testing.write_image(src / "c" / "float.tif", Image.fromarray(arr, "F"), "TIFF")
    assert Image.open(src / "c" / "float.tif").mode == "F"
    info = run(tmp_path, input_dir=str(src))
    assert skipped_csv(info) == {
        "c/float.tif": "unsupported: pixel mode F cannot be converted to RGB"
    }
    assert info.skipped_by_reason == {"unsupported": 1}
    assert (info.accepted, info.skipped, info.files_found) == (1, 1, 2)
    assert set(read_records(info.directory)) == {"c/good.png"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_file_without_read_permission_is_unreadable(tmp_path):
    src = tmp_path / "in"
    tiny(src / "c" / "good.jpg", 16, 12)
    locked = tiny(src / "c" / "locked.jpg", 16, 12)
    os.chmod(locked, 0)
    try:
        info = run(tmp_path, input_dir=str(src))
    finally:
        os.chmod(locked, 0o644)
    assert skipped_csv(info) == {"c/locked.jpg": "unreadable: Permission denied"}
    assert info.skipped_by_reason == {"unreadable": 1}
    assert info.accepted == 1 and info.files_found == 2


def test_symlink_loop_in_class_folder_is_unreadable(tmp_path):
    """A file that exists but cannot be opened, reproducible as root too: a link to
    itself (ELOOP). It is accounted for as `unreadable`, and the run goes on."""
    src = tmp_path / "in"
    tiny(src / "c" / "good.jpg", 16, 12)
    os.symlink("loop.jpg", src / "c" / "loop.jpg")
    info = run(tmp_path, input_dir=str(src))
    reasons = skipped_csv(info)
    assert list(reasons) == ["c/loop.jpg"]
    assert reasons["c/loop.jpg"].startswith("unreadable: ")
    assert "symbolic links" in reasons["c/loop.jpg"]  # the OS's own words, not a traceback
    assert info.skipped_by_reason == {"unreadable": 1}
    assert info.accepted + info.skipped == info.files_found == 2


def test_symlink_loop_beside_class_folders_is_accounted_for(tmp_path):
    """The same link loop directly in input_dir: not a class folder, so it must be
    reported (outside_class or unreadable), not end the run with a traceback."""
    src = tmp_path / "in"
    tiny(src / "c" / "good.jpg", 16, 12)
    os.symlink("loop.jpg", src / "loop.jpg")
    info = run(tmp_path, input_dir=str(src))
    reasons = skipped_csv(info)
    assert list(reasons) == ["loop.jpg"]
    assert images.reason_code(reasons["loop.jpg"]) in ("outside_class", "unreadable")
    assert info.accepted + info.skipped == info.files_found == 2


def convert_watching_fifo(tmp_path, fifo: str, **kw) -> tuple[DatasetInfo, bool]:
    """Converts on a thread while watching whether anything opens `fifo` to read it
    (a non-blocking open for writing succeeds only then). Each such reader is let go
    at once (it reads EOF), so a bug shows as a failed assertion, never a hang."""
    result: dict = {}

    def work() -> None:
        try:
            result["info"] = run(tmp_path, **kw)
        except BaseException as e:
            result["error"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    opened = False
    deadline = time.monotonic() + 120
    while t.is_alive() and time.monotonic() < deadline:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            opened = True
        except OSError:  # ENXIO: no reader
            pass
        t.join(0.005)
    assert not t.is_alive(), "conversion did not finish"
    if "error" in result:
        raise result["error"]
    return result["info"], opened


@pytest.mark.parametrize("validate", ["full", "header"])
def test_named_pipe_is_skipped_not_opened(tmp_path, validate):
    """A FIFO in a class folder (left by a tool, or on a mount) would block the run
    forever if opened: it is reported as `unsupported` without ever being opened."""
    src = tmp_path / "in"
    tiny(src / "c" / "good.jpg", 16, 12)
    fifo = str(src / "c" / "pipe.jpg")
    os.mkfifo(fifo)
    info, opened = convert_watching_fifo(tmp_path, fifo, input_dir=str(src), validate=validate)
    assert not opened, "the FIFO was opened for reading (a real run would hang there)"
    reasons = skipped_csv(info)
    assert list(reasons) == ["c/pipe.jpg"]
    assert images.reason_code(reasons["c/pipe.jpg"]) == "unsupported"
    assert (info.accepted, info.skipped, info.files_found) == (1, 1, 2)


# ---------------------------------------------------------------- command-line errors


def _manifest(tmp_path, rows, header=("path", "label"), image: str = "") -> str:
    if image:
        tiny(tmp_path / "m" / image, 16, 12)
    return testing.make_manifest(tmp_path / "m" / "list.csv", rows, header=header)


def _one_image_tree(tmp_path, label: str = "c") -> str:
    tiny(tmp_path / "in" / label / "x.jpg", 16, 12)
    return str(tmp_path / "in")


def _empty_classes(tmp_path) -> str:
    for c in ("a", "b"):
        (tmp_path / "in" / c).mkdir(parents=True)
    return str(tmp_path / "in")


# Each case: tmp_path -> (flags, strings the one error line must contain).
CLI_ERRORS = {
    "manifest_missing_column": lambda t: (
        ["--manifest", m := _manifest(t, [("a.jpg", "x")], header=("file", "label"))],
        [m, "missing column", "'path'"],
    ),
    "manifest_path_outside_root": lambda t: (
        ["--manifest", m := _manifest(t, [("../outside.jpg", "x")])],
        [m, "'../outside.jpg'", "outside the manifest's folder"],
    ),
    "manifest_not_found": lambda t: (
        ["--manifest", m := str(t / "nope.csv")],
        [f"manifest not found: {m}"],
    ),
    "manifest_lists_no_files": lambda t: (
        ["--manifest", m := _manifest(t, [])],
        [m, "lists no files"],
    ),
    "no_images_in_class_folders": lambda t: (
        ["--input_dir", d := _empty_classes(t)],
        [d, "no files found"],
    ),
    "resume_with_overwrite": lambda t: (
        ["--input_dir", _one_image_tree(t), "--resume", "--overwrite"],
        ["resume", "overwrite", "conflict"],
    ),
    "flag_value_absl_refuses": lambda t: (
        ["--input_dir", _one_image_tree(t), "--image_format", "gif"],
        ["--image_format=gif", "keep|jpeg|png"],
    ),
    "positional_argument": lambda t: (
        ["--input_dir", _one_image_tree(t), "surplus"],
        ["unexpected arguments ['surplus']"],
    ),
    "shard_size_not_finite": lambda t: (
        ["--input_dir", _one_image_tree(t), "--shard_size_mb", "inf"],
        ["shard_size_mb must be a number in [0.001, 16384], got inf"],
    ),
    "class_folder_name_with_a_newline": lambda t: (
        ["--input_dir", _one_image_tree(t, "multi\nline")],
        ["class folder name 'multi\\nline' holds a line break", "rename it"],
    ),
    "class_folder_name_blank": lambda t: (
        ["--input_dir", _one_image_tree(t, " ")],
        ["class folder name ' ' is empty or only whitespace"],
    ),
    "manifest_label_with_a_carriage_return": lambda t: (
        ["--manifest", m := _manifest(t, [("x.jpg", "a\rb")], image="x.jpg")],
        [m, "line 2: label 'a\\rb' holds a line break"],
    ),
    "no_output_dir": lambda t: (
        ["--input_dir", _one_image_tree(t), "--output_dir", ""],
        ["--output_dir is required"],
    ),
}


# Flag values past what a conversion can take (issue 13: overflows, a division by zero,
# 2**31 threads, each after the work dir was made). Each field's bound refuses them,
# except where absl's integer parser already does ("1e20" is not an int).
FLAG_EXTREMES = {
    "shard_size_mb": ["1e308", "1e-9", "nan"],
    "num_workers": ["2147483648", "0", "1e20"],
    "max_pixels": ["100000000000000000000", "1e20"],
    "max_file_mb": ["1e308", "0"],
    "max_side": ["2147483648"],
    "resize_shorter_side": ["0"],
    "jpeg_quality": ["101"],
    "seed": ["-1", "4294967296"],
    "validation_fraction": ["1"],
}
for _flag, _values in FLAG_EXTREMES.items():
    for _value in _values:
        CLI_ERRORS[f"{_flag}={_value}"] = lambda t, f=_flag, v=_value: (
            ["--input_dir", _one_image_tree(t), f"--{f}={v}"],
            [f"flag --{f}={v}: "] if v == "1e20" else [f"{f} must be ", ", got "],
        )


@pytest.mark.parametrize("case", list(CLI_ERRORS))
def test_cli_error_is_one_line_naming_the_cause(tmp_path, case):
    """Users see exit status 2 and one `error:` line that names the path (or the
    flags) at fault: no traceback, and nothing written to output_dir."""
    flags, wanted = CLI_ERRORS[case](tmp_path)
    out = tmp_path / "out"
    where = [] if "--output_dir" in flags else ["--output_dir", str(out)]
    p = run_in_process("tfclassify.convert", *flags, *where, "--quiet")
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for w in wanted:
        assert w in lines[0], (w, lines[0])
    assert not out.exists()  # refused before output_dir was touched


# ---------------------------------------------------------------- validate modes


@pytest.mark.parametrize(
    "validate, skipped",
    [
        # header: magic bytes, header and end marker. A cut-off file lacks its end
        # marker; corrupt_jpeg's bad scan data sits between a valid header and a
        # valid end marker, so only a full decode finds it.
        (
            "header",
            {
                "zero_byte": "empty",
                "not_an_image": "not_image",
                "truncated_jpeg": "truncated",
                "truncated_png": "truncated",
                "huge_png": "too_large",
            },
        ),
        # none: only the format sniff and the header's size are checked.
        ("none", {"zero_byte": "empty", "not_an_image": "not_image", "huge_png": "too_large"}),
    ],
)
def test_cheaper_validation_on_hostile_files(tmp_path, hostile_tree, validate, skipped):
    root, kinds = hostile_tree
    info = run(tmp_path, input_dir=root, validate=validate)
    reasons = skipped_csv(info)
    by_kind = {
        kind: images.reason_code(reasons[rel])
        for kind, path in kinds.items()
        if (rel := os.path.relpath(path, root)) in reasons
    }
    assert by_kind == skipped
    assert set(reasons) == {os.path.relpath(kinds[k], root) for k in skipped}
    assert info.skipped_by_reason == dict(collections.Counter(skipped.values()))
    assert info.accepted + info.skipped == info.files_found == len(kinds) + 4
    records = read_records(info.directory)
    assert len(records) == info.accepted
    # What the cheaper check lets through is stored byte for byte (a reader meets it).
    for kind in ("truncated_jpeg", "truncated_png", "corrupt_jpeg"):
        if kind not in skipped:
            rel = os.path.relpath(kinds[kind], root)
            assert records[rel].encoded == read_bytes(kinds[kind]), kind
    # Conversions still happen: CMYK is not stored as CMYK.
    cmyk = records[os.path.relpath(kinds["cmyk_jpeg"], root)]
    assert cmyk.channels == 3 and cmyk.encoded != read_bytes(kinds["cmyk_jpeg"])


# ---------------------------------------------------------------- image_format, max_side


def test_image_format_png_stores_source_pixels(tmp_path, small_tree):
    """Every record becomes a PNG (JPEG sources too), holding exactly the pixels
    Pillow decodes from the source: PNG is lossless, so nothing may differ."""
    info = run(tmp_path, input_dir=small_tree, image_format="png")
    records = read_records(info.directory)
    assert len(records) == info.accepted == 8 and info.skipped == 0
    sources = {r: r.rsplit(".", 1)[1] for r in records}
    assert set(sources.values()) == {"jpg", "png"}  # both source formats covered
    for rel, r in records.items():
        assert r.format == "png" and r.encoded.startswith(PNG_MAGIC), rel
        stored = tf.io.decode_png(r.encoded).numpy()
        want = source_pixels(os.path.join(small_tree, rel))
        assert stored.shape == (r.height, r.width, r.channels), rel
        np.testing.assert_array_equal(stored, want, err_msg=rel)


def test_max_side_bounds_every_image_and_keeps_aspect(tmp_path, small_tree):
    max_side = 40
    info = run(tmp_path, input_dir=small_tree, max_side=max_side)
    records = read_records(info.directory)
    assert len(records) == info.accepted == 8
    shrunk = kept = 0
    for rel, r in records.items():
        path = os.path.join(small_tree, rel)
        width, height = Image.open(path).size
        decoded = tf.io.decode_image(r.encoded, expand_animations=False).numpy()
        assert decoded.shape[:2] == (r.height, r.width), rel
        assert max(r.height, r.width) <= max_side, rel
        if max(width, height) <= max_side:
            kept += 1
            assert r.encoded == read_bytes(path), rel  # never enlarged or re-encoded
            continue
        shrunk += 1
        scale = max_side / max(width, height)
        assert max(r.height, r.width) == max_side, rel
        assert abs(r.width - width * scale) <= 1 and abs(r.height - height * scale) <= 1, rel
        assert r.format == ("jpeg" if rel.endswith(".jpg") else "png"), rel
    assert shrunk >= 4 and kept >= 1  # both branches exercised


# ---------------------------------------------------------------- max_pixels


@pytest.fixture()
def pixel_limit_tree(tmp_path) -> str:
    """20x10 (= 200 px) and 21x10 (= 210 px) images, as plain JPEG and as PNG."""
    src = tmp_path / "in"
    for w in (20, 21):
        tiny(src / "c" / f"w{w}.jpg", w, 10, "JPEG", seed=w)
        tiny(src / "c" / f"w{w}.png", w, 10, "PNG", seed=w)
    return str(src)


@pytest.mark.parametrize("validate", ["full", "header"])
def test_max_pixels_boundary(tmp_path, pixel_limit_tree, validate):
    """At the limit is kept, one column over is skipped as too_large naming the limit:
    for a plain JPEG (decided from its header without Pillow) and a PNG (Pillow)."""
    jpeg, png = (os.path.join(pixel_limit_tree, "c", f"w21.{e}") for e in ("jpg", "png"))
    cfg = images.ImageConfig(validate="header", max_pixels=200)
    assert images.inspect_without_pillow(read_bytes(jpeg), cfg) is not None  # fast path
    assert images.inspect_without_pillow(read_bytes(png), cfg) is None  # Pillow path
    info = run(tmp_path, input_dir=pixel_limit_tree, validate=validate, max_pixels=200)
    too_large = "too_large: 21x10 = 210 pixels > max_pixels 200"
    assert skipped_csv(info) == {"c/w21.jpg": too_large, "c/w21.png": too_large}
    assert info.skipped_by_reason == {"too_large": 2}
    records = read_records(info.directory)
    assert set(records) == {"c/w20.jpg", "c/w20.png"}
    assert all((r.width, r.height) == (20, 10) for r in records.values())


def test_max_pixels_above_pillows_bomb_limit(tmp_path, pixel_limit_tree, monkeypatch):
    """max_pixels is the one pixel cap: raising it must admit images Pillow's own
    global guard would refuse. Pillow's limit is scaled down here (to 50, refusing
    > 100 px) so the 200 px PNG stands in for a 200 Mpx scan with max_pixels=300M."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    info = run(tmp_path, input_dir=pixel_limit_tree, max_pixels=1000)
    assert skipped_csv(info) == {}
    assert info.accepted == 4


# ---------------------------------------------------------------- manifest + validation_fraction


def test_manifest_without_split_column_is_stratified(tmp_path):
    """No split column: every row is `train`, and validation_fraction then moves
    round(fraction x n) of each class (counting the accepted files) to validation.
    Rows that are skipped (missing, duplicated) are counted, never split."""
    root = tmp_path / "m"
    sizes = {"a": 10, "b": 7, "c": 3}
    rows = []
    for label, n in sizes.items():
        for i in range(n):
            fmt = "PNG" if i % 2 else "JPEG"
            rel = f"{label}/{i}.{'png' if fmt == 'PNG' else 'jpg'}"
            tiny(root / rel, 16, 12, fmt, seed=i)
            rows.append((rel, label))
    rows += [("a/ghost.jpg", "a"), (rows[0][0], "a")]  # missing, duplicate
    manifest = testing.make_manifest(root / "list.csv", rows, header=("path", "label"))
    fraction = 0.3
    info = run(tmp_path, manifest=manifest, validation_fraction=fraction)
    assert info.skipped_by_reason == {"missing": 1, "duplicate": 1}
    assert info.accepted + info.skipped == info.files_found == len(rows)
    by_split = records_by_split(info.directory)
    assert set(by_split) == {"train", "validation"}
    counts = {split: collections.Counter(r.text for r in recs) for split, recs in by_split.items()}
    for label, n in sizes.items():
        assert counts["validation"][label] == round(fraction * n), label
        assert counts["train"][label] + counts["validation"][label] == n, label
    names = [r.filename for recs in by_split.values() for r in recs]
    assert sorted(names) == sorted(r for r, _ in rows[: sum(sizes.values())])


# ---------------------------------------------------------------- option bounds


@pytest.mark.parametrize(
    "field, value",
    [
        ("shard_size_mb", 1e308),  # int() of it overflowed
        ("shard_size_mb", 1e-9),  # 0 bytes a shard: a division by zero
        ("shard_size_mb", float("inf")),
        ("num_workers", 2**31),  # an allocation for 2**31 threads
        ("num_workers", 10**20),
        ("num_workers", 2.0),
        ("max_pixels", 10**20),  # past int64, where TF compares it
        ("max_pixels", 0),
        ("max_file_mb", 1e308),
        ("max_file_mb", float("nan")),
        ("resize_shorter_side", 10**400),  # past any float
        ("max_side", -1),
        ("jpeg_quality", 95.5),
        ("seed", -1),
        ("seed", 2**64),
        ("validation_fraction", "0.1"),
    ],
)
def test_option_out_of_bounds_is_one_line_naming_the_field(tmp_path, field, value):
    """Through the API each bound is checked where the options are made: one line
    naming the field and its range, and nothing written to output_dir."""
    with pytest.raises(OptionsError) as e:
        run(tmp_path, input_dir=_one_image_tree(tmp_path), **{field: value})
    message = str(e.value)
    assert message.startswith(f"{field} must be ") and message.endswith(f", got {value!r}")
    assert len(message.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_options_at_their_bounds_convert(tmp_path):
    """The bounds are inclusive and usable: the smallest shards (one record each), the
    largest seed, the most workers."""
    src = tmp_path / "in"
    for i in range(3):
        tiny(src / "c" / f"{i}.jpg", 16, 12, seed=i)
    info = run(tmp_path, input_dir=str(src), shard_size_mb=0.001, seed=2**32 - 1, num_workers=1024)
    assert info.accepted == 3 and len(info.splits["train"].shards) == 3


# ---------------------------------------------------------------- labels


def test_labels_txt_has_one_line_per_class(tmp_path):
    """Class names of any script, with inner spaces, zero-width joiners and a
    no-break space, come back from labels.txt as the label map has them."""
    src = tmp_path / "in"
    names = ["café", "日本語 猫", "a\u00a0b", "👨\u200d👩\u200d👧", "x"]
    for i, name in enumerate(names):
        tiny(src / name / "a.jpg", 16, 12, seed=i)
    info = run(tmp_path, input_dir=str(src))
    assert info.labels == tuple(sorted(names))
    assert read_labels(info.directory) == info.labels


# ---------------------------------------------------------------- max_file_mb


def _bytes_read() -> int | None:
    """Bytes this process has read so far (all threads, TF's too), or None if unknown."""
    try:
        with open("/proc/self/io", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))
    except OSError:
        return None


@pytest.mark.parametrize("form", ["folder", "manifest"])
def test_file_over_max_file_mb_is_skipped_unread(tmp_path, form):
    """A big sparse file that starts like a JPEG (issue 13: one of 2 GB was read whole)
    is skipped as too_large from its size: neither the scan nor validate=full's TF
    decode check reads it."""
    src = tmp_path / "in"
    tiny(src / "c" / "good.jpg", 16, 12)
    big = src / "c" / "big.jpg"
    with open(big, "wb") as f:
        f.write(read_bytes(src / "c" / "good.jpg")[:64])  # SOI, APP0: a JPEG's first bytes
        f.truncate(64 * 2**20)  # sparse: takes no disk
    where = {"input_dir": str(src)}
    if form == "manifest":
        rows = [("c/good.jpg", "c"), ("c/big.jpg", "c")]
        where = {"manifest": testing.make_manifest(src / "list.csv", rows)}
    before = _bytes_read()
    info = run(tmp_path, **where, max_file_mb=1, validate="full")
    after = _bytes_read()
    assert skipped_csv(info) == {
        "c/big.jpg": f"too_large: {64 * 2**20} bytes > max_file_mb (1048576 bytes)"
    }
    assert info.skipped_by_reason == {"too_large": 1} and info.accepted == 1
    if before is not None and after is not None:
        assert after - before < 16 * 2**20  # the file's 64 MiB were never read


def test_max_file_mb_boundary(tmp_path):
    """A file of exactly max_file_mb is converted, a larger one is skipped."""
    src = tmp_path / "in"
    small = tiny(src / "c" / "small.jpg", 48, 40, seed=1)
    large = tiny(src / "c" / "large.jpg", 64, 48, seed=2)
    cap = os.path.getsize(small)
    assert 1048 < cap < os.path.getsize(large)  # over the 0.001 MiB bound
    info = run(tmp_path, input_dir=str(src), max_file_mb=cap / 2**20)
    size = os.path.getsize(large)
    assert skipped_csv(info) == {
        "c/large.jpg": f"too_large: {size} bytes > max_file_mb ({cap} bytes)"
    }
    assert set(read_records(info.directory)) == {"c/small.jpg"}


# ---------------------------------------------------------------- links out of the input


@pytest.fixture()
def linked_out_tree(tmp_path) -> tuple[str, str]:
    """in/cat holds a file and a link to a file outside; in/dog links to a folder outside."""
    out = tmp_path / "elsewhere"
    tiny(out / "far.jpg", 16, 12, seed=1)
    tiny(out / "dog" / "d.jpg", 16, 12, seed=2)
    src = tmp_path / "in"
    tiny(src / "cat" / "a.jpg", 16, 12, seed=3)
    os.symlink(out / "far.jpg", src / "cat" / "far.jpg")
    os.symlink(out / "dog", src / "dog")
    return str(src), str(out)


def test_links_out_of_the_input_are_skipped_by_default(tmp_path, linked_out_tree):
    src, out = linked_out_tree
    info = run(tmp_path, input_dir=src)
    reasons = skipped_csv(info)
    assert reasons == {
        "cat/far.jpg": f"outside_root: links to {os.path.realpath(os.path.join(out, 'far.jpg'))}, "
        "outside the input root (follow_external_links is off)",
        "dog": f"outside_root: links to {os.path.realpath(os.path.join(out, 'dog'))}, "
        "outside the input root (follow_external_links is off)",
    }
    assert info.skipped_by_reason == {"outside_root": 2}
    assert info.labels == ("cat", "dog") and info.empty_classes == ("dog",)
    assert set(read_records(info.directory)) == {"cat/a.jpg"}


def test_cli_follow_external_links_follows_them(tmp_path, linked_out_tree):
    src, _ = linked_out_tree
    out = tmp_path / "out"
    p = run_in_process(
        "tfclassify.convert", "--input_dir", src, "--output_dir", str(out), "--quiet",
        "--follow_external_links", "--num_workers", "1",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    records = read_records(str(out))
    assert set(records) == {"cat/a.jpg", "cat/far.jpg", "dog/d.jpg"}
    assert metadata.load(str(out)).skipped == 0

"""End-to-end converter behaviour on real files: round trip, determinism, bounds, errors."""

from __future__ import annotations

import csv
import filecmp
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from commands import run_in_process
from PIL import Image, ImageOps
from recordlib import assert_same_output, read_records

from tfclassify import convert, testing
from tfclassify.core import schema
from tfclassify.core.errors import InputError, OptionsError, OutputError
from tfclassify.core.options import ConvertOptions
from tfclassify.verify import verify


def opts(tmp_path, **kw) -> ConvertOptions:
    kw.setdefault("output_dir", str(tmp_path / "out"))
    kw.setdefault("quiet", True)
    return ConvertOptions(**kw)


def expected_pixels(path: str) -> np.ndarray:
    """What a user means by 'the source's pixels': upright, first frame, alpha over white."""
    im = Image.open(path)
    im.seek(0)
    im = ImageOps.exif_transpose(im)
    if im.mode == "I;16":
        return np.repeat((np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)[..., None], 3, -1)
    if im.mode in ("RGBA", "LA", "P"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    return np.asarray(im.convert("RGB"))


def test_round_trip_every_accepted_image(hostile_tree, converted_hostile):
    root, _ = hostile_tree
    info = converted_hostile
    records = read_records(info.directory)
    assert len(records) == info.accepted
    for rel, r in records.items():
        src = os.path.join(root, rel)
        stored = tf.io.decode_image(r.encoded, channels=3, expand_animations=False).numpy()
        assert stored.shape == (r.height, r.width, 3), rel
        want = expected_pixels(src)
        assert want.shape == stored.shape, rel
        diff = np.abs(want.astype(int) - stored.astype(int))
        with open(src, "rb") as f:
            original = f.read()
        if r.encoded == original:
            # Kept as-is: TF's decoder agrees with Pillow's (same libjpeg family).
            assert diff.max() <= (0 if r.format == "png" else 8), rel
        elif r.format == "png":
            assert diff.max() == 0, rel  # lossless conversion
        else:
            assert diff.mean() < 3.0, rel  # re-encoded JPEG (CMYK, EXIF rotation) at q95
        assert r.sha256 == __import__("hashlib").sha256(r.encoded).hexdigest()
        assert info.labels[r.label] == r.text == rel.split("/")[0]


def test_png16_rgb_keeps_top_byte(hostile_tree, converted_hostile):
    root, kinds = hostile_tree
    info = converted_hostile
    rel = os.path.relpath(kinds["png16_rgb"], root)
    stored = tf.io.decode_png(read_records(info.directory)[rel].encoded).numpy()
    with open(kinds["png16_rgb"], "rb") as f:
        raw16 = tf.io.decode_png(f.read(), dtype=tf.uint16).numpy()  # independent reference
    np.testing.assert_array_equal(stored, (raw16 >> 8).astype(np.uint8))


def test_accounting_and_skip_reasons(tmp_path, hostile_tree):
    root, kinds = hostile_tree
    stray = os.path.join(root, "stray.jpg")  # not in a class folder
    with open(stray, "wb") as f, open(kinds["unicode_name"], "rb") as src:
        f.write(src.read())
    try:
        info = convert(opts(tmp_path, input_dir=root))
    finally:
        os.remove(os.path.join(root, "stray.jpg"))
    with open(os.path.join(info.directory, "skipped.csv"), encoding="utf-8") as f:
        skipped = {row["path"]: row["reason"] for row in csv.DictReader(f)}
    by_kind = {k: skipped.get(os.path.relpath(p, root)) for k, p in kinds.items()}
    assert by_kind["zero_byte"].startswith("empty:")
    assert by_kind["not_an_image"].startswith("not_image:")
    assert by_kind["truncated_jpeg"].startswith("truncated:")
    assert by_kind["truncated_png"].startswith("truncated:")
    assert by_kind["corrupt_jpeg"].startswith("undecodable:")
    assert by_kind["huge_png"].startswith("too_large:")
    assert skipped["stray.jpg"].startswith("outside_class:")
    assert info.accepted + info.skipped == info.files_found == len(kinds) + 4 + 1
    assert info.skipped == len(skipped) == 7
    assert info.skipped_by_reason == {
        "empty": 1,
        "not_image": 1,
        "truncated": 2,
        "undecodable": 1,
        "too_large": 1,
        "outside_class": 1,
    }
    records = read_records(info.directory)
    assert os.path.relpath(kinds["unicode_name"], root) in records  # unicode path kept
    assert verify(info.directory).accepted == info.accepted


def test_deterministic_across_worker_counts(tmp_path, class_tree, monkeypatch):
    def run(out: str, workers: int):
        return convert(
            opts(
                tmp_path,
                input_dir=class_tree,
                output_dir=str(tmp_path / out),
                num_workers=workers,
                shard_size_mb=0.05,
                validation_fraction=0.25,
            )
        )

    a = run("a", 1)
    # Also: files held in memory since the scan and files read again when written
    # (the memory budget runs out part way) give the same bytes.
    monkeypatch.setattr("tfclassify.conversion.scan._HOLD_BYTES", 20_000)
    b = run("b", 4)
    assert len([f for f in os.listdir(a.directory) if schema.parse_shard_name(f)]) > 3
    assert_same_output(a.directory, b.directory)
    assert a.empty_classes == ("empty_class",)
    assert "empty_class" in a.labels


def test_shard_sizes_bounded_and_balanced(tmp_path, class_tree):
    target_mb = 0.04
    info = convert(opts(tmp_path, input_dir=class_tree, shard_size_mb=target_mb))
    shards = info.split("train").shards
    assert len(shards) > 3
    biggest = max(
        len(raw) + schema.TFRECORD_OVERHEAD
        for p in info.shard_paths("train")
        for raw in tf.data.TFRecordDataset(p).as_numpy_iterator()
    )
    target = int(target_mb * 2**20)
    sizes = [s.num_bytes for s in shards]
    assert all(size <= target + biggest for size in sizes)
    mean = sum(sizes) / len(sizes)
    assert all(abs(size - mean) <= biggest for size in sizes)
    assert [s.file for s in shards] == [
        f"data-train.tfrecord-{i:05d}-of-{len(shards):05d}" for i in range(len(shards))
    ]
    # Class-interleaved: the first shard already holds every non-empty class.
    first = {
        schema.parse(r).label
        for r in tf.data.TFRecordDataset(info.shard_paths("train")[0]).as_numpy_iterator()
    }
    assert len(first) == 3


def test_folder_splits(tmp_path):
    root = tmp_path / "in"
    testing.make_class_tree(
        root, per_class=0, splits={"train": 4, "validation": 2}, seed=5, max_side=64
    )
    info = convert(opts(tmp_path, input_dir=str(root)))
    assert info.split("train").num_examples == 12 and info.split("validation").num_examples == 6
    assert all(
        r.filename.split("/")[0] in ("train", "validation")
        for r in read_records(info.directory).values()
    )
    with pytest.raises(OptionsError, match="validation_fraction"):
        convert(
            opts(
                tmp_path,
                input_dir=str(root),
                output_dir=str(tmp_path / "o2"),
                validation_fraction=0.2,
            )
        )


def test_manifest_input(tmp_path, class_tree):
    files = sorted(
        os.path.relpath(os.path.join(d, f), class_tree)
        for d, _, fs in os.walk(class_tree)
        for f in fs
    )
    rows = [(p, p.split(os.sep)[0], "test" if i % 4 == 0 else "train") for i, p in enumerate(files)]
    rows.append(("cat/does_not_exist.jpg", "cat", "train"))
    rows.append((rows[1][0], rows[1][1], "train"))  # listed twice
    manifest = testing.make_manifest(
        os.path.join(class_tree, "..", "m", "..", os.path.basename(class_tree), "list.csv"),
        rows,
        header=("path", "label", "split"),
    )
    try:
        info = convert(opts(tmp_path, manifest=manifest))
    finally:
        os.remove(manifest)
    assert set(info.splits) == {"train", "test"}
    assert info.accepted == len(files)
    assert info.skipped_by_reason == {"missing": 1, "duplicate": 1}
    assert info.labels == ("bird", "cat", "dog")


@pytest.mark.parametrize(
    "rows, header, match",
    [
        ([("a.jpg", "x")], ("file", "label"), "missing column"),
        ([("../outside.jpg", "x")], ("path", "label"), "outside the manifest's folder"),
        ([("a.jpg", "")], ("path", "label"), "empty label"),
    ],
)
def test_manifest_errors(tmp_path, rows, header, match):
    manifest = testing.make_manifest(tmp_path / "m" / "list.csv", rows, header=header)
    with pytest.raises(InputError, match=match):
        convert(opts(tmp_path, manifest=manifest))


def test_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        convert(opts(tmp_path, input_dir=str(tmp_path / "nope")))
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(InputError, match="no files found"):
        convert(opts(tmp_path, input_dir=str(tmp_path / "empty")))
    (tmp_path / "bad" / "cls").mkdir(parents=True)
    (tmp_path / "bad" / "cls" / "x.jpg").write_text("not an image")
    with pytest.raises(InputError, match="no usable images.*not_image"):
        convert(opts(tmp_path, input_dir=str(tmp_path / "bad")))
    with pytest.raises(OptionsError, match="exactly one of"):
        ConvertOptions(output_dir="o", input_dir="a", manifest="b")
    with pytest.raises(OptionsError, match="conflict"):
        ConvertOptions(output_dir="o", input_dir="a", resume=True, overwrite=True)
    with pytest.raises(
        OptionsError, match=r"shard_size_mb must be a number in \[0.001, 16384\], got -1"
    ):
        ConvertOptions(output_dir="o", input_dir="a", shard_size_mb=-1)


def test_output_dir_safety(tmp_path, class_tree):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not empty"):
        convert(opts(tmp_path, input_dir=class_tree))
    with pytest.raises(OutputError, match="holds no tfclassify output"):
        convert(opts(tmp_path, input_dir=class_tree, overwrite=True))
    with pytest.raises(OutputError, match="nothing to resume"):
        convert(opts(tmp_path, input_dir=class_tree, resume=True))
    (out / "notes.txt").unlink()
    first = convert(opts(tmp_path, input_dir=class_tree, shard_size_mb=0.05))
    (out / "notes.txt").write_text("mine")
    second = convert(opts(tmp_path, input_dir=class_tree, overwrite=True))  # fewer shards now
    assert (out / "notes.txt").read_text() == "mine"  # never deletes what it did not create
    names = set(os.listdir(out))
    assert not {s.file for s in first.split("train").shards} & names - {
        s.file for s in second.split("train").shards
    }
    assert convert(opts(tmp_path, input_dir=class_tree, resume=True)) == second  # complete


def run_cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, **kw)


def test_cli_errors_are_one_line(tmp_path, class_tree):
    p = run_cli(
        "tfclassify.convert",
        "--input_dir",
        str(tmp_path / "missing"),
        "--output_dir",
        str(tmp_path / "o"),
    )
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == (
        f"error: input_dir not found or not a directory: {tmp_path / 'missing'}"
    )
    assert "Traceback" not in p.stderr
    p = run_cli(
        "tfclassify.convert",
        "--input_dir",
        class_tree,
        "--manifest",
        "x.csv",
        "--output_dir",
        str(tmp_path / "o"),
    )
    assert p.returncode == 2 and "exactly one of input_dir and manifest" in p.stderr


def test_suggested_settings_are_fields_in_the_api_and_flags_in_the_cli(tmp_path, class_tree):
    """The same refusal names the ConvertOptions fields to set through the API and
    the command's flags through the command."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    what = "to finish an interrupted run or {} to replace a previous conversion"
    with pytest.raises(OutputError) as e:
        convert(opts(tmp_path, input_dir=class_tree))
    assert str(e.value).endswith(f"pass resume=True {what.format('overwrite=True')}")
    p = run_cli("tfclassify.convert", "--input_dir", class_tree, "--output_dir", str(out))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == (
        f"error: output_dir {out} is not empty; pass --resume {what.format('--overwrite')}"
    )


def test_verify_names_the_bad_shard(tmp_path, converted_tree):
    info = verify(shutil.copytree(converted_tree, tmp_path / "out").as_posix())
    bad = info.shard_paths("train")[1]
    with open(bad, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    with open(bad, "wb") as f:
        f.write(bytes(data))
    p = run_in_process("tfclassify.verify", info.directory)
    assert p.returncode == 2
    assert bad in p.stderr and "sha256" in p.stderr


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, (
            f"converter finished before the kill point: {proc.stderr.read()}"
        )
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


KILL_OPTIONS = dict(shard_size_mb=0.03, num_workers=1)


@pytest.fixture(scope="module")
def kill_corpus(tmp_path_factory) -> tuple[str, str]:
    """300 photos, enough for a kill to land mid-scan or mid-write, and their clean
    conversion (read only)."""
    root = tmp_path_factory.mktemp("kill_corpus")
    testing.make_class_tree(root / "in", per_class=100, seed=9, min_side=64, max_side=200)
    clean = convert(
        opts(root, input_dir=str(root / "in"), output_dir=str(root / "clean"), **KILL_OPTIONS)
    )
    return str(root / "in"), clean.directory


# The write phase's kill points are also hit exactly by test_kill_points (by default):
# its random kill runs with the slow suite.
@pytest.mark.parametrize("phase", ["scan", pytest.param("write", marks=pytest.mark.slow)])
def test_kill_and_resume(tmp_path, phase, kill_corpus):
    """SIGKILL in a real process; the resume in this one."""
    root, clean = kill_corpus
    common = dict(input_dir=root, **KILL_OPTIONS)

    out = tmp_path / "out"
    work = out / ".tfclassify-work"
    cmd = [
        sys.executable,
        "-m",
        "tfclassify.convert",
        "--input_dir",
        str(root),
        "--shard_size_mb",
        "0.03",
        "--num_workers",
        "1",
        "--quiet",
        "--output_dir",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    if phase == "scan":
        journal = work / "scan.jsonl"
        _kill_when(proc, lambda: journal.exists() and journal.stat().st_size > 0)
    else:
        _kill_when(proc, lambda: (work / "done").is_dir() and len(os.listdir(work / "done")) >= 2)
    assert not (out / "dataset.json").exists()
    # Whatever has a final shard name at the moment of the kill is complete: the
    # same bytes as the clean run's shard of that name.
    finished = {f: os.stat(out / f) for f in os.listdir(out) if schema.parse_shard_name(f)}
    # Each has its done record (written before the rename), which proves it is ours
    # to --overwrite and lets --resume keep it.
    done_dir = work / "done"
    done_at_kill = (
        {f.removesuffix(".json") for f in os.listdir(done_dir)} if done_dir.is_dir() else set()
    )
    assert set(finished) <= done_at_kill
    for f in finished:
        assert filecmp.cmp(out / f, os.path.join(clean, f), shallow=False), f
    with pytest.raises(OutputError, match="resume=True"):
        convert(opts(tmp_path, output_dir=str(out), **common))
    p = run_in_process(*cmd[2:], "--resume")
    assert p.returncode == 0, p.stderr
    assert verify(str(out)).accepted == 300
    assert_same_output(clean, str(out))
    for f, before in finished.items():
        if f in done_at_kill:  # recorded as done: kept, not written again
            after = os.stat(out / f)
            assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), f


def test_resume_refuses_changed_options(tmp_path, class_tree):
    out = tmp_path / "out"
    (out / ".tfclassify-work").mkdir(parents=True)
    (out / ".tfclassify-work" / "state.json").write_text(
        json.dumps({"fingerprint": {"seed": 1}, "listing": "x"})
    )
    with pytest.raises(OptionsError, match="options differ"):
        convert(opts(tmp_path, input_dir=class_tree, resume=True))


def test_reencode_and_resize_at_conversion(tmp_path, class_tree):
    info = convert(
        opts(
            tmp_path,
            input_dir=class_tree,
            image_format="jpeg",
            resize_shorter_side=48,
            jpeg_quality=80,
        )
    )
    for r in read_records(info.directory).values():
        assert r.format == "jpeg" and min(r.height, r.width) <= 48
        im = Image.open(io.BytesIO(r.encoded))
        assert im.format == "JPEG" and im.size == (r.width, r.height)

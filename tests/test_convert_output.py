"""The output directory after interrupted, damaged or misplaced runs: nothing
incomplete is taken for done, nothing is deleted that might not be ours, and no
file under a final shard name is ever unfinished."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tfclassify import convert, fileio, metadata, schema, shards
from tfclassify.errors import DataError, OutputError
from tfclassify.options import ConvertOptions


def opts(tmp_path, input_dir: str, **kw) -> ConvertOptions:
    return ConvertOptions(
        input_dir=input_dir, output_dir=str(tmp_path / "out"), quiet=True, num_workers=1, **kw
    )


def test_resume_refuses_a_dataset_whose_shards_are_gone(tmp_path, class_tree):
    """An --overwrite killed after deleting shards but before dataset.json leaves a
    dataset.json that a resume must not report as complete."""
    info = convert(opts(tmp_path, class_tree, shard_size_mb=0.05))
    victim = info.split("train").shards[1].file
    os.remove(os.path.join(info.directory, victim))
    with pytest.raises(OutputError, match=f"not complete .*{victim}: missing"):
        convert(opts(tmp_path, class_tree, shard_size_mb=0.05, resume=True))


def test_overwrite_refuses_when_dataset_json_is_damaged(tmp_path, class_tree):
    """Which shards are ours is unknown then: nothing is deleted."""
    info = convert(opts(tmp_path, class_tree))
    meta = os.path.join(info.directory, metadata.METADATA_FILE)
    with open(meta, "w", encoding="utf-8") as f:
        f.write("{ not json")
    before = sorted(os.listdir(info.directory))
    with pytest.raises(OutputError, match=r"dataset.json is unreadable .*remove them by hand"):
        convert(opts(tmp_path, class_tree, overwrite=True))
    assert sorted(os.listdir(info.directory)) == before


def test_temporary_reports_of_a_killed_run_are_cleared(tmp_path, class_tree):
    """A kill while a report was being written leaves its temporary behind; the next
    --overwrite or --resume removes it, so the result lists as a clean run's does."""
    info = convert(opts(tmp_path, class_tree))
    clean = sorted(os.listdir(info.directory))
    for report in (metadata.METADATA_FILE, metadata.SKIPPED_FILE):
        with open(os.path.join(info.directory, f"{fileio.TMP_PREFIX}{report}.x1y2"), "w") as f:
            f.write("half")
    with open(os.path.join(info.directory, f"{fileio.TMP_PREFIX}notes.txt.abcd"), "w") as f:
        f.write("not ours")  # not a name tfclassify writes: left alone
    convert(opts(tmp_path, class_tree, overwrite=True))
    assert sorted(os.listdir(info.directory)) == sorted([*clean, ".tmp-notes.txt.abcd"])


@pytest.mark.parametrize("where", ["inside", "same"])
def test_output_dir_inside_the_input_dir_is_refused(tmp_path, class_tree, copy_tree, where):
    """Its shards would be listed as images of a class on the next run."""
    root = copy_tree(class_tree)
    out = os.path.join(root, "converted") if where == "inside" else root
    with pytest.raises(OutputError, match="is inside input_dir"):
        convert(ConvertOptions(input_dir=root, output_dir=out, quiet=True))
    assert not os.path.exists(os.path.join(root, "converted"))


def test_a_shard_of_the_wrong_size_never_gets_its_final_name(tmp_path):
    """The plan's size is checked before the rename: an input that changed between
    the passes fails the run and leaves no final-named shard."""
    path = str(tmp_path / schema.shard_name("data", "train", 0, 1))
    with pytest.raises(DataError, match="wrote 26 bytes, planned 27"):
        shards.write_shard(path, [b"0123456789"], expected_bytes=27)
    assert os.listdir(tmp_path) == []
    result = shards.write_shard(path, [b"0123456789"], expected_bytes=26)
    assert (result.num_examples, result.num_bytes) == (1, os.path.getsize(path))


def test_non_utf8_file_names_round_trip(tmp_path):
    """Linux file names are bytes: one that is not UTF-8 is stored, verified and
    reported under its own bytes, accepted or skipped."""
    from PIL import Image

    from tfclassify import verify

    root = os.path.join(os.fsencode(tmp_path), b"in", b"cat")
    os.makedirs(root)
    good = os.path.join(root, b"caf\xe9.png")
    Image.new("RGB", (9, 7), (5, 6, 7)).save(os.fsdecode(good), "PNG")
    with open(os.path.join(root, b"br\xfbl\xe9.jpg"), "wb") as f:
        f.write(b"not an image")
    info = convert(opts(tmp_path, os.fsdecode(os.path.dirname(root))))
    assert (info.accepted, info.skipped) == (1, 1)
    assert verify.verify(info.directory).accepted == 1
    records = [
        schema.parse(r)
        for r in _records(info.shard_paths("train")[0])  # the name as stored
    ]
    assert [os.fsencode(r.filename) for r in records] == [b"cat/caf\xe9.png"]
    with open(os.path.join(info.directory, metadata.SKIPPED_FILE), "rb") as f:
        assert b"cat/br\xfbl\xe9.jpg,not_image:" in f.read()


def _records(path: str) -> list[bytes]:
    import tensorflow as tf

    return list(tf.data.TFRecordDataset(path).as_numpy_iterator())


@pytest.mark.parametrize("validate", ["full", "header"])
def test_a_huge_file_that_is_no_image_is_not_read_whole(tmp_path, validate):
    """Only its first bytes are read: a stray 4 GB video must not fill the memory.
    (In a fresh process: the peak memory of this one is whatever earlier tests left.)"""
    from PIL import Image

    root = tmp_path / "in" / "cat"
    os.makedirs(root)
    Image.new("RGB", (8, 8)).save(root / "a.png", "PNG")
    with open(root / "movie.jpg", "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42")
        f.truncate(4 << 30)  # sparse: takes no disk
    script = (
        "import resource, sys, tfclassify\n"
        "info = tfclassify.convert(tfclassify.ConvertOptions(input_dir=sys.argv[1], "
        "output_dir=sys.argv[2], validate=sys.argv[3], quiet=True))\n"
        "print(info.skipped_by_reason, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    args = [str(tmp_path / "in"), str(tmp_path / "out"), validate]
    run = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    reasons, peak_kib = run.stdout.rsplit(" ", 1)
    assert reasons == "{'not_image': 1}"
    assert int(peak_kib) < 3 << 20  # TF's own footprint is well under 3 GiB

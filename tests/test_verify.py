"""`python -m tfclassify.verify` and `verify()`: every way a converted dataset can stop
matching its dataset.json fails loudly, naming the shard to look at.

(A whole-file sha256 mismatch is covered in test_convert.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil

import pytest
from commands import run_in_process, run_process
from test_convert import opts

from tfclassify import convert, testing
from tfclassify.core import metadata
from tfclassify.core.errors import DataError
from tfclassify.verify import verify


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> str:
    """One small conversion with several train shards, made once; tests edit copies."""
    root = tmp_path_factory.mktemp("verify")
    testing.make_class_tree(root / "in", classes=("a", "b"), per_class=6, seed=3, max_side=48)
    info = convert(
        opts(root, input_dir=str(root / "in"), shard_size_mb=0.01, num_workers=1),
    )
    assert len(info.split("train").shards) >= 2, "need a second shard to corrupt"
    return info.directory


@pytest.fixture()
def dataset(pristine, tmp_path) -> str:
    """A private copy of the converted dataset that the test may damage."""
    return shutil.copytree(pristine, tmp_path / "ds").as_posix()


def load_json(directory: str) -> dict:
    with open(os.path.join(directory, metadata.METADATA_FILE), encoding="utf-8") as f:
        return json.load(f)


def save_json(directory: str, d: dict) -> None:
    with open(os.path.join(directory, metadata.METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(d, f, indent=2)


def second_shard(d: dict) -> dict:
    """The dataset.json entry of train shard 1 (not the first: errors must name the
    shard they are about, not just stop at whichever comes first)."""
    return d["splits"]["train"]["shards"][1]


def error_line(directory: str) -> str:
    """Runs the verify command (in this process); asserts a user error (exit 2, one
    `error:` line, no traceback) and returns that line."""
    p = run_in_process("tfclassify.verify", directory)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and p.stderr.strip().splitlines()[-1] == lines[0], p.stderr
    return lines[0]


def test_pristine_copy_verifies(dataset):
    """Baseline: the copies the other tests damage are valid to begin with."""
    info = verify(dataset)
    assert info.accepted == 12 and len(info.split("train").shards) >= 2


def test_record_count_mismatch_in_dataset_json(dataset):
    """A shard whose bytes are intact but whose num_examples in dataset.json is wrong:
    only counting the records finds it."""
    d = load_json(dataset)
    entry = second_shard(d)
    real = entry["num_examples"]
    entry["num_examples"] = real + 1
    save_json(dataset, d)
    bad = os.path.join(dataset, entry["file"])
    line = error_line(dataset)
    assert bad in line and f"{real} records != {real + 1}" in line
    with pytest.raises(DataError, match=f"{entry['file']}: {real} records"):
        verify(dataset)


def test_total_count_mismatch_in_dataset_json(dataset):
    """Shards all fine, but the totals promise more records than they hold."""
    d = load_json(dataset)
    d["totals"]["accepted"] += 1
    d["totals"]["files_found"] += 1  # keep accepted + skipped = found: only the count is off
    save_json(dataset, d)
    with pytest.raises(DataError, match="shards hold 12 records, dataset.json says 13"):
        verify(dataset)


def test_missing_shard(dataset):
    d = load_json(dataset)
    bad = os.path.join(dataset, second_shard(d)["file"])
    os.remove(bad)
    assert error_line(dataset) == f"error: {bad}: shard missing"
    with pytest.raises(DataError, match="shard missing"):
        verify(dataset)


def test_crc_error_behind_matching_size_and_sha256(dataset):
    """A flipped byte inside a record, with dataset.json's size and sha256 updated to
    the damaged file (as a careless re-hash would): only the per-record CRC check
    (TF's reader) is left to catch it."""
    d = load_json(dataset)
    entry = second_shard(d)
    bad = os.path.join(dataset, entry["file"])
    with open(bad, "rb") as f:
        data = bytearray(f.read())
    length = int.from_bytes(data[:8], "little")  # first record's framing: u64 length
    assert 12 + length + 4 <= len(data)
    data[12 + length // 2] ^= 0x01  # a payload byte of record 0, not its framing
    with open(bad, "wb") as f:
        f.write(data)
    entry["num_bytes"] = len(data)
    entry["sha256"] = hashlib.sha256(data).hexdigest()
    save_json(dataset, d)
    line = error_line(dataset)
    assert bad in line and "record 0" in line, line
    assert "sha256" not in line  # the per-record CRC caught it, not a hash
    with pytest.raises(DataError, match="record 0"):
        verify(dataset)


def test_shard_that_is_a_named_pipe_is_not_opened(dataset):
    """A FIFO where a shard should be: hashing it would block forever, and "shard
    missing" would be wrong (it is there). Reported, never opened."""
    d = load_json(dataset)
    bad = os.path.join(dataset, second_shard(d)["file"])
    os.remove(bad)
    os.mkfifo(bad)
    with pytest.raises(DataError, match=re.escape(f"{bad}: not a regular file")):
        verify(dataset)


def test_stray_shard_is_reported(dataset):
    """A file named like a shard that dataset.json does not list (a 33rd beside 32): a
    glob over the shards would read its records, so verify must not say "ok"."""
    d = load_json(dataset)
    shards = d["splits"]["train"]["shards"]
    count = len(shards)
    stray = os.path.join(dataset, f"data-train.tfrecord-{count:05d}-of-{count + 1:05d}")
    shutil.copyfile(os.path.join(dataset, shards[0]["file"]), stray)
    assert error_line(dataset) == (
        f"error: {stray}: named like a shard but not listed in dataset.json; "
        "move it out of the dataset directory"
    )
    # Another dataset's shard counts too; a folder is no file a glob reads.
    shutil.copyfile(stray, os.path.join(dataset, "x-y.tfrecord-00000-of-00001"))
    os.mkdir(os.path.join(dataset, "data-train.tfrecord-00098-of-00099"))
    with pytest.raises(DataError, match=re.escape(f"{stray} (and 1 more): named")):
        verify(dataset)


def test_shard_outside_the_dataset_directory_is_refused(dataset):
    """`../p.csv` in dataset.json would make verify hash a file outside the folder."""
    outside = os.path.join(os.path.dirname(dataset), "p.csv")
    with open(outside, "w") as f:
        f.write("x")
    d = load_json(dataset)
    second_shard(d)["file"] = "../p.csv"
    save_json(dataset, d)
    line = error_line(dataset)
    assert line == (
        f"error: {os.path.join(dataset, metadata.METADATA_FILE)}: splits.train.shards[1].file "
        "must be a file name inside the dataset directory, got '../p.csv'"
    )


@pytest.mark.parametrize(
    "content, message",
    [
        (b"[1, 2]", "the top level must be an object, got [1, 2]"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
    ],
)
def test_unusable_dataset_json_is_one_error_line(tmp_path, content, message):
    """Before: AttributeError / UnicodeDecodeError tracebacks from the CLI."""
    (tmp_path / metadata.METADATA_FILE).write_bytes(content)
    line = error_line(str(tmp_path))
    assert line.startswith(f"error: {tmp_path / metadata.METADATA_FILE}") and message in line


def test_string_count_is_not_ok(dataset):
    """`num_examples: "lots"` used to reach the comparisons (and could say "ok")."""
    d = load_json(dataset)
    second_shard(d)["num_examples"] = "lots"
    save_json(dataset, d)
    assert error_line(dataset).endswith(
        "splits.train.shards[1].num_examples must be an integer, got 'lots'"
    )


@pytest.mark.parametrize("args", [(), ("a", "b")])
def test_wrong_argument_count_is_a_usage_error(args):
    """Same contract as every other command: one `error:` line, exit status 2 (in a
    real process: nothing else on stderr either)."""
    p = run_process("tfclassify.verify", *args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stderr.strip() == "error: usage: python -m tfclassify.verify DIR"


def test_a_regular_file_is_not_a_directory(tmp_path):
    path = tmp_path / "f"
    path.write_text("")
    assert error_line(str(path)) == f"error: dataset directory is not a directory: {path}"

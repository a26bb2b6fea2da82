"""`metadata.load`: a dataset.json that is not what the converter writes is one
InputError naming the file and the field, never a traceback or a silent "ok".

Pure JSON checks, no TensorFlow: each case edits a valid dataset.json by hand.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from tfclassify.core import metadata
from tfclassify.core.errors import InputError


def valid_json() -> dict:
    """What the converter writes for two train shards and one validation shard."""
    shard = lambda name, n: metadata.ShardInfo(name, n, 100 * n, "ab" * 32)  # noqa: E731
    return metadata.DatasetInfo(
        directory="unused",
        name="data",
        labels=("a", "b"),
        splits={
            "train": metadata.SplitInfo("train", (shard("t-0", 3), shard("t-1", 2)), (4, 1)),
            "validation": metadata.SplitInfo("validation", (shard("v-0", 1),), (0, 1)),
        },
        files_found=7,
        accepted=6,
        skipped=1,
        skipped_by_reason={"decode": 1},
        empty_classes=(),
        options={"seed": 1},
    ).to_json()


def write(directory, content) -> str:
    """Writes dataset.json (bytes as is, anything else as JSON); returns its path."""
    path = os.path.join(directory, metadata.METADATA_FILE)
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    with open(path, "wb") as f:
        f.write(data)
    return path


def load_error(directory) -> str:
    with pytest.raises(InputError) as e:
        metadata.load(str(directory))
    message = str(e.value)
    assert "\n" not in message
    return message


def test_valid_dataset_json_loads(tmp_path):
    """Baseline: the cases below fail because of their one edit, not the template."""
    write(tmp_path, valid_json())
    info = metadata.load(str(tmp_path))
    assert info.split("train").num_examples == 5 and info.accepted == 6
    assert info.shard_paths("validation") == [os.path.join(str(tmp_path), "v-0")]
    assert info.split("train").class_counts == (4, 1)
    assert valid_json()["splits"]["train"]["class_counts"] == {"a": 4, "b": 1}
    assert info.to_json() == valid_json()


def test_a_dataset_json_without_class_counts_loads_and_stays_without(tmp_path):
    """One written before class counts were recorded: its counts are unknown (None),
    and saving it again does not invent them. A label a count map omits has none."""
    d = valid_json()
    del d["splits"]["train"]["class_counts"]
    d["splits"]["validation"]["class_counts"] = {"b": 1}
    write(tmp_path, d)
    info = metadata.load(str(tmp_path))
    assert info.split("train").class_counts is None
    assert info.split("validation").class_counts == (0, 1)
    again = info.to_json()
    assert "class_counts" not in again["splits"]["train"]
    assert again["splits"]["validation"]["class_counts"] == {"a": 0, "b": 1}


def edit(path: str, value):
    """valid_json() with the field at dotted `path` (list indices as ints) set to
    `value`, or deleted when `value` is DELETE."""
    d = valid_json()
    *parents, last = path
    node = d
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return d


DELETE = object()
SHARD1 = ("splits", "train", "shards", 1)


@pytest.mark.parametrize(
    "content, message",
    [
        ([1, 2], "the top level must be an object, got [1, 2]"),
        ("text", "the top level must be an object, got 'text'"),
        (edit(("schema_version",), "1"), "schema_version must be an integer, got '1'"),
        (edit(("schema_version",), 99), "schema_version 99 is not supported (expected 1)"),
        (edit(("schema_version",), DELETE), "the top level has no 'schema_version'"),
        (edit(("labels",), "ab"), "labels must be a list, got 'ab'"),
        (edit(("labels", 1), 2), "labels[1] must be a string, got 2"),
        (edit(("name",), None), "name must be a string, got None"),
        (edit(("splits",), []), "splits must be an object, got []"),
        (edit(("splits", "train"), 5), "splits.train must be an object, got 5"),
        (edit(("splits", "train", "shards"), {}), "splits.train.shards must be a list, got {}"),
        (edit((*SHARD1[:-1], 0), "t-0"), "splits.train.shards[0] must be an object, got 't-0'"),
        (
            edit((*SHARD1, "num_examples"), "lots"),
            "splits.train.shards[1].num_examples must be an integer, got 'lots'",
        ),
        (
            edit((*SHARD1, "num_examples"), True),
            "splits.train.shards[1].num_examples must be an integer, got True",
        ),
        (
            edit((*SHARD1, "num_bytes"), -1),
            "splits.train.shards[1].num_bytes must be an integer from 0 to 9007199254740991, "
            "got -1",
        ),
        (
            edit((*SHARD1, "num_examples"), 2**63),
            "splits.train.shards[1].num_examples must be an integer from 0 to "
            "9007199254740991, got 9223372036854775808",
        ),
        (
            edit(("totals", "files_found"), 2**53),
            "totals.files_found must be an integer from 0 to 9007199254740991, "
            "got 9007199254740992",
        ),
        (
            edit((*SHARD1, "num_bytes"), 2.0),
            "splits.train.shards[1].num_bytes must be an integer, got 2.0",
        ),
        (
            edit((*SHARD1, "sha256"), 12),
            "splits.train.shards[1].sha256 must be a string, got 12",
        ),
        (edit((*SHARD1, "sha256"), DELETE), "splits.train.shards[1] has no 'sha256'"),
        (edit((*SHARD1, "file"), 3), "splits.train.shards[1].file must be a string, got 3"),
        (edit(("totals",), DELETE), "the top level has no 'totals'"),
        (edit(("totals", "accepted"), "6"), "totals.accepted must be an integer, got '6'"),
        (edit(("totals", "skipped"), DELETE), "totals has no 'skipped'"),
        (
            edit(("skipped_by_reason", "decode"), "1"),
            "skipped_by_reason.decode must be an integer, got '1'",
        ),
        (
            edit(("splits", "train", "class_counts"), [4, 1]),
            "splits.train.class_counts must be an object, got [4, 1]",
        ),
        (
            edit(("splits", "train", "class_counts", "a"), "4"),
            "splits.train.class_counts.a must be an integer, got '4'",
        ),
        (
            edit(("splits", "train", "class_counts", "b"), -1),
            "splits.train.class_counts.b must be an integer from 0 to 9007199254740991, got -1",
        ),
        (
            edit(("splits", "train", "class_counts", "z"), 1),
            "splits.train.class_counts key must be a label of the label map, got 'z'",
        ),
        (edit(("empty_classes",), [None]), "empty_classes[0] must be a string, got None"),
        (edit(("options",), []), "options must be an object, got []"),
    ],
)
def test_wrong_structure_or_type_is_one_input_error(tmp_path, content, message):
    """Before: AttributeError ('list' has no 'get'), or a string count accepted and
    compared later. Now: `PATH: FIELD must be ...`."""
    path = write(tmp_path, content)
    assert load_error(tmp_path) == f"{path}: {message}"


def test_counts_that_only_overflow_when_added_up_are_refused(tmp_path):
    """Each shard within bounds, their sum not: the readers hold it in an int64."""
    d = valid_json()
    for shard in d["splits"]["train"]["shards"]:
        shard["num_examples"] = metadata.MAX_COUNT
    path = write(tmp_path, d)
    assert load_error(tmp_path) == (
        f"{path}: the shards' num_examples add up to {2 * metadata.MAX_COUNT + 1}, "
        f"more than {metadata.MAX_COUNT}"
    )


@pytest.mark.parametrize(
    "file",
    ["../p.csv", "/etc/passwd", "sub/t-1", ".", "..", "", "a\0b"],
)
def test_shard_file_must_be_a_plain_name_in_the_dataset_directory(tmp_path, file):
    """A shard entry pointing outside the folder would make verify and the readers
    open (and hash, and report on) someone else's file."""
    path = write(tmp_path, edit((*SHARD1, "file"), file))
    assert load_error(tmp_path) == (
        f"{path}: splits.train.shards[1].file must be a file name inside the dataset "
        f"directory, got {file!r}"
    )


def test_not_utf8(tmp_path):
    path = write(tmp_path, b'{"name": "\xff\xfe"}')
    assert load_error(tmp_path).startswith(f"{path} is not UTF-8 text: ")


def test_not_json(tmp_path):
    path = write(tmp_path, b"{not json")
    assert load_error(tmp_path).startswith(f"{path} is not valid JSON: ")


def test_long_values_are_shortened(tmp_path):
    """The error quotes the bad value, but stays one short line."""
    write(tmp_path, edit(("name",), ["x" * 1000]))
    message = load_error(tmp_path)
    assert message.endswith("...") and len(message) < len(str(tmp_path)) + 120


def test_a_file_is_not_a_directory(tmp_path):
    """`--data FILE` (or `verify FILE`) is not "not found": the path is there."""
    path = tmp_path / "f.json"
    path.write_text("{}")
    assert load_error(path) == f"dataset directory is not a directory: {path}"
    assert re.search("not found", load_error(tmp_path / "missing"))

"""The default reader over a converted dataset: fast path, bad records named by shard."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import tfclassify
from tfclassify import data, metadata, schema
from tfclassify.options import ConvertOptions, ReadOptions


@pytest.fixture(scope="module")
def converted(tmp_path_factory, class_tree) -> str:
    out = str(tmp_path_factory.mktemp("conv") / "shards")
    tfclassify.convert(
        ConvertOptions(input_dir=class_tree, output_dir=out, shard_size_mb=0.05, quiet=True)
    )
    return out


def read_all(ds) -> dict[str, np.ndarray]:
    out = {}
    for batch in ds:
        for k, im in zip(batch["key"].numpy(), batch["image"].numpy(), strict=True):
            out[k.decode()] = im
    return out


def test_default_path_reads_every_record_like_the_exact_path(converted):
    info = metadata.load(converted)
    opts = ReadOptions(image_size=48, batch_size=8)
    assert data.expected_counts(converted, info.shard_paths("train")) == [
        s.num_examples for s in info.split("train").shards
    ]
    fast = read_all(data.make_dataset(converted, opts))
    exact = read_all(data.make_dataset(converted, dataclasses.replace(opts, skip_errors=True)))
    assert len(fast) == info.accepted
    assert fast.keys() == exact.keys()
    for k in fast:
        np.testing.assert_array_equal(fast[k], exact[k])


def copy_dataset(src: str, dst) -> str:
    import shutil

    shutil.copytree(src, dst)
    return str(dst)


def test_crc_corruption_fails_naming_the_shard(converted, tmp_path):
    d = copy_dataset(converted, tmp_path / "d")
    bad = metadata.load(d).shard_paths("train")[1]
    with open(bad, "rb") as f:
        raw = bytearray(f.read())
    raw[len(raw) // 2] ^= 0xFF
    with open(bad, "wb") as f:
        f.write(bytes(raw))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"{bad}: read \\d+ of \\d+ records"):
        read_all(data.make_dataset(d, ReadOptions(image_size=32)))


def test_undecodable_image_fails_naming_the_shard(converted, tmp_path):
    d = copy_dataset(converted, tmp_path / "d")
    info = metadata.load(d)
    bad = info.shard_paths("train")[0]
    records = [schema.parse(r) for r in tf.data.TFRecordDataset(bad).as_numpy_iterator()]
    records[1] = dataclasses.replace(records[1], encoded=b"\xff\xd8\xff" + b"\0" * 64)
    with tf.io.TFRecordWriter(bad) as w:  # valid CRCs, broken image
        for r in records:
            w.write(schema.serialize(r))
    good_count = sum(s.num_examples for s in info.split("train").shards) - 1
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=f"{bad}: read {len(records) - 1} of {len(records)}"
    ):
        read_all(data.make_dataset(d, ReadOptions(image_size=32)))
    skipped = data.ReadStats()
    got = read_all(
        data.make_dataset(d, ReadOptions(image_size=32, skip_errors=True), stats=skipped)
    )
    assert len(got) == good_count and skipped.skipped == 1


def test_a_consumer_that_stops_early_still_sees_a_bad_record_logged(converted, tmp_path):
    """The shortfall error comes after the last batch; one who reads only the first
    batch (take, max_images) gets each dropped record in TF's log as it happens.
    (A fresh process: TF reads its log level once, and the tests run with warnings off.)"""
    import os
    import subprocess
    import sys

    d = copy_dataset(converted, tmp_path / "d")
    bad = metadata.load(d).shard_paths("train")[0]
    records = [schema.parse(r) for r in tf.data.TFRecordDataset(bad).as_numpy_iterator()]
    records[0] = dataclasses.replace(records[0], encoded=b"\xff\xd8\xff" + b"\0" * 64)
    with tf.io.TFRecordWriter(bad) as w:
        for r in records:
            w.write(schema.serialize(r))
    script = (
        "import sys, tfclassify\n"
        "from tfclassify.options import ReadOptions\n"
        "ds = tfclassify.make_dataset(sys.argv[1], ReadOptions(image_size=32, batch_size=4))\n"
        "print(len(next(iter(ds))['key']))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}
    run = subprocess.run([sys.executable, "-c", script, d], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and run.stdout.strip() == "4", run.stderr
    assert "Error raised with error message" in run.stderr, run.stderr
    assert "Invalid JPEG data" in run.stderr, run.stderr

"""The default reader over a converted dataset: fast path, bad records named by shard."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from recordlib import DAMAGE, collect, damage

from tfclassify.core import metadata, schema
from tfclassify.core.errors import DataError
from tfclassify.core.options import ReadOptions
from tfclassify.reading import dataset as data


@pytest.fixture()
def converted(converted_tree) -> str:
    return converted_tree


def read_all(ds) -> dict[str, np.ndarray]:
    out = {}
    for batch in ds:
        for k, im in zip(batch["key"].numpy(), batch["image"].numpy(), strict=True):
            out[k.decode()] = im
    return out


def test_default_path_reads_every_record_like_the_exact_path(converted):
    info = metadata.load(converted)
    opts = ReadOptions(image_size=48, batch_size=8)
    assert data.listed_shards(info.shard_paths("train")) == list(info.split("train").shards)
    fast = read_all(data.make_dataset(converted, opts))
    exact = read_all(data.make_dataset(converted, dataclasses.replace(opts, skip_errors=True)))
    assert len(fast) == info.accepted
    assert fast.keys() == exact.keys()
    for k in fast:
        np.testing.assert_array_equal(fast[k], exact[k])


def copy_dataset(src: str, dst) -> str:
    shutil.copytree(src, dst)
    return str(dst)


def broken_image(record: schema.Record) -> schema.Record:
    """`record` with an undecodable JPEG of the same length: the shard keeps the size
    dataset.json lists (a size mismatch is refused before reading)."""
    return dataclasses.replace(record, encoded=b"\xff\xd8\xff" + b"\0" * (len(record.encoded) - 3))


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
    records[1] = broken_image(records[1])
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
    reason = "could not parse or decode it (the TF error is logged above)"
    assert skipped.bad_records == [(bad, 1, reason)]  # named, as the log names it
    skipped.reset()
    assert (skipped.skipped, skipped.bad_records) == (0, [])


def test_a_shortfall_is_named_before_the_promised_last_batch(converted, tmp_path):
    """`len(ds)` comes from dataset.json, and Keras stops after that many batches: a
    bad record that leaves the batch count unchanged must still fail, with the error
    naming the shard (not TF's cardinality assertion, nor silence)."""
    import keras

    d = copy_dataset(converted, tmp_path / "d")
    info = metadata.load(d)
    bad = info.shard_paths("train")[0]
    records = [schema.parse(r) for r in tf.data.TFRecordDataset(bad).as_numpy_iterator()]
    records[1] = broken_image(records[1])
    with tf.io.TFRecordWriter(bad) as w:
        for r in records:
            w.write(schema.serialize(r))
    message = f"{bad}: read {len(records) - 1} of {len(records)}"
    total = info.split("train").num_examples
    for drop_remainder in (False, True):
        # One batch either way: a record fewer changes nothing in the count.
        o = ReadOptions(image_size=16, batch_size=total - 1, drop_remainder=drop_remainder)
        ds = data.make_dataset(d, o, as_supervised=True)
        assert len(ds) == 1 + (not drop_remainder)
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            list(ds.take(len(ds)))
    ds = data.make_dataset(d, image_size=16, batch_size=total, as_supervised=True)
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.fit(ds, epochs=1, verbose=0, shuffle=False)


def test_a_consumer_that_stops_early_still_sees_a_bad_record_logged(converted, tmp_path):
    """The shortfall error comes after the last batch; one who reads only the first
    batch (take, max_images) gets each dropped record in TF's log as it happens.
    (A fresh process: TF reads its log level once, and the tests run with warnings off.)"""
    import subprocess
    import sys

    d = copy_dataset(converted, tmp_path / "d")
    bad = metadata.load(d).shard_paths("train")[0]
    records = [schema.parse(r) for r in tf.data.TFRecordDataset(bad).as_numpy_iterator()]
    records[0] = broken_image(records[0])
    with tf.io.TFRecordWriter(bad) as w:
        for r in records:
            w.write(schema.serialize(r))
    script = (
        "import sys, tfclassify\n"
        "from tfclassify.core.options import ReadOptions\n"
        "ds = tfclassify.make_dataset(sys.argv[1], ReadOptions(image_size=32, batch_size=4))\n"
        "print(len(next(iter(ds))['key']))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}
    run = subprocess.run([sys.executable, "-c", script, d], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and run.stdout.strip() == "4", run.stderr
    assert "Error raised with error message" in run.stderr, run.stderr
    assert "Invalid JPEG data" in run.stderr, run.stderr


# ------------------------------------------------- structural damage, FIFOs, strays


@pytest.mark.parametrize("kind", DAMAGE)
def test_skip_errors_accounts_for_every_record_of_a_damaged_shard(
    dataset, tmp_path, capfd, caplog, kind
):
    """Emptied, cut at a record boundary, a record dropped or duplicated, cut inside a
    record: skip mode reads what is left, and the shortfall or excess against
    dataset.json is counted and logged naming the shard. Before: a dropped record
    read 223 of 224 with nothing skipped, a duplicate 225, an empty shard nothing."""
    d = copy_dataset(dataset["dir"], tmp_path / "d")
    split = metadata.load(d).split("train")
    bad = os.path.join(d, split.shards[1].file)
    read, missing, extra = damage(bad, kind, at=1)
    # Strict: refused before reading anything, naming the shard and its sizes.
    with pytest.raises(DataError, match=re.escape(bad) + r": \d+ bytes, dataset.json lists"):
        data.make_dataset(d, ReadOptions(image_size=8))
    capfd.readouterr()
    stats = data.ReadStats()
    with caplog.at_level(logging.WARNING):
        ds = data.make_dataset(d, ReadOptions(image_size=8, skip_errors=True), stats=stats)
    assert f"{bad}: " in caplog.text and "bytes, dataset.json lists" in caplog.text
    keys = collect(ds)["key"]
    assert len(keys) == split.shards[0].num_examples + read
    assert (stats.skipped, stats.extra) == (missing, extra)
    assert len(keys) + stats.skipped - stats.extra == split.num_examples
    err = capfd.readouterr().err
    if missing:
        unnamed = missing - (kind == "cut_mid")  # the record cut in two is named as bad
        assert f"tfclassify: {unnamed} records missing from {bad}: it holds" in err, err
    if extra:
        assert f"tfclassify: 1 records too many in {bad}: it holds 4, dataset.json" in err, err
    # A second pass counts again (the counters add up; reset() starts over).
    stats.reset()
    collect(ds)
    assert (stats.skipped, stats.extra) == (missing, extra)


def test_a_consumer_that_stops_early_gets_no_false_shortfall(dataset, tmp_path, capfd):
    """A shard's count is compared once it has been read to its end, never before: one
    that stops inside shard 0 hears nothing about it, nor about shard 1 (emptied)."""
    d = copy_dataset(dataset["dir"], tmp_path / "d")
    damage(metadata.load(d).shard_paths("train")[1], "zero", at=0)
    o = ReadOptions(
        image_size=8,
        batch_size=1,
        skip_errors=True,
        cycle_length=1,
        interleave_parallelism=None,
        map_parallelism=None,
        prefetch=0,
    )
    stats = data.ReadStats()
    assert len(list(data.make_dataset(d, o, stats=stats).take(2))) == 2
    assert (stats.skipped, stats.extra) == (0, 0)
    assert "missing" not in capfd.readouterr().err


@pytest.mark.timeout(120, method="thread")  # before: the reader blocked in open() forever
@pytest.mark.parametrize("skip_errors", [False, True])
def test_a_named_pipe_in_place_of_a_shard_is_refused(dataset, tmp_path, skip_errors):
    d = copy_dataset(dataset["dir"], tmp_path / "d")
    bad = metadata.load(d).shard_paths("train")[1]
    os.remove(bad)
    os.mkfifo(bad)
    o = ReadOptions(image_size=8, skip_errors=skip_errors)
    for source in (d, os.path.join(d, "data-train.tfrecord-*"), [bad]):
        with pytest.raises(DataError, match=re.escape(f"{bad}: not a regular file")):
            collect(data.make_dataset(source, o))


def test_the_glob_form_warns_about_a_stray_shard(dataset, tmp_path, caplog, capfd):
    """A file named like a shard that dataset.json does not list is read by a glob: it
    is what the user asked for, but said, and the listed shards are still checked."""
    d = copy_dataset(dataset["dir"], tmp_path / "d")
    listed = metadata.load(d).shard_paths("train")
    stray = os.path.join(d, "data-train.tfrecord-00002-of-00003")
    shutil.copyfile(listed[0], stray)
    o = ReadOptions(image_size=8, skip_errors=True)
    with caplog.at_level(logging.WARNING):
        ds = data.make_dataset(os.path.join(d, "data-train.tfrecord-*"), o, stats=data.ReadStats())
    assert f"{stray}: not listed in {os.path.join(d, 'dataset.json')}" in caplog.text
    assert listed[0] not in caplog.text
    assert len(collect(ds)["key"]) == len(dataset["train"]) + 4
    caplog.clear()
    data.make_dataset(d, o)  # the directory form reads only what dataset.json lists
    assert "not listed" not in caplog.text

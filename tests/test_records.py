"""tfclassify.reading.records: the exact reader path names, skips and counts every bad record
(framing and content), and never hangs on a shard that vanishes."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
from recordlib import (
    collect,
    make_record,
    read_file,
    save_dataset_info,
    shard_info,
    write_file,
    write_shard,
)

from tfclassify.core import metadata, schema
from tfclassify.core.options import ReadOptions
from tfclassify.reading import dataset as data
from tfclassify.reading.records import _WINDOW

GOOD = [make_record(i, 20 + 4 * i, 28, "jpeg" if i % 2 else "png", seed=7) for i in range(5)]


def record_offsets(records: list[schema.Record | bytes]) -> list[int]:
    offsets, pos = [], 0
    for r in records:
        offsets.append(pos)
        pos += len(r if isinstance(r, bytes) else schema.serialize(r)) + schema.TFRECORD_OVERHEAD
    return offsets


def read_all(path: str, skip: bool) -> tuple[dict[str, np.ndarray], data.ReadStats]:
    stats = data.ReadStats()
    o = ReadOptions(image_size=8, batch_size=2, skip_errors=skip)
    return collect(data.make_dataset([path], o, stats=stats)), stats


def assert_bad_record_handling(
    path: str, bad_index: int, capfd, kept=None, lost_bytes=0, strict=True
):
    if strict:
        with pytest.raises(
            tf.errors.InvalidArgumentError, match=f"bad record {bad_index} of {path}"
        ):
            read_all(path, skip=False)
    capfd.readouterr()
    out, stats = read_all(path, skip=True)
    kept = [i for i in range(len(GOOD)) if i != bad_index] if kept is None else kept
    assert sorted(k.decode() for k in out["key"]) == sorted(GOOD[i].filename for i in kept)
    assert (stats.skipped, stats.lost_bytes) == (1, lost_bytes)
    assert f"tfclassify: bad record {bad_index} of {path}" in capfd.readouterr().err


def test_undecodable_record_with_valid_crc(tmp_path, capfd):
    jpeg = GOOD[1].encoded
    broken = dataclasses.replace(GOOD[2], encoded=jpeg[:40], format="jpeg")
    path = str(tmp_path / "content.tfrecord")
    write_shard(path, [GOOD[0], GOOD[1], broken, GOOD[3], GOOD[4]])
    assert_bad_record_handling(path, 2, capfd)


def test_unparseable_example_with_valid_crc(tmp_path, capfd):
    path = str(tmp_path / "proto.tfrecord")
    write_shard(path, [GOOD[0], b"\xff\x00 not a proto", GOOD[2], GOOD[3], GOOD[4]])
    assert_bad_record_handling(path, 1, capfd, strict=False)


def test_crc_corrupt_record_mid_shard_is_skipped_and_the_rest_recovered(tmp_path, capfd):
    path = str(tmp_path / "crc.tfrecord")
    write_shard(path, GOOD)
    raw = bytearray(read_file(path))
    encoded_at = raw.index(GOOD[2].encoded[100:140])  # inside image/encoded of record 2
    raw[encoded_at] ^= 0xFF
    write_file(path, raw)
    assert_bad_record_handling(path, 2, capfd)


def test_truncated_shard(tmp_path, capfd):
    path = str(tmp_path / "trunc.tfrecord")
    write_shard(path, GOOD)
    raw = read_file(path)
    write_file(path, raw[:-30])  # cut inside the last record
    assert_bad_record_handling(path, 4, capfd, strict=False)


def test_corrupt_length_header_loses_the_rest_of_the_shard(tmp_path, capfd):
    path = str(tmp_path / "header.tfrecord")
    write_shard(path, GOOD)
    raw = bytearray(read_file(path))
    at = record_offsets(GOOD)[3]
    raw[at] ^= 0x01  # length of record 3 no longer matches its CRC
    write_file(path, raw)
    assert_bad_record_handling(
        path, 3, capfd, kept=[0, 1, 2], lost_bytes=len(raw) - at, strict=False
    )


@pytest.mark.parametrize("at_header, skipped", [(False, 1), (True, 2)])
def test_a_listed_shard_is_counted_once_whichever_way_it_breaks(
    tmp_path, capfd, at_header, skipped
):
    """With dataset.json, a corrupt length header loses record 3 (named) and record 4
    (in the unframeable rest: counted as missing); a CRC error loses record 3 alone,
    the walk recovering record 4, so nothing is missing on top of it."""
    path = str(tmp_path / schema.shard_name("data", "train", 0, 1))
    write_shard(path, GOOD)
    save_dataset_info(str(tmp_path), {"train": metadata.SplitInfo("train", (shard_info(path, 5),))})
    raw = bytearray(read_file(path))
    at = record_offsets(GOOD)[3]  # its length header, or a byte of its image
    raw[at if at_header else raw.index(GOOD[3].encoded[100:140], at)] ^= 1
    write_file(path, raw)  # the same size: found only while reading
    out, stats = read_all(path, skip=True)
    assert len(out["key"]) == (3 if at_header else 4)
    assert (stats.skipped, stats.extra) == (skipped, 0)
    err = capfd.readouterr().err
    assert f"bad record 3 of {path}" in err
    assert (f"1 records missing from {path}: it holds 4 of the 5" in err) == at_header


def test_bad_record_among_several_shards_is_counted_once(dataset, tmp_path):
    path = str(tmp_path / "one-bad.tfrecord")
    write_shard(path, [GOOD[0], b"junk", GOOD[1]])
    stats = data.ReadStats()
    shards = data.resolve_shards(dataset["dir"], "train") + [path]
    o = ReadOptions(image_size=8, batch_size=2, skip_errors=True)
    out = collect(data.make_dataset(shards, o, stats=stats))
    assert len(out["key"]) == len(dataset["train"]) + 2
    assert stats.as_dict() == {"skipped": 1, "lost_bytes": 0, "extra": 0}


def test_a_run_longer_than_the_window_is_counted_in_full(tmp_path, capfd):
    path = str(tmp_path / "run.tfrecord")
    write_shard(path, [GOOD[0]] + [b"junk"] * (_WINDOW + 4) + [GOOD[1]])
    out, stats = read_all(path, skip=True)
    assert sorted(k.decode() for k in out["key"]) == sorted(r.filename for r in GOOD[:2])
    assert stats.skipped == _WINDOW + 4
    err = capfd.readouterr().err
    assert f"bad record {_WINDOW + 4} of {path}" in err  # the last one is named
    assert "and 4 more" in err


def test_a_shard_that_vanishes_raises_instead_of_hanging(tmp_path):
    # Under ignore_errors, TF's reader retries a failed open forever (tensorflow#25700).
    path = str(tmp_path / schema.shard_name("data", "train", 0, 1))
    write_shard(path, GOOD[:2])
    save_dataset_info(str(tmp_path), {"train": metadata.SplitInfo("train", (shard_info(path, 2),))})
    (tmp_path / "bare").mkdir()
    bare = str(tmp_path / "bare" / "x.tfrecord")  # no dataset.json beside it
    write_shard(bare, GOOD[:2])
    cases = [
        (bare, False, "not a bad record"),  # per-record path
        (path, True, "not a bad record"),  # per-record path (skip_errors)
        (path, False, "read 0 of 2 records"),  # fast path: counts from dataset.json
    ]
    for shard, skip, message in cases:
        ds = data.make_dataset([shard], ReadOptions(image_size=8, skip_errors=skip))
        os.rename(shard, shard + ".moved")  # vanishes after the dataset was made
        try:
            with pytest.raises(tf.errors.InvalidArgumentError, match=message):
                collect(ds)
        finally:
            os.rename(shard + ".moved", shard)


@pytest.mark.parametrize("skip_errors", [False, True], ids=["fast", "exact"])
def test_the_read_buffer_is_passed_only_when_it_is_not_tfs_default(
    dataset, monkeypatch, skip_errors
):
    """TF logs "default buffer size ... overridden by ... 262144" for every shard read
    with its own default passed explicitly: the default goes as None."""
    passed = []
    reader = tf.data.TFRecordDataset

    def recording(*args, **kwargs):
        passed.append(kwargs.get("buffer_size"))
        return reader(*args, **kwargs)

    monkeypatch.setattr(tf.data, "TFRecordDataset", recording)
    for kb in (256, 512):  # TF's default (the option's too), and another size
        o = ReadOptions(image_size=8, batch_size=2, skip_errors=skip_errors, reader_buffer_kb=kb)
        assert len(collect(data.make_dataset(dataset["dir"], o))["key"]) > 0
    assert set(passed) == {None, 512 * 1024}

"""Atomic shard writing and verification.

A shard is written under a temporary name, fsynced, then renamed, and only then
recorded as done: a run killed at any moment leaves no partial file under a
final shard name, and `--resume` can trust every done record it finds.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable

from tfclassify import fileio, schema
from tfclassify.errors import DataError

_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class ShardResult:
    file: str
    num_examples: int
    num_bytes: int
    sha256: str


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_shard(path: str, records: Iterable[bytes]) -> ShardResult:
    """Writes serialized records to `path` atomically; returns what was written."""
    import tensorflow as tf

    count = 0
    with fileio.atomic_path(path) as tmp:
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in records:
                writer.write(record)
                count += 1
        # TF's close does not fsync, and the rename must not outrun the data. The
        # flush to disk and hashing the (cached) file overlap: both release the GIL.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            synced = pool.submit(_fsync, tmp)
            digest = file_sha256(tmp)
            synced.result()
    return ShardResult(os.path.basename(path), count, os.path.getsize(path), digest)


def done_path(work_dir: str, filename: str) -> str:
    return os.path.join(work_dir, "done", filename + ".json")


def mark_done(work_dir: str, result: ShardResult) -> None:
    os.makedirs(os.path.join(work_dir, "done"), exist_ok=True)
    fileio.atomic_write_text(
        done_path(work_dir, result.file), json.dumps(dataclasses.asdict(result))
    )


def load_done(work_dir: str, directory: str, filename: str) -> ShardResult | None:
    """The done record of a finished shard, if the shard on disk still matches it."""
    try:
        with open(done_path(work_dir, filename), encoding="utf-8") as f:
            result = ShardResult(**json.load(f))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None
    path = os.path.join(directory, filename)
    if not os.path.isfile(path) or os.path.getsize(path) != result.num_bytes:
        return None
    if file_sha256(path) != result.sha256:
        return None
    return result


def check_records(path: str, num_labels: int | None = None) -> int:
    """Reads every record through TF's reader (which checks each record's CRCs) and
    checks each image's sha256 and label; returns the record count."""
    import tensorflow as tf

    n = 0
    try:
        for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
            record = schema.parse(serialized)
            if hashlib.sha256(record.encoded).hexdigest() != record.sha256:
                raise DataError(f"{path}: record {n} ({record.filename}) fails its sha256 check")
            if num_labels is not None and not 0 <= record.label < num_labels:
                raise DataError(
                    f"{path}: record {n} has label {record.label} outside the label map"
                )
            n += 1
    except tf.errors.OpError as e:
        raise DataError(f"{path}: unreadable at record {n} ({e.message.splitlines()[0]})") from e
    return n


def verify_shard(path: str, expected: ShardResult, num_labels: int | None = None) -> None:
    """Raises DataError naming `path` when it differs from what dataset.json promises."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: shard missing")
    size = os.path.getsize(path)
    if size != expected.num_bytes:
        raise DataError(f"{path}: size {size} != {expected.num_bytes} in dataset.json")
    digest = file_sha256(path)
    if digest != expected.sha256:
        raise DataError(f"{path}: sha256 {digest} != {expected.sha256} in dataset.json")
    n = check_records(path, num_labels)
    if n != expected.num_examples:
        raise DataError(f"{path}: {n} records != {expected.num_examples} in dataset.json")

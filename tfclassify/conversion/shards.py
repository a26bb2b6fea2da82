"""Atomic shard writing, and the done records that let a run resume.

A shard is written under a temporary name and fsynced, recorded as done (its size
and sha256, and its index's), then its index is written (atomically) and only then
is the shard renamed: a run killed at any moment leaves no partial file under a
final name, every file under one has a record that proves it is tfclassify's, and a
resume checks each done record against the files it finds. The index
(`interop.dali_index`) comes from the record sizes as they are written: no second
read of the shard.
"""

from __future__ import annotations

import array
import concurrent.futures
import dataclasses
import errno
import hashlib
import json
import os
from collections.abc import Callable, Iterable

from tfclassify.core import fileio, interop, schema, shardfiles
from tfclassify.core.errors import DataError
from tfclassify.core.metadata import IndexInfo, ShardInfo, file_path

# How much the writer may run ahead of the hashed, durable part of a shard.
_SYNC_BYTES = 8 << 20


class _Follower:
    """Hashes and flushes to disk what a writer has handed to the OS so far, on a
    background thread, from a descriptor of its own.

    Run at the end, the shard's fsync and hash would take about as long as writing
    it: following the writer overlaps both with the writing. The
    thread spends its time in pread/sha256/fdatasync, which release the GIL, so it
    does not slow the Python that produces the records.
    """

    def __init__(self, path: str):
        self._fd = os.open(path, os.O_RDONLY)
        self._hash = hashlib.sha256()
        self._done = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tfclassify-sync")
        self._tasks: list[concurrent.futures.Future[None]] = []

    def _catch_up(self, upto: int, sync: Callable[[int], None]) -> None:
        while self._done < upto:
            chunk = os.pread(self._fd, min(shardfiles.CHUNK, upto - self._done), self._done)
            if not chunk:
                raise DataError(f"shard ended at byte {self._done}, {upto} were written")
            self._hash.update(chunk)
            self._done += len(chunk)
        sync(self._fd)

    def advance(self, upto: int) -> None:
        """Bytes [0, upto) are in the OS's hands (flushed by the writer)."""
        self._tasks.append(self._pool.submit(self._catch_up, upto, os.fdatasync))

    def finish(self, size: int) -> str:
        """Waits until all `size` bytes are hashed and durable; returns the sha256."""
        self._tasks.append(self._pool.submit(self._catch_up, size, os.fsync))
        for task in self._tasks:
            task.result()
        return self._hash.hexdigest()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        os.close(self._fd)


def write_shard(
    path: str,
    records: Iterable[bytes],
    before_commit: Callable[[], None] | None = None,
    expected_bytes: int | None = None,
    record_done: Callable[[ShardInfo], None] | None = None,
) -> ShardInfo:
    """Writes serialized records to `path` atomically, and its record index; returns
    what was written.

    TF's writer neither fsyncs nor hashes: every _SYNC_BYTES the writer is flushed
    and a _Follower hashes and syncs the new bytes while the next ones are written.
    The rename happens only after the whole file is durable, holds `expected_bytes`
    (when given: the plan's size), and `before_commit()`, then
    `record_done(result)`, then the atomic write of the index
    (`schema.index_file`, beside `path`) have returned: if any of these fails, the
    temporary file is removed and nothing has the shard's final name. A URL
    (gs://...) is written through `tf.io.gfile` the same way, and hashed by reading
    it back (no fsync there).

    Raises:
      OSError: a full disk (TF's writer raises ResourceExhaustedError), naming `path`.
    """
    if fileio.is_remote(path):
        with fileio.atomic_remote_path(path) as tmp:
            sizes = _write_records(tmp, records, path)
            result = _finish(path, tmp, sizes, expected_bytes, before_commit, record_done)
        return result
    with fileio.atomic_path(path) as tmp:
        follower = _Follower(tmp)
        try:
            sizes = _write_records(tmp, records, path, follower.advance)
            result = _finish(path, tmp, sizes, expected_bytes, before_commit, record_done, follower)
        finally:
            follower.close()
    return result


def _write_records(
    tmp: str, records: Iterable[bytes], path: str, flushed: Callable[[int], None] | None = None
) -> array.array:
    """Writes `records` to `tmp`, calling `flushed(bytes)` every _SYNC_BYTES after a
    flush; returns each record's size as written (with its framing)."""
    import tensorflow as tf

    sizes = array.array("q")
    written = last = 0
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in records:
                writer.write(record)
                sizes.append(len(record) + schema.TFRECORD_OVERHEAD)
                written += sizes[-1]
                if flushed is not None and written - last >= _SYNC_BYTES:
                    writer.flush()
                    flushed(written)
                    last = written
    except tf.errors.ResourceExhaustedError as e:
        # How TF reports a full disk or quota: "<file>; <strerror>".
        reason = e.message.rsplit("; ", 1)[-1]
        raise OSError(errno.ENOSPC, reason, path) from None
    return sizes


def _finish(
    path: str,
    tmp: str,
    sizes: array.array,
    expected_bytes: int | None,
    before_commit: Callable[[], None] | None,
    record_done: Callable[[ShardInfo], None] | None,
    follower: _Follower | None = None,
) -> ShardInfo:
    """Checks the written `tmp` and hashes it (through `follower`, or by reading it
    back); runs the callbacks and writes the index. What is left to commit the
    shard is its rename."""
    import tensorflow as tf

    written = sum(sizes)
    size = tf.io.gfile.stat(tmp).length if follower is None else os.path.getsize(tmp)
    if size != written:
        raise DataError(f"{tmp}: {size} bytes on disk, {written} written")
    if expected_bytes is not None and size != expected_bytes:
        raise DataError(
            f"{os.path.basename(path)}: wrote {size} bytes, planned {expected_bytes}; "
            "an input changed during conversion"
        )
    if before_commit is not None:
        before_commit()
    digest = shardfiles.file_sha256(tmp) if follower is None else follower.finish(size)
    name = os.path.basename(path)
    index = interop.dali_index(sizes)
    index_file = schema.index_file(name)
    result = ShardInfo(
        name,
        len(sizes),
        size,
        digest,
        IndexInfo(index_file, len(index), hashlib.sha256(index).hexdigest()),
    )
    if record_done is not None:
        record_done(result)  # before the index has its name: it proves the index ours
    index_path = file_path(os.path.dirname(path), index_file)
    fileio.makedirs(os.path.dirname(index_path))
    fileio.atomic_write_bytes(index_path, index)
    return result


def done_path(work_dir: str, filename: str) -> str:
    return os.path.join(work_dir, "done", filename + ".json")


def mark_done(work_dir: str, result: ShardInfo) -> None:
    os.makedirs(os.path.join(work_dir, "done"), exist_ok=True)
    fileio.atomic_write_text(
        done_path(work_dir, result.file), json.dumps(dataclasses.asdict(result))
    )


def read_done(work_dir: str, filename: str) -> ShardInfo | None:
    """The done record of `filename`, unchecked; None when missing or damaged."""
    try:
        with open(done_path(work_dir, filename), encoding="utf-8") as f:
            return ShardInfo.from_dict(json.load(f))
    except (OSError, ValueError, TypeError, AttributeError):  # missing or damaged: not done
        return None


def written_files(directory: str, result: ShardInfo) -> list[str]:
    """Those of `result`'s files (a shard and its index) in `directory` that are the
    files it records, by type, size and sha256: each is provably tfclassify's."""
    return [
        file
        for file, size, sha in result.files()
        if shardfiles.is_written(file_path(directory, file), size, sha)
    ]


def load_done(work_dir: str, directory: str, filename: str) -> ShardInfo | None:
    """The done record of a finished shard, if the shard and its index on disk
    still match it."""
    result = read_done(work_dir, filename)
    if result is None or len(written_files(directory, result)) != len(result.files()):
        return None
    return result

"""A shard file on disk: its stat, its sha256, and the proof that it is the file written.

The converter proves with these which files in an output folder are its own; the
reader and `verify` check shards against what dataset.json records.
"""

from __future__ import annotations

import hashlib
import os
import stat

from tfclassify.core import fileio
from tfclassify.core.errors import DataError

CHUNK = 1 << 20  # bytes read at a time when hashing


def file_sha256(path: str) -> str:
    """The sha256 of the file at `path`, a local path or a URL (`tf.io.gfile`)."""
    h = hashlib.sha256()
    if fileio.is_remote(path):
        import tensorflow as tf

        opener = tf.io.gfile.GFile
    else:
        opener = open
    with opener(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def is_written(path: str, num_bytes: int, sha256: str) -> bool:
    """Whether `path` is a regular file (not a link) of this size and sha256: the
    proof that a file is the shard tfclassify wrote and recorded."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # a file where a folder was
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == num_bytes and file_sha256(path) == sha256


def shard_stat(path: str) -> os.stat_result | None:
    """`path`'s stat; None when it does not exist here (or is not a local path).

    Raises:
      DataError: `path` exists but is not a regular file (a named pipe, a device, a
        folder): reading or hashing a pipe blocks forever, and calling it "missing"
        would send the user looking for the wrong problem.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file")
    return st

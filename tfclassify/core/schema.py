"""The one definition of what a record holds: used by the writer and every reader.

Keys follow the tensorflow/models image-classification convention
(`image/encoded`, `image/class/label`, ...) so that their readers, and TFDS-style
tools, can consume tfclassify shards unchanged.
"""

from __future__ import annotations

import dataclasses
import re

from tfclassify.core.errors import DataError

SCHEMA_VERSION = 1

ENCODED = "image/encoded"
FORMAT = "image/format"
LABEL = "image/class/label"
TEXT = "image/class/text"
HEIGHT = "image/height"
WIDTH = "image/width"
CHANNELS = "image/channels"
FILENAME = "image/filename"
SHA256 = "image/key/sha256"

FORMATS = ("jpeg", "png")

# TFRecord framing: uint64 length + uint32 length-crc + data + uint32 data-crc.
TFRECORD_OVERHEAD = 16

# Each shard's record index (NVIDIA DALI's format) lives in this folder, as
# `{shard}.idx`: beside the shards, a glob such as `data-train.tfrecord-*` would
# read it as a shard.
INDEX_DIR = "index"
INDEX_SUFFIX = ".idx"

_SHARD_RE = re.compile(
    r"^(?P<name>.+)-(?P<split>[^-]+)\.tfrecord-(?P<index>\d{5,})-of-(?P<count>\d{5,})$"
)


@dataclasses.dataclass(frozen=True)
class Record:
    """One image as stored: encoded bytes plus the metadata the reader needs."""

    encoded: bytes
    format: str
    label: int
    text: str
    filename: str
    height: int
    width: int
    channels: int
    sha256: str


def shard_name(name: str, split: str, index: int, count: int) -> str:
    """TFDS / tf-models shard naming, so globs like `data-train.tfrecord-*` work.

    Both numbers have at least 5 digits, and as many as `count` has (TFDS's rule,
    so that its reader finds the shards of a split of 100,000 or more).
    """
    width = max(5, len(str(count)))
    return f"{name}-{split}.tfrecord-{index:0{width}d}-of-{count:0{width}d}"


def parse_shard_name(filename: str) -> dict | None:
    """Inverse of `shard_name`; None for files that are not tfclassify shards."""
    m = _SHARD_RE.match(filename)
    if not m:
        return None
    d = m.groupdict()
    parsed = {
        "name": d["name"],
        "split": d["split"],
        "index": int(d["index"]),
        "count": int(d["count"]),
    }
    # Past 99,999 shards the numbers grow a digit; a zero-padded alias is not ours.
    return parsed if shard_name(**parsed) == filename else None


def index_file(shard_file: str) -> str:
    """The record index of `shard_file`, relative to the dataset directory."""
    return f"{INDEX_DIR}/{shard_file}{INDEX_SUFFIX}"


def indexed_shard(entry: str) -> str | None:
    """The shard whose index file `entry` (a name in INDEX_DIR) is; else None."""
    shard = entry.removesuffix(INDEX_SUFFIX)
    return shard if shard != entry and parse_shard_name(shard) else None


def _example(record: Record):
    import tensorflow as tf  # deferred: planning and listing never need TF

    # Filling the map in place is several times faster than building Feature/BytesList
    # wrappers and copying them in; this runs twice per image in the converter.
    example = tf.train.Example()
    feature = example.features.feature
    feature[ENCODED].bytes_list.value.append(record.encoded)
    feature[FORMAT].bytes_list.value.append(record.format.encode())
    feature[LABEL].int64_list.value.append(record.label)
    feature[TEXT].bytes_list.value.append(record.text.encode("utf-8"))
    feature[HEIGHT].int64_list.value.append(record.height)
    feature[WIDTH].int64_list.value.append(record.width)
    feature[CHANNELS].int64_list.value.append(record.channels)
    feature[FILENAME].bytes_list.value.append(record.filename.encode("utf-8", "surrogateescape"))
    feature[SHA256].bytes_list.value.append(record.sha256.encode())
    return example


def serialize(record: Record) -> bytes:
    """Serialized `tf.train.Example`.

    `deterministic=True` fixes the map-field order, otherwise bytes can differ
    between processes and shards would not be reproducible across worker counts.
    """
    return _example(record).SerializeToString(deterministic=True)


def feature_spec(with_label: bool = True) -> dict:
    """`tf.io.parse_*` spec. Labels default to -1 so unlabeled shards still parse."""
    import tensorflow as tf

    spec = {
        ENCODED: tf.io.FixedLenFeature([], tf.string),
        FORMAT: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        HEIGHT: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        WIDTH: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        CHANNELS: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        SHA256: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    }
    if with_label:
        spec[LABEL] = tf.io.FixedLenFeature([], tf.int64, default_value=-1)
        spec[TEXT] = tf.io.FixedLenFeature([], tf.string, default_value=b"")
    return spec


def parse(serialized: bytes) -> Record:
    """Decode one serialized Example in Python (verification, tests, debugging).

    Raises:
      DataError: `serialized` is not an Example, or its text fields are not UTF-8.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        ex = tf.train.Example.FromString(serialized)
    except DecodeError as e:
        raise DataError(f"not a tf.train.Example ({e})") from None
    f = ex.features.feature

    def b(k: str) -> bytes:
        return f[k].bytes_list.value[0] if f[k].bytes_list.value else b""

    def i(k: str) -> int:
        return int(f[k].int64_list.value[0]) if f[k].int64_list.value else -1

    try:
        return Record(
            encoded=b(ENCODED),
            format=b(FORMAT).decode(),
            label=i(LABEL),
            text=b(TEXT).decode("utf-8"),
            # Written with surrogateescape: a file name that is not UTF-8 comes back as it was.
            filename=b(FILENAME).decode("utf-8", "surrogateescape"),
            height=i(HEIGHT),
            width=i(WIDTH),
            channels=i(CHANNELS),
            sha256=b(SHA256).decode(),
        )
    except UnicodeDecodeError as e:
        raise DataError(f"a text field is not UTF-8 ({e.reason} at byte {e.start})") from None

"""Re-read every shard of a converted dataset and check it against dataset.json.

Checks, per shard: present, a regular file, size, whole-file sha256, every record's
CRC (TF's reader), every image's sha256 and label, and the record count; its index
(where dataset.json lists one): present, size, sha256, and every line on a record
boundary of the shard; that no file named like a shard is missing from
dataset.json; and that the TFDS metadata agrees with dataset.json. `verify` raises
naming the first bad file.
"""

from __future__ import annotations

import hashlib
import os
import struct

from tfclassify.core import interop, metadata, schema, shardfiles
from tfclassify.core.errors import DataError


def verify(directory: str) -> metadata.DatasetInfo:
    """Raises DataError naming the first shard that differs from dataset.json."""
    info = metadata.load(directory)
    directory = info.directory  # a TFDS data dir's version folder (`metadata.load`)
    # First: listing is instant, and a stray shard is read by any glob over the shards.
    strays = info.stray_shards()
    if strays:
        more = f" (and {len(strays) - 1} more)" if len(strays) > 1 else ""
        raise DataError(
            f"{os.path.join(directory, strays[0])}{more}: named like a shard but not listed "
            f"in {metadata.METADATA_FILE}; move it out of the dataset directory"
        )
    for split in info.splits.values():
        for s in split.shards:
            path = os.path.join(directory, s.file)
            verify_shard(path, s, len(info.labels))
    total = sum(sp.num_examples for sp in info.splits.values())
    if total != info.accepted:
        raise DataError(
            f"{directory}: shards hold {total} records, dataset.json says {info.accepted}"
        )
    if info.accepted + info.skipped != info.files_found:
        raise DataError(
            f"{directory}: accepted {info.accepted} + skipped {info.skipped} != "
            f"files found {info.files_found}"
        )
    if any(s.index is not None for split in info.splits.values() for s in split.shards):
        # Written with the indexes: a dataset.json from before has neither. Last: the
        # shards, checked against dataset.json, tell whether it or these are wrong.
        verify_tfds_files(info)
    return info


def check_records(path: str, num_labels: int | None = None) -> int:
    """Reads every record through TF's reader (which checks each record's CRCs) and
    checks each image's sha256 and label; returns the record count."""
    import tensorflow as tf

    n = 0
    try:
        for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
            try:
                record = schema.parse(serialized)
            except DataError as e:
                raise DataError(f"{path}: record {n} is unreadable: {e}") from None
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


def verify_shard(path: str, expected: metadata.ShardInfo, num_labels: int | None = None) -> None:
    """Raises DataError naming `path` when it differs from what dataset.json promises."""
    st = shardfiles.shard_stat(path)
    if st is None:
        raise DataError(f"{path}: shard missing")
    size = st.st_size
    if size != expected.num_bytes:
        raise DataError(f"{path}: size {size} != {expected.num_bytes} in dataset.json")
    digest = shardfiles.file_sha256(path)
    if digest != expected.sha256:
        raise DataError(f"{path}: sha256 {digest} != {expected.sha256} in dataset.json")
    n = check_records(path, num_labels)
    if n != expected.num_examples:
        raise DataError(f"{path}: {n} records != {expected.num_examples} in dataset.json")
    verify_index(path, expected)


def _read_listed(path: str, num_bytes: int, sha256: str) -> bytes:
    """The file at `path`, checked against the size and sha256 dataset.json lists."""
    st = shardfiles.shard_stat(path)
    if st is None:
        raise DataError(f"{path}: missing")
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != num_bytes:
        raise DataError(f"{path}: size {len(data)} != {num_bytes} in dataset.json")
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise DataError(f"{path}: sha256 {digest} != {sha256} in dataset.json")
    return data


def verify_index(shard_path: str, expected: metadata.ShardInfo) -> None:
    """Raises DataError naming the index of the shard at `shard_path` when it is not
    the one dataset.json lists, or a line of it is not a record of the shard: the
    records must follow one another from byte 0 to the end, each starting with the
    length header its size gives (the CRCs are `check_records`'s)."""
    index = expected.index
    if index is None:  # a dataset.json from before shards had one
        return
    path = metadata.file_path(os.path.dirname(shard_path), index.file)
    data = _read_listed(path, index.num_bytes, index.sha256)
    try:
        entries = interop.parse_dali_index(data)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    if len(entries) != expected.num_examples:
        raise DataError(f"{path}: {len(entries)} lines, {expected.num_examples} records")
    end = 0
    with open(shard_path, "rb") as f:
        for line, (offset, size) in enumerate(entries, 1):
            f.seek(offset)
            header = f.read(8)
            length = struct.unpack("<Q", header)[0] if len(header) == 8 else None
            if offset != end or length is None or length + schema.TFRECORD_OVERHEAD != size:
                raise DataError(
                    f"{path}: line {line} ({offset} {size}) is not record {line} of {shard_path}"
                )
            end = offset + size
    if end != expected.num_bytes:
        raise DataError(f"{path}: the records end at byte {end}, the shard at {expected.num_bytes}")


def verify_tfds_files(info: metadata.DatasetInfo) -> None:
    """Raises DataError when the TFDS metadata beside dataset.json is missing or
    describes other shards or labels than dataset.json does."""
    files = {}
    for name in interop.TFDS_FILES:
        path = os.path.join(info.directory, name)
        if shardfiles.shard_stat(path) is None:
            raise DataError(f"{path}: missing (TFDS reads the dataset by it)")
        with open(path, "rb") as f:
            files[name] = f.read()
    problem = interop.tfds_mismatch(info, files)
    if problem:
        raise DataError(f"{info.directory}: {problem}")

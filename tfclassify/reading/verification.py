"""Re-read every shard of a converted dataset and check it against dataset.json.

Checks, per shard: present, a regular file, size, whole-file sha256, every record's
CRC (TF's reader), every image's sha256 and label, and the record count; and that no
file named like a shard is missing from dataset.json. `verify` raises naming the
first bad shard.
"""

from __future__ import annotations

import hashlib
import os

from tfclassify.core import metadata, schema, shardfiles
from tfclassify.core.errors import DataError


def verify(directory: str) -> metadata.DatasetInfo:
    """Raises DataError naming the first shard that differs from dataset.json."""
    info = metadata.load(directory)
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

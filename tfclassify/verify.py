"""`python -m tfclassify.verify DIR`: re-read every shard and check it against dataset.json.

Checks, per shard: present, size, whole-file sha256, every record's CRC (TF's
reader), every image's sha256 and label, and the record count. Exits non-zero
naming the first bad shard.
"""

from __future__ import annotations

import os
import sys

from tfclassify import _callable, metadata, shards
from tfclassify.errors import DataError


def verify(directory: str) -> metadata.DatasetInfo:
    """Raises DataError naming the first shard that differs from dataset.json."""
    info = metadata.load(directory)
    for split in info.splits.values():
        for s in split.shards:
            expected = shards.ShardResult(s.file, s.num_examples, s.num_bytes, s.sha256)
            shards.verify_shard(os.path.join(directory, s.file), expected, len(info.labels))
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


def main(argv: list[str]) -> None:
    from tfclassify import cli

    if len(argv) != 2:
        raise SystemExit("usage: python -m tfclassify.verify OUTPUT_DIR")

    def go() -> None:
        info = verify(argv[1])
        n = sum(len(s.shards) for s in info.splits.values())
        print(f"ok: {n} shards, {info.accepted} records in {argv[1]}")

    sys.exit(cli.exit_status(go))


_callable.forward_calls(__name__, "verify")

if __name__ == "__main__":
    from tfclassify import cli

    cli.run_app(main)

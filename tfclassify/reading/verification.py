"""`python -m tfclassify.verify DIR`: re-read every shard and check it against dataset.json.

Checks, per shard: present, a regular file, size, whole-file sha256, every record's
CRC (TF's reader), every image's sha256 and label, and the record count; and that no
file named like a shard is missing from dataset.json. Exits non-zero naming the
first bad shard.
"""

from __future__ import annotations

import os
import sys

from tfclassify import _callable, metadata, shards
from tfclassify.errors import DataError, OptionsError

USAGE = "usage: python -m tfclassify.verify OUTPUT_DIR"


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
            expected = shards.ShardResult(s.file, s.num_examples, s.num_bytes, s.sha256)
            shards.verify_shard(path, expected, len(info.labels))
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
    """The command line. A wrong argument count is a user error like any other: one
    `error: usage: ...` line and exit status 2, through `cli.exit_status`."""
    from tfclassify import cli

    def go() -> None:
        if len(argv) != 2:
            raise OptionsError(USAGE)
        info = verify(argv[1])
        n = sum(len(s.shards) for s in info.splits.values())
        print(f"ok: {n} shards, {info.accepted} records in {argv[1]}")

    sys.exit(cli.exit_status(go))


_callable.forward_calls(__name__, "verify")

if __name__ == "__main__":
    from tfclassify import cli

    cli.run_app(main)

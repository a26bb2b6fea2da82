"""`python -m tfclassify.verify DIR`: re-read every shard and check it against dataset.json.

Checks, per shard: present, size, whole-file sha256, every record's CRC (TF's
reader), every image's sha256 and label, and the record count. Exits non-zero
naming the first bad shard.
"""

from __future__ import annotations

import os
import stat
import sys

from tfclassify import _callable, metadata, shards
from tfclassify.errors import DataError, OptionsError

USAGE = "usage: python -m tfclassify.verify OUTPUT_DIR"


def _check_regular_file(path: str) -> None:
    """Raises DataError when `path` exists but is not a regular file (a named pipe, a
    device, a folder): opening a pipe to hash it would block forever, and calling it
    "missing" would send the user looking for the wrong problem. A path that does not
    exist is left to `verify_shard`, which reports it as missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file")


def verify(directory: str) -> metadata.DatasetInfo:
    """Raises DataError naming the first shard that differs from dataset.json."""
    info = metadata.load(directory)
    for split in info.splits.values():
        for s in split.shards:
            path = os.path.join(directory, s.file)
            _check_regular_file(path)
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

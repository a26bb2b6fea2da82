"""`python -m tfclassify.verify DIR`: re-read every shard of the converted dataset in
DIR and check it against DIR/dataset.json.

Checks, per shard: present, a regular file, size, whole-file sha256, every record's
CRC (TF's reader), every image's sha256 and label, and the record count; its index
(index/SHARD.idx): size, sha256, and every line on a record boundary; that no file
named like a shard is missing from dataset.json; and that the TFDS metadata
(dataset_info.json, features.json) agrees with it. Exits non-zero naming the first
bad file.
"""

from __future__ import annotations

import sys
from typing import Any

from tfclassify import _callable, cli
from tfclassify.reading.verification import verify

__all__ = ["main", "verify"]

_DOC = __doc__  # --help's text; forward_calls adds the function's to __doc__


def _flags() -> Any:
    fv, _ = cli.new_flags()
    return fv  # no flags of its own: the dataset directory is its argument


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.verify DIR`; returns the exit status (2 for user errors)."""

    def body(fv: Any, directory: str) -> None:
        info = verify(directory)
        shards = sum(len(s.shards) for s in info.splits.values())
        records = cli.plural(info.accepted, "record")
        print(f"ok: {cli.plural(shards, 'shard')}, {records} in {directory}")

    return cli.run("tfclassify.verify", _DOC, _flags(), argv, body, positional="DIR")


_callable.forward_calls(__name__, "verify")

if __name__ == "__main__":
    sys.exit(main())

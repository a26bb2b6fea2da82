"""`python -m tfclassify.verify DIR`: re-read every shard and check it against dataset.json.

Checks, per shard: present, a regular file, size, whole-file sha256, every record's
CRC (TF's reader), every image's sha256 and label, and the record count; and that no
file named like a shard is missing from dataset.json. Exits non-zero naming the
first bad shard.
"""

from __future__ import annotations

import sys

from tfclassify import _callable
from tfclassify.core.errors import OptionsError
from tfclassify.reading.verification import verify

__all__ = ["main", "verify"]

USAGE = "usage: python -m tfclassify.verify OUTPUT_DIR"


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

"""The shared shape of tfclassify's absl command lines.

Each CLI owns its `FlagValues` (so several can live in one process, e.g. tests)
and hands its work to `run`, which gives every command the same contract:
`--help` prints usage, user errors print one `error: ...` line and exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from tfclassify.errors import OptionsError, TfclassifyError

_HELP = ("-h", "--help", "-help", "--helpfull")


def require(fv: Any, names: Sequence[str], hint: str = "") -> None:
    """Raises OptionsError for the first flag in `names` left empty."""
    for name in names:
        if not fv[name].value:
            raise OptionsError(f"--{name} is required{hint}")


def run(prog: str, fv: Any, argv: list[str] | None, body: Callable[[Any], int | None]) -> int:
    """Parses `argv` into `fv` and runs `body(fv)`; returns the exit status."""
    from absl import flags

    argv = sys.argv if argv is None else argv
    if any(a in _HELP for a in argv[1:]):
        print(f"usage: python -m {prog} [flags]\n\n{fv.get_help()}")
        return 0
    try:
        rest = fv(argv)
        if len(rest) > 1:
            raise OptionsError(f"unexpected arguments {rest[1:]}")
        return body(fv) or 0
    except (TfclassifyError, flags.Error) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

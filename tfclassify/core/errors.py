"""Typed errors for everything a user can get wrong.

User mistakes (bad flags, missing paths, corrupt shards) raise a subclass of
`TfclassifyError` whose message names the bad value and the path involved, so
the CLI can print one line and exit non-zero instead of a traceback.
`AssertionError` is never used for user input: it disappears under `python -O`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class TfclassifyError(Exception):
    """Base class: the CLI prints the message and exits with status 2.

    A message that suggests option settings writes them as the Python API takes
    them (`overwrite=True`) and lists them in `settings`; a command shows each one
    that is its flag as that flag (`--overwrite`, see `tfclassify.cli`).
    """

    def __init__(self, message: str, *, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.settings = dict(settings or {})


class OptionsError(TfclassifyError, ValueError):
    """An option has a bad value or conflicts with another option."""


class InputError(TfclassifyError):
    """The input (folder, manifest, model) is missing or unusable."""


class OutputError(TfclassifyError):
    """The output location cannot be written safely (e.g. non-empty, not ours)."""


class DataError(TfclassifyError):
    """Stored data does not match what its metadata promises (bad shard, checksum)."""


class MissingDependencyError(InputError):
    """An optional runtime (an extra such as `tfclassify[litert]`) is not installed."""

    def __init__(self, what: str, extra: str, package: str) -> None:
        super().__init__(
            f"{what} is not installed: pip install 'tfclassify[{extra}]' (or pip install {package})"
        )

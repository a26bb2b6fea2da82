"""Typed errors for everything a user can get wrong.

User mistakes (bad flags, missing paths, corrupt shards) raise a subclass of
`TfclassifyError` whose message names the bad value and the path involved, so
the CLI can print one line and exit non-zero instead of a traceback.
`AssertionError` is never used for user input: it disappears under `python -O`.
"""


class TfclassifyError(Exception):
    """Base class: the CLI prints `str(err)` and exits with status 2."""


class OptionsError(TfclassifyError, ValueError):
    """An option has a bad value or conflicts with another option."""


class InputError(TfclassifyError):
    """The input (folder, manifest, model) is missing or unusable."""


class OutputError(TfclassifyError):
    """The output location cannot be written safely (e.g. non-empty, not ours)."""


class DataError(TfclassifyError):
    """Stored data does not match what its metadata promises (bad shard, checksum)."""

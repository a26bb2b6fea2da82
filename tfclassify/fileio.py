"""Atomic file writes: a reader never sees a half-written file under a final name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path`; renamed onto `path` only on success.

    The temporary lives in the same directory so `os.replace` is a same-filesystem
    rename (atomic on POSIX). On error the temporary is removed and `path` is untouched.
    """
    directory, base = os.path.split(os.path.abspath(path))
    with _naming(path):
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + base + ".", dir=directory)
    os.close(fd)
    try:
        yield tmp
        with _naming(path):
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """An OSError names `path`, the file the user asked for, not our temporary."""
    try:
        yield
    except OSError as e:
        raise type(e)(e.errno, e.strerror, path) from None


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: str, text: str) -> None:
    """UTF-8; a file name that is not UTF-8 (its bytes held as surrogates, as
    os.listdir gives them) is written as its original bytes, so a report still
    names the file as it is on disk."""
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))

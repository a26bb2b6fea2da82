"""Atomic file writes: a reader never sees a half-written file under a final name."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator

TMP_PREFIX = ".tmp-"
# What `atomic_path` names a temporary: mkstemp adds "." + 8 of [a-z0-9_] to the prefix.
_TMP_NAME = re.compile(re.escape(TMP_PREFIX) + r"(?P<target>.+)\.[a-z0-9_]{8}")


def _umask_now() -> int | None:
    """The process umask as Linux reports it, without changing it; None elsewhere."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_by_setting() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


# /proc gives the umask in effect now; os.umask reads it only by setting it, for the
# whole process (a race with threads creating files), so only where /proc has none,
# and once, at import. Unknown later on: private files, as mkstemp makes them.
_FALLBACK_UMASK = _umask_by_setting() if _umask_now() is None else 0o077


def new_file_mode() -> int:
    """The mode `open()` gives a new file: 0o666 less the umask (read, never set)."""
    mask = _umask_now()
    return 0o666 & ~(_FALLBACK_UMASK if mask is None else mask)


def temporary_target(name: str) -> str | None:
    """The final name whose temporary `name` is, when `name` has exactly the form
    `atomic_path` gives temporaries; else None."""
    m = _TMP_NAME.fullmatch(name)
    return m["target"] if m else None


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path`; renamed onto `path` only on success.

    The temporary lives in the same directory so `os.replace` is a same-filesystem
    rename (atomic on POSIX), and has the mode a new file gets (`new_file_mode`).
    On error the temporary is removed and `path` is untouched; an OSError that names
    no file (a write or sync of the temporary: a full disk) or the temporary names
    `path`, the file the user asked for.
    """
    directory, base = os.path.split(os.path.abspath(path))
    with naming(path):
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + base + ".", dir=directory)
    try:
        try:
            os.fchmod(fd, new_file_mode())  # mkstemp makes it private to the owner
        finally:
            os.close(fd)
        with naming(path, only=(None, tmp)):
            yield tmp
        with naming(path):
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def is_remote(path: str) -> bool:
    """Whether `path` is a URL (gs://, s3://, ram://...): read and written through
    `tf.io.gfile`, which cannot fsync and, on object stores, renames by copying."""
    return "://" in path


@contextlib.contextmanager
def atomic_remote_path(path: str) -> Iterator[str]:
    """`atomic_path` for a URL: a temporary beside `path`, named as `atomic_path`
    names one, renamed onto `path` (through `tf.io.gfile`) only on success."""
    import tensorflow as tf

    directory, base = path.rsplit("/", 1)
    # 8 characters of [a-z0-9_], as mkstemp's: `temporary_target` knows both.
    tmp = f"{directory}/{TMP_PREFIX}{base}.{secrets.token_hex(4)}"
    try:
        yield tmp
        tf.io.gfile.rename(tmp, path, overwrite=True)
    except BaseException:
        with contextlib.suppress(tf.errors.NotFoundError):
            tf.io.gfile.remove(tmp)
        raise


@contextlib.contextmanager
def naming(path: str, only: tuple[str | None, ...] | None = None) -> Iterator[None]:
    """An OSError names `path`, the file the user asked for, not our temporary.

    Args:
      path: the name to give.
      only: rename only errors naming one of these (None: naming no file); an error
        about another file (an input read while writing, say) keeps its name.
    """
    try:
        yield
    except OSError as e:
        if e.errno is None or (only is not None and e.filename not in only):
            raise
        # OSError() gives the subclass its errno calls for (IsADirectoryError, ...).
        raise OSError(e.errno, e.strerror, path).with_traceback(e.__traceback__) from None


def makedirs(path: str) -> None:
    """`path` and the folders above it, through `tf.io.gfile` for a URL."""
    if is_remote(path):
        import tensorflow as tf

        tf.io.gfile.makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def atomic_write_bytes(path: str, data: bytes) -> None:
    if is_remote(path):
        import tensorflow as tf

        with atomic_remote_path(path) as tmp, tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
        return
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def encode_text(text: str) -> bytes:
    """UTF-8; a file name that is not UTF-8 (its bytes held as surrogates, as
    os.listdir gives them) is written as its original bytes, so a report still
    names the file as it is on disk."""
    return text.encode("utf-8", "surrogateescape")


def atomic_write_text(path: str, text: str) -> None:
    """`text` as `encode_text` gives it."""
    atomic_write_bytes(path, encode_text(text))

"""Pass 1 of a conversion: read and inspect every input before any shard is planned.

Shards are planned by their records' exact serialized bytes, so each file is read,
checked, hashed and serialized here first. Plain JPEGs are finished on the scanning
thread and Pillow work goes to a thread pool: Pillow releases the GIL, and threads avoid
importing TF once per process. Each result is appended to a journal so an interrupted
scan resumes where it stopped. With validate=full, JPEG decodes run meanwhile on
tf.data's threads (`decode_check`), and `Pending` keeps what they have yet to confirm
until the write pass asks, before it commits any shard.

What both passes use (`Job`, `ordered`, `make_record`, `cache_path`) lives
here, not in `converter`, so the dependency runs one way: `converter` drives the scan, and
the scan writes only in the work dir it is handed, knowing nothing of how the output
directory is made safe, nor of shards, reports or dataset.json.
"""

from __future__ import annotations

import array
import collections
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, TypeVar, overload

import numpy as np

from tfclassify.conversion import decode_check, images, sources
from tfclassify.core import fileio, schema
from tfclassify.core.options import ConvertOptions
from tfclassify.core.progress import Progress

_JOURNAL = "scan.jsonl"
# Serialized records kept in memory between the scan and the write pass. A corpus (or the
# first part of one) up to this size is read from disk once; the rest is read again
# when its shard is written.
_HOLD_BYTES = 512 * 2**20
# How far (files) the scan may run ahead of validate=full's decode checks.
_CHECK_LEAD = 4096

T = TypeVar("T")
R = TypeVar("R")


class Scanned(NamedTuple):
    """Pass-1 outcome for listing entry `key`, one journal line. A named tuple: one is
    made per file, several times over (scan, journal, write), and a frozen
    dataclass of twelve fields takes several times as long to make."""

    key: int
    skip: str = ""
    format: str = ""
    height: int = 0
    width: int = 0
    channels: int = 0
    size: int = 0  # bytes this record takes in a shard, TFRecord framing included
    converted: str = ""
    encoded_size: int = 0  # bytes of image/encoded, checked again when writing
    sha256: str = ""  # of image/encoded: hashed here, in parallel, not in the serial write
    src_size: int = 0
    src_mtime_ns: int = 0


# One file's journal line and serialized record (None when skipped).
_Scan = tuple[Scanned, bytes | None]
_NUMBERS = ("height", "width", "channels", "size", "encoded_size", "src_size", "src_mtime_ns")
_numbers_of = operator.attrgetter(*_NUMBERS)
_SIZE = _NUMBERS.index("size")
_SHA256_BYTES = 32


class Scans:
    """Every scanned file's `Scanned`, by key (0, 1, ...), held as columns.

    A conversion of millions of files keeps the scan of each until its shard is
    written: as columns (its numbers in one array, the sha256 as 32 bytes, the few
    format and conversion texts as ids, a skip reason only where there is one) that
    is about 100 bytes a file, where a `Scanned` takes several hundred. Reading
    `scans[key]` makes one.
    """

    def __init__(self) -> None:
        self._numbers = array.array("q")  # len(_NUMBERS) a file
        self._sha256 = bytearray()  # _SHA256_BYTES a file
        self._hashed = bytearray()  # 1: the file has a sha256 (0: it was skipped)
        self._texts: list[str] = [""]  # format and converted texts, by id
        self._text_ids: dict[str, int] = {"": 0}
        self._format = array.array("I")
        self._converted = array.array("I")
        self._skips: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._format)

    def append(self, s: Scanned) -> None:
        if s.key != len(self):
            raise ValueError(f"scan of key {s.key} appended as key {len(self)}")
        numbers, digest = self._checked(s)  # before anything is appended
        self._numbers += numbers
        self._sha256 += digest
        self._hashed.append(bool(s.sha256))
        self._format.append(self._text_id(s.format))
        self._converted.append(self._text_id(s.converted))
        if s.skip:
            self._skips[s.key] = s.skip

    def __setitem__(self, key: int, s: Scanned) -> None:
        if s.key != key or not 0 <= key < len(self):
            raise IndexError(f"scan of key {s.key} stored at key {key} of {len(self)}")
        numbers, digest = self._checked(s)
        self._numbers[key * len(_NUMBERS) : (key + 1) * len(_NUMBERS)] = numbers
        self._sha256[key * _SHA256_BYTES : (key + 1) * _SHA256_BYTES] = digest
        self._hashed[key] = bool(s.sha256)
        self._format[key] = self._text_id(s.format)
        self._converted[key] = self._text_id(s.converted)
        if s.skip:
            self._skips[key] = s.skip
        else:
            self._skips.pop(key, None)

    @staticmethod
    def _checked(s: Scanned) -> tuple[array.array, bytes]:
        """The numbers and sha256 of `s` as stored; raises if they cannot be (a damaged
        journal line: an int out of range, a number that is not an int, a bad hash)."""
        numbers = array.array("q", _numbers_of(s))
        digest = bytes.fromhex(s.sha256) if s.sha256 else bytes(_SHA256_BYTES)
        if len(digest) != _SHA256_BYTES or (s.sha256 and digest.hex() != s.sha256):
            raise ValueError(f"not a sha256 in lowercase hex: {s.sha256!r}")
        return numbers, digest

    def _text_id(self, text: str) -> int:
        if text not in self._text_ids:
            self._text_ids[text] = len(self._texts)
            self._texts.append(text)
        return self._text_ids[text]

    def __getitem__(self, key: int) -> Scanned:
        if not 0 <= key < len(self):
            raise IndexError(key)
        digest = self._sha256[key * _SHA256_BYTES : (key + 1) * _SHA256_BYTES]
        height, width, channels, size, encoded_size, src_size, src_mtime_ns = self._numbers[
            key * len(_NUMBERS) : (key + 1) * len(_NUMBERS)
        ]
        return Scanned(
            key,
            skip=self._skips.get(key, ""),
            format=self._texts[self._format[key]],
            height=height,
            width=width,
            channels=channels,
            size=size,
            converted=self._texts[self._converted[key]],
            encoded_size=encoded_size,
            sha256=digest.hex() if self._hashed[key] else "",
            src_size=src_size,
            src_mtime_ns=src_mtime_ns,
        )

    def rows(self, start: int, stop: int) -> Iterator[Scanned]:
        return (self[key] for key in range(start, stop))

    def skipped(self) -> list[tuple[int, str]]:
        """(key, reason) of every skipped file, in key order."""
        return sorted(self._skips.items())

    def accepted(self) -> np.ndarray:
        """The keys of the files not skipped, ascending (int64)."""
        keep = np.ones(len(self), bool)
        keep[np.fromiter(self._skips, np.int64, len(self._skips))] = False
        return np.flatnonzero(keep).astype(np.int64)

    def sizes(self) -> np.ndarray:
        """Every file's `size`, in key order."""
        return np.frombuffer(self._numbers, np.int64)[_SIZE :: len(_NUMBERS)].copy()


def cache_path(work: str, key: int) -> str:
    return os.path.join(work, "cache", f"{key}.bin")


def make_record(
    source: sources.Source, label: int, encoded: bytes, s: Scanned | images.Inspected, sha: str
) -> schema.Record:
    return schema.Record(
        encoded=encoded,
        format=s.format or "",
        label=label,
        text=source.label,
        filename=source.relpath,
        height=s.height,
        width=s.width,
        channels=s.channels,
        sha256=sha,
    )


_FIRST_READ = 1 << 18
_TF_REJECTED = "TF's JPEG decoder rejects it"


def _scan_one(
    key: int,
    source: sources.Source,
    label: int,
    options: ConvertOptions,
    work: str | None,
    quick_cfg: images.ImageConfig | None = None,
    reencode: str = "",
) -> _Scan | Callable[[], _Scan]:
    """The journal line for one file and its serialized record (None if skipped);
    or, when the verdict needs Pillow work (decoding, converting), a function that
    does it on the bytes already read, for a worker thread (see `ordered`).

    `work`: where a converted image's bytes are cached for the write pass; None
    when the caller keeps the record itself (a Beam worker).

    `quick_cfg`: what the Pillow-free verdict checks (default: `options`). With
    validate=full, validate="none": a plain JPEG's decode is left to `decode_check`,
    and the caller must confirm the verdict. `reencode`: see `images.inspect`.
    """
    if source.problem:
        return Scanned(key, skip=source.problem), None
    cap = options.max_file_bytes
    try:
        with open(source.path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size > cap:  # it may be a multi-GB file: only its first bytes are read
                refused = images.refuse_by_head(f.read(images.HEAD_BYTES))
                skip = refused.skip_reason if refused else _too_large(st.st_size, cap)
                return Scanned(key, skip=skip or ""), None
            # One read takes all of a typical image; the rest only if its first bytes
            # are an image's (a stray multi-GB video is not read whole), and no more
            # than one byte over the cap (a file may grow after its fstat). The first
            # read asks for no more than the file holds (and a byte to see it grew; a
            # head at least, for a size the file system does not know): a buffer of
            # _FIRST_READ cut down to a small file's size leaves holes in the heap
            # around the records held for the write pass.
            first = min(_FIRST_READ, max(st.st_size + 1, images.HEAD_BYTES))
            data = f.read(first)
            refused = images.refuse_by_head(data[: images.HEAD_BYTES])
            if refused is None and len(data) == first:
                data += f.read(max(0, cap + 1 - len(data)))
    except FileNotFoundError:
        return Scanned(key, skip=f"{images.MISSING}: file not found"), None
    except OSError as e:
        return Scanned(key, skip=f"{images.UNREADABLE}: {e.strerror or e}"), None
    if len(data) > cap:
        return Scanned(key, skip=_too_large(len(data), cap)), None
    result = refused
    if result is None and not reencode:
        result = images.inspect_without_pillow(data, quick_cfg or options)
    if result is None:
        return lambda: _scanned(
            key, source, label, st, data, images.inspect(data, options, reencode), work
        )
    return _scanned(key, source, label, st, data, result, work)


def _too_large(size: int, cap: int) -> str:
    return f"{images.TOO_LARGE}: {size} bytes > max_file_mb ({cap} bytes)"


def _done(scan: R | Callable[[], R]) -> R:
    return scan() if callable(scan) else scan


def _scanned(
    key: int,
    source: sources.Source,
    label: int,
    st: os.stat_result,
    data: bytes,
    result: images.Inspected,
    work: str | None,
) -> _Scan:
    if not result.ok:
        return Scanned(key, skip=result.skip_reason or ""), None
    if result.data is not None and work is not None:
        os.makedirs(os.path.dirname(cache_path(work, key)), exist_ok=True)
        # No fsync: a cache file lost to a power cut fails the encoded_size check
        # on resume instead of going into a shard.
        with fileio.atomic_path(cache_path(work, key)) as tmp, open(tmp, "wb") as f:
            f.write(result.data)
    encoded = result.data if result.data is not None else data
    sha = hashlib.sha256(encoded).hexdigest()
    # The record exactly as its shard will hold it: its size plans the shards, and the
    # bytes may be held for the write pass.
    record = schema.serialize(make_record(source, label, encoded, result, sha))
    scanned = Scanned(
        key,
        format=result.format or "",
        height=result.height,
        width=result.width,
        channels=result.channels,
        size=len(record) + schema.TFRECORD_OVERHEAD,
        converted=result.converted,
        encoded_size=len(encoded),
        sha256=sha,
        src_size=st.st_size,
        src_mtime_ns=st.st_mtime_ns,
    )
    return scanned, record


def _read_journal(path: str, scans: Scans) -> int:
    """Appends the valid prefix of the scan journal to `scans` (a line cut by a kill
    ends it); returns its length in bytes."""
    valid = 0
    if not os.path.exists(path):
        return valid
    with open(path, "rb") as f:
        for line in f:
            try:
                s = Scanned(**json.loads(line))
            except (ValueError, TypeError):  # JSONDecodeError and UnicodeDecodeError too
                break
            if s.key != len(scans) or not line.endswith(b"\n"):
                break
            try:
                scans.append(s)
            except (ValueError, TypeError, OverflowError):  # a field of the wrong form
                break
            valid += len(line)
    return valid


def ordered(
    items: Iterable[T], first: Callable[[T], R | Callable[[], R]], workers: int
) -> Iterator[R]:
    """`first(item)` for each item on this thread, in order: its result, or a function
    finishing the work, run on one of `workers` threads (inline for one worker:
    easier to debug). Results come in input order; at most 4 functions per worker
    wait at a time, so memory stays bounded however long the input is.
    """
    if workers <= 1:
        yield from (_done(first(item)) for item in items)
        return
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="tfclassify") as pool:
        window: collections.deque[concurrent.futures.Future[R] | R] = collections.deque()
        waiting = 0
        for item in items:
            work = first(item)
            if callable(work):
                window.append(pool.submit(work))
                waiting += 1
            else:
                window.append(work)
            while window and (
                not isinstance(window[0], concurrent.futures.Future)
                or window[0].done()
                or waiting >= 4 * workers
            ):
                head = window.popleft()
                if isinstance(head, concurrent.futures.Future):
                    waiting -= 1
                    head = head.result()
                yield head
        for head in window:
            yield head.result() if isinstance(head, concurrent.futures.Future) else head


class _CheckedPaths(Sequence[str]):
    """The paths of `keys` for `DecodeChecks`, each made when it is read: a list of
    them would hold a string per file for the whole scan. A source with a listing
    problem (a named pipe, say) is never opened: no path."""

    def __init__(self, listing: sources.Listing, keys: range):
        self._listing = listing
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        key = self._keys[i]
        return "" if self._listing.problem(key) else self._listing.path(key)


class Replan(Exception):
    """A decode check changed a verdict: the shard plan must be made again."""


class _Journal:
    """The scan journal: one line per file, in listing order, appended and flushed.

    Flushed, not fsynced: a killed process loses nothing flushed, and lines lost to a
    power cut are simply scanned again.
    """

    def __init__(self, path: str, scans: Scans):
        """Reads the journal's lines into `scans`."""
        self.path = path
        valid = _read_journal(path, scans)
        # Drop a partial last line left by a kill (or a full disk) before appending.
        with fileio.naming(path), open(path, "ab") as f:
            f.truncate(valid)

    def append(self, lines: Iterable[Scanned]) -> None:
        # A failed write names no file: a full disk must say which.
        with fileio.naming(self.path), open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(s._asdict()) + "\n" for s in lines))


@dataclasses.dataclass
class Pending:
    """Scan results of a validate=full run whose JPEG decode checks may still run.

    Lines are journaled as their checks come in (a resumed run never trusts an
    unchecked verdict, and loses little of a long scan). A file TF did not decode
    gets Pillow's full check, the reference verdict, before its line is written.
    Records are planned and written as if the checks pass; `confirm` runs before
    the first shard is committed and raises Replan if a verdict changed after the
    plan was made.
    """

    checks: decode_check.DecodeChecks
    first: int  # listing key of the checks' position 0
    rescan: Callable[[int], _Scan]
    journal: _Journal
    jpegs: collections.deque[int] = dataclasses.field(default_factory=collections.deque)
    done: bool = False
    journaled: int = dataclasses.field(init=False)  # keys below this are in the journal

    def __post_init__(self) -> None:
        self.journaled = self.first  # the journal's lines are the scan's first keys

    def settle(self, scanned: Scans, held: dict[int, bytes], wait: bool = False) -> bool:
        """Journals every line whose check is in; True if a verdict changed.

        The scan may run at most _CHECK_LEAD files ahead of the checks: both read
        each file, and the second read should find it still in the page cache.
        """
        lead = len(scanned) - self.first - _CHECK_LEAD
        upto = min(len(scanned), self.first + self.checks.progress(wait, at_least=lead))
        changed = False
        while self.jpegs and self.jpegs[0] < upto:
            key = self.jpegs.popleft()
            if not self.checks.decoded(key - self.first):
                result, record = self.rescan(key)
                if result != scanned[key]:
                    changed = True
                    scanned[key] = result
                    if record is None:
                        held.pop(key, None)
                    elif key in held:
                        held[key] = record
        if upto > self.journaled:
            self.journal.append(scanned.rows(self.journaled, upto))
            self.journaled = upto
        return changed

    def confirm(self, scanned: Scans, held: dict[int, bytes]) -> None:
        """Waits for the remaining checks; raises Replan if a verdict changed."""
        if not self.done:
            self.done = True
            if self.settle(scanned, held, wait=True):
                raise Replan


@dataclasses.dataclass(frozen=True)
class Job:
    """What the steps of one conversion share."""

    listing: sources.Listing
    options: ConvertOptions
    work: str  # output_dir/.tfclassify-work
    # Serialized records kept from the scan for the write pass (see _HOLD_BYTES).
    held: dict[int, bytes] = dataclasses.field(default_factory=dict)

    def label(self, key: int) -> int:
        return self.listing.label_id(key)


def _quick_config(options: ConvertOptions) -> images.ImageConfig:
    """What the scan checks without Pillow: with validate=full, a plain JPEG's decode
    is left to `decode_check`, whose verdict the caller must then confirm."""
    return dataclasses.replace(options, validate="none") if options.validate == "full" else options


def _needs_decode_check(result: Scanned) -> bool:
    """A JPEG stored as it is: with validate=full, TF must be seen to decode it."""
    return result.format == "jpeg" and not result.converted


def _rescan(listing: sources.Listing, options: ConvertOptions, work: str | None, key: int) -> _Scan:
    """TF could not decode the file: Pillow decides, and a JPEG Pillow reads is stored
    re-encoded, never as the bytes TF's reader would fail on."""
    source = listing.source(key)
    return _done(
        _scan_one(key, source, listing.label_id(key), options, work, reencode=_TF_REJECTED)
    )


def _decode_checks(
    listing: sources.Listing, options: ConvertOptions, keys: range
) -> decode_check.DecodeChecks:
    return decode_check.DecodeChecks(
        _CheckedPaths(listing, keys),
        options.max_pixels,
        options.num_workers,
        options.max_file_bytes,
    )


def scan_keys(listing: sources.Listing, options: ConvertOptions, keys: range) -> list[_Scan]:
    """Pass 1 over the files `keys` at once, keeping nothing on disk: what a Beam
    worker scans for one element. Each file gets the verdict and the record `scan`
    gives it (validate=full's decode checks included), for the caller to keep.
    """
    quick_cfg = _quick_config(options)

    def one(key: int) -> _Scan | Callable[[], _Scan]:
        return _scan_one(key, listing.source(key), listing.label_id(key), options, None, quick_cfg)

    if options.validate != "full":
        return list(ordered(keys, one, options.workers))
    checks = _decode_checks(listing, options, keys)  # decoding while the scan runs
    try:
        results = list(ordered(keys, one, options.workers))
        checks.progress(wait=True)
    finally:
        checks.close()
    for i, (result, _) in enumerate(results):
        if _needs_decode_check(result) and not checks.decoded(i):
            results[i] = _rescan(listing, options, None, keys[i])
    return results


def scan(job: Job) -> tuple[Scans, Pending | None]:
    """Pass 1 over the files not in the journal yet; appends to the journal.

    Serialized records are kept in `held` while they fit in _HOLD_BYTES, so the write
    pass need not read (or serialize) those again: a small corpus is read once.
    With validate=full the decodes of plain JPEGs run on tf.data's threads while
    this goes on; the returned `Pending` holds what they have yet to confirm.
    """
    listing, options, work = job.listing, job.options, job.work
    scanned = Scans()
    journal = _Journal(os.path.join(work, _JOURNAL), scanned)
    todo = range(len(scanned), len(listing))
    pending = None
    quick_cfg = _quick_config(options)
    if options.validate == "full":
        checks = _decode_checks(listing, options, todo)
        rescan = functools.partial(_rescan, listing, options, work)
        pending = Pending(checks, len(scanned), rescan, journal)
    progress = Progress(
        "scan", len(listing), quiet=options.quiet, initial=len(scanned), show_bytes=True
    )

    def one(key: int) -> _Scan | Callable[[], _Scan]:
        return _scan_one(key, listing.source(key), job.label(key), options, work, quick_cfg)

    try:
        return _scan_files(
            todo, one, scanned, job.held, journal, pending, progress, options.workers
        )
    except BaseException:
        if pending is not None:
            pending.checks.close()
        raise


def _scan_files(
    todo: range,
    one: Callable[[int], _Scan | Callable[[], _Scan]],
    scanned: Scans,
    held: dict[int, bytes],
    journal: _Journal,
    pending: Pending | None,
    progress: Progress,
    workers: int,
) -> tuple[Scans, Pending | None]:
    budget = _HOLD_BYTES
    # Plain JPEGs are finished on this thread: a little Python each, where a second
    # Python thread would only contend for the GIL. The rest (Pillow decodes and
    # conversions, which release the GIL) go to the worker threads.
    results: list[Scanned] = []
    for i, (result, record) in enumerate(ordered(todo, one, workers), start=1):
        results.append(result)
        if pending is not None and _needs_decode_check(result):
            # A JPEG kept as-is: unless Pillow already decoded it on the slow path,
            # only its header has been read, and its decode is being checked.
            pending.jpegs.append(result.key)
        if record is not None and len(record) <= budget:
            held[result.key] = record
            budget -= len(record)
        if len(results) >= 256 or i == len(todo):
            for s in results:
                scanned.append(s)
            if pending is None:
                journal.append(results)
            else:
                pending.settle(scanned, held)  # not planned yet: a change is free
            progress.update(len(results), sum(s.src_size for s in results))
            results = []
    progress.close()
    return scanned, pending

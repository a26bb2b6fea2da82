"""Pass 1 of a conversion: read and inspect every input before any shard is planned.

Shards are planned by their records' exact serialized bytes, so each file is read,
checked, hashed and serialized here first. Plain JPEGs are finished on the scanning
thread and Pillow work goes to a thread pool: Pillow releases the GIL, and threads avoid
importing TF once per process. Each result is appended to a journal so an interrupted
scan resumes where it stopped. With validate=full, JPEG decodes run meanwhile on
tf.data's threads (`decode_check`), and `Pending` keeps what they have yet to confirm
until the write pass asks, before it commits any shard.

What both passes use (`Job`, `Progress`, `ordered`, `make_record`, `cache_path`) lives
here, not in `converter`, so the dependency runs one way: `converter` drives the scan, and
the scan writes only in the work dir it is handed, knowing nothing of how the output
directory is made safe, nor of shards, reports or dataset.json.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from tfclassify.conversion import decode_check, images, sources
from tfclassify.core import fileio, schema
from tfclassify.core.options import ConvertOptions

_JOURNAL = "scan.jsonl"
# Serialized records kept in memory between the scan and the write pass. A corpus (or the
# first part of one) up to this size is read from disk once; the rest is read again
# when its shard is written.
_HOLD_BYTES = 512 * 2**20
# How far (files) the scan may run ahead of validate=full's decode checks.
_CHECK_LEAD = 4096

T = TypeVar("T")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class Scanned:
    """Pass-1 outcome for listing entry `key`, one journal line."""

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
    work: str,
    quick_cfg: images.ImageConfig | None = None,
    reencode: str = "",
) -> _Scan | Callable[[], _Scan]:
    """The journal line for one file and its serialized record (None if skipped);
    or, when the verdict needs Pillow work (decoding, converting), a function that
    does it on the bytes already read, for a worker thread (see `ordered`).

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
            # than one byte over the cap (a file may grow after its fstat).
            data = f.read(_FIRST_READ)
            refused = images.refuse_by_head(data[: images.HEAD_BYTES])
            if refused is None and len(data) == _FIRST_READ:
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
    work: str,
) -> _Scan:
    if not result.ok:
        return Scanned(key, skip=result.skip_reason or ""), None
    if result.data is not None:
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


def _read_journal(path: str) -> list[Scanned]:
    """The valid prefix of the scan journal; a line cut by a kill ends it."""
    done: list[Scanned] = []
    if not os.path.exists(path):
        return done
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                s = Scanned(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                break
            if s.key != len(done) or not line.endswith("\n"):
                break
            done.append(s)
    return done


class Progress:
    """tqdm bar with images/s and MB/s (tqdm is TFDS's choice too); silent when quiet,
    and where it cannot redraw itself in place (stderr not a terminal: a pipe, a log
    file), which would keep every redraw, the last one twice."""

    def __init__(self, total: int, desc: str, quiet: bool):
        from tqdm.auto import tqdm

        # disable=None: tqdm's own "off unless a terminal" (a notebook widget stays on).
        self._bar = tqdm(
            total=total, desc=desc, unit="img", disable=True if quiet else None, mininterval=0.5
        )
        self._start = time.perf_counter()
        self._bytes = 0

    def update(self, n: int, nbytes: int) -> None:
        self._bytes += nbytes
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self._bar.set_postfix_str(f"{self._bytes / elapsed / 1e6:.1f} MB/s", refresh=False)
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


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


class Replan(Exception):
    """A decode check changed a verdict: the shard plan must be made again."""


class _Journal:
    """The scan journal: one line per file, in listing order, appended and flushed.

    Flushed, not fsynced: a killed process loses nothing flushed, and lines lost to a
    power cut are simply scanned again.
    """

    def __init__(self, path: str):
        self.path = path
        self.lines = _read_journal(path)
        # Drop a partial last line left by a kill (or a full disk) before appending.
        with fileio.naming(path), open(path, "ab") as f:
            f.truncate(sum(len((json.dumps(vars(s)) + "\n").encode()) for s in self.lines))

    def append(self, lines: Sequence[Scanned]) -> None:
        # A failed write names no file: a full disk must say which.
        with fileio.naming(self.path), open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(vars(s)) + "\n" for s in lines))


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

    def settle(self, scanned: list[Scanned], held: dict[int, bytes], wait: bool = False) -> bool:
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
            self.journal.append(scanned[self.journaled : upto])
            self.journaled = upto
        return changed

    def confirm(self, scanned: list[Scanned], held: dict[int, bytes]) -> None:
        """Waits for the remaining checks; raises Replan if a verdict changed."""
        if not self.done:
            self.done = True
            if self.settle(scanned, held, wait=True):
                raise Replan


@dataclasses.dataclass(frozen=True)
class Job:
    """What the steps of one conversion share."""

    listing: sources.Listing
    label_ids: dict[str, int]
    options: ConvertOptions
    work: str  # output_dir/.tfclassify-work
    # Serialized records kept from the scan for the write pass (see _HOLD_BYTES).
    held: dict[int, bytes] = dataclasses.field(default_factory=dict)

    def label(self, key: int) -> int:
        return self.label_ids.get(self.listing.sources[key].label, -1)


def scan(job: Job) -> tuple[list[Scanned], Pending | None]:
    """Pass 1 over the files not in the journal yet; appends to the journal.

    Serialized records are kept in `held` while they fit in _HOLD_BYTES, so the write
    pass need not read (or serialize) those again: a small corpus is read once.
    With validate=full the decodes of plain JPEGs run on tf.data's threads while
    this goes on; the returned `Pending` holds what they have yet to confirm.
    """
    listing, options, work = job.listing, job.options, job.work
    journal = _Journal(os.path.join(work, _JOURNAL))
    scanned = list(journal.lines)
    todo = list(range(len(scanned), len(listing.sources)))
    pending = None
    quick_cfg: images.ImageConfig = options
    if options.validate == "full":
        quick_cfg = dataclasses.replace(options, validate="none")

        def rescan(key: int) -> _Scan:
            # TF could not decode it: Pillow decides, and a JPEG Pillow reads is stored
            # re-encoded, never as the bytes TF's reader would fail on.
            return _done(
                _scan_one(
                    key, listing.sources[key], job.label(key), options, work, reencode=_TF_REJECTED
                )
            )

        # A source with a listing problem (a named pipe, say) is never opened: no path.
        paths = ["" if listing.sources[k].problem else listing.sources[k].path for k in todo]
        checks = decode_check.DecodeChecks(
            paths, options.max_pixels, options.num_workers, options.max_file_bytes
        )
        pending = Pending(checks, len(scanned), rescan, journal)
    progress = Progress(len(listing.sources), "scan", options.quiet)
    progress.update(len(scanned), 0)

    def one(key: int) -> _Scan | Callable[[], _Scan]:
        return _scan_one(key, listing.sources[key], job.label(key), options, work, quick_cfg)

    try:
        return _scan_files(
            todo, one, scanned, job.held, journal, pending, progress, options.workers
        )
    except BaseException:
        if pending is not None:
            pending.checks.close()
        raise


def _scan_files(
    todo: list[int],
    one: Callable[[int], _Scan | Callable[[], _Scan]],
    scanned: list[Scanned],
    held: dict[int, bytes],
    journal: _Journal,
    pending: Pending | None,
    progress: Progress,
    workers: int,
) -> tuple[list[Scanned], Pending | None]:
    budget = _HOLD_BYTES
    # Plain JPEGs are finished on this thread: a little Python each, where a second
    # Python thread would only contend for the GIL. The rest (Pillow decodes and
    # conversions, which release the GIL) go to the worker threads.
    results: list[Scanned] = []
    for i, (result, record) in enumerate(ordered(todo, one, workers), start=1):
        results.append(result)
        if pending is not None and result.format == "jpeg" and not result.converted:
            # A JPEG kept as-is: unless Pillow already decoded it on the slow path,
            # only its header has been read, and its decode is being checked.
            pending.jpegs.append(result.key)
        if record is not None and len(record) <= budget:
            held[result.key] = record
            budget -= len(record)
        if len(results) >= 256 or i == len(todo):
            scanned.extend(results)
            if pending is None:
                journal.append(results)
            else:
                pending.settle(scanned, held)  # not planned yet: a change is free
            progress.update(len(results), sum(s.src_size for s in results))
            results = []
    progress.close()
    return scanned, pending

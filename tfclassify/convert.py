"""Convert a corpus of image files into TFRecord shards: `tfclassify.convert(options)`.

Two passes, so shards can be planned by their exact serialized bytes:
  1. scan: read and inspect every input (plain JPEGs on this thread, Pillow work on
     a thread pool: Pillow releases the GIL, and threads avoid importing TF once
     per process), appending each result to a journal so an interrupted scan
     resumes where it stopped. With validate=full, JPEG decodes run meanwhile on
     tf.data's threads (`decode_check`), confirmed before any shard is committed;
  2. write: the pure plan (`plan.py`) assigns records to shards, and each shard is
     written atomically in plan order, so the bytes never depend on worker count.
Everything lives in `output_dir/.tfclassify-work/` until `dataset.json` is written
last; the work dir is removed after that.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from absl import logging

from tfclassify import (
    _callable,
    decode_check,
    fileio,
    images,
    metadata,
    plan,
    schema,
    shards,
    sources,
)
from tfclassify.errors import DataError, InputError, OptionsError, OutputError
from tfclassify.options import ConvertOptions

WORK_DIR = ".tfclassify-work"
_STATE = "state.json"
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


def _image_config(options: ConvertOptions) -> images.ImageConfig:
    return images.ImageConfig(
        validate=options.validate,
        image_format=options.image_format,
        resize_shorter_side=options.resize_shorter_side,
        max_side=options.max_side,
        jpeg_quality=options.jpeg_quality,
        max_pixels=options.max_pixels,
    )


def _cache_path(work: str, key: int) -> str:
    return os.path.join(work, "cache", f"{key}.bin")


def _record(
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


def _scan_one(
    key: int,
    source: sources.Source,
    label: int,
    cfg: images.ImageConfig,
    work: str,
    quick_cfg: images.ImageConfig | None = None,
) -> _Scan | Callable[[], _Scan]:
    """The journal line for one file and its serialized record (None if skipped);
    or, when the verdict needs Pillow work (decoding, converting), a function that
    does it on the bytes already read, for a worker thread (see `_ordered`).

    `quick_cfg`: what the Pillow-free verdict checks (default: `cfg`). With
    validate=full, validate="none": a plain JPEG's decode is left to `decode_check`,
    and the caller must confirm the verdict.
    """
    if source.problem:
        return Scanned(key, skip=source.problem), None
    try:
        with open(source.path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
    except FileNotFoundError:
        return Scanned(key, skip=f"{images.MISSING}: file not found"), None
    except OSError as e:
        return Scanned(key, skip=f"{images.UNREADABLE}: {e.strerror or e}"), None
    result = images.inspect_without_pillow(data, quick_cfg or cfg)
    if result is None:
        return lambda: _scanned(key, source, label, st, data, images.inspect(data, cfg), work)
    return _scanned(key, source, label, st, data, result, work)


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
        os.makedirs(os.path.dirname(_cache_path(work, key)), exist_ok=True)
        # No fsync: a cache file lost to a power cut fails the encoded_size check
        # on resume instead of going into a shard.
        with fileio.atomic_path(_cache_path(work, key)) as tmp, open(tmp, "wb") as f:
            f.write(result.data)
    encoded = result.data if result.data is not None else data
    sha = hashlib.sha256(encoded).hexdigest()
    # The record exactly as its shard will hold it: its size plans the shards, and the
    # bytes may be held for the write pass.
    record = schema.serialize(_record(source, label, encoded, result, sha))
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


class _Progress:
    """tqdm bar with images/s and MB/s; silent when quiet (tqdm is TFDS's choice too)."""

    def __init__(self, total: int, desc: str, quiet: bool):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=desc, unit="img", disable=quiet, mininterval=0.5)
        self._start = time.perf_counter()
        self._bytes = 0

    def update(self, n: int, nbytes: int) -> None:
        self._bytes += nbytes
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self._bar.set_postfix_str(f"{self._bytes / elapsed / 1e6:.1f} MB/s", refresh=False)
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


def _ordered(
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


class _Replan(Exception):
    """A decode check changed a verdict: the shard plan must be made again."""


class _Journal:
    """The scan journal: one line per file, in listing order, appended and flushed.

    Flushed, not fsynced: a killed process loses nothing flushed, and lines lost to a
    power cut are simply scanned again.
    """

    def __init__(self, path: str):
        self.path = path
        self.lines = _read_journal(path)
        # Drop a partial last line left by a kill before appending after it.
        with open(path, "ab") as f:
            f.truncate(sum(len((json.dumps(vars(s)) + "\n").encode()) for s in self.lines))

    def append(self, lines: Sequence[Scanned]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(vars(s)) + "\n" for s in lines))


@dataclasses.dataclass
class _Pending:
    """Scan results of a validate=full run whose JPEG decode checks may still run.

    Lines are journaled as their checks come in (a resumed run never trusts an
    unchecked verdict, and loses little of a long scan). A file TF did not decode
    gets Pillow's full check, the reference verdict, before its line is written.
    Records are planned and written as if the checks pass; `confirm` runs before
    the first shard is committed and raises _Replan if a verdict changed after the
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
        """Waits for the remaining checks; raises _Replan if a verdict changed."""
        if not self.done:
            self.done = True
            if self.settle(scanned, held, wait=True):
                raise _Replan


@dataclasses.dataclass(frozen=True)
class _Job:
    """What the steps of one conversion share."""

    listing: sources.Listing
    label_ids: dict[str, int]
    options: ConvertOptions
    work: str  # output_dir/.tfclassify-work
    # Serialized records kept from the scan for the write pass (see _HOLD_BYTES).
    held: dict[int, bytes] = dataclasses.field(default_factory=dict)

    def label(self, key: int) -> int:
        return self.label_ids.get(self.listing.sources[key].label, -1)


def _scan(job: _Job) -> tuple[list[Scanned], _Pending | None]:
    """Pass 1 over the files not in the journal yet; appends to the journal.

    Serialized records are kept in `held` while they fit in _HOLD_BYTES, so the write
    pass need not read (or serialize) those again: a small corpus is read once.
    With validate=full the decodes of plain JPEGs run on tf.data's threads while
    this goes on; the returned `_Pending` holds what they have yet to confirm.
    """
    listing, options, work = job.listing, job.options, job.work
    journal = _Journal(os.path.join(work, _JOURNAL))
    scanned = list(journal.lines)
    cfg = _image_config(options)
    todo = list(range(len(scanned), len(listing.sources)))
    pending = None
    quick_cfg = cfg
    if cfg.validate == "full":
        quick_cfg = dataclasses.replace(cfg, validate="none")

        def rescan(key: int) -> _Scan:
            return _done(_scan_one(key, listing.sources[key], job.label(key), cfg, work))

        paths = [listing.sources[k].path for k in todo]
        checks = decode_check.DecodeChecks(paths, cfg.max_pixels, options.num_workers)
        pending = _Pending(checks, len(scanned), rescan, journal)
    progress = _Progress(len(listing.sources), "scan", options.quiet)
    progress.update(len(scanned), 0)

    def one(key: int) -> _Scan | Callable[[], _Scan]:
        return _scan_one(key, listing.sources[key], job.label(key), cfg, work, quick_cfg)

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
    pending: _Pending | None,
    progress: _Progress,
    workers: int,
) -> tuple[list[Scanned], _Pending | None]:
    budget = _HOLD_BYTES
    # Plain JPEGs are finished on this thread: ~0.1 ms of Python each, where a second
    # Python thread would only contend for the GIL (measured: 1 thread 1.3x faster
    # than 2). The rest (Pillow decodes and conversions, which release the GIL) go to
    # the worker threads.
    results: list[Scanned] = []
    for i, (result, record) in enumerate(_ordered(todo, one, workers), start=1):
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


def _encoded_bytes(source: sources.Source, s: Scanned, work: str) -> bytes:
    if s.converted:
        with open(_cache_path(work, s.key), "rb") as f:
            data = f.read()
    else:
        st = os.stat(source.path)
        if (st.st_size, st.st_mtime_ns) != (s.src_size, s.src_mtime_ns):
            raise DataError(
                f"{source.path} changed after it was scanned; rerun with --overwrite to start over"
            )
        with open(source.path, "rb") as f:
            data = f.read()
    if len(data) != s.encoded_size:
        raise DataError(
            f"{source.path}: {len(data)} bytes to store, {s.encoded_size} when scanned; "
            "rerun with --overwrite to start over"
        )
    return data


def _write_shards(
    job: _Job,
    shard_plan: Sequence[plan.Shard],
    scanned: Sequence[Scanned],
    before_commit: Callable[[], None] | None = None,
) -> dict[str, shards.ShardResult]:
    listing, options, work, held = job.listing, job.options, job.work, job.held
    out = options.output_dir
    results: dict[str, shards.ShardResult] = {}
    pending = []
    for sh in shard_plan:
        name = sh.filename(options.name)
        kept = shards.load_done(work, out, name) if options.resume else None
        if kept is not None:
            results[name] = kept
        else:
            pending.append(sh)
    total = sum(len(sh.keys) for sh in pending)
    progress = _Progress(total, "write", options.quiet)

    def reread(key: int) -> bytes:
        src, s = listing.sources[key], scanned[key]
        encoded = _encoded_bytes(src, s, work)  # size and mtime checked against the scan
        return schema.serialize(_record(src, job.label(key), encoded, s, s.sha256))

    def record(key: int) -> bytes | Callable[[], bytes]:
        # The very record scanned and hashed when held (handing it through the pool
        # would cost more, ~50 us, than it saves); else read again on a worker.
        return held.pop(key, None) or functools.partial(reread, key)

    # Shards are written one after another, their records in the plan's order, so the
    # bytes do not depend on the worker count.
    for sh in pending:
        name = sh.filename(options.name)
        records = _ordered(sh.keys, record, options.workers)
        result = shards.write_shard(os.path.join(out, name), records, before_commit)
        if result.num_bytes != sh.num_bytes:
            raise DataError(
                f"{name}: wrote {result.num_bytes} bytes, planned {sh.num_bytes}; "
                "an input changed during conversion"
            )
        shards.mark_done(work, result)
        results[result.file] = result
        progress.update(result.num_examples, result.num_bytes)
    progress.close()
    return results


def _list(options: ConvertOptions) -> sources.Listing:
    if options.input_dir is not None:
        listing = sources.list_folder(options.input_dir)
        where = options.input_dir
    else:
        listing = sources.list_manifest(options.manifest or "")
        where = options.manifest
    if not listing.sources:
        raise InputError(f"no files found in {where} (class folders are empty)")
    if listing.presplit and options.validation_fraction > 0:
        raise OptionsError(
            f"validation_fraction={options.validation_fraction} conflicts with the splits "
            f"already in {where}; drop one"
        )
    return listing


def _remove_ours(out: str, name: str) -> None:
    """Deletes only what a previous tfclassify run in `out` created."""
    meta = os.path.join(out, metadata.METADATA_FILE)
    mine = [metadata.LABELS_FILE, metadata.SKIPPED_FILE]
    if os.path.isfile(meta):
        with contextlib.suppress(Exception):
            info = metadata.load(out)
            mine += [s.file for split in info.splits.values() for s in split.shards]
    work = os.path.join(out, WORK_DIR)
    done_dir = os.path.join(work, "done")
    if os.path.isdir(done_dir):
        mine += [f.removesuffix(".json") for f in os.listdir(done_dir)]
    mine += _stale_temporaries(out)
    for f in mine:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out, f))
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(meta)  # last: it is what marks the directory as ours


def _stale_temporaries(out: str) -> list[str]:
    """Temporary shard files a killed run left behind (ours by their name)."""
    return [
        entry
        for entry in os.listdir(out)
        if entry.startswith(fileio.TMP_PREFIX)
        and schema.parse_shard_name(entry[len(fileio.TMP_PREFIX) :].rsplit(".", 1)[0])
    ]


def _check_no_collision(out: str, name: str) -> None:
    for entry in sorted(os.listdir(out)):
        parsed = schema.parse_shard_name(entry)
        if entry in (metadata.METADATA_FILE, metadata.LABELS_FILE, metadata.SKIPPED_FILE) or (
            parsed and parsed["name"] == name
        ):
            raise OutputError(
                f"{os.path.join(out, entry)} was not created by tfclassify and would be "
                "overwritten; move it or choose another output_dir"
            )


def _prepare_output(options: ConvertOptions) -> metadata.DatasetInfo | None:
    """Makes `output_dir` safe to write; returns the finished dataset when resuming one."""
    out = options.output_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise OutputError(f"output_dir exists and is not a directory: {out}")
    os.makedirs(out, exist_ok=True)
    if not os.listdir(out):
        return None
    has_meta = os.path.isfile(os.path.join(out, metadata.METADATA_FILE))
    has_work = os.path.isdir(os.path.join(out, WORK_DIR))
    if options.resume:
        if has_work:
            for entry in _stale_temporaries(out):  # a shard the kill interrupted
                os.remove(os.path.join(out, entry))
            return None
        if has_meta:
            info = metadata.load(out)
            if info.options != options.fingerprint():
                raise OptionsError(f"cannot resume {out}: it was converted with other options")
            logging.info("%s is already complete; nothing to resume", out)
            return info
        raise OutputError(
            f"nothing to resume in {out}: no interrupted tfclassify run there ({WORK_DIR} missing)"
        )
    if options.overwrite:
        if not (has_meta or has_work):
            raise OutputError(
                f"refusing to overwrite {out}: it holds no tfclassify output (no "
                f"{metadata.METADATA_FILE}), so its files were not created by tfclassify"
            )
        _remove_ours(out, options.name)
        _check_no_collision(out, options.name)
        return None
    raise OutputError(
        f"output_dir {out} is not empty; pass --resume to finish an interrupted run or "
        "--overwrite to replace a previous conversion"
    )


def _start_state(work: str, options: ConvertOptions, listing: sources.Listing) -> None:
    """Records what this run converts; a resume with other options or inputs is refused."""
    state = {"fingerprint": options.fingerprint(), "listing": listing.digest()}
    path = os.path.join(work, _STATE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        if old["fingerprint"] != state["fingerprint"]:
            diff = {
                k: (old["fingerprint"].get(k), v)
                for k, v in state["fingerprint"].items()
                if old["fingerprint"].get(k) != v
            }
            raise OptionsError(
                f"cannot resume {options.output_dir}: options differ from the interrupted run "
                f"(old, new): {diff}; use --overwrite to start over"
            )
        if old["listing"] != state["listing"]:
            raise InputError(
                f"cannot resume {options.output_dir}: the input files changed since the "
                "interrupted run; use --overwrite to start over"
            )
        return
    os.makedirs(work, exist_ok=True)
    fileio.atomic_write_text(path, json.dumps(state, ensure_ascii=False))


def _write_reports(out: str, listing: sources.Listing, skipped: list[tuple[str, str]]) -> None:
    fileio.atomic_write_text(
        os.path.join(out, metadata.LABELS_FILE), "".join(f"{label}\n" for label in listing.labels)
    )
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "reason"])
    w.writerows(skipped)
    fileio.atomic_write_text(os.path.join(out, metadata.SKIPPED_FILE), buf.getvalue())


def convert(options: ConvertOptions) -> metadata.DatasetInfo:
    """Converts the corpus described by `options`; returns what dataset.json records.

    Raises:
      InputError: missing input, bad manifest, no usable images.
      OutputError: output_dir is not safe to write.
      OptionsError: conflicting options, or a resume with different options.
    """
    listing = _list(options)
    finished = _prepare_output(options)
    if finished is not None:
        return finished
    out = options.output_dir
    work = os.path.join(out, WORK_DIR)
    _start_state(work, options, listing)
    job = _Job(listing, {label: i for i, label in enumerate(listing.labels)}, options, work)
    scanned, pending = _scan(job)
    try:
        return _plan_and_write(job, scanned, pending)
    finally:
        if pending is not None:
            pending.checks.close()


def _plan_and_write(
    job: _Job, scanned: list[Scanned], pending: _Pending | None
) -> metadata.DatasetInfo:
    """Plans the shards from the scan and writes them, then the reports and
    dataset.json; plans again if a late decode check changes a verdict."""
    listing, options, work, held = job.listing, job.options, job.work, job.held
    out = options.output_dir
    confirm = functools.partial(pending.confirm, scanned, held) if pending else None
    while True:
        items = [
            plan.Item(s.key, job.label(s.key), listing.sources[s.key].split, s.size)
            for s in scanned
            if not s.skip
        ]
        if not items and confirm is not None and not pending.done:
            with contextlib.suppress(_Replan):
                confirm()  # every unchecked file may yet be skipped: not before
            continue
        skipped = [(listing.sources[s.key].relpath, s.skip) for s in scanned if s.skip]
        reasons = collections.Counter(images.reason_code(r) for _, r in skipped)
        if not items:
            shutil.rmtree(work, ignore_errors=True)
            raise InputError(
                f"no usable images in {options.input_dir or options.manifest}: "
                f"{len(scanned)} files found, all skipped ({dict(reasons)})"
            )
        shard_plan = plan.plan_shards(
            items,
            target_bytes=options.shard_bytes,
            seed=options.seed,
            validation_fraction=options.validation_fraction,
        )
        try:
            results = _write_shards(job, shard_plan, scanned, confirm)
            if confirm is not None:
                confirm()  # no shard left to commit (all kept by a resume)
            break
        except _Replan:  # a decode check failed: its file's verdict changed
            continue
    held.clear()  # bytes of records a resumed run found already written

    splits: dict[str, list[metadata.ShardInfo]] = collections.defaultdict(list)
    for sh in shard_plan:
        r = results[sh.filename(options.name)]
        splits[sh.split].append(metadata.ShardInfo(r.file, r.num_examples, r.num_bytes, r.sha256))
    used = {it.label for it in items}
    info = metadata.DatasetInfo(
        directory=out,
        name=options.name,
        labels=listing.labels,
        splits={k: metadata.SplitInfo(k, tuple(v)) for k, v in splits.items()},
        files_found=len(listing.sources),
        accepted=len(items),
        skipped=len(skipped),
        skipped_by_reason=dict(reasons),
        empty_classes=tuple(lb for i, lb in enumerate(listing.labels) if i not in used),
        options=options.fingerprint(),
    )
    _write_reports(out, listing, skipped)
    info.save()  # last: its presence means everything it lists is complete
    shutil.rmtree(work, ignore_errors=True)
    for label in info.empty_classes:
        logging.warning("class %r has no usable images (kept in the label map)", label)
    return info


# ---------------------------------------------------------------- command line


def _define_flags() -> None:
    from absl import flags

    d = ConvertOptions.__dataclass_fields__
    flags.DEFINE_string(
        "input_dir", None, "Folder per class (optionally below train/, validation/)."
    )
    flags.DEFINE_string("manifest", None, "CSV with header path,label[,split].")
    flags.DEFINE_string("output_dir", None, "Where shards and dataset.json go.")
    flags.DEFINE_string("name", d["name"].default, "Shard name prefix.")
    flags.DEFINE_float("shard_size_mb", d["shard_size_mb"].default, "Target shard size, MiB.")
    flags.DEFINE_integer("num_workers", None, "Worker threads (default: all cores).")
    flags.DEFINE_integer("seed", d["seed"].default, "Shuffle / split seed.")
    flags.DEFINE_float(
        "validation_fraction", d["validation_fraction"].default, "Stratified validation share."
    )
    flags.DEFINE_enum("validate", "full", ["full", "header", "none"], "How hard to check images.")
    flags.DEFINE_enum("image_format", "keep", ["keep", "jpeg", "png"], "Stored image format.")
    flags.DEFINE_integer("resize_shorter_side", None, "Shrink so the shorter side is at most this.")
    flags.DEFINE_integer("max_side", None, "Shrink so the longer side is at most this.")
    flags.DEFINE_integer("jpeg_quality", d["jpeg_quality"].default, "Quality of encoded JPEGs.")
    flags.DEFINE_integer("max_pixels", d["max_pixels"].default, "Refuse larger images.")
    flags.DEFINE_bool("resume", False, "Finish an interrupted run in output_dir.")
    flags.DEFINE_bool("overwrite", False, "Replace a previous conversion in output_dir.")
    flags.DEFINE_bool("quiet", False, "No progress bar.")
    flags.mark_flag_as_required("output_dir")


def options_from_flags() -> ConvertOptions:
    from absl import flags

    f = flags.FLAGS
    return ConvertOptions(
        **{fld.name: getattr(f, fld.name) for fld in dataclasses.fields(ConvertOptions)}
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"error: unexpected arguments {argv[1:]}")

    def go() -> None:
        info = convert(options_from_flags())
        print(
            f"{info.accepted} images in "
            f"{sum(len(s.shards) for s in info.splits.values())} shards "
            f"({', '.join(f'{k}: {v.num_examples}' for k, v in sorted(info.splits.items()))}) "
            f"-> {info.directory}; {info.skipped} skipped"
            + (f" (see {metadata.SKIPPED_FILE})" if info.skipped else "")
        )

    from tfclassify import cli

    sys.exit(cli.exit_status(go))


_callable.forward_calls(__name__, "convert")

if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)

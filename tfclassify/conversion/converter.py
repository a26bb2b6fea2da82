"""Convert a corpus of image files into TFRecord shards: `tfclassify.convert(options)`.

Two passes, so shards can be planned by their exact serialized bytes: the scan
(`scan.py`) reads and inspects every input first; then the pure plan (`plan.py`)
assigns records to shards, and each shard is written atomically in plan order, so the
bytes never depend on worker count. This module drives both and owns what makes a run
safe to interrupt and repeat, which the scan need not know about: the output directory
is checked, resumed or cleared before anything is written, and everything lives in
`output_dir/.tfclassify-work/` until `dataset.json` is written last; the work dir is
removed after that.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import errno
import functools
import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from absl import logging

from tfclassify.conversion import images, plan, scan, shards, sources
from tfclassify.core import fileio, interop, metadata, schema
from tfclassify.core.errors import DataError, InputError, OptionsError, OutputError
from tfclassify.core.options import ConvertOptions
from tfclassify.core.progress import Progress

WORK_DIR = ".tfclassify-work"
_STATE = "state.json"
# What an error suggests, in the API's terms; the command shows its flags.
_OVERWRITE = {"overwrite": True}
_RESUME = {"resume": True}


def _encoded_bytes(source: sources.Source, s: scan.Scanned, work: str) -> bytes:
    if s.converted:
        with open(scan.cache_path(work, s.key), "rb") as f:
            data = f.read()
    else:
        st = os.stat(source.path)
        if (st.st_size, st.st_mtime_ns) != (s.src_size, s.src_mtime_ns):
            raise DataError(
                f"{source.path} changed after it was scanned; rerun with overwrite=True to "
                "start over",
                settings=_OVERWRITE,
            )
        with open(source.path, "rb") as f:
            data = f.read(s.encoded_size + 1)  # one byte over tells a file that grew
    if len(data) != s.encoded_size:
        raise DataError(
            f"{source.path}: {len(data)} bytes to store, {s.encoded_size} when scanned; "
            "rerun with overwrite=True to start over",
            settings=_OVERWRITE,
        )
    return data


def _write_shards(
    job: scan.Job,
    shard_plan: Sequence[plan.Shard],
    scanned: scan.Scans,
    before_commit: Callable[[], None] | None = None,
) -> dict[str, metadata.ShardInfo]:
    listing, options, work, held = job.listing, job.options, job.work, job.held
    out = options.output_dir
    results: dict[str, metadata.ShardInfo] = {}
    pending = []
    for sh in shard_plan:
        name = sh.filename(options.name)
        kept = shards.load_done(work, out, name) if options.resume else None
        if kept is not None:
            results[name] = kept
        else:
            pending.append(sh)
    total = sum(len(sh.keys) for sh in pending)
    progress = Progress("write", total, quiet=options.quiet, show_bytes=True)

    def reread(key: int) -> bytes:
        src, s = listing.source(key), scanned[key]
        encoded = _encoded_bytes(src, s, work)  # size and mtime checked against the scan
        return schema.serialize(scan.make_record(src, job.label(key), encoded, s, s.sha256))

    def record(key: int) -> bytes | Callable[[], bytes]:
        # The very record scanned and hashed when held (handing it through the pool
        # would cost more than it saves); else read again on a worker.
        return held.pop(key, None) or functools.partial(reread, key)

    # Shards are written one after another, their records in the plan's order, so the
    # bytes do not depend on the worker count.
    for sh in pending:
        name = sh.filename(options.name)
        records = scan.ordered(sh.keys, record, options.workers)
        result = shards.write_shard(
            os.path.join(out, name),
            records,
            before_commit,
            expected_bytes=sh.num_bytes,
            record_done=functools.partial(shards.mark_done, work),
        )
        results[result.file] = result
        progress.update(result.num_examples, result.num_bytes)
    progress.close()
    return results


def list_inputs(options: ConvertOptions) -> sources.Listing:
    """Every input file of `options` (its folder or manifest), checked for what makes
    a conversion impossible before anything is written."""
    if options.input_dir is not None:
        listing = sources.list_folder(options.input_dir, options.follow_external_links)
        where = options.input_dir
    else:
        listing = sources.list_manifest(options.manifest or "", options.follow_external_links)
        where = options.manifest
    if options.input_dir is not None and _reachable(options.output_dir, listing):
        raise OutputError(
            f"output_dir {options.output_dir} is inside input_dir {options.input_dir}: its "
            "files would be listed as input images; choose an output_dir outside it"
        )
    if not len(listing):
        raise InputError(f"no files found in {where} (class folders are empty)")
    if listing.presplit and options.validation_fraction > 0:
        raise OptionsError(
            f"validation_fraction={options.validation_fraction} conflicts with the splits "
            f"already in {where}; drop one"
        )
    return listing


def _reachable(path: str, listing: sources.Listing) -> bool:
    """Whether `path` is in a folder the listing went through: below the root, or
    below where a linked folder in it leads (the links resolved on both sides).

    The folders are those holding listed files and the folders above them up to the
    root: a linked folder holding nothing yet is not seen, but once the output is
    in it, its files are listed and the next run refuses it.
    """
    folders = {listing.root}
    last = ""
    for key in range(len(listing)):
        folder = os.path.dirname(listing.path(key))
        if folder == last:  # the listing is sorted: most files share the previous folder
            continue
        last = folder
        while folder not in folders and folder.startswith(os.path.join(listing.root, "")):
            folders.add(folder)
            folder = os.path.dirname(folder)
    real = os.path.realpath(path)
    for folder in map(os.path.realpath, folders):
        if os.path.commonpath([real, folder]) == folder:
            return True
    return False


# Written before dataset.json, each recorded as done first as a shard is.
_RECORDED_REPORTS = (metadata.LABELS_FILE, metadata.SKIPPED_FILE, *interop.TFDS_FILES)
_REPORTS = (*_RECORDED_REPORTS, metadata.METADATA_FILE)


def _ours(out: str, has_work: bool, doing: str) -> list[str]:
    """The files in `out` a previous tfclassify run provably wrote, dataset.json last
    (names relative to `out`: a shard's index is in its folder).

    A shard or a shard's index is ours when its name is one and its size and sha256
    are those dataset.json or the work dir's done record gives it (each file on its
    own: a kill between the index's rename and the shard's leaves one of them);
    the reports (labels.txt, skipped.csv, the TFDS files), by their name beside
    dataset.json (written before it) or by their done record; a temporary, by the
    exact form of its name, and only beside the work dir (a run that has written
    dataset.json has left none). Whatever dataset.json or a done record names
    otherwise is not ours. `doing` ("overwrite", "resume") goes in the error when
    dataset.json is unreadable.
    """
    meta = os.path.join(out, metadata.METADATA_FILE)
    has_meta = os.path.isfile(meta)
    recorded: list[metadata.ShardInfo] = []
    if has_meta:
        try:
            info = metadata.load(out)
        except Exception as e:
            # Without it there is no telling which shards this run wrote: delete nothing.
            raise OutputError(
                f"cannot {doing} {out}: its {metadata.METADATA_FILE} is unreadable ({e}), "
                "so which files tfclassify wrote is unknown; remove them by hand"
            ) from None
        recorded = [s for split in info.splits.values() for s in split.shards]
    work = os.path.join(out, WORK_DIR)
    mine = [
        f
        for s in recorded
        if schema.parse_shard_name(s.file)
        for f in shards.written_files(out, s)  # each file's size and sha256 checked
    ]
    if has_work:
        done = os.path.join(work, "done")
        for entry in os.listdir(done) if os.path.isdir(done) else []:
            name = entry.removesuffix(".json")
            record = shards.read_done(work, name)
            if (schema.parse_shard_name(name) or name in _RECORDED_REPORTS) and _names(
                record, name
            ):
                mine += [f for f in shards.written_files(out, record) if f not in mine]
        mine += _stale_temporaries(out)
    if has_meta:  # dataset.json last: until it goes, it marks `out` as ours.
        mine += [f for f in _REPORTS if f not in mine and _regular(os.path.join(out, f))]
    return mine


def _names(record: metadata.ShardInfo | None, name: str) -> bool:
    """Whether the done record of `name` names the files it is the record of."""
    if record is None or record.file != name:
        return False
    return record.index is None or record.index.file == schema.index_file(name)


def _regular(path: str) -> bool:
    return os.path.isfile(path) and not os.path.islink(path)


def _index_dir(out: str) -> str | None:
    """The folder of the shard indexes in `out`, when it is a folder (not a link)."""
    path = os.path.join(out, schema.INDEX_DIR)
    return path if os.path.isdir(path) and not os.path.islink(path) else None


def _stale_temporaries(out: str) -> list[str]:
    """Temporary shards, indexes and reports a killed run left beside its work dir
    (ours by the exact form of their names)."""
    found = []
    for entry in os.listdir(out):
        target = fileio.temporary_target(entry)
        if target is not None and (target in _REPORTS or schema.parse_shard_name(target)):
            found.append(entry)
    index_dir = _index_dir(out)
    for entry in os.listdir(index_dir) if index_dir else []:
        target = fileio.temporary_target(entry)
        if target is not None and schema.indexed_shard(target):
            found.append(f"{schema.INDEX_DIR}/{entry}")
    return found


def _check_no_collision(out: str, name: str, ours: Sequence[str]) -> None:
    """Refuses, before anything is written or deleted, when a file that is not ours
    has a name the run writes (a report, a shard of its `name` or its index, the
    work dir, the index folder)."""
    mine = set(ours)
    index_dir = _index_dir(out)
    indexes = os.listdir(index_dir) if index_dir else []
    for entry in sorted(os.listdir(out)) + [f"{schema.INDEX_DIR}/{e}" for e in sorted(indexes)]:
        if entry in mine:
            continue
        folder, _, base = entry.rpartition("/")
        shard = schema.indexed_shard(base) if folder else base
        parsed = schema.parse_shard_name(shard) if shard else None
        path = metadata.file_path(out, entry)
        if (
            entry in _REPORTS
            or (parsed and parsed["name"] == name)
            or (
                entry in (WORK_DIR, schema.INDEX_DIR)
                and (os.path.islink(path) or not os.path.isdir(path))
            )
        ):
            raise OutputError(
                f"{path} was not created by tfclassify (or changed since) and would be "
                "overwritten; move it or choose another output_dir"
            )


def _check_complete(info: metadata.DatasetInfo) -> None:
    """A finished dataset's shards are all there, at their recorded sizes: an
    overwrite killed while deleting leaves dataset.json with shards gone.
    (`verify` checks contents; this only what a resume must not take for done.)"""
    for split in info.splits.values():
        for file, num_bytes, _ in (f for shard in split.shards for f in shard.files()):
            path = metadata.file_path(info.directory, file)
            size = os.path.getsize(path) if os.path.isfile(path) else None
            if size != num_bytes:
                found = "missing" if size is None else f"{size} bytes, {num_bytes} recorded"
                raise OutputError(
                    f"cannot resume {info.directory}: it is not complete ({path}: {found}); "
                    "use overwrite=True to convert again",
                    settings=_OVERWRITE,
                )


def prepare_output(options: ConvertOptions) -> metadata.DatasetInfo | None:
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
        if has_meta:  # written last: the run finished, even if its work dir is still here
            info = metadata.load(out)
            if info.options != options.fingerprint():
                raise OptionsError(
                    f"cannot resume {out}: it was converted with other options "
                    f"(old, new): {_changed(info.options, options.fingerprint())}"
                )
            _check_complete(info)
            # A kill while the finished run cleared its work dir leaves part of it.
            shutil.rmtree(os.path.join(out, WORK_DIR), ignore_errors=True)
            logging.info("%s is already complete; nothing to resume", out)
            return info
        if has_work:
            # What the run left is proven as an overwrite proves it: a file at a name
            # still to write without a done record that matches is someone else's.
            _check_no_collision(out, options.name, _ours(out, has_work, "resume"))
            for entry in _stale_temporaries(out):  # a shard the kill interrupted
                os.remove(metadata.file_path(out, entry))
            return None
        raise OutputError(
            f"nothing to resume in {out}: no interrupted tfclassify run there ({WORK_DIR} missing)"
        )
    if options.overwrite:
        if not (has_meta or has_work):
            raise OutputError(
                f"refusing to overwrite {out}: it holds no tfclassify output (no "
                f"{metadata.METADATA_FILE}), so its files were not created by tfclassify"
            )
        ours = _ours(out, has_work, "overwrite")
        _check_no_collision(out, options.name, ours)
        for f in ours:
            os.remove(metadata.file_path(out, f))
        with contextlib.suppress(OSError):  # not empty (someone else's files), or absent
            os.rmdir(os.path.join(out, schema.INDEX_DIR))
        shutil.rmtree(os.path.join(out, WORK_DIR), ignore_errors=True)
        return None
    raise OutputError(
        f"output_dir {out} is not empty; pass resume=True to finish an interrupted run or "
        "overwrite=True to replace a previous conversion",
        settings={**_RESUME, **_OVERWRITE},
    )


def _changed(old: dict, new: dict) -> dict:
    """{option: (old, new)} for every option whose value differs."""
    return {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}


def _start_state(work: str, options: ConvertOptions, listing: sources.Listing) -> None:
    """Records what this run converts; a resume with other options or inputs is refused."""
    state = {"fingerprint": options.fingerprint(), "listing": listing.digest()}
    path = os.path.join(work, _STATE)
    if os.path.isfile(path):
        old = _load_state(path)
        if old["fingerprint"] != state["fingerprint"]:
            raise OptionsError(
                f"cannot resume {options.output_dir}: options differ from the interrupted run "
                f"(old, new): {_changed(old['fingerprint'], state['fingerprint'])}; "
                "use overwrite=True to start over",
                settings=_OVERWRITE,
            )
        if old["listing"] != state["listing"]:
            raise InputError(
                f"cannot resume {options.output_dir}: the input files changed since the "
                "interrupted run; use overwrite=True to start over",
                settings=_OVERWRITE,
            )
        return
    os.makedirs(work, exist_ok=True)
    fileio.atomic_write_text(path, json.dumps(state, ensure_ascii=False))


def _load_state(path: str) -> dict:
    """state.json as `_start_state` wrote it; damaged (by a disk, by hand), it says so."""
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except ValueError as e:  # not UTF-8, not JSON
        problem = str(e)
    else:
        if (
            isinstance(state, dict)
            and isinstance(state.get("fingerprint"), dict)
            and isinstance(state.get("listing"), str)
        ):
            return state
        problem = "it is not what tfclassify writes there"
    raise OutputError(
        f"cannot resume: {path} is damaged ({problem}); use overwrite=True to start over",
        settings=_OVERWRITE,
    )


def report_files(
    info: metadata.DatasetInfo, skipped: Sequence[tuple[str, str]]
) -> dict[str, tuple[int, bytes]]:
    """Every file written before dataset.json, after the shards: labels.txt,
    skipped.csv and the TFDS metadata (`interop.tfds_files`), as {file name: (rows,
    bytes)}. The local and the Beam converter both write these, so their outputs
    are the same bytes."""
    labels = info.labels
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "reason"])
    w.writerows(skipped)
    texts = {
        metadata.LABELS_FILE: (len(labels), "".join(f"{label}\n" for label in labels)),
        metadata.SKIPPED_FILE: (len(skipped), buf.getvalue()),
    }
    files = {name: (rows, fileio.encode_text(text)) for name, (rows, text) in texts.items()}
    tfds = interop.tfds_files(info)
    files.update({name: (len(labels), data) for name, data in tfds.items()})
    return files


def _write_reports(
    out: str, work: str, info: metadata.DatasetInfo, skipped: list[tuple[str, str]]
) -> None:
    """The report files, each recorded as done (its rows, size and sha256) before it
    gets its name, as a shard is: a resume finding one proves it ours."""
    for name, (rows, data) in report_files(info, skipped).items():
        digest = hashlib.sha256(data).hexdigest()
        shards.mark_done(work, metadata.ShardInfo(name, rows, len(data), digest))
        fileio.atomic_write_bytes(os.path.join(out, name), data)


def convert(options: ConvertOptions) -> metadata.DatasetInfo:
    """Converts the corpus described by `options`; returns what dataset.json records.

    Raises:
      InputError: missing input, bad manifest, no usable images.
      OutputError: output_dir is not safe to write.
      OptionsError: conflicting options, or a resume with different options.
    """
    listing = list_inputs(options)
    finished = prepare_output(options)
    if finished is not None:
        return finished
    work = os.path.join(options.output_dir, WORK_DIR)
    with _resumable_when_full(options.output_dir):
        _start_state(work, options, listing)
        job = scan.Job(listing, options, work)
        scanned, pending = scan.scan(job)
        try:
            return _plan_and_write(job, scanned, pending)
        finally:
            if pending is not None:
                pending.checks.close()


@contextlib.contextmanager
def _resumable_when_full(out: str) -> Iterator[None]:
    """A full disk or quota is one error naming the file and what to do: all written
    so far is kept (complete files only) and a resume finishes the run."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise OutputError(
            f"{e.strerror} writing {e.filename or out}: free some space, then rerun with "
            "resume=True to finish",
            settings=_RESUME,
        ) from e


def _accepted(listing: sources.Listing, scanned: scan.Scans) -> plan.Records:
    """What the plan needs of every file not skipped, as columns."""
    keys = scanned.accepted()
    return plan.Records(
        keys=keys,
        labels=np.frombuffer(listing.label_ids(), np.intc)[keys],
        splits=np.frombuffer(listing.split_ids(), np.intc)[keys],
        split_names=listing.split_names,
        sizes=scanned.sizes()[keys],
    )


def _plan_and_write(
    job: scan.Job, scanned: scan.Scans, pending: scan.Pending | None
) -> metadata.DatasetInfo:
    """Plans the shards from the scan and writes them, then the reports and
    dataset.json; plans again if a late decode check changes a verdict."""
    listing, options, work, held = job.listing, job.options, job.work, job.held
    out = options.output_dir
    confirm = functools.partial(pending.confirm, scanned, held) if pending else None
    while True:
        records = _accepted(listing, scanned)
        if not len(records) and confirm is not None and not pending.done:
            with contextlib.suppress(scan.Replan):
                confirm()  # every unchecked file may yet be skipped: not before
            continue
        skipped = [(listing.relpath(key), reason) for key, reason in scanned.skipped()]
        if not len(records):
            shutil.rmtree(work, ignore_errors=True)
            raise no_usable_images(options, len(scanned), skipped)
        shard_plan = plan.plan_shards(
            records,
            target_bytes=options.shard_bytes,
            seed=options.seed,
            validation_fraction=options.validation_fraction,
        )
        try:
            results = _write_shards(job, shard_plan, scanned, confirm)
            if confirm is not None:
                confirm()  # no shard left to commit (all kept by a resume)
            break
        except scan.Replan:  # a decode check failed: its file's verdict changed
            continue
    held.clear()  # bytes of records a resumed run found already written

    info = dataset_info(
        options, listing.labels, len(listing), shard_plan, results, records, skipped
    )
    _write_reports(out, work, info, skipped)
    info.save()  # last: its presence means everything it lists is complete
    shutil.rmtree(work, ignore_errors=True)
    for label in info.empty_classes:
        logging.warning("class %r has no usable images (kept in the label map)", label)
    return info


def no_usable_images(
    options: ConvertOptions, found: int, skipped: Sequence[tuple[str, str]]
) -> InputError:
    """The error of a conversion whose every file was skipped."""
    reasons = collections.Counter(images.reason_code(r) for _, r in skipped)
    return InputError(
        f"no usable images in {options.input_dir or options.manifest}: "
        f"{found} files found, all skipped ({dict(reasons)})"
    )


def dataset_info(
    options: ConvertOptions,
    labels: tuple[str, ...],
    files_found: int,
    shard_plan: Sequence[plan.Shard],
    results: dict[str, metadata.ShardInfo],
    records: plan.Records,
    skipped: Sequence[tuple[str, str]],
) -> metadata.DatasetInfo:
    """What dataset.json records of a conversion: its plan's shards as written
    (`results`, by file name), the records planned and the files skipped."""
    splits: dict[str, list[metadata.ShardInfo]] = collections.defaultdict(list)
    for sh in shard_plan:
        splits[sh.split].append(results[sh.filename(options.name)])
    used = set(np.unique(records.labels).tolist())
    label_ids = np.zeros(int(records.keys.max()) + 1, np.int64)  # by listing key
    label_ids[records.keys] = records.labels
    counts = plan.class_counts(shard_plan, label_ids, len(labels))
    return metadata.DatasetInfo(
        directory=options.output_dir,
        name=options.name,
        labels=labels,
        splits={k: metadata.SplitInfo(k, tuple(v), counts[k]) for k, v in splits.items()},
        files_found=files_found,
        accepted=len(records),
        skipped=len(skipped),
        skipped_by_reason=dict(collections.Counter(images.reason_code(r) for _, r in skipped)),
        empty_classes=tuple(lb for i, lb in enumerate(labels) if i not in used),
        options=options.fingerprint(),
    )

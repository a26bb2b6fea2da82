"""Conversion on Apache Beam: `ConvertToTFRecords` writes what `tfclassify.convert`
writes for the same inputs, options and seed, byte for byte (shards, dataset.json,
labels.txt, skipped.csv), from the same pieces: the listing, `scan.scan_keys`, the
pure shard plan, `shards.write_shard` and the converter's reports.

    listing (at construction) -> key ranges -> Reshuffle -> ParDo(scan)
        -+-> accepted: (key, label, split, size, record)
         |     (key, label, split, size) -> CombineGlobally(plan) -> the plan (one element)
         |     (shard, (position, record)) -> GroupByKey -> ParDo(write one shard)
         +-> skipped: (key, relpath, reason)
    plan + shards written + skipped -> labels.txt, skipped.csv, dataset.json (last)

Building the transform lists the inputs and makes `output_dir` safe to write, as the
local converter does before its scan: a missing input or a folder holding other
files fails there, in one line, before any worker starts. The listing goes to a
file in the output's work folder, read once per worker process (a listing of
millions of files is too big for the pipeline graph).

Records travel from the scan to their shard through Beam's shuffle, so no file is
read twice and a converted image (CMYK, an alpha PNG) needs no cache. The plan
needs every accepted file's (key, label, split, size) in one place: about 60 bytes
a file, 60 MB per million (benchmarks/NOTES.md). A shard's writer holds that
shard's records (about `shard_size_mb`) to put them in the plan's order.

A shard is written under a temporary name unique to the attempt and renamed when
complete: a retried or duplicated bundle writes the same bytes under the same name,
and never leaves a partial file under a final one. Temporaries of attempts that
died are removed before dataset.json, which is written last.

`run_conversion` draws a bar of the files scanned and one of the images written, as
the local converter does, when the runner runs the DoFns in its own process (the local
default); they reach the bars through `core.progress` tokens (strings), so a
multi-process or remote runner pickles nothing more and draws none.
"""

from __future__ import annotations

import array
import os
import pickle
import secrets
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from absl import logging
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils import shared

from tfclassify.beam.runner import pipeline_options
from tfclassify.conversion import converter, plan, scan, shards, sources
from tfclassify.core import fileio, metadata, progress, schema
from tfclassify.core.errors import DataError, OptionsError, OutputError
from tfclassify.core.options import ConvertOptions

__all__ = ["ConvertToTFRecords", "run_conversion"]

# Files per scan element: enough that an element's overhead is small, few enough
# that a small corpus still spreads over every worker.
_FILES_PER_ELEMENT = 128
_SKIPPED = "skipped"
_METRICS = "tfclassify"
# One listing per worker process, whatever the number of DoFn instances.
_LISTINGS = shared.Shared()


class _Held:
    """A listing, held through `shared` (which needs an object it can weakly refer to)."""

    def __init__(self, listing: sources.Listing) -> None:
        self.listing = listing


def _load_listing(path: str, digest: str) -> _Held:
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as f:
        listing = pickle.load(f)  # written by this job, at construction
    if not isinstance(listing, sources.Listing) or listing.digest() != digest:
        raise DataError(f"{path} is not the listing this job wrote (changed since)")
    return _Held(listing)


class _ScanFn(beam.DoFn):
    """Scans a key range: each accepted file as (key, label, split, size, record),
    each skipped one to the `skipped` output as (key, relpath, reason)."""

    def __init__(
        self, listing_file: str, digest: str, options: ConvertOptions, bar: str | None
    ) -> None:
        self._file = listing_file
        self._digest = digest
        self._options = options
        self._bar = bar
        self._scanned = Metrics.counter(_METRICS, "files_scanned")
        self._skipped = Metrics.counter(_METRICS, "files_skipped")

    def setup(self) -> None:
        held = _LISTINGS.acquire(lambda: _load_listing(self._file, self._digest), tag=self._file)
        self._held = held  # keeps it alive while this DoFn lives
        self._listing = held.listing

    def process(self, keys: tuple[int, int]) -> Iterator[Any]:
        listing = self._listing
        splits = listing.split_ids()
        results = scan.scan_keys(listing, self._options, range(*keys))
        nbytes = sum(s.src_size for s, _ in results)
        progress.advance(self._bar, len(results), nbytes, total=len(listing))
        for s, record in results:
            self._scanned.inc()
            if record is None:
                self._skipped.inc()
                yield pvalue.TaggedOutput(_SKIPPED, (s.key, listing.relpath(s.key), s.skip))
            else:
                yield s.key, listing.label_id(s.key), splits[s.key], s.size, record


class _Plan:
    """The shard plan of the accepted records, and where each record goes in it."""

    def __init__(self, records: plan.Records, options: ConvertOptions) -> None:
        self.records = records
        self.shards = plan.plan_shards(
            records,
            target_bytes=options.shard_bytes,
            seed=options.seed,
            validation_fraction=options.validation_fraction,
        )
        size = int(records.keys.max()) + 1 if len(records) else 0
        self._shard = np.full(size, -1, np.int32)
        self._position = np.zeros(size, np.int64)
        for index, sh in enumerate(self.shards):
            keys = np.frombuffer(sh.keys, np.int64)
            self._shard[keys] = index
            self._position[keys] = np.arange(len(keys))

    def place(self, key: int) -> tuple[int, int]:
        """(shard index, position in the shard) of the record of `key`."""
        return int(self._shard[key]), int(self._position[key])


class _PlanFn(beam.CombineFn):
    """Collects (key, label, split, size) of every accepted file as columns; plans."""

    def __init__(self, split_names: tuple[str, ...], options: ConvertOptions) -> None:
        self._split_names = split_names
        self._options = options

    def create_accumulator(self) -> tuple[array.array, ...]:
        return tuple(array.array("q") for _ in range(4))

    def add_input(self, acc: tuple[array.array, ...], row: Sequence[int]) -> Any:
        for column, value in zip(acc, row, strict=True):
            column.append(value)
        return acc

    def merge_accumulators(self, accs: Iterable[tuple[array.array, ...]]) -> Any:
        merged = self.create_accumulator()
        for acc in accs:
            for column, part in zip(merged, acc, strict=True):
                column.extend(part)
        return merged

    def extract_output(self, acc: tuple[array.array, ...]) -> _Plan:
        keys, labels, splits, sizes = (np.frombuffer(c, np.int64) for c in acc)
        order = np.argsort(keys, kind="stable")  # the plan must not see arrival order
        records = plan.Records(
            keys=keys[order],
            labels=labels[order],
            splits=splits[order],
            split_names=self._split_names,
            sizes=sizes[order],
        )
        return _Plan(records, self._options)


class _WriteShardFn(beam.DoFn):
    """Writes one planned shard from its records, in the plan's order."""

    def __init__(self, options: ConvertOptions, bar: str | None) -> None:
        self._options = options
        self._bar = bar
        self._shards = Metrics.counter(_METRICS, "shards_written")
        self._bytes = Metrics.counter(_METRICS, "bytes_written")

    def process(
        self, element: tuple[int, Iterable[tuple[int, bytes]]], the_plan: _Plan
    ) -> Iterator[metadata.ShardInfo]:
        index, items = element
        sh = the_plan.shards[index]
        name = sh.filename(self._options.name)
        ordered = sorted(items, key=lambda item: item[0])
        if [position for position, _ in ordered] != list(range(len(sh.keys))):
            raise DataError(f"{name}: {len(ordered)} records came, {len(sh.keys)} planned")
        result = shards.write_shard(
            os.path.join(self._options.output_dir, name),
            (record for _, record in ordered),
            expected_bytes=sh.num_bytes,
        )
        self._shards.inc()
        self._bytes.inc(result.num_bytes)
        total = len(the_plan.records)
        progress.advance(self._bar, result.num_examples, result.num_bytes, total=total)
        yield result


def _place(accepted: tuple[int, int, int, int, bytes], the_plan: _Plan) -> tuple[int, Any]:
    key, record = accepted[0], accepted[-1]
    index, position = the_plan.place(key)
    return index, (position, record)


def _finish(
    _: Any,
    options: ConvertOptions,
    labels: tuple[str, ...],
    files_found: int,
    work: str,
    the_plan: _Plan,
    written: list[metadata.ShardInfo],
    skipped: list[tuple[int, str, str]],
) -> metadata.DatasetInfo:
    """labels.txt, skipped.csv, then dataset.json; removes what this job no longer needs."""
    import tensorflow as tf

    out = options.output_dir
    rows = [(relpath, reason) for _, relpath, reason in sorted(skipped)]
    if not len(the_plan.records):
        tf.io.gfile.rmtree(work)
        raise converter.no_usable_images(options, files_found, rows)
    results = {result.file: result for result in written}
    info = converter.dataset_info(
        options, labels, files_found, the_plan.shards, results, the_plan.records, rows
    )
    reports = converter.report_files(info, rows)
    for name, (_, data) in reports.items():
        fileio.atomic_write_bytes(os.path.join(out, name), data)
    # A temporary beside a name this job writes is a dead attempt's: the output held
    # none of them when the job started.
    ours = {*results, *reports, metadata.METADATA_FILE}
    indexes = {os.path.basename(r.index.file) for r in written if r.index is not None}
    index_dir = os.path.join(out, schema.INDEX_DIR)
    for folder, names in ((out, ours), (index_dir, indexes)):
        for entry in tf.io.gfile.listdir(folder) if tf.io.gfile.isdir(folder) else []:
            if fileio.temporary_target(entry) in names:
                tf.io.gfile.remove(os.path.join(folder, entry))
    info.save()  # last: its presence means everything it lists is complete
    tf.io.gfile.rmtree(work)
    for label in info.empty_classes:
        logging.warning("class %r has no usable images (kept in the label map)", label)
    return info


def _prepare_output(options: ConvertOptions) -> None:
    """The local converter's checks of `output_dir` (empty, or `overwrite` of a
    previous conversion); a URL must be empty."""
    if options.resume:
        raise OptionsError(
            "resume does not apply to a Beam job (its runner retries failed work); "
            "rerun with overwrite=True to start over",
            settings={"overwrite": True},
        )
    if not fileio.is_remote(options.output_dir):
        converter.prepare_output(options)
        return
    import tensorflow as tf

    out = options.output_dir
    if options.overwrite:
        raise OptionsError(
            f"overwrite=True needs a local output_dir ({out} is a URL): remove the old "
            "files with your storage's tools, then run again"
        )
    if tf.io.gfile.exists(out) and tf.io.gfile.listdir(out):
        raise OutputError(f"output_dir {out} is not empty; choose an empty one")
    tf.io.gfile.makedirs(out)


class ConvertToTFRecords(beam.PTransform):
    """Image files -> TFRecord shards and metadata, as `tfclassify.convert(options)`.

    Applied to a pipeline (`p | ConvertToTFRecords(options)`); gives one element,
    the `DatasetInfo` dataset.json records, once everything is written. Every worker
    must be able to read the inputs and write `output_dir` (a local folder, or a
    URL such as gs://bucket/dir that `tf.io.gfile` writes).

    Applying it lists the inputs and prepares `output_dir` (raising what
    `tfclassify.convert` raises for them); `resume` does not apply.

    Args:
      options: as for `tfclassify.convert`.
      scan_bar / write_bar: tokens of `core.progress.ProcessBar`s the files scanned
        and the images written advance (where the DoFns run in this process).
    """

    def __init__(
        self,
        options: ConvertOptions,
        *,
        scan_bar: str | None = None,
        write_bar: str | None = None,
    ) -> None:
        super().__init__()
        self._options = options
        self._scan_bar, self._write_bar = scan_bar, write_bar

    def expand(self, pbegin: pvalue.PBegin) -> beam.PCollection:
        import tensorflow as tf

        options = self._options
        listing = converter.list_inputs(options)
        _prepare_output(options)
        work = os.path.join(options.output_dir, converter.WORK_DIR)
        tf.io.gfile.makedirs(work)
        listing_file = os.path.join(work, f"listing-{secrets.token_hex(8)}.pickle")
        fileio.atomic_write_bytes(listing_file, pickle.dumps(listing, pickle.HIGHEST_PROTOCOL))
        n = len(listing)
        ranges = [(a, min(a + _FILES_PER_ELEMENT, n)) for a in range(0, n, _FILES_PER_ELEMENT)]

        scanned = (
            pbegin
            | "KeyRanges" >> beam.Create(ranges)
            | "Spread" >> beam.Reshuffle()
            | "Scan"
            >> beam.ParDo(
                _ScanFn(listing_file, listing.digest(), options, self._scan_bar)
            ).with_outputs(_SKIPPED, main="accepted")
        )
        accepted, skipped = scanned.accepted, scanned[_SKIPPED]
        the_plan = beam.pvalue.AsSingleton(
            accepted
            | "PlanInputs" >> beam.Map(lambda a: a[:4])
            | "Plan" >> beam.CombineGlobally(_PlanFn(listing.split_names, options))
        )
        written = (
            accepted
            | "Place" >> beam.Map(_place, the_plan=the_plan)
            | "ByShard" >> beam.GroupByKey()
            | "WriteShards"
            >> beam.ParDo(_WriteShardFn(options, self._write_bar), the_plan=the_plan)
        )
        return (
            pbegin
            | "Once" >> beam.Create([None])
            | "Finish"
            >> beam.Map(
                _finish,
                options,
                listing.labels,
                n,
                work,
                the_plan=the_plan,
                written=beam.pvalue.AsList(written),
                # Through ToList: as a side input, the scan's tagged output reaches
                # the BundleBasedDirectRunner empty.
                skipped=beam.pvalue.AsSingleton(skipped | "Skipped" >> beam.combiners.ToList()),
            )
        )


def run_conversion(
    options: ConvertOptions, beam_options: PipelineOptions | None = None
) -> metadata.DatasetInfo:
    """Runs a Beam job converting as `tfclassify.convert(options)` does, and waits.

    Args:
      options: as for `tfclassify.convert`; `resume` does not apply. Unless `quiet`,
        the files scanned and the images written are shown as `convert` shows them,
        where the runner runs the work in this process.
      beam_options: the runner and its settings; None: the local runner, in-process.

    Returns:
      What dataset.json records.

    Raises:
      What `tfclassify.convert` raises before its scan: InputError (missing input,
      bad manifest), OutputError (output_dir not safe to write), OptionsError;
      InputError when every file is skipped.
    """
    scanned = progress.ProcessBar("scan", quiet=options.quiet, show_bytes=True)
    written = progress.ProcessBar("write", quiet=options.quiet, show_bytes=True)
    with scanned, written, beam.Pipeline(options=beam_options or pipeline_options()) as p:
        bars = {"scan_bar": scanned.token, "write_bar": written.token}
        _ = p | "Convert" >> ConvertToTFRecords(options, **bars)
    return metadata.load(options.output_dir)

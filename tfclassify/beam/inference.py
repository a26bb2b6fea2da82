"""Batch inference on Apache Beam: one element per shard, and inside it the library's
own reader (`make_dataset`) and `Predictor`, exactly as `python -m tfclassify.infer`
runs them.

    shard paths -> Reshuffle -> ParDo(predict one shard) -+-> rows: (key, row)
                                                          +-> dead letter: bad records
                                                          +-> shard stats -> summary

Why whole shards in a DoFn, and not Beam's `RunInference`: its stock handlers take
examples that earlier steps decoded one by one (a Python `Map` per image, then
`BatchElements`), so every image crosses Beam's element machinery in Python and no
decode overlaps the model (benchmarks/beam_bench.py measures the two). Here the
per-image work never leaves tf.data (parallel decode, batching, prefetch) and the
model call. A `ModelHandler` whose elements are shards would fit `RunInference`'s
interface, but what it adds does not apply: batching (a shard is already thousands
of images), one `PredictionResult` per element (a shard gives rows, dead letters and
stats), and a model served from another process (`share_model_across_processes`,
which would pickle every batch to it).

What this needs from it, one model per worker process, loaded once, is what
`RunInference` itself uses: `apache_beam.utils.shared.Shared`. The DoFn's `setup`
acquires a `PreparedModel` (loaded, traced, warmed up) through one `Shared` handle,
so all DoFn instances (threads) of a worker process share it. TF's model call is
thread-safe; a LiteRT interpreter or an OpenVINO infer request is not, so with those
runtimes a process runs its shards one at a time.

The launching process loads the model too, when the pipeline is built: a bad model
path or option fails there, as one line, before any worker starts, and the class
count (the CSV header's columns) is known. An in-process runner (the local
default) then reuses that same model through the `Shared` handle.

A bad record never crashes the job. A shard is read on the reader's fast path; if it
holds a bad record, it is read again on the exact path (`skip_errors`), which
delivers every good record and names each bad one (shard, index, reason) in the
dead-letter output. A shard that cannot be read at all (missing, not a file) is one
dead-letter entry, with no rows.

`run_inference` draws a bar of the images predicted, shard by shard, where the runner
runs the DoFns in its own process (the local default): they reach it through a
`core.progress` token (a string), so other runners pickle nothing more and draw none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils import shared

from tfclassify.beam.runner import LOCAL_RUNNER, pipeline_options
from tfclassify.core import fileio, metadata, progress
from tfclassify.core.errors import DataError, InputError, OptionsError, OutputError, TfclassifyError
from tfclassify.core.options import InferOptions
from tfclassify.inference import modes
from tfclassify.inference.predictions import SUMMARY_FILE, RowFormat, accuracy, summary_json

__all__ = [
    "DEAD_LETTER",
    "LOCAL_RUNNER",
    "PredictDataset",
    "PredictShards",
    "Predictions",
    "WritePredictions",
    "dataset_shards",
    "describe_summary",
    "pipeline_options",
    "run_inference",
]

DEAD_LETTER = "dead_letter"
_STATS = "shard_stats"
_ROWS = "rows"
# What the dead-letter files are named after: `{prefix}{_DEAD_SUFFIX}-SSSSS-of-NNNNN.jsonl`.
_DEAD_SUFFIX = "-dead_letter"
_METRICS = "tfclassify"
_MISSING = (
    "records the shard lacks: dataset.json lists more than it holds, or a run of bad "
    "records longer than the reader names"
)


class Predictions(NamedTuple):
    """What `PredictShards` gives.

    Attributes:
      rows: `(key, row)` per image; `row` as `InferResult.rows` gives it (`key`,
        `true_label`, `top_k`: [{`label`, `prob`}]), the columns `infer` writes.
      dead_letter: one dict per record that could not be read or decoded, or per
        group of them: `shard`, `index` (in the shard; None for a group), `count`
        (the records it stands for: 1 for a named record; for a shard not read at
        all, its count in dataset.json, None when unknown), `error`.
      summary: one dict, `summary.json`'s: `infer`'s keys (count, accuracy...) over
        every shard, with `seconds` the wall time from the first shard's start to the
        last one's end, and `shards`, `failed_shards`, `dead_letter_records`,
        `worker_seconds` (the shards' times added up).
    """

    rows: beam.PCollection
    dead_letter: beam.PCollection
    summary: beam.PCollection


def dataset_shards(
    data: str, split: str | None = None
) -> tuple[list[str], metadata.DatasetInfo, str]:
    """The shard paths of a split of a converted dataset, from its dataset.json.

    Args:
      data: the dataset directory.
      split: None: validation if the dataset has it, else train (as `infer`).

    Returns:
      (shard paths in dataset.json's order, the `DatasetInfo`, the split).

    Raises:
      InputError: no dataset.json, no such split, or a split without records.
    """
    info, split = modes.open_dataset(data, split)
    if info.split(split).num_examples == 0:
        raise InputError(f"split {split!r} of {data} has no records")
    return info.shard_paths(split), info, split


@dataclasses.dataclass(eq=False)
class _Worker:
    """What a worker process shares between its DoFn instances (`Shared` holds it by
    weak reference: a plain class, not a tuple)."""

    prepared: modes.PreparedModel
    lock: Any  # serialises runtimes whose model call is not thread-safe


def _load(model: str, options: InferOptions, labels: tuple[str, ...] | None) -> _Worker:
    prepared = modes.prepare(model, options, labels)
    thread_safe = prepared.predictor.runtime == "tensorflow"
    return _Worker(prepared, contextlib.nullcontext() if thread_safe else threading.Lock())


def _dead(shard: str, index: int | None, count: int | None, error: str) -> dict[str, Any]:
    return {"shard": shard, "index": index, "count": count, "error": error}


def _listed_count(shard: str) -> int | None:
    """The records dataset.json lists for `shard`, when it lists it."""
    from tfclassify.reading.dataset import listed_shards

    listed = listed_shards([shard])
    info = listed[0] if listed else None
    return None if info is None else info.num_examples


class _PredictShardFn(beam.DoFn):
    """One shard path -> its rows, its dead letters (tagged) and its stats (tagged)."""

    def __init__(
        self,
        model: str,
        options: InferOptions,
        labels: tuple[str, ...] | None,
        split: str | None,
        handle: shared.Shared,
        bar: str | None = None,
    ) -> None:
        self._model, self._options, self._labels = model, options, labels
        self._split, self._handle, self._bar = split, handle, bar
        self._worker: _Worker | None = None
        self._images = Metrics.counter(_METRICS, "images")
        self._bad = Metrics.counter(_METRICS, "dead_letter_records")
        self._failed = Metrics.counter(_METRICS, "failed_shards")

    def setup(self) -> None:
        self._worker = self._handle.acquire(lambda: _load(self._model, self._options, self._labels))

    def process(self, shard: str) -> Iterator[Any]:
        worker = self._worker
        start = time.time()
        with worker.lock:
            result, dead = self._predict(worker.prepared, shard)
        end = time.time()
        if result is not None:
            for row in result.rows:
                yield row["key"], row
        for d in dead:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, d)
        stats = _ShardStats.of(result, dead, start, end)
        progress.advance(self._bar, stats.count)
        self._images.inc(stats.count)
        self._bad.inc(stats.dead_letter)
        self._failed.inc(stats.failed)
        yield beam.pvalue.TaggedOutput(_STATS, stats)

    def _predict(
        self, prepared: modes.PreparedModel, shard: str
    ) -> tuple[Any, list[dict[str, Any]]]:
        """(InferResult or None, dead letters) of one shard; never raises for its data."""
        import tensorflow as tf

        try:
            if not (prepared.options.read and prepared.options.read.skip_errors):
                try:
                    # The fast path: no per-record bookkeeping, a bad record fails it.
                    return modes.predict_shards(prepared, [shard], self._split), []
                except DataError:
                    pass  # read again below, naming each bad record
            result = modes.predict_shards(prepared, [shard], self._split, skip_errors=True)
        except (TfclassifyError, OSError, tf.errors.OpError) as e:
            return None, [_dead(shard, None, _listed_count(shard), f"shard not read: {e}")]
        dead = [_dead(r.shard, r.index, 1, r.reason) for r in result.bad_records or ()]
        unnamed = (result.skipped_records or 0) - len(dead)
        if unnamed > 0:
            dead.append(_dead(shard, None, unnamed, _MISSING))
        return result, dead


@dataclasses.dataclass
class _ShardStats:
    """What one shard adds to the summary, and their sum over shards."""

    shards: int = 0
    count: int = 0
    num_labeled: int = 0
    top1_correct: int = 0
    topk_correct: int = 0
    skipped: int = 0
    extra: int = 0
    dead_letter: int = 0
    failed: int = 0
    worker_seconds: float = 0.0
    start: float = math.inf
    end: float = -math.inf
    # A read shard's `InferResult.summary()`: how it ran (runtime, threads, device...).
    template: dict[str, Any] | None = None

    @classmethod
    def of(cls, result: Any, dead: list[dict[str, Any]], start: float, end: float) -> _ShardStats:
        """One shard's, from its `InferResult` (None: not read) and dead letters."""
        lost = sum(d["count"] or 0 for d in dead)
        stats = cls(shards=1, dead_letter=lost, worker_seconds=end - start, start=start, end=end)
        if result is None:
            return dataclasses.replace(stats, skipped=lost, failed=1)
        return dataclasses.replace(
            stats,
            count=result.count,
            num_labeled=result.num_labeled,
            top1_correct=result.top1_correct,
            topk_correct=result.topk_correct,
            skipped=result.skipped_records or 0,
            extra=result.extra_records or 0,
            template=result.summary(),
        )


_SUMS = ("shards", "count", "num_labeled", "top1_correct", "topk_correct", "skipped", "extra")
_SUMS += ("dead_letter", "failed", "worker_seconds")


class _SummaryFn(beam.CombineFn):
    """Shard stats -> `summary.json`'s dict, over every shard."""

    def __init__(self, base: dict[str, Any]) -> None:
        self._base = base  # what the launching process knows (model, data, split...)

    def create_accumulator(self) -> _ShardStats:
        return _ShardStats()

    def add_input(self, acc: _ShardStats, stats: _ShardStats) -> _ShardStats:
        return self.merge_accumulators([acc, stats])

    def merge_accumulators(self, accs: Any) -> _ShardStats:
        accs = list(accs)
        return _ShardStats(
            **{k: sum(getattr(a, k) for a in accs) for k in _SUMS},
            start=min(a.start for a in accs),
            end=max(a.end for a in accs),
            template=next((a.template for a in accs if a.template), None),
        )

    def extract_output(self, s: _ShardStats) -> dict[str, Any]:
        seconds = max(s.end - s.start, 0.0) if s.shards else 0.0
        return {
            **self._base,
            **{k: v for k, v in (s.template or {}).items() if k not in self._base},
            "count": s.count,
            "skipped_records": s.skipped,
            "extra_records": s.extra,
            "num_labeled": s.num_labeled,
            "top1_accuracy": accuracy(s.top1_correct, s.num_labeled),
            "topk_accuracy": accuracy(s.topk_correct, s.num_labeled),
            "seconds": seconds,
            "images_per_sec": s.count / seconds if seconds > 0 else float("nan"),
            "shards": s.shards,
            "failed_shards": s.failed,
            "dead_letter_records": s.dead_letter,
            "worker_seconds": s.worker_seconds,
        }


class PredictShards(beam.PTransform):
    """Shard paths (one element per shard) -> `Predictions`: rows, dead letters, summary.

    The shards are redistributed first (`Reshuffle`), so they spread over workers
    however they were made. Within a shard rows keep its record order; shards come
    out in any order.
    """

    def __init__(
        self,
        model: str,
        options: InferOptions | None = None,
        *,
        labels: Sequence[str] | None = None,
        split: str | None = None,
        data: str | None = None,
        bar: str | None = None,
    ) -> None:
        """
        Args:
          model: a model path `Predictor.load` takes, readable by every worker.
          options: as for `infer`, but `max_images` and `output` do not apply (write
            with `WritePredictions`); `read.skip_errors` reads every shard on the
            exact path from the start (bad records go to the dead letters either way).
          labels: the dataset's label names (its dataset.json), to name classes and
            score accuracy when the model has no labels.txt.
          split / data: what the shards are, for the summary.
          bar: the token of a `core.progress.ProcessBar` the images predicted
            advance (where the DoFns run in this process).

        Raises:
          OptionsError: `options.max_images` set.
        """
        super().__init__()
        options = options or InferOptions()
        if options.max_images is not None:
            raise OptionsError(
                f"max_images={options.max_images} does not apply to a Beam job, which reads "
                "whole shards; pass fewer shards"
            )
        # The rows are written as they come: no [N, classes] matrix per shard.
        self._options = dataclasses.replace(options, keep_probabilities=False, output=None)
        self._model = model
        self._labels = None if labels is None else tuple(labels)
        self._split, self._data, self._bar = split, data, bar
        self._handle = shared.Shared()
        self._worker: _Worker | None = None

    def prepared(self) -> modes.PreparedModel:
        """The model as workers run it, loaded here (once) through the workers' handle."""
        if self._worker is None:
            self._worker = self._handle.acquire(
                lambda: _load(self._model, self._options, self._labels)
            )
        return self._worker.prepared

    @property
    def top_k(self) -> int:
        """Classes each row lists (the CSV columns `WritePredictions` needs)."""
        return self.prepared().top_k

    # No type annotations on `expand`: Beam reads them as its element type hints.
    def expand(self, shards):
        prepared = self.prepared()  # fails here, in the launching process, not on workers
        fn = _PredictShardFn(
            self._model, self._options, self._labels, self._split, self._handle, self._bar
        )
        out = (
            shards
            | "Spread" >> beam.Reshuffle()
            | "Predict" >> beam.ParDo(fn).with_outputs(DEAD_LETTER, _STATS, main=_ROWS)
        )
        base = {
            "mode": self._options.mode,
            "model": prepared.predictor.path,
            "data": self._data,
            "split": self._split,
            "batch_size": 1 if self._options.mode == "sequential" else self._options.batch_size,
            "num_classes": len(prepared.class_names),
            "top_k": prepared.top_k,
            "runtime": prepared.predictor.runtime,
        }
        summary = out[_STATS] | "Summarize" >> beam.CombineGlobally(_SummaryFn(base))
        return Predictions(out[_ROWS], out[DEAD_LETTER], summary)


class PredictDataset(beam.PTransform):
    """A split of a converted dataset -> `Predictions` (a root transform:
    `pipeline | PredictDataset(...)`), one element per shard dataset.json lists."""

    def __init__(
        self, model: str, data: str, options: InferOptions | None = None, *, bar: str | None = None
    ) -> None:
        """
        Args:
          model: as for `PredictShards`.
          data: the dataset directory, readable by every worker.
          options: as for `PredictShards`; `options.split` picks the split.
          bar: as for `PredictShards`.

        Raises:
          InputError: no dataset.json, no such split or an empty one.
          OptionsError: as `PredictShards`.
        """
        super().__init__()
        options = options or InferOptions()
        self.shards, info, split = dataset_shards(data, options.split)
        self.num_images = info.split(split).num_examples  # as dataset.json lists them
        self.predict = PredictShards(
            model, options, labels=info.labels, split=split, data=data, bar=bar
        )

    @property
    def top_k(self) -> int:
        return self.predict.top_k

    def expand(self, pbegin):
        return pbegin | "Shards" >> beam.Create(self.shards) | "PredictShards" >> self.predict


def _output_files(output: str) -> dict[str, str]:
    """The patterns of what `WritePredictions(output)` writes: the name of each file
    it may create, as a glob."""
    prefix, ext = os.path.splitext(output)  # out/preds.csv: out/preds, .csv
    directory = os.path.dirname(output)
    return {
        "predictions": f"{prefix}-*-of-*{ext}",
        "dead letters": f"{prefix}{_DEAD_SUFFIX}-*-of-*.jsonl",
        "summary": FileSystems.join(directory, SUMMARY_FILE) if directory else SUMMARY_FILE,
    }


def _check_output_is_free(output: str) -> None:
    """Raises OutputError naming a file `WritePredictions(output)` could replace."""
    for what, pattern in _output_files(output).items():
        found = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]
        if found:
            raise OutputError(
                f"{found[0]} is there already ({what} of an earlier run?); the job would "
                "replace it: remove it, or choose another output"
            )


class _FormatRows(beam.DoFn):
    """(key, row) -> the row's line, as `write_predictions` writes it."""

    def __init__(self, ext: str, top_k: int) -> None:
        self._ext, self._top_k = ext, top_k

    def setup(self) -> None:
        self._format = RowFormat(self._ext, self._top_k)  # one per instance: not shared

    def process(self, keyed: tuple[str, dict[str, Any]]) -> Iterator[bytes]:
        yield self._format.line(keyed[1])


def _dead_line(dead: dict[str, Any]) -> bytes:
    # A shard path that is not UTF-8 holds surrogates; as in the JSONL rows, each is a
    # JSON escape that decodes back to its byte.
    return (json.dumps(dead, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")


def _write_text(path: str, text: str) -> None:
    """Writes `text` whole: atomically on a local disk (temporary + rename); on an
    object store (`gs://`...), whose objects appear only once closed, directly."""
    if "://" not in path:
        fileio.atomic_write_text(path, text)
        return
    with FileSystems.create(path) as f:
        f.write(fileio.encode_text(text))


def _write_summary(
    summary: dict[str, Any], path: str, output: str, files: list[str], dead: list[str]
) -> dict[str, Any]:
    summary = {
        **summary,
        "output": output,
        "output_files": sorted(files),
        "dead_letter_files": sorted(dead),
    }
    _write_text(path, summary_json(summary))
    return summary


class WritePredictions(beam.PTransform):
    """`Predictions` -> sharded prediction files, dead-letter files and summary.json.

    For `output` = `out/preds.csv` (or `.jsonl`) it writes, and only these:

    * `out/preds-SSSSS-of-NNNNN.csv`: the rows, in the format `python -m
      tfclassify.infer --output out/preds.csv` writes (`RowFormat`), each CSV file with
      its header; Beam picks the file count unless `num_shards` is given.
    * `out/preds-dead_letter-SSSSS-of-NNNNN.jsonl`: one JSON line per dead letter;
      none when there are none.
    * `out/summary.json`: the summary, written once, after both, with their names.

    Beam's file writer (`WriteToText`) replaces files whose names match its own
    pattern for this run's file count (`{prefix}-?????-of-NNNNN{ext}`) and writes
    through a `beam-temp-*` folder beside them that it removes. So that it never
    replaces anything it did not write, the pipeline is refused when files of an
    earlier run (of any count) or a summary.json are there: choose a new `output`, or
    remove them. Paths go through Beam's FileSystems: `gs://` and other stores work.
    """

    def __init__(self, output: str, top_k: int, *, num_shards: int = 0) -> None:
        """
        Raises:
          OptionsError: `output` ends in neither `.csv` nor `.jsonl`.
          OutputError: files of an earlier run, or a summary.json, are there.
        """
        super().__init__()
        self._format = RowFormat.for_path(output, top_k)
        self._output, self._top_k, self._num_shards = output, top_k, num_shards
        _check_output_is_free(output)

    def expand(self, predictions):
        prefix, ext = os.path.splitext(self._output)
        header = self._format.header()
        files = (
            predictions.rows
            | "Format" >> beam.ParDo(_FormatRows(ext, self._top_k))
            | "Write"
            >> beam.io.WriteToText(
                prefix,
                file_name_suffix=ext,
                append_trailing_newlines=False,  # each line ends as `write_predictions` ends it
                header=header,
                num_shards=self._num_shards,
            )
        )
        dead = (
            predictions.dead_letter
            | "FormatDead" >> beam.Map(_dead_line)
            | "WriteDead"
            >> beam.io.WriteToText(
                prefix + _DEAD_SUFFIX,
                file_name_suffix=".jsonl",
                append_trailing_newlines=False,
                skip_if_empty=True,
            )
        )
        return predictions.summary | "WriteSummary" >> beam.Map(
            _write_summary,
            _output_files(self._output)["summary"],
            self._output,
            beam.pvalue.AsList(files),
            beam.pvalue.AsList(dead),
        )


def run_inference(
    model: str,
    data: str,
    options: InferOptions,
    beam_options: PipelineOptions | None = None,
) -> dict[str, Any]:
    """Runs a Beam job over a split of a converted dataset and waits for it: the rows
    to `options.output`'s sharded files (see `WritePredictions`), dead letters beside
    them, then summary.json.

    Args:
      model: a model path, readable by every worker.
      data: a converted dataset directory, readable by every worker.
      options: as for `infer`; `output` (required) names the files. Unless `quiet`,
        the images predicted are shown as `infer` shows them, where the runner runs
        the work in this process.
      beam_options: the runner and its settings; None: `LOCAL_RUNNER`, in-process.

    Returns:
      The summary, as written to summary.json.

    Raises:
      OptionsError: no `output`, or `max_images`.
      InputError: a missing model, dataset or split.
      OutputError: files of an earlier run at `output`.
    """
    if not options.output:
        raise OptionsError("output is required: the job writes its predictions there")
    _check_output_is_free(options.output)  # before the model load
    predicted = progress.ProcessBar(f"infer {options.mode}", quiet=options.quiet)
    predict = PredictDataset(model, data, options, bar=predicted.token)
    predicted.total = predict.num_images
    write = WritePredictions(options.output, predict.top_k)
    with predicted, beam.Pipeline(options=beam_options or pipeline_options()) as p:
        _ = p | "Predict" >> predict | "Write" >> write
    with FileSystems.open(_output_files(options.output)["summary"]) as f:
        return json.loads(f.read().decode("utf-8"))


def describe_summary(summary: dict[str, Any]) -> str:
    """A few lines for people: what `run_inference` read, how well and how fast."""
    images = f"{summary['count']} from {summary['data']} [{summary['split']}]"
    if summary["dead_letter_records"]:
        images += f", {summary['dead_letter_records']} bad records in the dead-letter files"
    shards = str(summary["shards"])
    if summary["failed_shards"]:
        shards += f" ({summary['failed_shards']} not read: see the dead-letter files)"
    acc = "n/a (no labels)"
    if summary["top1_accuracy"] is not None:
        acc = f"top-1 {summary['top1_accuracy']:.4f}, top-{summary['top_k']} "
        acc += f"{summary['topk_accuracy']:.4f} over {summary['num_labeled']} labeled"
    rate = summary["images_per_sec"]
    speed = f"{rate or float('nan'):.1f} images/s ({summary['seconds']:.3f} s from the first "
    speed += (
        f"shard's start to the last one's end; {summary['worker_seconds']:.3f} s of shard work)"
    )
    files = summary["output_files"] + summary["dead_letter_files"]
    lines = [
        ("images", images),
        ("shards", shards),
        ("model", f"{summary['model']} ({summary['runtime']})"),
        ("accuracy", acc),
        ("speed", speed),
        ("output", ", ".join(files)),
    ]
    return "\n".join(f"{k:>9}: {v}" for k, v in lines)

"""What an inference run produced: the object a notebook shows, and the files users open.

Kept apart from the modes (`modes.py`) because every way of running a model (the
three modes, and later a Beam job or a LiteRT model) ends in the same rows: one
per image with its key, true label and top-k classes, plus a summary of how it ran.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

from tfclassify.core import fileio
from tfclassify.core.errors import OptionsError

__all__ = [
    "SUMMARY_FILE",
    "InferResult",
    "PredictionRows",
    "RowFormat",
    "accuracy",
    "summary_json",
    "write_predictions",
]

SUMMARY_FILE = "summary.json"


@dataclasses.dataclass
class InferResult:
    """What one inference run produced and how fast.

    Attributes:
      mode / device / threads: how it ran (threads as `runtime.effective_threads()`,
        with `tf_data_threads` the private pool this run's pipeline had; None: shared).
      runtime / precision / model_threads: what ran the model (`tensorflow`,
        `litert`, `openvino`), what it computed in (`Predictor.precision`) and the
        runtime's own thread count (None for TF, whose pools are in `threads`).
      frozen: whether the model ran as a frozen inference graph (`Predictor.load`).
      mixed_precision: whether TF was asked to rewrite the model to float16 compute.
      model / data / split: what was run on what.
      class_names: name of each output class (model labels.txt, else dataset labels,
        else the class index as text).
      keys: one per image, in the order read (`image/filename` of the record; bytes
        that are not UTF-8 held as surrogates: `key.encode("utf-8", "surrogateescape")`).
      true_ids: int64 [N] true class index in the model's output order; -1 unknown.
      topk_ids / topk_probs: [N, k] best classes first.
      probabilities: float32 [N, num_classes], or None if not kept.
      seconds: wall time of the read+decode+predict loop (model load and the
        one-off trace excluded).
      skipped_records: bad records the reader skipped (`ReadOptions.skip_errors`;
        0 without it, since a bad record then raises); None for a caller's
        tf.data pipeline. When `max_images` stops a run early it may include
        records the pipeline had read ahead. With dataset.json's counts, it also
        holds what a damaged shard lacks: count + skipped - extra = records listed.
      extra_records: records a shard held beyond dataset.json's count (a duplicate),
        read and counted here; 0 or None as for `skipped_records`.
      bad_records: the bad records skipped, named by shard and index
        (`reading.records.BadRecord`): those the reader could name of the
        `skipped_records` (see `ReadStats.bad_records`); None for a caller's pipeline.
    """

    mode: str
    device: str
    threads: dict[str, Any] = dataclasses.field(repr=False)
    model: str
    data: str
    split: str | None
    batch_size: int
    class_names: tuple[str, ...] = dataclasses.field(repr=False)
    keys: list[str] = dataclasses.field(repr=False)
    true_ids: np.ndarray = dataclasses.field(repr=False)
    topk_ids: np.ndarray = dataclasses.field(repr=False)
    topk_probs: np.ndarray = dataclasses.field(repr=False)
    probabilities: np.ndarray | None = dataclasses.field(repr=False)
    seconds: float
    output: str | None = None
    frozen: bool = False
    skipped_records: int | None = None
    extra_records: int | None = None
    mixed_precision: bool = False
    runtime: str = "tensorflow"
    precision: str = "f32"
    model_threads: int | None = None
    bad_records: list[Any] | None = dataclasses.field(default=None, repr=False)

    @property
    def count(self) -> int:
        return len(self.keys)

    @property
    def top_k(self) -> int:
        return int(self.topk_ids.shape[1]) if self.topk_ids.ndim == 2 else 0

    @property
    def images_per_sec(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")

    @property
    def num_labeled(self) -> int:
        return int(np.sum(self.true_ids >= 0))

    @property
    def top1_correct(self) -> int:
        """Labeled images whose best class is right."""
        known = self.true_ids >= 0
        return int(np.sum(self.topk_ids[known, 0] == self.true_ids[known]))

    @property
    def topk_correct(self) -> int:
        """Labeled images whose true class is among the top k."""
        known = self.true_ids >= 0
        return int(np.sum((self.topk_ids[known] == self.true_ids[known, None]).any(axis=1)))

    @property
    def top1_accuracy(self) -> float | None:
        """Share of labeled images whose best class is right; None without labels."""
        return accuracy(self.top1_correct, self.num_labeled)

    @property
    def topk_accuracy(self) -> float | None:
        """Share of labeled images whose true class is among the top k; None without labels."""
        return accuracy(self.topk_correct, self.num_labeled)

    @property
    def rows(self) -> PredictionRows:
        """One row per image (key, true label text or None, top-k labels and probs),
        as a sequence: `rows[0]`, `rows[:10]`, `len(rows)`, and any number of passes.
        Each row is built when read, from the arrays above: writing millions of rows
        (`write_predictions`) holds no more than the arrays do. `list(rows)`: all of them."""
        return PredictionRows(self)

    @property
    def predictions(self) -> list[dict[str, Any]]:
        """Every row of `rows`, as a list."""
        return list(self.rows)

    def summary(self) -> dict[str, Any]:
        """JSON-safe figures (what `summary.json` holds)."""
        return {
            "mode": self.mode,
            "device": self.device,
            "threads": self.threads,
            "runtime": self.runtime,
            "precision": self.precision,
            "model_threads": self.model_threads,
            "model": self.model,
            "frozen": self.frozen,
            "mixed_precision": self.mixed_precision,
            "data": self.data,
            "split": self.split,
            "batch_size": self.batch_size,
            "count": self.count,
            "skipped_records": self.skipped_records,
            "extra_records": self.extra_records,
            "num_labeled": self.num_labeled,
            "num_classes": len(self.class_names),
            "top_k": self.top_k,
            "top1_accuracy": self.top1_accuracy,
            "topk_accuracy": self.topk_accuracy,
            "seconds": self.seconds,
            "images_per_sec": self.images_per_sec,
            "output": self.output,
        }

    def _lines(self) -> list[tuple[str, str]]:
        t = self.threads
        acc = "n/a (no labels)"
        if self.top1_accuracy is not None:
            acc = f"top-1 {self.top1_accuracy:.4f}, top-{self.top_k} {self.topk_accuracy:.4f}"
            acc += f" over {self.num_labeled} labeled"
        images = f"{self.count} from {self.data}" + (f" [{self.split}]" if self.split else "")
        if self.skipped_records:
            images += f", {self.skipped_records} bad records skipped"
        if self.extra_records:
            images += f", {self.extra_records} more than dataset.json lists"
        return [
            ("images", images),
            ("model", self.model),
            ("runtime", self._runtime_text()),
            ("mode", f"{self.mode} (batch size {self.batch_size})"),
            ("device", self.device),
            (
                "threads",
                f"intra_op {t.get('intra_op_effective')} ({_chosen(t.get('intra_op'))}), "
                f"inter_op {t.get('inter_op_effective')} ({_chosen(t.get('inter_op'))}), "
                f"tf.data {t.get('tf_data_threads') or 'default'}, cpus {t.get('cpus')}",
            ),
            ("accuracy", acc),
            ("speed", f"{self.images_per_sec:.1f} images/s ({self.seconds:.3f} s)"),
        ] + ([("output", self.output)] if self.output else [])

    def _runtime_text(self) -> str:
        text = f"{self.runtime}, {self.precision}"
        if self.model_threads is not None:
            text += f", {self.model_threads} threads"
        return text

    def __str__(self) -> str:
        return "\n".join(f"{k:>9}: {v}" for k, v in self._lines())

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:right'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in self._lines()
        )
        return f"<table>{rows}</table>"


class PredictionRows(Sequence[dict[str, Any]]):
    """The rows of an `InferResult`, built when read (see `InferResult.rows`)."""

    def __init__(self, result: InferResult):
        self._result = result

    def __len__(self) -> int:
        return self._result.count

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        picked = range(len(self))[index]  # a list's rules for negatives, bounds and steps
        if isinstance(picked, range):
            return [self._row(i) for i in picked]
        return self._row(picked)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(self._row, range(len(self)))

    def __repr__(self) -> str:
        return f"<{len(self)} prediction rows>"

    def _row(self, i: int) -> dict[str, Any]:
        r = self._result
        names, t = r.class_names, int(r.true_ids[i])
        return {
            "key": r.keys[i],
            "true_label": names[t] if t >= 0 else None,
            "top_k": [
                {"label": names[int(c)], "prob": float(p)}
                for c, p in zip(r.topk_ids[i], r.topk_probs[i], strict=True)
            ],
        }


def accuracy(correct: int, labeled: int) -> float | None:
    """`correct` / `labeled`; None without labeled images."""
    return correct / labeled if labeled else None


def _chosen(configured: int | None) -> str:
    """How a TF thread count came about: 0 (or unknown) is TF's default."""
    return "set" if configured else "default"


class RowFormat:
    """One prediction row as a line of `.csv` or `.jsonl` bytes: what `write_predictions`
    writes, and what a Beam job writes to its sharded files.

    CSV columns: key, true_label, then top{i}_label, top{i}_prob for i = 1..k; each
    line ends in CSV's "\\r\\n". JSONL: {"key", "true_label" (null if unknown),
    "top_k": [{"label", "prob"}, ...]}, each line ending in "\\n".

    Keys are the records' file names, which need not be UTF-8 (Linux names are
    bytes; `InferResult.keys` holds such bytes as surrogates, Python's
    surrogateescape). CSV writes them back as the original bytes, so a key names the
    file on disk (read it with `errors="surrogateescape"`). JSONL stays valid UTF-8:
    each such byte 0xXY is the JSON escape `\\udcXY`, so
    `json.loads(line)["key"].encode("utf-8", "surrogateescape")` is the original name.

    One per thread: it formats CSV lines through a buffer of its own.
    """

    def __init__(self, ext: str, top_k: int) -> None:
        """`ext`: `.csv` or `.jsonl` (any case); `top_k`: the rows' classes (CSV columns).

        Raises:
          OptionsError: another extension.
        """
        ext = ext.lower()
        if ext not in (".csv", ".jsonl"):
            raise OptionsError(f"predictions file must end in .csv or .jsonl, got {ext!r}")
        self.ext = ext
        self.top_k = top_k
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer)

    @classmethod
    def for_path(cls, path: str, top_k: int) -> RowFormat:
        """The format a predictions file's name asks for.

        Raises:
          OptionsError: `path` ends in neither `.csv` nor `.jsonl`.
        """
        ext = os.path.splitext(path)[1]
        if ext.lower() not in (".csv", ".jsonl"):
            raise OptionsError(f"predictions file must end in .csv or .jsonl, got {path!r}")
        return cls(ext, top_k)

    def header(self) -> bytes | None:
        """The CSV header line; None for JSONL, which has none."""
        if self.ext != ".csv":
            return None
        header = ["key", "true_label"]
        for i in range(1, self.top_k + 1):
            header += [f"top{i}_label", f"top{i}_prob"]
        return self._csv_line(header)

    def line(self, row: dict[str, Any]) -> bytes:
        """One row (`InferResult.rows`) as a line, its line end included."""
        if self.ext == ".csv":
            cells = [row["key"], row["true_label"] or ""]
            for t in row["top_k"]:
                cells += [t["label"], f"{t['prob']:.6g}"]
            return self._csv_line(cells)
        # backslashreplace writes a surrogate as \udcXY, which inside a JSON string is
        # that JSON escape; json.dumps leaves surrogates only inside strings.
        text = json.dumps(row, ensure_ascii=False) + "\n"
        return text.encode("utf-8", "backslashreplace")

    def _csv_line(self, cells: list[str]) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._csv.writerow(cells)
        return self._buffer.getvalue().encode("utf-8", "surrogateescape")


def write_predictions(result: InferResult, path: str) -> str:
    """Writes one row per image to `.csv` or `.jsonl`, and `summary.json` beside it.

    Both files are written atomically (temporary file + rename). The rows' format,
    and how keys that are not UTF-8 are written: `RowFormat`.

    Returns:
      The path of `summary.json`.

    Raises:
      OptionsError: `path` ends in neither `.csv` nor `.jsonl`.
    """
    fmt = RowFormat.for_path(path, result.top_k)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    result.output = path
    with fileio.atomic_path(path) as tmp, open(tmp, "wb") as f:
        header = fmt.header()
        if header is not None:
            f.write(header)
        f.writelines(map(fmt.line, result.rows))
    summary_path = os.path.join(directory, SUMMARY_FILE)
    fileio.atomic_write_text(summary_path, summary_json(result.summary()))
    return summary_path


def summary_json(summary: dict[str, Any]) -> str:
    """`summary.json`'s text: strict JSON (NaN, when nothing was timed, as null)."""
    return json.dumps(_json_safe(summary), indent=2) + "\n"


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """NaN (no timing) -> null, so summary.json stays strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

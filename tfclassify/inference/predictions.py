"""What an inference run produced: the object a notebook shows, and the files users open.

Kept apart from the modes (`modes.py`) because every way of running a model (the
three modes, and later a Beam job or a LiteRT model) ends in the same rows: one
per image with its key, true label and top-k classes, plus a summary of how it ran.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

from tfclassify.core import fileio
from tfclassify.core.errors import OptionsError

__all__ = ["SUMMARY_FILE", "InferResult", "PredictionRows", "write_predictions"]

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
    def top1_accuracy(self) -> float | None:
        """Share of labeled images whose best class is right; None without labels."""
        known = self.true_ids >= 0
        if not known.any():
            return None
        return float(np.mean(self.topk_ids[known, 0] == self.true_ids[known]))

    @property
    def topk_accuracy(self) -> float | None:
        """Share of labeled images whose true class is among the top k; None without labels."""
        known = self.true_ids >= 0
        if not known.any():
            return None
        hits = (self.topk_ids[known] == self.true_ids[known, None]).any(axis=1)
        return float(np.mean(hits))

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


def _chosen(configured: int | None) -> str:
    """How a TF thread count came about: 0 (or unknown) is TF's default."""
    return "set" if configured else "default"


def write_predictions(result: InferResult, path: str) -> str:
    """Writes one row per image to `.csv` or `.jsonl`, and `summary.json` beside it.

    Both files are written atomically (temporary file + rename).

    CSV columns: key, true_label, then top{i}_label, top{i}_prob for i = 1..k.
    JSONL: {"key", "true_label" (null if unknown), "top_k": [{"label", "prob"}, ...]}.

    Keys are the records' file names, which need not be UTF-8 (Linux names are
    bytes; `result.keys` holds such bytes as surrogates, Python's surrogateescape).
    CSV writes them back as the original bytes, so a key names the file on disk
    (read it with `errors="surrogateescape"`). JSONL stays valid UTF-8: each such
    byte 0xXY is the JSON escape `\\udcXY`, so
    `json.loads(line)["key"].encode("utf-8", "surrogateescape")` is the original name.

    Returns:
      The path of `summary.json`.

    Raises:
      OptionsError: `path` ends in neither `.csv` nor `.jsonl`.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".csv", ".jsonl"):
        raise OptionsError(f"predictions file must end in .csv or .jsonl, got {path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    result.output = path
    # backslashreplace writes a surrogate as \udcXY, which inside a JSON string is
    # that JSON escape; json.dumps leaves surrogates only inside strings.
    errors = "surrogateescape" if ext == ".csv" else "backslashreplace"
    with (
        fileio.atomic_path(path) as tmp,
        open(tmp, "w", encoding="utf-8", errors=errors, newline="") as f,
    ):
        if ext == ".csv":
            w = csv.writer(f)
            header = ["key", "true_label"]
            for i in range(1, result.top_k + 1):
                header += [f"top{i}_label", f"top{i}_prob"]
            w.writerow(header)
            for row in result.rows:
                cells = [row["key"], row["true_label"] or ""]
                for t in row["top_k"]:
                    cells += [t["label"], f"{t['prob']:.6g}"]
                w.writerow(cells)
        else:
            for row in result.rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary_path = os.path.join(directory, SUMMARY_FILE)
    fileio.atomic_write_text(
        summary_path, json.dumps(_json_safe(result.summary()), indent=2) + "\n"
    )
    return summary_path


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """NaN (no timing) -> null, so summary.json stays strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

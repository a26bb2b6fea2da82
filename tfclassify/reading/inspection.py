"""What a converted dataset holds, at a glance: `inspect_dataset(directory)`.

Per split: images per class, the shards and their size range; the inputs the converter
skipped, by reason; and content duplicates, records whose image bytes are the same
(`image/key/sha256`), those filed under different labels first (label noise).

Class counts come from dataset.json. Duplicates need every record's sha256: one
tf.data pass parses two small features per record (sha256 and label) and decodes
no image; a dataset.json written before class counts were recorded gets its
counts from the same pass. The names of duplicated records are looked up after
it, in the shards that hold them only.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import os
from collections.abc import Sequence

import numpy as np

from tfclassify.core import metadata, schema, shardfiles
from tfclassify.core.cpus import available_cpus
from tfclassify.core.errors import DataError

__all__ = ["DatasetSummary", "Duplicate", "SplitSummary", "inspect_dataset"]

# Records parsed per step of the sha256 pass: few ops per record, little memory.
_PARSE_BATCH = 1024
_BAR_WIDTH = 30  # characters of the longest class bar in the text
_LISTED = 10  # duplicate groups the text names per kind; the rest are counted
_COPIES = 4  # copies the text names per group
_HTML_GROUPS = 50  # duplicate groups the notebook view lists (label noise first)
_SPLIT_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


@dataclasses.dataclass(frozen=True)
class Copy:
    """One record of a duplicate group."""

    split: str
    filename: str  # image/filename: the input's path relative to its root
    label: str  # the class text ("" for a record without a label)

    def __str__(self) -> str:
        return f"{self.split}:{self.filename} [{self.label}]"


@dataclasses.dataclass(frozen=True)
class Duplicate:
    """Records holding the same image bytes (equal `image/key/sha256`)."""

    sha256: str
    copies: tuple[Copy, ...]  # sorted by split, then file name

    @property
    def labels(self) -> tuple[str, ...]:
        """The distinct labels of the copies, sorted."""
        return tuple(sorted({c.label for c in self.copies}))

    @property
    def cross_label(self) -> bool:
        """Filed under more than one label: at most one of them is right."""
        return len(self.labels) > 1

    def __str__(self) -> str:
        shown = " = ".join(map(str, self.copies[:_COPIES]))
        more = len(self.copies) - _COPIES
        return f"{self.sha256[:12]}: {shown}" + (f" (and {more} more copies)" if more > 0 else "")


@dataclasses.dataclass(frozen=True)
class SplitSummary:
    """One split: images per class (label id order) and its shards' extent."""

    name: str
    class_counts: tuple[int, ...]
    num_shards: int
    shard_bytes: tuple[int, int]  # smallest, largest; (0, 0) without shards
    shard_records: tuple[int, int]

    @property
    def num_examples(self) -> int:
        return sum(self.class_counts)


@dataclasses.dataclass(frozen=True, repr=False)
class DatasetSummary:
    """What `inspect_dataset` found. `str()` (and `repr()`, so that a console shows
    it) is what `python -m tfclassify.inspect` prints; in a notebook it renders as
    an HTML table with a bar per class.

    Attributes:
      info: the dataset's dataset.json.
      splits: per split, in dataset.json's order.
      counts_from: `dataset.json`, or `records` when dataset.json predates class counts.
      skipped_examples: per skip reason code, one input skipped for it and the full
        reason (from skipped.csv), when that file is there.
      duplicates: groups of records with the same image bytes, those under
        different labels first; None when they were not looked for.
    """

    info: metadata.DatasetInfo
    splits: dict[str, SplitSummary]
    counts_from: str
    skipped_examples: dict[str, tuple[str, str]]
    duplicates: tuple[Duplicate, ...] | None

    @property
    def label_noise(self) -> tuple[Duplicate, ...]:
        """The duplicate groups filed under different labels."""
        return tuple(d for d in self.duplicates or () if d.cross_label)

    def __str__(self) -> str:
        return "\n".join(_text_lines(self))

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return _html(self)


def inspect_dataset(directory: str | os.PathLike, *, duplicates: bool = True) -> DatasetSummary:
    """Summarises the converted dataset in `directory`.

    Args:
      directory: a converted dataset (holds dataset.json).
      duplicates: look for records with the same image bytes (reads every
        record's sha256 and label; no image is decoded). False reads no record
        unless dataset.json has no class counts.

    Returns:
      A `DatasetSummary`: print it, or show it in a notebook.

    Raises:
      InputError: no readable dataset.json in `directory`.
      DataError: a shard that is missing, not a regular file, or unreadable (check
        the dataset with `python -m tfclassify.verify`).
    """
    directory = os.fspath(directory)
    info = metadata.load(directory)
    need_counts = any(s.class_counts is None for s in info.splits.values())
    columns = _read_columns(info) if duplicates or need_counts else None
    splits = {}
    for name, split in info.splits.items():
        counts = split.class_counts
        if need_counts:
            labels = columns[name][1]
            valid = labels[(labels >= 0) & (labels < info.num_classes)]
            counts = tuple(np.bincount(valid, minlength=info.num_classes).tolist())
        sizes = [s.num_bytes for s in split.shards] or [0]
        records = [s.num_examples for s in split.shards] or [0]
        splits[name] = SplitSummary(
            name, counts, len(split.shards), (min(sizes), max(sizes)), (min(records), max(records))
        )
    return DatasetSummary(
        info=info,
        splits=splits,
        counts_from="records" if need_counts else "dataset.json",
        skipped_examples=_skipped_examples(directory),
        duplicates=_duplicates(info, columns) if duplicates else None,
    )


# ---------------------------------------------------------------- reading


def _read_columns(
    info: metadata.DatasetInfo,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per split: every record's sha256 (hex, `S64`), label and shard index, in
    shard order and record order within each shard."""
    return {name: _split_columns(info.shard_paths(name), info.directory) for name in info.splits}


def _split_columns(paths: Sequence[str], directory: str) -> tuple[np.ndarray, ...]:
    import tensorflow as tf

    from tfclassify.core.tfdata import plain
    from tfclassify.reading.dataset import read_error

    for path in paths:
        if shardfiles.shard_stat(path) is None:
            raise DataError(f"{path}: shard missing (check with python -m tfclassify.verify)")
    if not paths:
        return np.zeros(0, "S64"), np.zeros(0, np.int64), np.zeros(0, np.int32)
    spec = {
        schema.SHA256: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        schema.LABEL: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }

    def read(path: tf.Tensor, index: tf.Tensor) -> tf.data.Dataset:
        def parse(serialized: tf.Tensor):
            f = tf.io.parse_example(serialized, spec)
            return f[schema.SHA256], f[schema.LABEL], tf.fill(tf.shape(serialized), index)

        return tf.data.TFRecordDataset(path).batch(_PARSE_BATCH).map(plain(parse))

    shards = tf.data.Dataset.from_tensor_slices((list(paths), tf.range(len(paths))))
    # Several shards at once, in a fixed order: a record's place in its shard is its
    # rank among the records of that shard.
    ds = shards.interleave(
        plain(read),
        cycle_length=min(len(paths), available_cpus()),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).prefetch(tf.data.AUTOTUNE)
    shas, labels, where = [], [], []
    try:
        for sha, label, index in ds.as_numpy_iterator():
            shas.append(sha.astype("S64"))
            labels.append(label)
            where.append(index)
    except tf.errors.OpError as e:
        raise read_error(e, directory) from None
    return np.concatenate(shas), np.concatenate(labels), np.concatenate(where)


def _filenames(path: str, positions: np.ndarray) -> list[str]:
    """image/filename of the records at `positions` (record indices) of one shard."""
    import tensorflow as tf

    spec = {schema.FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=b"")}
    records = tf.data.TFRecordDataset(path).batch(_PARSE_BATCH)
    names = records.map(lambda r: tf.io.parse_example(r, spec)[schema.FILENAME])
    every = np.concatenate(list(names.as_numpy_iterator()))
    return [bytes(every[i]).decode("utf-8", "surrogateescape") for i in positions.tolist()]


def _duplicates(
    info: metadata.DatasetInfo, columns: dict[str, tuple[np.ndarray, ...]]
) -> tuple[Duplicate, ...]:
    """Groups of records with equal sha256, over all splits (a copy in train and one
    in validation leaks the validation image into training)."""
    names = list(columns)
    sha = np.concatenate([columns[n][0] for n in names])
    label = np.concatenate([columns[n][1] for n in names])
    shard = np.concatenate([columns[n][2] for n in names])
    split = np.concatenate([np.full(len(columns[n][0]), i) for i, n in enumerate(names)])
    order = np.argsort(sha, kind="stable")
    ordered = sha[order]
    same_as_next = (ordered[1:] == ordered[:-1]) & (ordered[1:] != b"")
    if not same_as_next.any():
        return ()
    # Each record's place in its shard: its rank among that shard's records.
    position = np.zeros(len(sha), np.int64)
    for i in range(len(names)):
        members = np.flatnonzero(split == i)
        by_shard = members[np.argsort(shard[members], kind="stable")]
        starts = np.searchsorted(shard[by_shard], shard[by_shard], side="left")
        position[by_shard] = np.arange(len(by_shard)) - starts
    in_group = np.zeros(len(sha), bool)
    in_group[1:] |= same_as_next
    in_group[:-1] |= same_as_next
    dup = order[in_group]
    filename = _names_of(info, names, split[dup], shard[dup], position[dup])
    groups: dict[bytes, list[Copy]] = {}
    for k, r in enumerate(dup.tolist()):
        lb = int(label[r])
        text = info.labels[lb] if 0 <= lb < info.num_classes else ""
        groups.setdefault(bytes(sha[r]), []).append(Copy(names[split[r]], filename[k], text))
    found = [
        Duplicate(key.decode(), tuple(sorted(copies, key=lambda c: (c.split, c.filename))))
        for key, copies in groups.items()
    ]
    # Label noise first; then by where the copies are.
    return tuple(
        sorted(found, key=lambda d: (not d.cross_label, [(c.split, c.filename) for c in d.copies]))
    )


def _names_of(
    info: metadata.DatasetInfo,
    names: list[str],
    split: np.ndarray,
    shard: np.ndarray,
    position: np.ndarray,
) -> list[str]:
    """image/filename of each record given by (split, shard index, place in shard)."""
    found = [""] * len(split)
    for s, sh in sorted(set(zip(split.tolist(), shard.tolist(), strict=True))):
        rows = np.flatnonzero((split == s) & (shard == sh))
        path = info.shard_paths(names[s])[sh]
        for row, name in zip(rows.tolist(), _filenames(path, position[rows]), strict=True):
            found[row] = name
    return found


def _skipped_examples(directory: str) -> dict[str, tuple[str, str]]:
    """One skipped input per reason code and its full reason, from skipped.csv
    (nothing if it is missing or not what the converter writes)."""
    examples: dict[str, tuple[str, str]] = {}
    try:
        with open(os.path.join(directory, metadata.SKIPPED_FILE), encoding="utf-8") as f:
            for row in csv.DictReader(f):
                reason = row.get("reason") or ""
                examples.setdefault(reason.split(":", 1)[0], (row.get("path") or "", reason))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    return examples


# ---------------------------------------------------------------- text


def _bytes(n: int) -> str:
    """`512 B`, `20.1 KiB`, `1.5 GiB`."""
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:.1f} {unit}"


def _range(low: int | str, high: int | str) -> str:
    return str(low) if low == high else f"{low}-{high}"


def _shards_line(s: SplitSummary) -> str:
    if not s.num_shards:
        return f"{s.name}: 0 images, no shards"
    sizes = _range(*map(_bytes, s.shard_bytes))
    plural = "s" if s.num_shards != 1 else ""
    return (
        f"{s.name}: {s.num_examples} images, {s.num_shards} shard{plural} of {sizes} "
        f"({_range(*s.shard_records)} images each)"
    )


def _text_lines(summary: DatasetSummary) -> list[str]:
    info = summary.info
    lines = [
        f"{info.directory}: {info.accepted} images in {info.num_classes} classes; "
        f"{info.files_found} files found, {info.skipped} skipped"
    ]
    if summary.counts_from == "records":
        lines.append("(class counts read from the records: dataset.json predates them)")
    width = max((len(label) for label in info.labels), default=0)
    for s in summary.splits.values():
        lines.append(_shards_line(s))
        top = max(s.class_counts, default=0) or 1
        for label, n in zip(info.labels, s.class_counts, strict=True):
            bar = "#" * round(_BAR_WIDTH * n / top) if n else "(none)"
            lines.append(f"  {label:<{width}}  {n:>{len(str(top))}}  {bar}")
    if info.skipped_by_reason:
        lines.append(f"skipped inputs: {info.skipped} (listed in {metadata.SKIPPED_FILE})")
        for code, n in sorted(info.skipped_by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
            example = summary.skipped_examples.get(code)
            lines.append(
                f"  {code}: {n}" + (f", e.g. {example[0]} ({example[1]})" if example else "")
            )
    lines += _duplicate_lines(summary.duplicates)
    return lines


def _duplicate_lines(duplicates: tuple[Duplicate, ...] | None) -> list[str]:
    if duplicates is None:
        return []
    if not duplicates:
        return ["duplicates: none (no two records hold the same image bytes)"]
    copies = sum(len(d.copies) for d in duplicates)
    lines = [f"duplicates: {len(duplicates)} images stored more than once ({copies} records)"]
    for title, group in (
        ("under different labels (label noise)", [d for d in duplicates if d.cross_label]),
        ("under the same label", [d for d in duplicates if not d.cross_label]),
    ):
        if group:
            lines.append(f"  {title}: {len(group)}")
            lines += [f"    {d}" for d in group[:_LISTED]]
            if len(group) > _LISTED:
                lines.append(f"    ... and {len(group) - _LISTED} more")
    return lines


# ---------------------------------------------------------------- HTML


def _bar_svg(counts: Sequence[int], top: int, width: int = 160, height: int = 12) -> str:
    """One class's bar: a segment per split, in the split colours, scaled to `top`."""
    x = 0.0
    rects = []
    for i, n in enumerate(counts):
        w = width * n / top if top else 0
        colour = _SPLIT_COLOURS[i % len(_SPLIT_COLOURS)]
        rects.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{colour}"/>')
        x += w
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        + "".join(rects)
        + "</svg>"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; cells are HTML already (escape text before)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(summary: DatasetSummary) -> str:
    info, e = summary.info, html.escape
    names = list(summary.splits)
    parts = [
        f"<p><b>{e(info.directory)}</b>: {info.accepted} images in {info.num_classes} "
        f"classes; {info.files_found} files found, {info.skipped} skipped</p>",
        _table(
            ["split", "images", "shards", "shard size", "images per shard"],
            [
                [e(s.name), str(s.num_examples), str(s.num_shards)]
                + [_range(*map(_bytes, s.shard_bytes)), _range(*s.shard_records)]
                for s in summary.splits.values()
            ],
        ),
    ]
    legend = " ".join(
        f'<span style="color:{_SPLIT_COLOURS[i % len(_SPLIT_COLOURS)]}">&#9632;</span> {e(n)}'
        for i, n in enumerate(names)
    )
    per_class = [
        [summary.splits[n].class_counts[i] for n in names] for i in range(info.num_classes)
    ]
    top = max((sum(c) for c in per_class), default=0)
    parts.append(
        _table(
            ["class", *map(e, names), "total", legend],
            [
                [e(label), *map(str, counts), str(sum(counts)), _bar_svg(counts, top)]
                for label, counts in zip(info.labels, per_class, strict=True)
            ],
        )
    )
    if summary.counts_from == "records":
        parts.append("<p>Class counts read from the records: dataset.json predates them.</p>")
    if info.skipped_by_reason:
        parts.append(f"<p>Skipped inputs (listed in {metadata.SKIPPED_FILE}):</p>")
        rows = []
        for code, n in sorted(info.skipped_by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
            path, reason = summary.skipped_examples.get(code, ("", ""))
            rows.append([e(code), str(n), e(path), e(reason)])
        parts.append(_table(["reason", "inputs", "e.g.", "why"], rows))
    if summary.duplicates is not None:
        parts.append(f"<p>{e(_duplicate_lines(summary.duplicates)[0])}</p>")
    if summary.duplicates:
        shown = summary.duplicates[:_HTML_GROUPS]
        rows = [
            ["label noise" if d.cross_label else "same label", e(d.sha256[:12])]
            + ["<br>".join(e(str(c)) for c in d.copies)]
            for d in shown
        ]
        if len(summary.duplicates) > len(shown):
            rows.append(["", "", f"... and {len(summary.duplicates) - len(shown)} more"])
        parts.append(_table(["kind", "sha256", "records"], rows))
    return f'<div class="tfclassify-inspect">{"".join(parts)}</div>'

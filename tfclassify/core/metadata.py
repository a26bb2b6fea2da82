"""`dataset.json`: what a converted dataset promises, read by `verify` and the reader.

Written last and atomically by the converter, so its presence means every shard
it lists is complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, NoReturn

from tfclassify.core import fileio, schema
from tfclassify.core.errors import InputError

METADATA_FILE = "dataset.json"
SKIPPED_FILE = "skipped.csv"
LABELS_FILE = "labels.txt"
# What TFDS reads a dataset directory by (the converter writes it beside dataset.json).
TFDS_INFO_FILE = "dataset_info.json"
# A TFDS version folder's name.
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
# The largest count or size dataset.json may hold: JSON's interoperable integers
# (RFC 8259), and small enough that any sum of them fits the reader's int64 tensors.
MAX_COUNT = 2**53 - 1


@dataclasses.dataclass(frozen=True)
class IndexInfo:
    """A shard's record index (`schema.index_file`): one `offset size` line a record."""

    file: str  # relative to the dataset directory
    num_bytes: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    file: str  # relative to the dataset directory
    num_examples: int
    num_bytes: int
    sha256: str
    # None in a dataset.json written before shards had one.
    index: IndexInfo | None = None

    def files(self) -> list[tuple[str, int, str]]:
        """(file, num_bytes, sha256) of the shard, then of its index if it has one."""
        found = [(self.file, self.num_bytes, self.sha256)]
        if self.index is not None:
            found.append((self.index.file, self.index.num_bytes, self.index.sha256))
        return found

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.index is None:
            del d["index"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardInfo:
        """The inverse of `to_json` for a record tfclassify wrote (a done record):
        unchecked; dataset.json is checked field by field in `DatasetInfo.from_json`."""
        index = d.get("index")
        return cls(**{**d, "index": None if index is None else IndexInfo(**index)})


@dataclasses.dataclass(frozen=True)
class SplitInfo:
    """One split: its shards, and how many of its images each class holds.

    `class_counts[i]` is the number of images of label id `i` (the dataset's `labels`
    order, every label included). dataset.json stores it as `{label: count}`; one
    written before the counts were recorded has none, and loads with None: the
    counts are then known only by reading the records (`tfclassify.inspect`).
    """

    name: str
    shards: tuple[ShardInfo, ...]
    class_counts: tuple[int, ...] | None = None

    @property
    def num_examples(self) -> int:
        return sum(s.num_examples for s in self.shards)

    @property
    def num_bytes(self) -> int:
        return sum(s.num_bytes for s in self.shards)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Parsed `dataset.json`. `directory` is where the shards live."""

    directory: str
    name: str
    labels: tuple[str, ...]
    splits: dict[str, SplitInfo]
    files_found: int
    accepted: int
    skipped: int
    skipped_by_reason: dict[str, int]
    empty_classes: tuple[str, ...]
    options: dict[str, Any]

    @property
    def class_names(self) -> tuple[str, ...]:
        """The label names by label index (labels.txt's lines; Keras's `class_names`)."""
        return self.labels

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> SplitInfo:
        if name not in self.splits:
            raise InputError(
                f"split {name!r} not in {os.path.join(self.directory, METADATA_FILE)}; "
                f"available: {sorted(self.splits)}"
            )
        return self.splits[name]

    def shard_paths(self, split: str) -> list[str]:
        return [os.path.join(self.directory, s.file) for s in self.split(split).shards]

    def shards_by_path(self) -> dict[str, ShardInfo]:
        """Every split's shards by absolute path."""
        root = os.path.abspath(self.directory)
        return {
            os.path.join(root, s.file): s for split in self.splits.values() for s in split.shards
        }

    def stray_shards(self) -> list[str]:
        """Files in the directory named like shards that no split lists, sorted: a glob
        over the shards (the reader's glob form) would read their records too."""
        listed = {s.file for split in self.splits.values() for s in split.shards}
        return sorted(
            f
            for f in os.listdir(self.directory)
            if schema.parse_shard_name(f) is not None
            and f not in listed
            and not os.path.isdir(os.path.join(self.directory, f))
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": schema.SCHEMA_VERSION,
            "name": self.name,
            "labels": list(self.labels),
            "splits": {
                k: {
                    "num_examples": v.num_examples,
                    "num_bytes": v.num_bytes,
                    **(
                        {}
                        if v.class_counts is None
                        else {"class_counts": dict(zip(self.labels, v.class_counts, strict=True))}
                    ),
                    "shards": [s.to_json() for s in v.shards],
                }
                for k, v in self.splits.items()
            },
            "totals": {
                "files_found": self.files_found,
                "accepted": self.accepted,
                "skipped": self.skipped,
            },
            "skipped_by_reason": dict(sorted(self.skipped_by_reason.items())),
            "empty_classes": list(self.empty_classes),
            "options": self.options,
        }

    @classmethod
    def from_json(cls, directory: str, d: Any) -> DatasetInfo:
        """Builds the info from parsed JSON, checking every field the readers use.

        dataset.json is input like any other (hand-edited, copied from elsewhere): a
        wrong shape or type must be one InputError naming the file and the field, not
        an AttributeError deep in a reader, nor a string count that `verify` compares
        and reports as "ok".
        """
        c = _Checker(os.path.join(directory, METADATA_FILE))
        c.obj("the top level", d)
        version = c.integer("schema_version", c.key("", d, "schema_version"), minimum=None)
        if version != schema.SCHEMA_VERSION:
            c.fail(f"schema_version {version} is not supported (expected {schema.SCHEMA_VERSION})")
        labels = c.strings("labels", c.key("", d, "labels"))
        splits = {}
        for k, v in c.obj("splits", c.key("", d, "splits")).items():
            where = f"splits.{k}"
            c.obj(where, v)
            shards = c.array(f"{where}.shards", c.key(where, v, "shards"))
            splits[k] = SplitInfo(
                k,
                tuple(c.shard(f"{where}.shards[{i}]", s) for i, s in enumerate(shards)),
                c.class_counts(f"{where}.class_counts", v.get("class_counts"), labels),
            )
        for field in ("num_examples", "num_bytes"):
            # Each entry is bounded; so is their sum, which the readers hold in an int64.
            total = sum(getattr(s, field) for split in splits.values() for s in split.shards)
            if total > MAX_COUNT:
                c.fail(f"the shards' {field} add up to {total}, more than {MAX_COUNT}")
        t = c.obj("totals", c.key("", d, "totals"))
        reasons = c.obj("skipped_by_reason", d.get("skipped_by_reason", {}))
        return cls(
            directory=directory,
            name=c.string("name", c.key("", d, "name")),
            labels=tuple(labels),
            splits=splits,
            files_found=c.integer("totals.files_found", c.key("totals", t, "files_found")),
            accepted=c.integer("totals.accepted", c.key("totals", t, "accepted")),
            skipped=c.integer("totals.skipped", c.key("totals", t, "skipped")),
            skipped_by_reason={
                k: c.integer(f"skipped_by_reason.{k}", n) for k, n in reasons.items()
            },
            empty_classes=tuple(c.strings("empty_classes", d.get("empty_classes", []))),
            options=dict(c.obj("options", d.get("options", {}))),
        )

    def save(self) -> None:
        fileio.atomic_write_text(
            os.path.join(self.directory, METADATA_FILE),
            json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n",
        )


def load(directory: str) -> DatasetInfo:
    """Read `directory/dataset.json`; a clear error when it is not a converted dataset.

    Every way the file can be unusable (not UTF-8, not JSON, the wrong structure or
    types, a shard outside the folder) is an InputError naming the file and the field:
    train, infer and verify all read it, and each must fail in one line, not a trace.
    """
    path = os.path.join(directory, METADATA_FILE)
    remote = fileio.is_remote(directory)
    if remote:  # gs://...: no folders to tell apart from files
        import tensorflow as tf

        exists, is_file, opener = tf.io.gfile.exists, tf.io.gfile.exists, tf.io.gfile.GFile
    else:
        exists, is_file, opener = os.path.isdir, os.path.isfile, open
    if not exists(directory):
        if not remote and os.path.exists(directory):
            raise InputError(f"dataset directory is not a directory: {directory}")
        raise InputError(f"dataset directory not found: {directory}")
    if not is_file(path) and not remote:
        directory = _version_dir(directory)
        path = os.path.join(directory, METADATA_FILE)
    if not is_file(path):
        raise InputError(
            f"{directory} has no {METADATA_FILE}: not a converted dataset "
            "(run `python -m tfclassify.convert` first, or pass shard paths/glob)"
        )
    try:
        with opener(path, "rb") as f:
            d = json.loads(f.read().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text: {e}") from e
    except json.JSONDecodeError as e:
        raise InputError(f"{path} is not valid JSON: {e}") from e
    except RecursionError as e:  # nesting deeper than the parser's stack
        raise InputError(f"{path} is not a dataset description: nested too deeply") from e
    return DatasetInfo.from_json(directory, d)


def _version_dir(directory: str) -> str:
    """Where a dataset in TFDS's layout keeps its files: `directory` holds one folder
    per version (`1.0.0/`, as `tfds.builder(name, data_dir=...)` finds a dataset
    copied to `data_dir/name/1.0.0/`); the highest version that holds a dataset.json,
    as TFDS picks one. `directory` itself when it holds no such folder.

    Raises:
      InputError: `directory` is a TFDS dataset that tfclassify did not convert.
    """
    versions = []
    for entry in os.listdir(directory):
        m = _VERSION.fullmatch(entry)
        if m and os.path.isfile(os.path.join(directory, entry, METADATA_FILE)):
            versions.append((tuple(int(n) for n in m.groups()), entry))
    if versions:
        return os.path.join(directory, max(versions)[1])
    if os.path.isfile(os.path.join(directory, TFDS_INFO_FILE)):
        raise InputError(
            f"{directory} is a TFDS dataset that tfclassify did not convert (it has no "
            f"{METADATA_FILE}): read it with tfds.builder_from_directory"
        )
    return directory


class _Checker:
    """Small explicit type checks for dataset.json (no JSON-schema library: only what
    the readers use, and cheap enough that loading stays fast). Each failure is one
    InputError: `PATH: FIELD must be ..., got VALUE`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, message: str) -> NoReturn:
        raise InputError(f"{self.path}: {message}")

    def bad(self, where: str, want: str, value: Any) -> NoReturn:
        self.fail(f"{where} must be {want}, got {_short(value)}")

    def key(self, where: str, d: dict[str, Any], name: str) -> Any:
        if name not in d:
            self.fail(f"{where or 'the top level'} has no {name!r}")
        return d[name]

    def obj(self, where: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.bad(where, "an object", value)
        return value

    def array(self, where: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            self.bad(where, "a list", value)
        return value

    def string(self, where: str, value: Any) -> str:
        if not isinstance(value, str):
            self.bad(where, "a string", value)
        return value

    def strings(self, where: str, value: Any) -> list[str]:
        for i, v in enumerate(self.array(where, value)):
            self.string(f"{where}[{i}]", v)
        return value

    def integer(self, where: str, value: Any, minimum: int | None = 0) -> int:
        # bool is an int subclass, but `true` is no count.
        if not isinstance(value, int) or isinstance(value, bool):
            self.bad(where, "an integer", value)
        if minimum is not None and not minimum <= value <= MAX_COUNT:
            self.bad(where, f"an integer from {minimum} to {MAX_COUNT}", value)
        return value

    def class_counts(self, where: str, value: Any, labels: list[str]) -> tuple[int, ...] | None:
        """`{label: count}` as counts by label id (a label it omits has none); None
        when absent (a dataset.json from before the counts were recorded)."""
        if value is None:
            return None
        position = {label: i for i, label in enumerate(labels)}
        counts = [0] * len(labels)
        for label, n in self.obj(where, value).items():
            if label not in position:
                self.bad(f"{where} key", "a label of the label map", label)
            counts[position[label]] = self.integer(f"{where}.{label}", n)
        return tuple(counts)

    def shard(self, where: str, s: Any) -> ShardInfo:
        self.obj(where, s)
        file = self.string(f"{where}.file", self.key(where, s, "file"))
        if not is_plain_file_name(file):
            # `../x` or `/etc/x` would make verify and the readers open a file
            # outside the dataset: a shard is always a file in the dataset folder.
            self.bad(f"{where}.file", "a file name inside the dataset directory", file)
        return ShardInfo(
            file=file,
            num_examples=self.integer(f"{where}.num_examples", self.key(where, s, "num_examples")),
            num_bytes=self.integer(f"{where}.num_bytes", self.key(where, s, "num_bytes")),
            sha256=self.string(f"{where}.sha256", self.key(where, s, "sha256")),
            index=self.index(f"{where}.index", s.get("index"), file),
        )

    def index(self, where: str, s: Any, shard_file: str) -> IndexInfo | None:
        """A shard's index entry; absent (None) in a dataset.json of an older version."""
        if s is None:
            return None
        self.obj(where, s)
        file = self.string(f"{where}.file", self.key(where, s, "file"))
        if file != schema.index_file(shard_file):
            # The one name it can have: no path for a reader to follow out of the folder.
            self.bad(f"{where}.file", repr(schema.index_file(shard_file)), file)
        return IndexInfo(
            file=file,
            num_bytes=self.integer(f"{where}.num_bytes", self.key(where, s, "num_bytes")),
            sha256=self.string(f"{where}.sha256", self.key(where, s, "sha256")),
        )


def file_path(directory: str, relative: str) -> str:
    """The path of `relative`, a file name dataset.json gives (`/` between its
    parts), in `directory`."""
    return os.path.join(directory, *relative.split("/"))


def is_plain_file_name(name: str) -> bool:
    """True for a bare file name: no directory part, not `.`/`..`, not empty."""
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return (
        name not in ("", ".", "..")
        and not any(sep in name for sep in seps)
        and "\0" not in name
        and not os.path.isabs(name)
    )


def _short(value: Any, limit: int = 60) -> str:
    """repr of `value` cut to `limit` characters, so the error stays one short line."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."

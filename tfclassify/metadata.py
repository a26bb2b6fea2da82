"""`dataset.json`: what a converted dataset promises, read by `verify` and the reader.

Written last and atomically by the converter, so its presence means every shard
it lists is complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from tfclassify import fileio, schema
from tfclassify.errors import DataError, InputError

METADATA_FILE = "dataset.json"
SKIPPED_FILE = "skipped.csv"
LABELS_FILE = "labels.txt"


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    file: str  # relative to the dataset directory
    num_examples: int
    num_bytes: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class SplitInfo:
    name: str
    shards: tuple[ShardInfo, ...]

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

    def split(self, name: str) -> SplitInfo:
        if name not in self.splits:
            raise InputError(
                f"split {name!r} not in {os.path.join(self.directory, METADATA_FILE)}; "
                f"available: {sorted(self.splits)}"
            )
        return self.splits[name]

    def shard_paths(self, split: str) -> list[str]:
        return [os.path.join(self.directory, s.file) for s in self.split(split).shards]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": schema.SCHEMA_VERSION,
            "name": self.name,
            "labels": list(self.labels),
            "splits": {
                k: {
                    "num_examples": v.num_examples,
                    "num_bytes": v.num_bytes,
                    "shards": [dataclasses.asdict(s) for s in v.shards],
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
    def from_json(cls, directory: str, d: dict[str, Any]) -> DatasetInfo:
        version = d.get("schema_version")
        if version != schema.SCHEMA_VERSION:
            raise DataError(
                f"{os.path.join(directory, METADATA_FILE)}: schema_version {version!r} "
                f"is not supported (expected {schema.SCHEMA_VERSION})"
            )
        try:
            splits = {
                k: SplitInfo(k, tuple(ShardInfo(**s) for s in v["shards"]))
                for k, v in d["splits"].items()
            }
            t = d["totals"]
            return cls(
                directory=directory,
                name=d["name"],
                labels=tuple(d["labels"]),
                splits=splits,
                files_found=int(t["files_found"]),
                accepted=int(t["accepted"]),
                skipped=int(t["skipped"]),
                skipped_by_reason=dict(d.get("skipped_by_reason", {})),
                empty_classes=tuple(d.get("empty_classes", ())),
                options=dict(d.get("options", {})),
            )
        except (KeyError, TypeError) as e:
            raise DataError(f"{os.path.join(directory, METADATA_FILE)} is malformed: {e!r}") from e

    def save(self) -> None:
        fileio.atomic_write_text(
            os.path.join(self.directory, METADATA_FILE),
            json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n",
        )


def load(directory: str) -> DatasetInfo:
    """Read `directory/dataset.json`; a clear error when it is not a converted dataset."""
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isdir(directory):
        raise InputError(f"dataset directory not found: {directory}")
    if not os.path.isfile(path):
        raise InputError(
            f"{directory} has no {METADATA_FILE}: not a converted dataset "
            "(run `python -m tfclassify.convert` first, or pass shard paths/glob)"
        )
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON: {e}") from e
    return DatasetInfo.from_json(directory, d)

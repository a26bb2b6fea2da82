"""What other readers need beside the shards, written by the converter in the same run.

- TFDS: `dataset_info.json`, `features.json` and the label names file, so that
  `tfds.builder_from_directory(DIR)` reads the shards as they are. Its features
  are named by our record keys: TFDS parses a feature `image/encoded` from the
  Example key `image/encoded`, so no key is renamed and no record rewritten.
- NVIDIA DALI (and the `tfrecord` package): one index per shard, a text line
  `offset size` per record, `offset` where its length header starts and `size`
  its whole framing (`schema.TFRECORD_OVERHEAD` plus the payload), both in bytes.

Only JSON and text: nothing here imports TFDS.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tfclassify.core import schema
from tfclassify.core.errors import DataError
from tfclassify.core.metadata import TFDS_INFO_FILE, DatasetInfo

TFDS_FEATURES_FILE = "features.json"
# Where TFDS keeps a ClassLabel's names: the feature's key, `/` as `.`.
TFDS_LABELS_FILE = schema.LABEL.replace("/", ".") + ".labels.txt"
TFDS_FILES = (TFDS_INFO_FILE, TFDS_FEATURES_FILE, TFDS_LABELS_FILE)
# The dataset's version for TFDS (its `data_dir/name/VERSION/` folder).
TFDS_VERSION = "1.0.0"

_FEATURES = "tensorflow_datasets.core.features."


def _text(description: str) -> dict[str, Any]:
    return {
        "pythonClassName": _FEATURES + "text_feature.Text",
        "text": {},
        "description": description,
    }


def _int64(description: str) -> dict[str, Any]:
    return {
        "pythonClassName": _FEATURES + "scalar.Scalar",
        "tensor": {"dtype": "int64", "encoding": "none", "shape": {}},
        "description": description,
    }


def _features(num_classes: int) -> dict[str, Any]:
    """The features.json of our records (protobuf's JSON: 64-bit integers as strings)."""
    features = {
        schema.ENCODED: {
            "pythonClassName": _FEATURES + "image_feature.Image",
            # Decoded to 3 channels (grayscale expanded), as tfclassify's reader does.
            "image": {"dtype": "uint8", "shape": {"dimensions": ["-1", "-1", "3"]}},
            "description": "the image, decoded from its stored JPEG or PNG",
        },
        schema.FORMAT: _text("jpeg or png"),
        schema.LABEL: {
            "pythonClassName": _FEATURES + "class_label_feature.ClassLabel",
            "classLabel": {"numClasses": str(num_classes)},
            "description": "the class index (the names: labels.txt)",
        },
        schema.TEXT: _text("the class name"),
        schema.HEIGHT: _int64("stored height in pixels"),
        schema.WIDTH: _int64("stored width in pixels"),
        schema.CHANNELS: _int64("stored channels"),
        schema.FILENAME: _text("the input file, relative to the input folder"),
        schema.SHA256: _text("sha256 of image/encoded, in hex"),
    }
    return {
        "pythonClassName": _FEATURES + "features_dict.FeaturesDict",
        "featuresDict": {"features": features},
    }


def _dataset_info(info: DatasetInfo) -> dict[str, Any]:
    """The dataset_info.json of `info`: its splits as written, in dataset.json's order."""
    splits = [
        {
            "name": name,
            "numBytes": str(split.num_bytes),
            "shardLengths": [str(s.num_examples) for s in split.shards],
            "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
        }
        for name, split in info.splits.items()
    ]
    keys = [{"featureKey": schema.ENCODED}, {"featureKey": schema.LABEL}]
    return {
        "name": info.name,
        "version": TFDS_VERSION,
        "description": (
            f"Image classification data converted by tfclassify: {info.num_classes} classes, "
            f"{info.accepted} images."
        ),
        "fileFormat": "tfrecord",
        "splits": splits,
        "supervisedKeys": {"tuple": {"items": keys}},
    }


def tfds_files(info: DatasetInfo) -> dict[str, bytes]:
    """{file name: bytes} of the TFDS metadata of the dataset `info` describes."""

    def dump(d: dict[str, Any]) -> bytes:
        return (json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()

    return {
        TFDS_INFO_FILE: dump(_dataset_info(info)),
        TFDS_FEATURES_FILE: dump(_features(info.num_classes)),
        # The converter's label names are one a line already (see sources.label_problem).
        TFDS_LABELS_FILE: "".join(f"{label}\n" for label in info.labels).encode(),
    }


def tfds_mismatch(info: DatasetInfo, files: dict[str, bytes]) -> str:
    """How TFDS metadata `files` (as `tfds_files` names them) disagree with `info`;
    '' when they agree. Compares what TFDS reads the shards by (name, split sizes,
    shard lengths, label names), not the wording."""
    try:
        return _mismatch(info, files)
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # another structure
        return f"the TFDS files are not what tfclassify writes ({type(e).__name__}: {e})"


def _mismatch(info: DatasetInfo, files: dict[str, bytes]) -> str:
    got = json.loads(files[TFDS_INFO_FILE])
    features = json.loads(files[TFDS_FEATURES_FILE])["featuresDict"]["features"]
    num_classes = int(features[schema.LABEL]["classLabel"]["numClasses"])
    splits = {s["name"]: s for s in got["splits"]}
    names = files[TFDS_LABELS_FILE].decode("utf-8").splitlines()
    want = _dataset_info(info)
    if got["name"] != info.name:
        return f"{TFDS_INFO_FILE} names the dataset {got['name']!r}, not {info.name!r}"
    if set(splits) != {s["name"] for s in want["splits"]}:
        return f"{TFDS_INFO_FILE} lists the splits {sorted(splits)}"
    for split in want["splits"]:
        for field in ("shardLengths", "numBytes"):
            if splits[split["name"]].get(field) != split[field]:
                theirs = splits[split["name"]].get(field)
                return f"{TFDS_INFO_FILE}: split {split['name']!r} has {field} {theirs}"
    if num_classes != info.num_classes or tuple(names) != info.labels:
        return f"{TFDS_FEATURES_FILE} and {TFDS_LABELS_FILE} disagree with the label map"
    return ""


def dali_index(sizes: Iterable[int]) -> bytes:
    """The index of a shard whose records have these framed sizes, in order."""
    lines = []
    offset = 0
    for size in sizes:
        lines.append(f"{offset} {size}\n")
        offset += size
    return "".join(lines).encode()


def parse_dali_index(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each line of a shard index.

    Raises:
      DataError: a line that is not two non-negative decimal integers.
    """
    entries = []
    for number, line in enumerate(data.split(b"\n")[:-1] if data else [], 1):
        parts = line.split(b" ")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise DataError(f"line {number} is not `offset size`: {line[:40]!r}")
        entries.append((int(parts[0]), int(parts[1])))
    if data and not data.endswith(b"\n"):
        raise DataError("the last line has no line break")
    return entries

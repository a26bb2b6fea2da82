"""Shards written by hand for the reader's tests (test_data, test_preprocess,
test_records): tiny images, `schema.serialize` + `tf.io.TFRecordWriter` (not the
converter), and an independent reference decode to compare the reader with; and
`read_records`, the converter tests' view of what a dataset holds.
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from tfclassify.core import interop, metadata, schema
from tfclassify.core.options import ReadOptions

LABELS = ("cat", "dog", "eel")
# (height, width, format, mode): wide, tall, square, grayscale and RGBA PNGs.
TRAIN_SPECS = [
    (40, 60, "jpeg", "RGB"),
    (50, 30, "png", "RGB"),
    (24, 24, "jpeg", "RGB"),
    (33, 47, "png", "L"),
    (64, 20, "png", "RGBA"),
    (20, 64, "jpeg", "RGB"),
    (90, 70, "jpeg", "RGB"),
]
VALIDATION_SPECS = [(30, 30, "png", "RGB"), (45, 25, "jpeg", "RGB")]


def encode(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        Image.fromarray(arr).save(buf, "JPEG", quality=90)
    else:
        Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def make_record(
    i: int, h: int, w: int, fmt: str, mode: str = "RGB", seed: int = 0
) -> schema.Record:
    rng = np.random.default_rng(seed * 1000 + i)
    # Smooth gradients plus noise: JPEG-friendly and not constant under resize.
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([yy * 255 // max(h - 1, 1), xx * 255 // max(w - 1, 1), (yy + xx) % 256], -1)
    arr = np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr).convert(mode)
    encoded = encode(np.asarray(img), fmt)
    return schema.Record(
        encoded=encoded,
        format=fmt,
        label=i % len(LABELS),
        text=LABELS[i % len(LABELS)],
        filename=f"{LABELS[i % len(LABELS)]}/img{seed}_{i}.{fmt}",
        height=h,
        width=w,
        channels=len(mode) if mode != "RGBA" else 4,
        sha256=hashlib.sha256(encoded).hexdigest(),
    )


def write_shard(path: str, records: list[schema.Record | bytes]) -> None:
    with tf.io.TFRecordWriter(path) as writer:
        for r in records:
            writer.write(r if isinstance(r, bytes) else schema.serialize(r))


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write_file(path: str, raw: bytes) -> None:
    with open(path, "wb") as f:
        f.write(raw)


def frames(raw: bytes) -> list[bytes]:
    """A TFRecord file's records, each with its framing (length, CRCs), in order."""
    out, pos = [], 0
    while pos < len(raw):
        end = pos + int.from_bytes(raw[pos : pos + 8], "little") + schema.TFRECORD_OVERHEAD
        out.append(raw[pos:end])
        pos = end
    return out


# Structural damage to a shard, each leaving every remaining record intact.
DAMAGE = ("zero", "cut", "drop", "duplicate", "cut_mid")


def damage(path: str, kind: str, at: int) -> tuple[int, int, int]:
    """Damages the shard at `path` (one of DAMAGE, at record `at`): emptied, cut after
    record `at - 1`, record `at` dropped or written twice, or cut inside record `at`.

    Returns:
      (records still readable, records missing, records extra) against its count.
    """
    f = frames(read_file(path))
    n = len(f)
    raw, *counts = {
        "zero": (b"", 0, n, 0),
        "cut": (b"".join(f[:at]), at, n - at, 0),
        "drop": (b"".join(f[:at] + f[at + 1 :]), n - 1, 1, 0),
        "duplicate": (b"".join(f[: at + 1] + f[at:]), n + 1, 0, 1),
        "cut_mid": (b"".join(f[:at]) + f[at][: len(f[at]) // 2], at, n - at, 0),
    }[kind]
    write_file(path, raw)
    return tuple(counts)


def shard_info(path: str, n: int) -> metadata.ShardInfo:
    raw = read_file(path)
    return metadata.ShardInfo(os.path.basename(path), n, len(raw), hashlib.sha256(raw).hexdigest())


def collect(ds: tf.data.Dataset) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {}
    for batch in ds:
        for k, v in batch.items():
            parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def by_key(out: dict[str, np.ndarray]) -> dict[str, dict]:
    return {k.decode(): {f: out[f][i] for f in out if f != "key"} for i, k in enumerate(out["key"])}


# ------------------------------------------------------------- independent reference


def ref_target(h: int, w: int, size: tuple[int, int], mode: str, crop_fraction: float):
    """The geometry written out by hand, independent of data.resize_target."""
    th, tw = size
    if mode == "squash":
        return th, tw
    if mode == "center_crop":
        s = max(th / h, tw / w) / crop_fraction
        return max(th, int(np.round(h * s))), max(tw, int(np.round(w * s)))
    s = min(th / h, tw / w)
    return min(th, max(1, int(np.round(h * s)))), min(tw, max(1, int(np.round(w * s))))


def reference(record: schema.Record, options: ReadOptions, ratio: int = 1) -> np.ndarray:
    if ratio == 1:
        # Pillow: an independent decoder; libjpeg's accurate IDCT, as dct_method's default.
        img = np.asarray(Image.open(io.BytesIO(record.encoded)).convert("RGB"))
    else:
        img = tf.io.decode_jpeg(
            record.encoded, channels=3, ratio=ratio, dct_method="INTEGER_ACCURATE"
        )
    th, tw = options.image_size
    rh, rw = ref_target(
        record.height, record.width, (th, tw), options.resize, options.crop_fraction
    )
    x = tf.image.resize(img, [rh, rw], method=options.resize_method).numpy()
    if options.resize == "center_crop":
        top, left = (rh - th) // 2, (rw - tw) // 2
        x = x[top : top + th, left : left + tw]
    elif options.resize == "pad":
        top, left = (th - rh) // 2, (tw - rw) // 2
        x = np.pad(x, [(top, th - rh - top), (left, tw - rw - left), (0, 0)])
    x = np.clip(x, 0, 255)
    if options.normalize == "unit":
        x = x / 255.0
    elif options.normalize == "symmetric":
        x = x / 127.5 - 1.0
    elif options.normalize == "imagenet":
        x = (x / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    return x.astype(np.float32)


def write_dataset(root: str) -> dict:
    """A converted-looking dataset in `root`: 2 train shards, 1 validation shard,
    dataset.json. Returns {"dir", "train", "validation"} (the records per split)."""
    train = [make_record(i, *spec) for i, spec in enumerate(TRAIN_SPECS)]
    val = [make_record(i, *spec, seed=1) for i, spec in enumerate(VALIDATION_SPECS)]
    splits = {}
    for split, records, count in (("train", train, 2), ("validation", val, 1)):
        shards = []
        for s in range(count):
            path = os.path.join(root, schema.shard_name("data", split, s, count))
            write_shard(path, records[s::count])
            shards.append(shard_info(path, len(records[s::count])))
        splits[split] = metadata.SplitInfo(split, tuple(shards))
    save_dataset_info(root, splits)
    return {"dir": root, "train": train, "validation": val}


def save_dataset_info(
    root: str, splits: dict[str, metadata.SplitInfo], labels: tuple[str, ...] = LABELS
) -> None:
    """dataset.json for shards written by hand: every record accepted, none skipped."""
    n = sum(split.num_examples for split in splits.values())
    metadata.DatasetInfo(
        directory=root,
        name="data",
        labels=labels,
        splits=splits,
        files_found=n,
        accepted=n,
        skipped=0,
        skipped_by_reason={},
        empty_classes=(),
        options={},
    ).save()


def read_records(directory: str) -> dict[str, schema.Record]:
    """Every record of a converted dataset by its image/filename, read with plain TF."""
    info = metadata.load(directory)
    out = {}
    for split in info.splits:
        for path in info.shard_paths(split):
            for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
                r = schema.parse(raw)
                out[r.filename] = r
    return out


def output_files(directory: str) -> dict[str, bytes]:
    """Every file below `directory` (a conversion's output, its index folder too):
    path relative to it -> bytes."""
    found = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            found[os.path.relpath(path, directory)] = read_file(path)
    return found


def assert_same_output(a: str, b: str) -> None:
    """The two folders hold the same files, byte for byte."""
    want, got = output_files(a), output_files(b)
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ (0x82F63B78 if n & 1 else 0)
        table.append(n)
    return table


_TABLE = _crc32c_table()


def _masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C of `data` (its length headers are 8 bytes)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def check_indexes(info: metadata.DatasetInfo) -> int:
    """Every index line of every shard is a record: its offset points at a length
    header whose CRC is right, the size is that length plus the framing, and the
    records follow one another to the end of the shard. Returns the records seen."""
    seen = 0
    for split in info.splits.values():
        for shard in split.shards:
            raw = read_file(os.path.join(info.directory, shard.file))
            index = read_file(metadata.file_path(info.directory, shard.index.file))
            entries = interop.parse_dali_index(index)
            assert len(entries) == shard.num_examples
            end = 0
            for offset, size in entries:
                header = raw[offset : offset + 8]
                assert offset == end
                assert int.from_bytes(raw[offset + 8 : offset + 12], "little") == _masked_crc(
                    header
                )
                assert int.from_bytes(header, "little") + schema.TFRECORD_OVERHEAD == size
                end = offset + size
            assert end == len(raw)
            seen += len(entries)
    return seen

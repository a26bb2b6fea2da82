"""tfclassify.data: make_dataset against an independent reference decode, sources, errors.

Shards are built here with `schema.serialize` + `tf.io.TFRecordWriter` (not the
converter), with tiny images so the whole module runs in seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfclassify import data, metadata, preprocess, schema
from tfclassify.errors import InputError, OptionsError
from tfclassify.options import ReadOptions
from tfclassify.records import _WINDOW

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


def shard_info(path: str, n: int) -> metadata.ShardInfo:
    raw = read_file(path)
    return metadata.ShardInfo(os.path.basename(path), n, len(raw), hashlib.sha256(raw).hexdigest())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> dict:
    """A converted-looking dataset: 2 train shards, 1 validation shard, dataset.json."""
    root = str(tmp_path_factory.mktemp("data_ds"))
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
    metadata.DatasetInfo(
        directory=root,
        name="data",
        labels=LABELS,
        splits=splits,
        files_found=len(train) + len(val),
        accepted=len(train) + len(val),
        skipped=0,
        skipped_by_reason={},
        empty_classes=(),
        options={},
    ).save()
    return {"dir": root, "train": train, "validation": val}


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


# ------------------------------------------------------------- options and pure helpers


def test_read_options_defaults_and_normalised_size():
    o = ReadOptions()
    assert (o.split, o.image_size, o.batch_size, o.resize, o.normalize) == (
        "train",
        (224, 224),
        32,
        "center_crop",
        "unit",
    )
    assert (o.crop_fraction, o.dtype, o.data_format, o.prefetch, o.skip_errors) == (
        0.875,
        "float32",
        "NHWC",
        ReadOptions.AUTOTUNE,
        False,
    )
    assert ReadOptions(image_size=[12, 20]).image_size == (12, 20)


@pytest.mark.parametrize(
    "kwargs, shown",
    [
        ({"image_size": 0}, "0"),
        ({"batch_size": 0}, "0"),
        ({"resize": "stretch"}, "'stretch'"),
        ({"crop_fraction": 1.5}, "1.5"),
        ({"resize_method": "cubic"}, "'cubic'"),
        ({"normalize": "zscore"}, "'zscore'"),
        ({"dtype": "int8"}, "'int8'"),
        ({"dtype": "uint8"}, "'unit'"),  # uint8 needs normalize='none'
        ({"data_format": "NCWH"}, "'NCWH'"),
        ({"shuffle_buffer": -1}, "-1"),
        ({"map_parallelism": 0}, "0"),
        ({"prefetch": -2}, "-2"),
        ({"deterministic": "yes"}, "'yes'"),
        ({"dct_method": "FLOAT"}, "'FLOAT'"),
        ({"ram_budget_mb": 64}, "autotune=True"),  # the budget is the autotuner's
    ],
)
def test_read_options_reject_bad_values_showing_them(kwargs, shown):
    with pytest.raises(OptionsError) as err:
        ReadOptions(**kwargs)
    assert shown in str(err.value)


def test_choose_ratio_table():
    table = [
        # (h, w, target_h, target_w) -> ratio
        ((100, 100, 100, 100), 1),
        ((199, 400, 100, 100), 1),  # h short of 2x by one pixel
        ((200, 200, 100, 100), 2),
        ((399, 800, 100, 100), 2),
        ((400, 400, 100, 100), 4),
        ((799, 10_000, 100, 100), 4),
        ((800, 800, 100, 100), 8),
        ((5000, 5000, 100, 100), 8),  # never beyond 8
        ((50, 50, 100, 100), 1),  # upscaling
        ((96, 96, 16, 16), 4),
        ((96, 96, 18, 18), 4),
        ((96, 96, 12, 12), 8),
    ]
    assert [data.choose_ratio(*args) for args, _ in table] == [r for _, r in table]
    # The pipeline's vectorized twin (squash: the resize target is the output size).
    for (h, w, th, tw), want in table:
        o = ReadOptions(image_size=(th, tw), resize="squash")
        _, index = preprocess.geometry(tf.constant([[h, w], [0, 0]], tf.int64), o)
        assert [preprocess.JPEG_RATIOS[i] for i in index.numpy()] == [want, 1]  # unknown: 1


def test_resize_target_table_and_graph_twin_agree():
    sq = ReadOptions(image_size=(16, 24), resize="squash")
    cc = ReadOptions(image_size=16, resize="center_crop")
    cc1 = ReadOptions(image_size=16, resize="center_crop", crop_fraction=1.0)
    pad = ReadOptions(image_size=(16, 24), resize="pad")
    table = [
        ((40, 60, sq), (16, 24)),
        ((40, 60, cc), (18, 27)),  # 16/0.875 = 18.29 -> shorter side 18
        ((60, 40, cc), (27, 18)),
        ((40, 60, cc1), (16, 24)),
        ((24, 24, cc1), (16, 16)),
        ((40, 60, pad), (16, 24)),  # same aspect: fills exactly
        ((60, 40, pad), (16, 11)),  # 40 * 16/60 = 10.67
        ((10, 1000, pad), (1, 24)),  # never below one pixel
    ]
    assert [data.resize_target(h, w, o) for (h, w, o), _ in table] == [t for _, t in table]
    for (h, w, o), want in table:
        need, _ = preprocess.geometry(tf.constant([[h, w]], tf.int64), o)
        assert tuple(int(v) for v in need[0]) == want


def test_validate_data_format():
    assert data.validate_data_format("NHWC", "/CPU:0") == "NHWC"
    assert data.validate_data_format("NCHW", "/GPU:0") == "NCHW"
    with pytest.raises(OptionsError, match="NHWC-only"):
        data.validate_data_format("NCHW", "/CPU:0")
    with pytest.raises(OptionsError, match="NHWC-only"):
        data.validate_data_format("NCHW", "cpu")
    with pytest.raises(OptionsError, match="'CHW'"):
        data.validate_data_format("CHW", "/GPU:0")
    if not tf.config.list_physical_devices("GPU"):
        with pytest.raises(OptionsError, match="no GPU"):
            data.validate_data_format("NCHW")


# ------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    "normalize, dtype",
    [("unit", "float32"), ("symmetric", "float32"), ("imagenet", "float32"), ("none", "float32")],
)
def test_decode_and_resize_normalisations_match_reference(dataset, normalize, dtype):
    o = ReadOptions(
        image_size=(16, 20),
        resize="squash",
        normalize=normalize,
        dtype=dtype,
        allow_ratio_decode=False,
    )
    for record in dataset["train"][:2]:  # one JPEG, one PNG
        got = data.decode_and_resize(record.encoded, o).numpy()
        assert got.shape == (16, 20, 3) and got.dtype == np.float32
        np.testing.assert_allclose(got, reference(record, o), rtol=1e-6, atol=1e-5)


def test_decode_and_resize_uint8_and_bfloat16(dataset):
    record = dataset["train"][1]
    raw = ReadOptions(image_size=16, normalize="none", dtype="uint8")
    got = data.decode_and_resize(record.encoded, raw)
    assert got.dtype == tf.uint8 and got.shape == (16, 16, 3)
    want = np.round(reference(record, ReadOptions(image_size=16, normalize="none")))
    np.testing.assert_array_equal(got.numpy(), want.astype(np.uint8))
    bf = data.decode_and_resize(record.encoded, ReadOptions(image_size=16, dtype="bfloat16"))
    assert bf.dtype == tf.bfloat16
    np.testing.assert_allclose(
        tf.cast(bf, tf.float32).numpy(), reference(record, ReadOptions(image_size=16)), atol=4e-3
    )


@pytest.mark.parametrize("resize", ["squash", "center_crop", "pad"])
def test_make_dataset_matches_reference_per_resize_mode(dataset, resize):
    o = ReadOptions(image_size=(16, 24), resize=resize, batch_size=3, allow_ratio_decode=False)
    out = by_key(collect(data.make_dataset(dataset["dir"], o)))
    assert len(out) == len(dataset["train"])
    for record in dataset["train"]:
        np.testing.assert_allclose(
            out[record.filename]["image"], reference(record, o), rtol=1e-6, atol=1e-5
        )


def test_ratio_decode_is_chosen_in_graph_only_when_allowed(tmp_path):
    big = make_record(0, 96, 96, "jpeg")  # 96 >= 4 * 16 (and < 8 * 16): ratio 4
    small = make_record(1, 40, 40, "jpeg")  # 40 >= 2 * 16: ratio 2
    path = str(tmp_path / "r.tfrecord")
    write_shard(path, [big, small])
    o = ReadOptions(image_size=16, resize="squash", batch_size=2)
    assert data.choose_ratio(96, 96, 16, 16) == 4 and data.choose_ratio(40, 40, 16, 16) == 2
    out = by_key(collect(data.make_dataset(path, o)))
    for record, ratio in ((big, 4), (small, 2)):
        got = out[record.filename]["image"]
        np.testing.assert_allclose(got, reference(record, o, ratio=ratio), atol=1e-5)
        # ...and not the full-size decode: the branch really changed.
        assert np.abs(got - reference(record, o)).max() > 1e-3
    off = ReadOptions(image_size=16, resize="squash", batch_size=2, allow_ratio_decode=False)
    out = by_key(collect(data.make_dataset(path, off)))
    np.testing.assert_allclose(out[big.filename]["image"], reference(big, off), atol=1e-5)
    # center_crop: relative to the resized (not cropped) size, 18 for 16 / 0.875; the
    # single-image path reads the size from the JPEG header.
    cc = ReadOptions(image_size=16)
    got = data.decode_and_resize(big.encoded, cc).numpy()
    np.testing.assert_allclose(got, reference(big, cc, ratio=4), atol=1e-5)


# ------------------------------------------------------------- layout, keys, labels, sources


def test_nhwc_nchw_shapes_and_drop_remainder(dataset):
    n = len(dataset["train"])
    nhwc = list(data.make_dataset(dataset["dir"], ReadOptions(image_size=(16, 24), batch_size=3)))
    assert [tuple(b["image"].shape) for b in nhwc] == [
        (3, 16, 24, 3),
        (3, 16, 24, 3),
        (1, 16, 24, 3),
    ]
    o = ReadOptions(image_size=(16, 24), batch_size=3, data_format="NCHW", drop_remainder=True)
    ds = data.make_dataset(dataset["dir"], o)
    assert ds.element_spec["image"].shape.as_list() == [3, 3, 16, 24]  # static
    nchw = list(ds)
    assert len(nchw) == n // 3
    np.testing.assert_array_equal(
        nchw[0]["image"].numpy(), np.transpose(nhwc[0]["image"].numpy(), [0, 3, 1, 2])
    )


def test_keys_and_labels_carried_through(dataset):
    out = collect(data.make_dataset(dataset["dir"], ReadOptions(image_size=8, batch_size=4)))
    got = {k.decode(): int(lab) for k, lab in zip(out["key"], out["label"], strict=True)}
    assert got == {r.filename: r.label for r in dataset["train"]}
    assert out["label"].dtype == np.int64
    o = ReadOptions(image_size=8, batch_size=4, with_labels=False, split="validation")
    out = collect(data.make_dataset(dataset["dir"], o))
    assert set(out) == {"image", "key"}
    assert sorted(k.decode() for k in out["key"]) == sorted(
        r.filename for r in dataset["validation"]
    )


def test_unlabeled_records_get_minus_one(tmp_path):
    path = str(tmp_path / "u.tfrecord")
    ex = tf.train.Example(
        features=tf.train.Features(
            feature={
                schema.ENCODED: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[make_record(0, 20, 20, "png").encoded])
                ),
                schema.FILENAME: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x.png"])),
            }
        )
    )
    write_shard(path, [ex.SerializeToString()])
    out = collect(data.make_dataset([path], ReadOptions(image_size=8)))
    assert out["label"].tolist() == [-1] and out["key"].tolist() == [b"x.png"]


def test_sources_directory_glob_and_list_agree(dataset):
    root = dataset["dir"]
    info = metadata.load(root)
    listed = info.shard_paths("train")
    assert data.resolve_shards(root, "train") == listed
    assert data.resolve_shards(os.path.join(root, "data-train.tfrecord-*"), "ignored") == listed
    assert data.resolve_shards(listed[::-1], "train") == listed[::-1]
    assert data.resolve_shards(listed[0], "train") == listed[:1]
    keys = collect(data.make_dataset(os.path.join(root, "*.tfrecord-*"), ReadOptions(image_size=8)))
    everything = dataset["train"] + dataset["validation"]
    assert sorted(k.decode() for k in keys["key"]) == sorted(r.filename for r in everything)


def test_source_errors(dataset, tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="dataset.json"):
        data.make_dataset(str(tmp_path / "plain"))
    with pytest.raises(InputError, match="no shard files match"):
        data.make_dataset(str(tmp_path / "nothing-*.tfrecord"))
    with pytest.raises(InputError, match="shard not found: .*gone.tfrecord"):
        data.make_dataset([str(tmp_path / "gone.tfrecord")])
    with pytest.raises(InputError, match="source not found"):
        data.make_dataset(str(tmp_path / "missing_dir"))
    with pytest.raises(InputError, match="empty list"):
        data.make_dataset([])
    with pytest.raises(InputError, match="'test' not in"):
        data.make_dataset(dataset["dir"], ReadOptions(split="test"))


def test_shuffle_is_seeded_and_tf_data_options_applied(dataset):
    o = ReadOptions(
        image_size=8,
        batch_size=8,
        shuffle_files=True,
        shuffle_buffer=16,
        seed=3,
        deterministic=True,
        private_threadpool_size=2,
        max_intra_op_parallelism=1,
    )
    first = data.make_dataset(dataset["dir"], o)
    applied = first.options()
    # Off unless asked: its thread makes the end of a pass wait (see ReadOptions).
    assert applied.autotune.enabled is False
    tuned = ReadOptions(image_size=8, autotune=True, ram_budget_mb=64)
    assert data.make_dataset(dataset["dir"], tuned).options().autotune.enabled is True
    assert data.make_dataset(dataset["dir"], tuned).options().autotune.ram_budget == 64 * 2**20
    assert applied.threading.private_threadpool_size == 2
    assert applied.threading.max_intra_op_parallelism == 1
    assert applied.deterministic is True
    assert applied.experimental_optimization.apply_default_optimizations is False
    a = [k.decode() for k in collect(first)["key"]]
    rewritten = data.make_dataset(dataset["dir"], dataclasses.replace(o, graph_rewrites=True))
    assert rewritten.options().experimental_optimization.apply_default_optimizations is True
    b = [k.decode() for k in collect(rewritten)["key"]]
    assert a == b and sorted(a) == sorted(r.filename for r in dataset["train"])


# ------------------------------------------------------------- bad records


GOOD = [make_record(i, 20 + 4 * i, 28, "jpeg" if i % 2 else "png", seed=7) for i in range(5)]


def record_offsets(records: list[schema.Record | bytes]) -> list[int]:
    offsets, pos = [], 0
    for r in records:
        offsets.append(pos)
        pos += len(r if isinstance(r, bytes) else schema.serialize(r)) + schema.TFRECORD_OVERHEAD
    return offsets


def read_all(path: str, skip: bool) -> tuple[dict[str, np.ndarray], data.ReadStats]:
    stats = data.ReadStats()
    o = ReadOptions(image_size=8, batch_size=2, skip_errors=skip)
    return collect(data.make_dataset([path], o, stats=stats)), stats


def assert_bad_record_handling(
    path: str, bad_index: int, capfd, kept=None, lost_bytes=0, strict=True
):
    if strict:
        with pytest.raises(
            tf.errors.InvalidArgumentError, match=f"bad record {bad_index} of {path}"
        ):
            read_all(path, skip=False)
    capfd.readouterr()
    out, stats = read_all(path, skip=True)
    kept = [i for i in range(len(GOOD)) if i != bad_index] if kept is None else kept
    assert sorted(k.decode() for k in out["key"]) == sorted(GOOD[i].filename for i in kept)
    assert (stats.skipped, stats.lost_bytes) == (1, lost_bytes)
    assert f"tfclassify: bad record {bad_index} of {path}" in capfd.readouterr().err


def test_undecodable_record_with_valid_crc(tmp_path, capfd):
    jpeg = GOOD[1].encoded
    broken = dataclasses.replace(GOOD[2], encoded=jpeg[:40], format="jpeg")
    path = str(tmp_path / "content.tfrecord")
    write_shard(path, [GOOD[0], GOOD[1], broken, GOOD[3], GOOD[4]])
    assert_bad_record_handling(path, 2, capfd)


def test_unparseable_example_with_valid_crc(tmp_path, capfd):
    path = str(tmp_path / "proto.tfrecord")
    write_shard(path, [GOOD[0], b"\xff\x00 not a proto", GOOD[2], GOOD[3], GOOD[4]])
    assert_bad_record_handling(path, 1, capfd, strict=False)


def test_crc_corrupt_record_mid_shard_is_skipped_and_the_rest_recovered(tmp_path, capfd):
    path = str(tmp_path / "crc.tfrecord")
    write_shard(path, GOOD)
    raw = bytearray(read_file(path))
    encoded_at = raw.index(GOOD[2].encoded[100:140])  # inside image/encoded of record 2
    raw[encoded_at] ^= 0xFF
    write_file(path, raw)
    assert_bad_record_handling(path, 2, capfd)


def test_truncated_shard(tmp_path, capfd):
    path = str(tmp_path / "trunc.tfrecord")
    write_shard(path, GOOD)
    raw = read_file(path)
    write_file(path, raw[:-30])  # cut inside the last record
    assert_bad_record_handling(path, 4, capfd, strict=False)


def test_corrupt_length_header_loses_the_rest_of_the_shard(tmp_path, capfd):
    path = str(tmp_path / "header.tfrecord")
    write_shard(path, GOOD)
    raw = bytearray(read_file(path))
    at = record_offsets(GOOD)[3]
    raw[at] ^= 0x01  # length of record 3 no longer matches its CRC
    write_file(path, raw)
    assert_bad_record_handling(
        path, 3, capfd, kept=[0, 1, 2], lost_bytes=len(raw) - at, strict=False
    )


def test_bad_record_among_several_shards_is_counted_once(dataset, tmp_path):
    path = str(tmp_path / "one-bad.tfrecord")
    write_shard(path, [GOOD[0], b"junk", GOOD[1]])
    stats = data.ReadStats()
    shards = data.resolve_shards(dataset["dir"], "train") + [path]
    o = ReadOptions(image_size=8, batch_size=2, skip_errors=True)
    out = collect(data.make_dataset(shards, o, stats=stats))
    assert len(out["key"]) == len(dataset["train"]) + 2
    assert stats.as_dict() == {"skipped": 1, "lost_bytes": 0}


def test_a_run_longer_than_the_window_is_counted_in_full(tmp_path, capfd):
    path = str(tmp_path / "run.tfrecord")
    write_shard(path, [GOOD[0]] + [b"junk"] * (_WINDOW + 4) + [GOOD[1]])
    out, stats = read_all(path, skip=True)
    assert sorted(k.decode() for k in out["key"]) == sorted(r.filename for r in GOOD[:2])
    assert stats.skipped == _WINDOW + 4
    err = capfd.readouterr().err
    assert f"bad record {_WINDOW + 4} of {path}" in err  # the last one is named
    assert "and 4 more" in err


def test_a_shard_that_vanishes_raises_instead_of_hanging(tmp_path):
    # Under ignore_errors, TF's reader retries a failed open forever (tensorflow#25700).
    path = str(tmp_path / schema.shard_name("data", "train", 0, 1))
    write_shard(path, GOOD[:2])
    metadata.DatasetInfo(
        directory=str(tmp_path),
        name="data",
        labels=LABELS,
        splits={"train": metadata.SplitInfo("train", (shard_info(path, 2),))},
        files_found=2,
        accepted=2,
        skipped=0,
        skipped_by_reason={},
        empty_classes=(),
        options={},
    ).save()
    (tmp_path / "bare").mkdir()
    bare = str(tmp_path / "bare" / "x.tfrecord")  # no dataset.json beside it
    write_shard(bare, GOOD[:2])
    cases = [
        (bare, False, "not a bad record"),  # per-record path
        (path, True, "not a bad record"),  # per-record path (skip_errors)
        (path, False, "read 0 of 2 records"),  # fast path: counts from dataset.json
    ]
    for shard, skip, message in cases:
        ds = data.make_dataset([shard], ReadOptions(image_size=8, skip_errors=skip))
        os.rename(shard, shard + ".moved")  # vanishes after the dataset was made
        try:
            with pytest.raises(tf.errors.InvalidArgumentError, match=message):
                collect(ds)
        finally:
            os.rename(shard + ".moved", shard)

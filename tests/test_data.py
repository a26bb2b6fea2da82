"""tfclassify.reading.dataset: make_dataset against an independent reference decode, layouts, keys,
sources, options and errors, on hand-written shards (recordlib)."""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from recordlib import by_key, collect, make_record, reference, write_shard

from tfclassify.core import metadata, schema
from tfclassify.core.errors import InputError, OptionsError
from tfclassify.core.options import ReadOptions
from tfclassify.reading import dataset as data

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
        ({"batch_size": 2**31}, "2147483648"),  # TF's batch sizes are int32
        ({"batch_size": True}, "True"),
        ({"map_parallelism": 0}, "0"),
        ({"prefetch": -2}, "-2"),
        ({"deterministic": "yes"}, "'yes'"),
        ({"dct_method": "FLOAT"}, "'FLOAT'"),
        ({"ram_budget_mb": 64}, "autotune=True"),  # the budget is the autotuner's
        # Every number is bounded where it is set, not deep in tf.data.
        ({"shuffle_buffer": 2**31}, "2147483648"),
        ({"seed": 2**64}, str(2**64)),
        ({"cycle_length": 0}, "0"),
        ({"block_length": 1e20}, "1e+20"),
        ({"interleave_parallelism": 99999999999}, "99999999999"),
        ({"map_parallelism": True}, "True"),
        ({"prefetch": 2**40}, str(2**40)),
        ({"private_threadpool_size": "4"}, "'4'"),
        ({"max_intra_op_parallelism": 10**6}, "1000000"),
        ({"ram_budget_mb": 2**40, "autotune": True}, str(2**40)),
        ({"reader_buffer_kb": 2**40}, str(2**40)),
    ],
)
def test_read_options_reject_bad_values_showing_them(kwargs, shown):
    with pytest.raises(OptionsError) as err:
        ReadOptions(**kwargs)
    assert shown in str(err.value)


# ------------------------------------------------------------- decoding


@pytest.mark.parametrize("resize", ["squash", "center_crop", "pad"])
def test_make_dataset_matches_reference_per_resize_mode(dataset, resize):
    o = ReadOptions(image_size=(16, 24), resize=resize, batch_size=3, allow_ratio_decode=False)
    out = by_key(collect(data.make_dataset(dataset["dir"], o)))
    assert len(out) == len(dataset["train"])
    for record in dataset["train"]:
        np.testing.assert_allclose(
            out[record.filename]["image"], reference(record, o), rtol=1e-6, atol=1e-5
        )


@pytest.mark.parametrize(
    "normalize, dtype, atol",
    [
        ("symmetric", "float32", 1e-5),
        ("imagenet", "float32", 1e-4),
        ("none", "float32", 1e-3),
        ("none", "uint8", 0.5),  # rounded once: within half a level of the reference
        ("unit", "bfloat16", 4e-3),  # bfloat16 keeps 8 bits of mantissa
    ],
)
def test_make_dataset_matches_reference_per_normalisation(dataset, normalize, dtype, atol):
    """Every normalisation and output dtype through the whole pipeline (the default,
    `unit` float32, is the per-resize-mode test's)."""
    o = ReadOptions(
        image_size=(16, 24),
        normalize=normalize,
        dtype=dtype,
        batch_size=4,
        allow_ratio_decode=False,
    )
    out = by_key(collect(data.make_dataset(dataset["dir"], o)))
    assert {v["image"].dtype for v in out.values()} == {np.dtype(tf.as_dtype(dtype).as_numpy_dtype)}
    for record in dataset["train"]:
        got = np.asarray(out[record.filename]["image"], np.float32)
        np.testing.assert_allclose(got, reference(record, o), rtol=0, atol=atol)


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


def test_a_split_with_no_records_is_one_clear_input_error(dataset, tmp_path):
    # An empty file list reached TFRecordDataset as float32: a TypeError naming nothing.
    root = str(tmp_path)
    info = metadata.load(dataset["dir"])
    splits = {"train": info.split("train"), "validation": metadata.SplitInfo("validation", ())}
    dataclasses.replace(info, directory=root, splits=splits).save()
    with pytest.raises(InputError, match=f"split 'validation' of {root} has no records$"):
        data.make_dataset(root, ReadOptions(split="validation", image_size=8))
    with pytest.raises(InputError, match="has no records"):
        data.resolve_shards(root, "validation")


# ------------------------------------------------------------- the notebook call


def keys_of(ds: tf.data.Dataset) -> list[str]:
    return [k.decode() for k in collect(ds)["key"]]


def test_keywords_override_options_and_are_validated_as_options(dataset):
    base = ReadOptions(split="train", image_size=8, batch_size=4, resize="squash")
    ds = data.make_dataset(
        dataset["dir"], base, split="validation", image_size=(6, 10), batch_size=1
    )
    batches = list(ds)
    assert [tuple(b["image"].shape) for b in batches] == [(1, 6, 10, 3)] * 2
    assert sorted(keys_of(ds)) == sorted(r.filename for r in dataset["validation"])
    # The options' other fields still hold: squash, not the default center_crop.
    record = dataset["validation"][0]
    got = by_key(collect(ds))[record.filename]["image"]
    squash = ReadOptions(image_size=(6, 10), resize="squash")
    np.testing.assert_allclose(got, reference(record, squash), atol=1e-5)
    for kwargs, shown in [
        ({"image_size": 0}, "image_size"),
        ({"batch_size": "4"}, "batch_size"),
        ({"split": ""}, "split"),
        ({"seed": -1}, "seed"),
        ({"shuffle": "yes"}, "shuffle"),
        ({"as_supervised": 1}, "as_supervised"),
        ({"with_info": "no"}, "with_info"),
    ]:
        with pytest.raises(OptionsError, match=shown):
            data.make_dataset(dataset["dir"], **kwargs)
    with pytest.raises(OptionsError, match="options must be a ReadOptions"):
        data.make_dataset(dataset["dir"], {"image_size": 8})
    with pytest.raises(OptionsError, match="with_labels"):
        data.make_dataset(dataset["dir"], ReadOptions(with_labels=False), as_supervised=True)


def test_the_train_split_is_shuffled_unless_options_or_shuffle_say_otherwise(dataset):
    """As Keras shuffles what it trains on: the bare call shuffles the train split
    (seeded: the same order each run), reads any other split in order, and options
    or `shuffle` decide when given."""
    in_order = keys_of(data.make_dataset(dataset["dir"], ReadOptions(image_size=8)))
    shuffled = keys_of(data.make_dataset(dataset["dir"], image_size=8, seed=1))
    assert shuffled != in_order and sorted(shuffled) == sorted(in_order)
    assert keys_of(data.make_dataset(dataset["dir"], image_size=8, seed=1)) == shuffled
    assert keys_of(data.make_dataset(dataset["dir"], image_size=8, shuffle=False)) == in_order
    options = ReadOptions(image_size=8, seed=1)
    assert keys_of(data.make_dataset(dataset["dir"], options)) == in_order
    assert keys_of(data.make_dataset(dataset["dir"], options, shuffle=True)) == shuffled
    validation = ReadOptions(image_size=8, split="validation")
    assert keys_of(data.make_dataset(dataset["dir"], split="validation", image_size=8)) == (
        keys_of(data.make_dataset(dataset["dir"], validation))
    )


@pytest.mark.parametrize("batch_size", [1, 3, 7, 8])
def test_len_is_the_batch_count_dataset_json_promises(dataset, batch_size):
    n = len(dataset["train"])
    o = ReadOptions(image_size=8, batch_size=batch_size)
    ds = data.make_dataset(dataset["dir"], o)
    assert len(ds) == -(-n // batch_size) == len(list(ds))
    dropped = data.make_dataset(dataset["dir"], dataclasses.replace(o, drop_remainder=True))
    assert len(dropped) == n // batch_size == len(list(dropped))
    assert len(data.make_dataset(dataset["dir"], o, as_supervised=True)) == len(ds)


def test_len_is_unknown_without_counts_or_with_skip_errors(dataset, tmp_path):
    unknown = tf.data.experimental.UNKNOWN_CARDINALITY
    skip = data.make_dataset(dataset["dir"], ReadOptions(image_size=8, skip_errors=True))
    assert skip.cardinality() == unknown
    bare = tmp_path / "bare"
    bare.mkdir()
    for path in metadata.load(dataset["dir"]).shard_paths("train"):
        shutil.copy(path, bare)
    ds = data.make_dataset(str(bare / "*.tfrecord-*"), ReadOptions(image_size=8))
    assert ds.cardinality() == unknown
    assert len(collect(ds)["key"]) == len(dataset["train"])
    with pytest.raises(InputError, match="with_info=True needs a dataset.json"):
        data.make_dataset(str(bare / "*.tfrecord-*"), with_info=True)


@pytest.fixture(scope="module")
def shapes(converted_shapes) -> str:
    return converted_shapes(("circle", "square", "triangle"), {"train": 5, "validation": 2})


def test_with_info_gives_the_class_names_of_labels_txt(shapes):
    with open(os.path.join(shapes, metadata.LABELS_FILE), encoding="utf-8") as f:
        labels = f.read().splitlines()
    ds, info = data.make_dataset(shapes, split="validation", image_size=16, with_info=True)
    assert list(info.class_names) == labels == ["circle", "square", "triangle"]
    assert info.num_classes == 3
    assert info.splits["validation"].num_examples == 6 == len(collect(ds)["key"])
    shards = metadata.load(shapes).shard_paths("train")
    _, from_shards = data.make_dataset(shards, image_size=16, with_info=True)
    assert from_shards.class_names == info.class_names


def test_as_supervised_feeds_model_fit_without_steps_per_epoch(shapes):
    import keras

    ds = data.make_dataset(shapes, image_size=16, batch_size=4, as_supervised=True, seed=0)
    images, labels = ds.element_spec
    assert images.shape.as_list() == [None, 16, 16, 3] and labels.dtype == tf.int64
    steps = []

    class Steps(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps.append(0)

        def on_train_batch_end(self, batch, logs=None):
            steps[-1] += 1

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = Steps()
    history = model.fit(ds, epochs=2, verbose=0, callbacks=[callback], shuffle=False)
    assert len(ds) == 4  # 15 records: 3 batches of 4 and one of 3
    assert callback.params["steps"] == len(ds) and steps == [len(ds)] * 2
    assert len(history.history["loss"]) == 2

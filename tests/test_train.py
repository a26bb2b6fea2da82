"""The small trainer: model shapes, saved artifacts, and the CLI's user errors."""

from __future__ import annotations

import dataclasses
import importlib
import os
import pathlib

import numpy as np
import pytest

from tfclassify.core import metadata
from tfclassify.core.errors import OptionsError, OutputError
from tfclassify.core.options import TrainOptions
from tfclassify.models.predictor import Predictor

train_mod = importlib.import_module("tfclassify.train")

LABELS = ("circle", "square", "triangle")


def test_small_cnn_layout():
    import keras

    m = train_mod.build_model("small_cnn", (16, 20), 3)
    assert m.inputs[0].name == "image" and tuple(m.input_shape) == (None, 16, 20, 3)
    assert m.layers[-1].name == "probabilities"
    assert m.layers[-1].activation is keras.activations.softmax
    convs = [x for x in m.layers if isinstance(x, keras.layers.Conv2D)]
    pools = [x for x in m.layers if isinstance(x, keras.layers.MaxPooling2D)]
    assert len(convs) == 2 and len(pools) == 2
    probs = m(np.zeros((2, 16, 20, 3), np.float32)).numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_mobilenet_v2_builds_without_download():
    m = train_mod.build_model("mobilenet_v2", (32, 32), 4)
    assert tuple(m.output_shape) == (None, 4) and m.layers[-1].name == "probabilities"


def test_build_model_errors():
    with pytest.raises(OptionsError, match="2 classes"):
        train_mod.build_model("small_cnn", (16, 16), 1)
    with pytest.raises(OptionsError, match="32"):
        train_mod.build_model("mobilenet_v2", (16, 16), 3)
    with pytest.raises(OptionsError, match="arch"):
        TrainOptions(data="d", output="o", arch="resnet")
    assert TrainOptions(data="d", output="o", image_size=24).image_size == (24, 24)


def test_cli_user_errors_exit_2(tmp_path, capsys):
    assert train_mod.main(["train", "--output", str(tmp_path / "m")]) == 2
    assert "--data is required" in capsys.readouterr().err
    assert train_mod.main(["train", "--data", str(tmp_path), "--output", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "dataset.json" in err and "\n" not in err
    assert train_mod.main(["train", "--data", "x", "--output", "y", "--arch", "vgg"]) == 2
    assert "arch" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dataset_dir(converted_shapes) -> str:
    return converted_shapes(LABELS, {"train": 6, "validation": 2})


def test_train_saves_loadable_artifacts(dataset_dir, tmp_path):
    out = str(tmp_path / "model")
    opts = TrainOptions(
        data=dataset_dir, output=out, epochs=1, image_size=16, batch_size=8, verbose=0
    )
    assert train_mod.train(opts) == out
    assert sorted(n for n in os.listdir(out) if not n.startswith(".")) == [
        "labels.txt",
        "model.keras",
        "saved_model",
    ]
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
    labels = (tmp_path / "model" / "labels.txt").read_text().split()
    assert tuple(labels) == metadata.load(dataset_dir).labels
    sm, kr = Predictor.load(out), Predictor.load(os.path.join(out, "model.keras"))
    assert sm.labels == kr.labels == LABELS
    assert sm.input_shape == (16, 16, 3)
    x = np.random.default_rng(0).random((3, 16, 16, 3), dtype=np.float32)
    np.testing.assert_allclose(sm.predict(x), kr.predict(x), atol=1e-5)
    with pytest.raises(OutputError, match="pass overwrite=True$"):  # the field, not the flag
        train_mod.train(opts)


def test_cli_trains_and_infer_reads_the_result(dataset_dir, tmp_path, capsys):
    from tfclassify.core.options import InferOptions
    from tfclassify.infer import infer

    out = str(tmp_path / "cli_model")
    argv = ["train", "--data", dataset_dir, "--output", out, "--epochs", "1"]
    assert train_mod.main([*argv, "--image_size", "16", "--batch_size", "8", "--verbose", "0"]) == 0
    assert "model ->" in capsys.readouterr().out
    r = infer(out, dataset_dir, InferOptions(mode="pipelined", batch_size=4))
    assert r.split == "validation" and r.count == 2 * len(LABELS)
    assert r.class_names == LABELS and r.top1_accuracy is not None
    assert train_mod.main(argv) == 2  # output already holds a model
    assert "pass --overwrite\n" in capsys.readouterr().err  # the flag, not the field


def test_options_refuse_what_keras_or_tf_would_fail_on():
    # small_cnn leaves no pixel below 14 (found by building it); Keras failed with
    # "output size would be zero or negative".
    assert TrainOptions(data="d", output="o", image_size=14).image_size == (14, 14)
    for size in (3, 7, 13, (14, 13)):
        with pytest.raises(OptionsError, match="at least 14"):
            TrainOptions(data="d", output="o", image_size=size)
    with pytest.raises(OptionsError, match="at least 32"):
        TrainOptions(data="d", output="o", arch="mobilenet_v2", image_size=31)
    assert TrainOptions(data="d", output="o", seed=2**32 - 1).seed == 2**32 - 1
    for seed in (-1, 2**32):
        with pytest.raises(OptionsError, match="seed"):
            TrainOptions(data="d", output="o", seed=seed)
    with pytest.raises(OptionsError, match="batch_size"):
        TrainOptions(data="d", output="o", batch_size=2**31)
    train_mod.build_model("small_cnn", (14, 14), 2)  # the minimum does run


def _copy_dataset(src: str, dst, edit) -> str:
    """A copy of the converted dataset at `src`, changed by `edit(root, info)`."""
    import shutil

    shutil.copytree(src, dst)
    info = metadata.load(str(dst))
    edit(str(dst), info)
    return str(dst)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_cli_empty_split_is_one_line_and_leaves_no_folder(dataset_dir, tmp_path, capsys):
    def empty_validation(root, info):
        splits = {**info.splits, "validation": metadata.SplitInfo("validation", ())}
        dataclasses.replace(info, splits=splits).save()

    data = _copy_dataset(dataset_dir, tmp_path / "d", empty_validation)
    out = tmp_path / "new" / "model"
    assert train_mod.main(["train", "--data", data, "--output", str(out), "--epochs", "1"]) == 2
    assert f"split 'validation' of {data} has no records" in _one_error_line(capsys)
    assert not (tmp_path / "new").exists()


def test_cli_corrupt_shard_is_one_line_and_leaves_no_folder(dataset_dir, tmp_path, capsys):
    def flip_a_byte(root, info):
        shard = info.shard_paths("train")[0]
        raw = bytearray(pathlib.Path(shard).read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        pathlib.Path(shard).write_bytes(raw)

    data = _copy_dataset(dataset_dir, tmp_path / "d", flip_a_byte)
    out = tmp_path / "model"
    argv = ["train", "--data", data, "--output", str(out), "--epochs", "1", "--image_size", "16"]
    assert train_mod.main([*argv, "--verbose", "0"]) == 2
    err = _one_error_line(capsys)
    assert f"reading {data} failed" in err and "tfclassify: unreadable records" in err
    assert metadata.load(data).shard_paths("train")[0] in err
    assert not out.exists()


def test_cli_refuses_a_users_non_empty_folder(dataset_dir, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        argv = ["train", "--data", dataset_dir, "--output", str(mine), "--epochs", "1", *extra]
        assert train_mod.main(argv) == 2
        assert "not empty and holds no model" in _one_error_line(capsys)
    assert os.listdir(mine) == ["notes.txt"]


def test_training_split_is_read_shuffled_by_default_and_seeded(dataset_dir):
    """As Keras shuffles what it trains on: the train split in a seeded order (the
    same for the same seed), the validation split and shuffle_buffer=0 in file order."""
    from tfclassify.core.options import ReadOptions
    from tfclassify.models.training import _read_options
    from tfclassify.reading.dataset import make_dataset

    def keys(options: TrainOptions, split: str, train: bool) -> list[bytes]:
        ds = make_dataset(dataset_dir, _read_options(options, split, train))
        return [k for batch in ds for k in batch["key"].numpy()]

    opts = TrainOptions(data=dataset_dir, output="o", image_size=16, seed=1)
    assert opts.shuffle_buffer == 1024
    in_order = keys(dataclasses.replace(opts, shuffle_buffer=0), "train", True)
    assert in_order == keys(opts, "train", False)
    assert in_order == [
        k for b in make_dataset(dataset_dir, ReadOptions(image_size=16)) for k in b["key"].numpy()
    ]
    shuffled = keys(opts, "train", True)
    assert shuffled != in_order and sorted(shuffled) == sorted(in_order)
    assert keys(opts, "train", True) == shuffled
    assert keys(dataclasses.replace(opts, seed=2), "train", True) != shuffled
    with pytest.raises(OptionsError, match="shuffle_buffer"):
        TrainOptions(data="d", output="o", shuffle_buffer=-1)

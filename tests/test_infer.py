"""The three inference modes, result reporting, writers and the CLI."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import recordlib
from commands import Terminal, last_lines
from recordlib import make_record, read_file, save_dataset_info, shard_info, write_file, write_shard

from tfclassify.core import metadata, schema
from tfclassify.core.errors import DataError, InputError, OptionsError
from tfclassify.core.options import InferOptions, ReadOptions
from tfclassify.infer import infer
from tfclassify.inference import modes
from tfclassify.models.predictor import Predictor

# The package binds `tfclassify.infer` to the function; the module holds main().
infer_mod = importlib.import_module("tfclassify.infer")

LABELS = ("circle", "square", "triangle")
MODES = ("sequential", "batch", "pipelined")
SIZE = 16
N = 11  # not a multiple of the batch size: the short last batch must work too
# More records per shard than the reader parses at a time (16), so that the reader's
# interleaving of shards is not their file order.
SHARDS, PER_SHARD = 3, 20


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    """A tiny softmax classifier with a named input, as tfclassify.train writes it."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(len(LABELS), activation="softmax", name="probabilities")(x)
    model = keras.Model(inp, out)
    d = tmp_path_factory.mktemp("model")
    model.export(str(d / "saved_model"), verbose=False)
    model.save(str(d / "model.keras"))
    (d / "labels.txt").write_text("".join(f"{t}\n" for t in LABELS))
    return str(d)


@pytest.fixture(scope="module")
def predictor(model_dir) -> Predictor:
    return Predictor.load(model_dir)


def _dataset(batch: int = 4):
    import tensorflow as tf

    rng = np.random.default_rng(1)
    return tf.data.Dataset.from_tensor_slices(
        {
            "image": rng.random((N, SIZE, SIZE, 3), dtype=np.float32),
            "label": np.array([i % 3 for i in range(N)], np.int64),
            "key": np.array([f"img_{i:02d}.png" for i in range(N)]),
        }
    ).batch(batch)


def _by_key(result) -> dict[str, np.ndarray]:
    return dict(zip(result.keys, result.probabilities, strict=True))


def test_three_modes_same_predictions_on_a_dataset(predictor):
    results = {
        mode: infer(predictor, _dataset(), InferOptions(mode=mode, batch_size=4, top_k=2))
        for mode in ("sequential", "batch", "pipelined")
    }
    ref = results["sequential"]
    assert ref.count == N and ref.probabilities.shape == (N, 3)
    for mode, r in results.items():
        assert r.mode == mode and r.count == N
        assert r.keys == ref.keys
        np.testing.assert_allclose(r.probabilities, ref.probabilities, atol=1e-5)
        np.testing.assert_array_equal(r.topk_ids, ref.topk_ids)
        assert r.top1_accuracy == ref.top1_accuracy
    assert results["sequential"].batch_size == 1 and results["batch"].batch_size == 4
    assert predictor.trace_count == 1  # batch sizes 1, 4 and 3 share one trace


def test_result_figures_and_display(predictor):
    ticks = iter([10.0, 12.0])
    r = infer(
        predictor,
        _dataset(),
        InferOptions(mode="batch", top_k=5),
        clock=lambda: next(ticks),
    )
    assert r.seconds == 2.0 and r.images_per_sec == pytest.approx(N / 2)
    assert r.top_k == 3  # clipped to the class count
    truth = np.array([i % 3 for i in range(N)])
    assert r.top1_accuracy == pytest.approx(np.mean(r.topk_ids[:, 0] == truth))
    assert r.topk_accuracy == 1.0  # k == number of classes
    assert r.threads["cpus"] >= 1 and "intra_op_effective" in r.threads
    row = r.predictions[0]
    assert row["key"] == "img_00.png" and row["true_label"] == "circle"
    assert [t["label"] for t in row["top_k"]] == [LABELS[i] for i in r.topk_ids[0]]
    text = str(r)
    assert "images/s" in text and "intra_op" in text and "batch" in text
    assert "<table>" in r._repr_html_()
    json.dumps(r.summary())


def test_unlabeled_dataset_without_keys(predictor, tmp_path):
    images_only = _dataset().map(lambda e: {"image": e["image"]})
    out = tmp_path / "p.csv"
    r = infer(predictor, images_only, InferOptions(mode="pipelined", output=str(out)))
    assert r.keys == [str(i) for i in range(N)] and r.num_labeled == 0
    assert r.top1_accuracy is None and r.topk_accuracy is None
    assert "no labels" in str(r)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["true_label"] == "" and rows[0]["top1_label"] in LABELS


def test_max_images(predictor):
    r = infer(predictor, _dataset(), InferOptions(mode="pipelined", batch_size=4, max_images=6))
    assert r.count == 6 and r.keys[-1] == "img_05.png"


def test_data_and_option_errors(predictor, tmp_path):
    with pytest.raises(InputError, match="no dataset.json"):
        infer(predictor, str(tmp_path))
    with pytest.raises(InputError, match="tf.data.Dataset"):
        infer(predictor, [1, 2, 3])
    with pytest.raises(OptionsError, match="NCHW"):
        infer(predictor, _dataset(), InferOptions(data_format="NCHW"))
    with pytest.raises(OptionsError, match="image_size"):
        infer(predictor, _dataset(), InferOptions(image_size=32))
    with pytest.raises(OptionsError, match="mode"):
        InferOptions(mode="fast")
    with pytest.raises(OptionsError, match=r"\.csv or \.jsonl"):
        InferOptions(output="preds.txt")
    with pytest.raises(OptionsError, match=r"batch_size must be an integer in \[1, 2147483647\]"):
        InferOptions(batch_size=2**31)  # the API, not only the flag, bounds it


@pytest.mark.parametrize("ext", [".csv", ".jsonl"])
def test_writers(predictor, tmp_path, ext):
    out = tmp_path / "out" / f"preds{ext}"
    r = infer(predictor, _dataset(), InferOptions(mode="batch", top_k=2, output=str(out)))
    assert r.output == str(out)
    assert not [n for n in os.listdir(out.parent) if n.startswith(".tmp-")]
    if ext == ".csv":
        with open(out, newline="") as f:
            rows = list(csv.reader(f))
        header = ["key", "true_label", "top1_label", "top1_prob", "top2_label", "top2_prob"]
        assert rows[0] == header
        assert len(rows) == N + 1 and all(len(x) == 6 for x in rows)
        assert rows[1][0] == "img_00.png" and rows[1][1] == "circle"
        assert rows[1][2] in LABELS and 0.0 <= float(rows[1][3]) <= 1.0
        assert float(rows[1][3]) >= float(rows[1][5])
    else:
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(lines) == N
        assert set(lines[0]) == {"key", "true_label", "top_k"}
        assert len(lines[0]["top_k"]) == 2 and lines[0]["top_k"][0]["label"] in LABELS
    summary = json.loads((out.parent / "summary.json").read_text())
    assert summary["count"] == N and summary["mode"] == "batch" and summary["top_k"] == 2
    assert "threads" in summary and summary["top1_accuracy"] == r.top1_accuracy
    assert summary["frozen"] is True  # Predictor.load's default
    assert summary["skipped_records"] is None  # a caller's pipeline: not counted


# ---------------------------------------------------------------- directory datasets


@pytest.fixture(scope="module")
def dataset_dir(converted_shapes) -> str:
    return converted_shapes(LABELS, {"train": 2, "validation": 3})


def test_three_modes_same_predictions_on_a_converted_dataset(model_dir, dataset_dir):
    p = Predictor.load(model_dir)
    results = [
        infer(p, dataset_dir, InferOptions(mode=mode, batch_size=4))
        for mode in ("sequential", "batch", "pipelined")
    ]
    ref = _by_key(results[0])
    assert results[0].split == "validation" and results[0].count == 3 * len(LABELS)
    for r in results[1:]:
        assert r.keys == results[0].keys
        for key, probs in _by_key(r).items():
            np.testing.assert_allclose(probs, ref[key], atol=1e-5)
    assert results[0].num_labeled == results[0].count
    assert results[0].top1_accuracy is not None
    assert all(r.skipped_records == 0 for r in results)


def _write_shards(root: str, bad: str | None) -> str:
    """SHARDS shards of PER_SHARD records and their dataset.json. `bad` spoils record 5
    of the second shard: "image" (undecodable, valid CRC) or "crc" (a flipped byte).

    Returns the second shard's path.
    """
    infos, paths = [], []
    for s in range(SHARDS):
        path = os.path.join(root, schema.shard_name("data", "validation", s, SHARDS))
        records = [
            make_record(i, 20, 24, "png" if i % 2 else "jpeg", seed=s + 1) for i in range(PER_SHARD)
        ]
        if bad == "image" and s == 1:
            records[5] = dataclasses.replace(records[5], encoded=b"\xff\xd8\xff" + b"\0" * 64)
        write_shard(path, records)
        if bad == "crc" and s == 1:
            raw = bytearray(read_file(path))
            raw[raw.index(records[5].encoded[40:80])] ^= 0xFF
            write_file(path, raw)
        infos.append(shard_info(path, PER_SHARD))
        paths.append(path)
    split = metadata.SplitInfo("validation", tuple(infos))
    save_dataset_info(root, {"validation": split}, labels=LABELS)
    return paths[1]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """Factory: (dataset dir, its second shard) with record 5 of that shard spoilt by `bad`."""
    made: dict[str | None, tuple[str, str]] = {}

    def make(bad: str | None = None) -> tuple[str, str]:
        if bad not in made:
            root = str(tmp_path_factory.mktemp(f"sharded_{bad}"))
            made[bad] = root, _write_shards(root, bad)
        return made[bad]

    return make


@pytest.mark.parametrize("skip_errors", [False, True])
def test_every_mode_reads_the_same_records_in_the_same_order(predictor, sharded, skip_errors):
    directory, _ = sharded()
    read = ReadOptions(skip_errors=skip_errors)  # the reader's default and exact paths
    results = [
        infer(predictor, directory, InferOptions(mode=m, batch_size=4, max_images=25, read=read))
        for m in MODES
    ]
    keys = results[0].keys
    assert len(set(keys)) == 25
    for r in results[1:]:
        assert r.keys == keys  # max_images covers the same images, rows in the same order
        np.testing.assert_allclose(r.probabilities, results[0].probabilities, atol=1e-5)


@pytest.mark.parametrize("bad", ["image", "crc"])
def test_a_bad_record_follows_the_readers_rules_in_every_mode(
    predictor, sharded, bad, tmp_path, capfd
):
    directory, shard = sharded(bad)
    for mode in MODES:
        with pytest.raises(DataError, match=re.escape(shard)):
            infer(predictor, directory, InferOptions(mode=mode, batch_size=4))
    capfd.readouterr()
    results = {}
    for mode in MODES:
        out = tmp_path / mode / "p.csv"
        options = InferOptions(
            mode=mode, batch_size=4, output=str(out), read=ReadOptions(skip_errors=True)
        )
        results[mode] = infer(predictor, directory, options)
        assert f"tfclassify: bad record 5 of {shard}" in capfd.readouterr().err, mode
        assert json.loads((out.parent / "summary.json").read_text())["skipped_records"] == 1
    keys = results["sequential"].keys
    assert len(keys) == SHARDS * PER_SHARD - 1
    for mode, r in results.items():
        assert r.keys == keys and r.skipped_records == 1, mode  # the same record skipped
        assert "1 bad records skipped" in str(r)


def test_a_key_that_is_not_utf8_round_trips_in_every_mode(predictor, tmp_path):
    """Linux file names are bytes: convert stores one that is not UTF-8 as it is, every
    mode reads it, the CSV holds its bytes and the JSONL (valid UTF-8) an escape that
    decodes back to them."""
    from tfclassify import testing
    from tfclassify.convert import convert
    from tfclassify.core.options import ConvertOptions

    root = tmp_path / "in"
    first = testing.make_shapes_corpus(root, classes=LABELS, per_class=2, min_side=20)[0]
    odd = os.path.join(os.path.dirname(os.fsencode(first)), b"caf\xe9.jpg")
    try:
        os.rename(first, odd)
    except OSError as e:  # a file system that takes only UTF-8 names
        pytest.skip(f"cannot name a file with non-UTF-8 bytes here: {e}")
    key = os.path.relpath(odd, os.fsencode(root))  # b"circle/caf\xe9.jpg"
    out = str(tmp_path / "out")
    convert(ConvertOptions(input_dir=str(root), output_dir=out, num_workers=1, quiet=True))
    for mode in MODES:
        csv_path, jsonl_path = tmp_path / mode / "p.csv", tmp_path / mode / "p.jsonl"
        r = infer(predictor, out, InferOptions(mode=mode, batch_size=4, output=str(csv_path)))
        assert r.count == 2 * len(LABELS) and os.fsdecode(key) in r.keys
        infer_mod.write_predictions(r, str(jsonl_path))
        assert b"\n" + key + b"," in csv_path.read_bytes()  # the name's own bytes
        with open(csv_path, encoding="utf-8", errors="surrogateescape", newline="") as f:
            assert [row[0] for row in csv.reader(f)][1:] == r.keys
        lines = jsonl_path.read_bytes().decode("utf-8").splitlines()  # strict UTF-8
        keys = [json.loads(x)["key"].encode("utf-8", "surrogateescape") for x in lines]
        assert keys == [os.fsencode(k) for k in r.keys] and keys.count(key) == 1, mode


def test_uint8_model_gets_raw_pixels(dataset_dir, tmp_path):
    """A uint8 input takes pixel values 0-255: cast from the reader's [0, 1] floats it
    would be all zeros."""
    import keras

    pool = keras.layers.GlobalAveragePooling2D()
    dense = keras.layers.Dense(len(LABELS), activation="softmax", name="probabilities")
    floats = keras.Input((SIZE, SIZE, 3), name="image")
    pixels = keras.Input((SIZE, SIZE, 3), dtype="uint8", name="image")
    models = {
        "float": keras.Model(floats, dense(pool(floats))),
        "uint8": keras.Model(pixels, dense(pool(keras.layers.Rescaling(1 / 255)(pixels)))),
    }
    dense.set_weights([20 * np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    for name, model in models.items():
        model.save(str(tmp_path / f"{name}.keras"))
    (tmp_path / "labels.txt").write_text("".join(f"{t}\n" for t in LABELS))
    uint8 = str(tmp_path / "uint8.keras")

    want = infer(str(tmp_path / "float.keras"), dataset_dir, InferOptions(mode="batch"))
    got = infer(uint8, dataset_dir, InferOptions(mode="batch"))
    assert np.ptp(want.probabilities[:, 0]) > 0.05  # the pixels decide the output
    np.testing.assert_allclose(got.probabilities, want.probabilities, atol=5e-3)
    # Read settings that leave normalize at its default (the CLI's --skip_errors and
    # --tf_data_threads set only these) still give it raw pixels.
    tuned = ReadOptions(skip_errors=True, private_threadpool_size=2)
    got = infer(uint8, dataset_dir, InferOptions(mode="batch", read=tuned))
    np.testing.assert_allclose(got.probabilities, want.probabilities, atol=5e-3)
    with pytest.raises(OptionsError, match=r"normalize='none', dtype='uint8'") as e:
        infer(uint8, dataset_dir, InferOptions(read=ReadOptions(normalize="symmetric")))
    assert "\n" not in str(e.value)


def test_threads_report_the_tf_data_pool_in_effect(predictor, dataset_dir, tmp_path):
    out = tmp_path / "p.csv"
    read = ReadOptions(private_threadpool_size=3)
    r = infer(predictor, dataset_dir, InferOptions(read=read, output=str(out)))
    assert r.threads["tf_data_threads"] == 3 and "tf.data 3" in str(r)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["threads"]["tf_data_threads"] == 3


def test_cli_tf_data_threads_sets_the_pipelines_pool(model_dir, dataset_dir, tmp_path, capsys):
    """--tf_data_threads is `ReadOptions.private_threadpool_size`, the pool's one route."""
    out = tmp_path / "p.csv"
    argv = ["infer", "--model", model_dir, "--data", dataset_dir, "--output", str(out)]
    assert infer_mod.main([*argv, "--tf_data_threads", "3"]) == 0
    assert "tf.data 3" in capsys.readouterr().out
    assert json.loads((tmp_path / "summary.json").read_text())["threads"]["tf_data_threads"] == 3


def test_cli_writes_predictions_for_a_converted_dataset(model_dir, dataset_dir, tmp_path, capsys):
    out = tmp_path / "preds.jsonl"
    argv = ["infer", "--model", model_dir, "--data", dataset_dir, "--output", str(out)]
    assert infer_mod.main([*argv, "--mode", "batch", "--batch_size", "4", "--top_k", "2"]) == 0
    printed = capsys.readouterr().out
    assert "images/s" in printed and "validation" in printed
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 * len(LABELS) and all(len(r["top_k"]) == 2 for r in rows)
    assert all(r["true_label"] in LABELS for r in rows)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["split"] == "validation" and summary["count"] == len(rows)


@pytest.mark.parametrize("mode", MODES)
def test_one_bar_counts_the_images_predicted_in_every_mode(predictor, dataset_dir, mode):
    options = InferOptions(mode=mode, batch_size=2)
    # In a log: one line when it ends, with every image predicted.
    with contextlib.redirect_stderr(io.StringIO()) as err:
        result = infer(predictor, dataset_dir, options)
    lines = last_lines(err.getvalue(), f"infer {mode}")
    assert len(lines) == 1 and lines[0].startswith(f"infer {mode}: {result.count}/{result.count} ")
    # At a terminal, a bar; with max_images, its total is theirs.
    with contextlib.redirect_stderr(Terminal()) as err:
        infer(predictor, dataset_dir, dataclasses.replace(options, max_images=3))
    assert f"infer {mode}" in err.getvalue() and "3/3" in err.getvalue()
    assert "img/s" in err.getvalue()
    with contextlib.redirect_stderr(Terminal()) as err:
        infer(predictor, dataset_dir, dataclasses.replace(options, quiet=True))
    assert err.getvalue() == ""


def test_cli_quiet_draws_no_bar(model_dir, dataset_dir):
    argv = ["infer", "--model", model_dir, "--data", dataset_dir]
    with contextlib.redirect_stderr(Terminal()) as err, contextlib.redirect_stdout(io.StringIO()):
        assert infer_mod.main([*argv, "--quiet"]) == 0
    assert "infer" not in err.getvalue() and "img" not in err.getvalue()
    with contextlib.redirect_stderr(Terminal()) as err, contextlib.redirect_stdout(io.StringIO()):
        assert infer_mod.main(argv) == 0
    assert "infer pipelined" in err.getvalue() and "img/s" in err.getvalue()


def _channels_first_twins(tmp_path, conv_first: bool) -> tuple[Predictor, Predictor]:
    """A model that declares channels-first input [3, H, W], and its channels-last twin
    with the same weights (so the same predictions), both on the CPU.

    conv_first: its convolution and pooling are channels-first (oneDNN's CPU kernels
    run them, Eigen's do not); else it transposes first, and runs on any CPU.
    """
    import keras

    keras.utils.set_random_seed(0)

    def build(shape: tuple[int, int, int], fmt: str, permute: bool):
        inp = keras.Input(shape, name="image")
        x = keras.layers.Permute((2, 3, 1))(inp) if permute else inp
        x = keras.layers.Conv2D(4, 3, activation="relu", data_format=fmt)(x)
        x = keras.layers.GlobalAveragePooling2D(data_format=fmt)(x)
        return keras.Model(inp, keras.layers.Dense(len(LABELS), activation="softmax")(x))

    nhwc = build((SIZE, SIZE, 3), "channels_last", False)
    fmt = "channels_first" if conv_first else "channels_last"
    nchw = build((3, SIZE, SIZE), fmt, not conv_first)
    nchw.set_weights(nhwc.get_weights())
    twins = []
    for name, model in (("nchw", nchw), ("nhwc", nhwc)):
        model.save(str(tmp_path / f"{name}.keras"))
        twins.append(Predictor.load(str(tmp_path / f"{name}.keras"), device="cpu"))
    assert twins[0].expects_channels_first and twins[0].input_shape == (3, SIZE, SIZE)
    return twins[0], twins[1]


def _nchw(ds):
    import tensorflow as tf

    return ds.map(lambda e: {**e, "image": tf.transpose(e["image"], [0, 3, 1, 2])})


def _agree_with_twin(nchw: Predictor, nhwc: Predictor, dataset_dir: str, modes) -> None:
    """`nchw` gives the predictions of its channels-last twin in every mode, on a
    dataset directory and on a caller's pipeline in NHWC (the reader's default) or
    already in NCHW."""
    inputs = {  # name: (the twin's input, the same images for `nchw`)
        "directory": (dataset_dir, dataset_dir),
        "NHWC pipeline": (_dataset(), _dataset()),
        "NCHW pipeline": (_dataset(), _nchw(_dataset())),
    }
    for name, (twin_data, data) in inputs.items():
        want = infer(nhwc, twin_data, InferOptions(top_k=1))
        assert np.ptp(want.probabilities) > 1e-3  # the pixels decide the output
        for mode in modes:
            got = infer(nchw, data, InferOptions(mode=mode, batch_size=4, top_k=1))
            assert got.keys == want.keys, (name, mode)
            np.testing.assert_allclose(got.probabilities, want.probabilities, atol=1e-5)


def test_a_channels_first_model_gets_nchw_from_every_input_in_every_mode(tmp_path, dataset_dir):
    """It transposes before its convolution, so it runs on any CPU: the probe passes
    and every input path must feed it NCHW (a caller's NHWC pipeline failed with
    "images of shape (11, 16, 16, 3) do not fit model input [batch, 3, 16, 16]")."""
    nchw, nhwc = _channels_first_twins(tmp_path, conv_first=False)
    _agree_with_twin(nchw, nhwc, dataset_dir, MODES)


def test_channels_first_convolutions_on_a_cpu_run_or_are_one_clear_error(tmp_path, dataset_dir):
    """Whether they run depends on TF's CPU kernels (oneDNN's do, Eigen's do not):
    infer's probe decides. Where it passes, the predictions are the channels-last
    twin's; where not, infer is one clear error for every input."""
    nchw, nhwc = _channels_first_twins(tmp_path, conv_first=True)
    try:
        modes._check_runs_channels_first(nchw, (SIZE, SIZE))
        runs = True
    except OptionsError:
        runs = False
    print(f"channels-first convolutions run on this CPU: {runs}")
    if runs:
        _agree_with_twin(nchw, nhwc, dataset_dir, ("sequential", "pipelined"))
        return
    for data in (dataset_dir, _dataset(), _nchw(_dataset())):
        with pytest.raises(
            OptionsError, match=r"channels-first \(NCHW\) input and cannot run"
        ) as e:
            infer(nchw, data, InferOptions(device="cpu"))
        assert "\n" not in str(e.value)


@pytest.mark.slow
def test_channels_first_convolutions_with_the_other_cpu_kernels():
    """The test above in a fresh process whose TF has oneDNN switched the other way,
    so that both of the probe's verdicts are checked on one host."""
    from tfclassify.models import runtime

    env = {**os.environ, runtime.ONEDNN_ENV: "0" if runtime.onednn_enabled() else "1"}
    test = f"{__file__}::test_channels_first_convolutions_on_a_cpu_run_or_are_one_clear_error"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", test],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "channels-first convolutions run on this CPU" in proc.stdout


# ---------------------------------------------------------------- command line


def test_cli_describe(model_dir, capsys):
    assert infer_mod.main(["infer", "--describe", model_dir]) == 0
    out = capsys.readouterr().out
    assert "serving_default" in out and "image" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "/nonexistent/model", "--data", "{data}"], "model not found"),
        (["--model", "{model}", "--data", "{data}", "--signature", "nope"], "serving_default"),
        (["--model", "{model}", "--data", "{data}", "--mode", "fast"], "mode"),
        (["--model", "{model}"], "--data is required"),
        (["--model", "{model}", "--data", "{data}", "--bogus_flag"], "bogus_flag"),
        # float16 on a CPU is slower, not faster: refused (asked for the CPU, so that a
        # host with a GPU refuses it too, instead of turning on float16 process-wide).
        (
            ["--model", "{model}", "--data", "{data}", "--device", "cpu", "--mixed_precision"],
            "needs a GPU",
        ),
    ],
)
def test_cli_user_errors_exit_2(model_dir, tmp_path, capsys, args, message):
    # A valid (empty) converted dataset, so the model is what fails.
    save_dataset_info(
        str(tmp_path), {"validation": metadata.SplitInfo("validation", ())}, labels=LABELS
    )
    args = [a.format(model=model_dir, data=str(tmp_path)) for a in args]
    assert infer_mod.main(["infer", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_cli_missing_dataset_json_exits_2_in_a_real_process(model_dir, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "tfclassify.infer", "--model", model_dir, "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1 and "dataset.json" in lines[0]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_cli_empty_split_is_one_line(model_dir, tmp_path, capsys):
    save_dataset_info(
        str(tmp_path), {"validation": metadata.SplitInfo("validation", ())}, labels=LABELS
    )
    argv = ["infer", "--model", model_dir, "--data", str(tmp_path), "--split", "validation"]
    assert infer_mod.main(argv) == 2
    assert f"split 'validation' of {tmp_path} has no records" in _one_error_line(capsys)


def test_cli_skip_errors_flag(model_dir, sharded, capsys):
    # The reader's error tells users to pass skip_errors=True: the CLI can.
    directory, shard = sharded("crc")
    argv = ["infer", "--model", model_dir, "--data", directory]
    assert infer_mod.main(argv) == 2
    assert shard in _one_error_line(capsys)
    assert infer_mod.main([*argv, "--skip_errors"]) == 0
    assert "1 bad records skipped" in capsys.readouterr().out


# A shortfall and an excess; every kind of damage is read in test_data_errors.
@pytest.mark.parametrize("kind", ["zero", "duplicate"])
def test_cli_skip_errors_accounts_for_a_damaged_shard(model_dir, sharded, tmp_path, capfd, kind):
    """Before: an emptied shard gave exit 0, `skipped_records: 0` and nothing on
    stderr. Now strict refuses, naming the shard; --skip_errors reads the rest and
    the summary accounts for every record dataset.json lists."""
    import shutil

    directory = shutil.copytree(sharded()[0], tmp_path / "d").as_posix()
    shard = metadata.load(directory).shard_paths("validation")[1]
    read, missing, extra = recordlib.damage(shard, kind, at=5)
    out = tmp_path / "p.csv"
    argv = ["infer", "--model", model_dir, "--data", directory, "--output", str(out)]
    assert infer_mod.main(argv) == 2
    assert f"damaged shard {shard}: " in capfd.readouterr().err
    assert infer_mod.main([*argv, "--skip_errors"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["count"] == (SHARDS - 1) * PER_SHARD + read
    assert (summary["skipped_records"], summary["extra_records"]) == (missing, extra)
    assert summary["count"] + missing - extra == SHARDS * PER_SHARD
    err = capfd.readouterr().err
    assert f"records {'too many in' if extra else 'missing from'} {shard}: it holds" in err


@pytest.mark.parametrize("value", [2**63, -1, True])
def test_cli_count_out_of_range_in_dataset_json_is_one_line(
    model_dir, sharded, tmp_path, capsys, value
):
    """Before: a num_examples of 2**63 loaded, then overflowed an int64 tensor (a
    ValueError traceback from infer and train)."""
    import shutil

    directory = shutil.copytree(sharded()[0], tmp_path / "d")
    path = directory / metadata.METADATA_FILE
    d = json.loads(path.read_text())
    d["splits"]["validation"]["shards"][1]["num_examples"] = value
    path.write_text(json.dumps(d))
    assert infer_mod.main(["infer", "--model", model_dir, "--data", str(directory)]) == 2
    assert _one_error_line(capsys).startswith(
        f"error: {path}: splits.validation.shards[1].num_examples must be an integer"
    )


def test_cli_model_and_batch_errors_are_one_line(model_dir, dataset_dir, tmp_path, capsys):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    assert infer_mod.main(["infer", "--model", str(bad), "--data", dataset_dir]) == 2
    assert f"not a valid .keras file: {bad}" in _one_error_line(capsys)
    labels_dir = tmp_path / "m"
    labels_dir.mkdir()
    (labels_dir / "saved_model").symlink_to(os.path.join(model_dir, "saved_model"))
    (labels_dir / "labels.txt").write_bytes(b"\xff\xfe\n")
    assert infer_mod.main(["infer", "--model", str(labels_dir), "--data", dataset_dir]) == 2
    assert "labels.txt is not UTF-8" in _one_error_line(capsys)
    big = ["--batch_size", "99999999999999999999"]
    assert infer_mod.main(["infer", "--model", model_dir, "--data", dataset_dir, *big]) == 2
    assert "batch_size must be an integer in [1, 2147483647]" in _one_error_line(capsys)


_THREAD_FLAGS = ("intra_op_threads", "inter_op_threads", "tf_data_threads")


@pytest.mark.parametrize(
    "flag, value",
    [(f, v) for f in _THREAD_FLAGS for v in ("1e20", str(2**31), "-1", "99999999999")]
    + [("top_k", v) for v in ("1e20", str(2**31), "-1")]
    + [("max_images", v) for v in ("1e20", str(2**63), "-1")]
    + [("image_size", v) for v in ("1e20", str(2**31), "-1")],
)
def test_cli_numeric_flag_extremes_are_one_line(tmp_path, capsys, flag, value):
    """Refused before TF starts (--intra_op_threads 99999999999 was a ValueError from
    TF), in one line that names the flag: absl's bound for the thread flags, whose
    option fields are named otherwise, the option's own check for the rest."""
    argv = ["infer", "--model", str(tmp_path), "--data", str(tmp_path), f"--{flag}", value]
    assert infer_mod.main(argv) == 2
    err = _one_error_line(capsys)
    names = any(n in err for n in (f"flag --{flag}=", f"error: {flag} ", f"error: --{flag} "))
    assert names and ("must be" in err or "not an integer" in err or "invalid" in err), err


def test_cli_help_offers_every_loadable_model_and_runtime(capsys):
    assert infer_mod.main(["infer", "--help"]) == 0
    out = capsys.readouterr().out
    model_help = next(line for line in out.splitlines() if line.strip().startswith("--model:"))
    assert all(f in model_help for f in (".keras", ".tflite", ".xml"))
    assert "--runtime" in out and "--precision" in out and "--[no]skip_errors" in out


def test_dataset_classes_the_model_does_not_know_are_warned_about(caplog):
    """Otherwise a model run on the wrong dataset only reports "accuracy: n/a"."""
    import logging

    with caplog.at_level(logging.WARNING):
        remap = modes._label_remap(("cat", "dog"), ("cat", "eel", "dog"), True)
    assert remap.tolist() == [0, -1, 1]
    assert "1 of the dataset's 3 classes are not among the model's classes" in caplog.text
    assert caplog.text.rstrip().endswith("eel")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert modes._label_remap(("dog", "cat"), ("cat", "dog"), True).tolist() == [1, 0]
    assert caplog.text == ""  # the same classes in another order: nothing to warn about


def test_a_model_with_more_classes_than_the_dataset_says_so(dataset_dir, tmp_path, caplog):
    """A 5-output model without labels.txt on a 3-class dataset: the warning names both
    class counts, not "3 of the dataset's 3 classes are not among the model's"."""
    import logging

    import keras

    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(inp)
    model = keras.Model(inp, keras.layers.Dense(5, activation="softmax")(x))
    path = str(tmp_path / "five.keras")  # no labels.txt beside it
    model.save(path)
    with caplog.at_level(logging.WARNING):
        r = infer(path, dataset_dir, InferOptions(mode="batch"))
    assert r.class_names == ("0", "1", "2", "3", "4") and r.num_labeled == 0
    assert "the model has 5 classes and the dataset 3" in caplog.text
    assert "no labels.txt" in caplog.text and "3 of the dataset's" not in caplog.text


def test_rows_can_be_indexed_sliced_and_read_again(predictor):
    r = infer(predictor, _dataset(), InferOptions(mode="batch", top_k=2))
    rows = r.rows
    assert len(rows) == N and rows[:2] == [rows[0], rows[1]] and rows[-1] == rows[N - 1]
    assert rows[0]["key"] == "img_00.png" and len(rows[0]["top_k"]) == 2
    assert list(rows) == list(rows) == r.predictions  # not used up by a first pass
    assert rows[::5] == [rows[0], rows[5], rows[10]] and rows[N:] == []
    with pytest.raises(IndexError):
        rows[N]


def test_thread_counts_left_to_tf_read_default(predictor):
    text = str(infer(predictor, _dataset(), InferOptions(mode="batch")))
    line = next(x for x in text.splitlines() if x.strip().startswith("threads:"))
    assert "intra_op" in line and "(default)" in line and "(set 0)" not in line


def test_cli_says_when_predictions_are_not_saved(model_dir, dataset_dir, tmp_path, capsys):
    argv = ["infer", "--model", model_dir, "--data", dataset_dir, "--mode", "batch"]
    assert infer_mod.main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("predictions not saved: pass --output")
    assert infer_mod.main([*argv, "--output", str(tmp_path / "p.csv")]) == 0
    assert "not saved" not in capsys.readouterr().out

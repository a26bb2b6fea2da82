"""LiteRT (`.tflite`) models through `Predictor` and every inference mode."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfclassify.core.cpus import available_cpus
from tfclassify.core.errors import InputError, MissingDependencyError, OptionsError
from tfclassify.core.options import InferOptions
from tfclassify.inference.modes import infer
from tfclassify.models.predictor import Predictor, Quantization, describe

LABELS = ("circle", "square", "triangle")
SIZE = 16
MODES = ("sequential", "batch", "pipelined")


def _convert(saved_model: str, path, int8: bool = False) -> str:
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.random((1, SIZE, SIZE, 3), dtype=np.float32)] for _ in range(16)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """A tiny softmax classifier as a SavedModel and as fp32 and full-int8 `.tflite`
    files, labels.txt beside them."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(len(LABELS), activation="softmax", name="probabilities")(x)
    d = tmp_path_factory.mktemp("litert")
    keras.Model(inp, out).export(str(d / "saved_model"), verbose=False)
    (d / "labels.txt").write_text("".join(f"{t}\n" for t in LABELS))
    return {
        "saved_model": str(d / "saved_model"),
        "fp32": _convert(str(d / "saved_model"), d / "fp32.tflite"),
        "int8": _convert(str(d / "saved_model"), d / "int8.tflite", int8=True),
    }


@pytest.fixture(scope="module")
def dataset_dir(converted_shapes) -> str:
    return converted_shapes(LABELS, {"train": 2, "validation": 3})


def _images(n: int = 5) -> np.ndarray:
    return np.random.default_rng(1).random((n, SIZE, SIZE, 3), dtype=np.float32)


def test_fp32_and_int8_files_predict_as_the_float_model(models):
    reference = Predictor.load(models["saved_model"]).predict(_images())
    fp32 = Predictor.load(models["fp32"])
    assert (fp32.runtime, fp32.precision, fp32.input_quantization) == ("litert", "f32", None)
    np.testing.assert_allclose(fp32.predict(_images()), reference, atol=1e-5)

    int8 = Predictor.load(models["int8"], threads=1)
    assert (int8.runtime, int8.precision, int8.threads) == ("litert", "int8", 1)
    assert int8.input_dtype == "float32" and int8.model_input_dtype == "int8"
    assert int8.labels == LABELS and int8.image_size == (SIZE, SIZE)
    got = int8.predict(_images())
    # The dequantized softmax is recognised as probabilities, not softmaxed again.
    assert int8.outputs == "probabilities"
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, reference, atol=0.05)
    # The model's own integers pass as they are: the same result.
    quantized = int8.input_quantization.quantize(_images())
    np.testing.assert_array_equal(int8.predict(quantized), got)


def test_batch_sizes_resize_the_input_and_a_single_image_works(models):
    p = Predictor.load(models["fp32"])
    images = _images(7)
    whole = p.predict(images)
    np.testing.assert_allclose(p.predict(images[:3]), whole[:3], atol=1e-6)
    np.testing.assert_allclose(p.predict(images[3]), whole[3:4], atol=1e-6)
    np.testing.assert_allclose(p.predict(tf.constant(images)), whole, atol=1e-6)


def test_quantization_round_trips_the_same_in_graph_and_in_numpy():
    q = Quantization(scale=1 / 255, zero_point=-128, dtype="int8")
    x = np.random.default_rng(2).random((4, 8, 8, 3), dtype=np.float32)
    in_numpy = q.quantize(x)
    in_graph = q.quantize(tf.constant(x)).numpy()
    assert in_numpy.dtype == in_graph.dtype == np.int8
    np.testing.assert_array_equal(in_numpy, in_graph)
    assert np.abs(q.dequantize(in_numpy) - x).max() <= q.scale / 2 + 1e-7
    # Out of range values clip to the type's ends.
    assert q.quantize(np.array([-1.0, 2.0], np.float32)).tolist() == [-128, 127]


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_every_mode_agrees_and_the_summary_names_the_runtime(
    models, dataset_dir, tmp_path, variant
):
    results = {}
    for mode in MODES:
        out = tmp_path / mode / "p.csv"
        options = InferOptions(mode=mode, batch_size=4, output=str(out))
        results[mode] = infer(models[variant], dataset_dir, options)
        summary = json.loads((out.parent / "summary.json").read_text())
        precision = "int8" if variant == "int8" else "f32"
        assert (summary["runtime"], summary["precision"]) == ("litert", precision)
        assert summary["model_threads"] == available_cpus()
    first = results["sequential"]
    assert first.count == 3 * len(LABELS)
    for r in results.values():
        assert r.keys == first.keys
        # int8 input is quantized in the tf.data graph in every mode: equal integers.
        np.testing.assert_allclose(r.probabilities, first.probabilities, atol=1e-6)
    assert f"litert, {'int8' if variant == 'int8' else 'f32'}" in str(first)


def test_cli_runs_a_tflite_model_and_describes_it(models, dataset_dir, tmp_path, capsys):
    from tfclassify import infer as infer_mod

    out = tmp_path / "p.jsonl"
    argv = ["infer", "--model", models["int8"], "--data", dataset_dir, "--output", str(out)]
    assert infer_mod.main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["runtime"], summary["precision"]) == ("litert", "int8")
    assert summary["model_threads"] == available_cpus()
    capsys.readouterr()
    assert infer_mod.main(["infer", "--describe", models["int8"]]) == 0
    text = capsys.readouterr().out
    assert "(tflite)" in text and "int8 (scale" in text and "precision: int8" in text
    assert "labels (3): circle, square, triangle" in describe(models["fp32"])


def test_clear_errors(models, tmp_path, monkeypatch):
    with pytest.raises(OptionsError, match="runs on the CPU"):
        Predictor.load(models["fp32"], device="gpu")
    with pytest.raises(OptionsError, match="precision applies to the OpenVINO runtime"):
        Predictor.load(models["fp32"], precision="f32")
    with pytest.raises(OptionsError, match="runs on tensorflow or openvino, not litert"):
        Predictor.load(models["saved_model"], runtime="litert")
    with pytest.raises(OptionsError, match="runtime must be one of"):
        Predictor.load(models["fp32"], runtime="onnx")
    with pytest.raises(OptionsError, match="runtime"):
        InferOptions(runtime="tflite")

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'tfclassify\[litert\]'"):
        Predictor.load(models["fp32"])


def test_a_model_with_two_inputs_is_refused(tmp_path):
    import keras

    a, b = keras.Input((SIZE, SIZE, 3)), keras.Input((SIZE, SIZE, 3))
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(a + b))
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model([a, b], out))
    path = tmp_path / "two.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(InputError, match="2 inputs and 1 outputs"):
        Predictor.load(str(path))

"""The OpenVINO backend: SavedModel, .keras and IR models agree with TF, in every mode."""

from __future__ import annotations

import importlib
import json
import shutil
import sys

import numpy as np
import openvino as ov
import pytest

from tfclassify.core.cpus import available_cpus
from tfclassify.core.errors import InputError, MissingDependencyError, OptionsError
from tfclassify.core.options import InferOptions
from tfclassify.infer import infer
from tfclassify.models import openvino as ovp
from tfclassify.models.predictor import Predictor

infer_mod = importlib.import_module("tfclassify.infer")

LABELS = ("circle", "square", "triangle")
SIZE = 16
MODES = ("sequential", "batch", "pipelined")


def _classifier(shape: tuple[int | None, int | None, int], activation: str | None):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input(shape, name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    name = "probabilities" if activation else "scores"
    return keras.Model(inp, keras.layers.Dense(len(LABELS), activation=activation, name=name)(x))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """A softmax classifier as `train` writes it (saved_model/, model.keras, labels.txt),
    its IR, and one that takes any image size."""
    root = tmp_path_factory.mktemp("ov_models")
    model = _classifier((SIZE, SIZE, 3), "softmax")
    model.export(str(root / "saved_model"), verbose=False)
    model.save(str(root / "model.keras"))
    (root / "labels.txt").write_text("".join(f"{t}\n" for t in LABELS))
    xml = str(root / "model.xml")
    # Full-precision weights (save_model stores them as float16 by default).
    ov.save_model(ov.convert_model(str(root / "saved_model")), xml, compress_to_fp16=False)
    _classifier((None, None, 3), None).export(str(root / "any_size"), verbose=False)
    return {
        "dir": str(root),
        "saved_model": str(root / "saved_model"),
        "keras": str(root / "model.keras"),
        "xml": xml,
        "any_size": str(root / "any_size"),
    }


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((5, SIZE, SIZE, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def tf_probs(models, images) -> np.ndarray:
    return Predictor.load(models["saved_model"]).predict(images)


@pytest.fixture(scope="module")
def dataset_dir(converted_shapes) -> str:
    return converted_shapes(LABELS, {"train": 2, "validation": 3})


def _compiled(p: Predictor):
    """The compiled model behind the predictor's (one) infer request."""
    (request,) = p._requests.values()
    return request.get_compiled_model()


@pytest.mark.parametrize("kind", ["saved_model", "keras"])
def test_tf_formats_on_openvino_match_tensorflow(models, images, tf_probs, kind):
    p = Predictor.load(models[kind], runtime="openvino")
    assert (p.kind, p.runtime, p.precision) == ("openvino", "openvino", "f32")
    assert p.threads == available_cpus() and p.device == "/CPU:0"
    assert p.input_shape == (SIZE, SIZE, 3) and p.input_name == "image"
    assert p.labels == LABELS and p.num_classes == len(LABELS)
    got = p.predict(images)
    assert got.dtype == np.float32 and got.shape == (5, len(LABELS))
    np.testing.assert_allclose(got, tf_probs, atol=1e-4)
    assert p.outputs == "probabilities"
    np.testing.assert_allclose(p.predict(images[:2]), tf_probs[:2], atol=1e-4)  # other batch size


def test_an_ir_loads_by_its_xml_and_agrees(models, images, tf_probs):
    p = Predictor.load(models["xml"], threads=1)
    assert (p.kind, p.runtime, p.precision, p.threads) == ("openvino", "openvino", "f32", 1)
    assert p.labels == LABELS  # labels.txt beside the .xml
    np.testing.assert_allclose(p.predict(images), tf_probs, atol=1e-4)
    compiled = _compiled(p)
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert compiled.get_property("NUM_STREAMS") == 1
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32


def test_an_ir_with_a_fixed_batch_takes_any_batch(models, images, tf_probs, tmp_path):
    xml = str(tmp_path / "batch1.xml")
    model = ov.convert_model(models["saved_model"], input=[1, SIZE, SIZE, 3])
    ov.save_model(model, xml, compress_to_fp16=False)
    p = Predictor.load(xml)
    assert p.input_shape == (SIZE, SIZE, 3)
    np.testing.assert_allclose(p.predict(images), tf_probs, atol=1e-4)


def test_a_model_of_any_image_size_is_compiled_per_size(models):
    import tensorflow as tf

    p = Predictor.load(models["any_size"], runtime="openvino")
    assert p.input_shape == (None, None, 3) and p.image_size is None
    call = tf.saved_model.load(models["any_size"]).signatures["serving_default"]
    rng = np.random.default_rng(1)
    for side in (12, 20, 12):
        x = rng.random((3, side, side, 3), dtype=np.float32)
        want = tf.nn.softmax(call(image=x)["output_0"]).numpy()
        np.testing.assert_allclose(p.predict(x), want, atol=1e-4)
    p.warmup((24, 24))  # as `infer` does, at the size it reads
    assert sorted(p._requests) == [(12, 12, 3), (20, 20, 3), (24, 24, 3)]
    assert p.outputs == "logits" and p.precision == "f32"


def test_three_modes_agree_and_the_summary_says_openvino(models, dataset_dir, tmp_path):
    tf_result = infer(models["dir"], dataset_dir, InferOptions(batch_size=4))
    want = dict(zip(tf_result.keys, tf_result.probabilities, strict=True))
    for mode in MODES:
        out = tmp_path / mode / "preds.csv"
        options = InferOptions(mode=mode, batch_size=4, runtime="openvino", output=str(out))
        r = infer(models["dir"], dataset_dir, options)
        assert r.keys == tf_result.keys and r.count == 3 * len(LABELS)
        for key, probs in zip(r.keys, r.probabilities, strict=True):
            np.testing.assert_allclose(probs, want[key], atol=1e-4)
        summary = json.loads((tmp_path / mode / "summary.json").read_text())
        assert summary["runtime"] == "openvino" and summary["precision"] == "f32"
        assert summary["model_threads"] == available_cpus()


def test_cli_describes_an_ir(models, capsys):
    assert infer_mod.main(["infer", "--describe", models["xml"]]) == 0
    out = capsys.readouterr().out
    assert f"{models['xml']} (openvino)" in out
    assert f"input  image: [?, {SIZE}, {SIZE}, 3] float32" in out
    assert "output output_0: [?, 3] float32" in out
    assert "precision: f32" in out and "labels (3): circle" in out


def test_an_nncf_quantized_ir_reports_int8(models, images, tf_probs, tmp_path, capsys):
    import nncf

    model = ov.convert_model(models["saved_model"])
    calibration = nncf.Dataset([images[i : i + 1] for i in range(len(images))])
    xml = str(tmp_path / "int8.xml")
    ov.save_model(nncf.quantize(model, calibration, subset_size=len(images)), xml)
    p = Predictor.load(xml)
    assert p.precision == "int8"
    got = p.predict(images)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(got, tf_probs, atol=0.1)  # 8-bit steps, not float rounding
    assert infer_mod.main(["infer", "--describe", xml]) == 0
    assert "precision: int8" in capsys.readouterr().out


def test_bf16_on_a_cpu_without_it_is_refused(models, monkeypatch):
    monkeypatch.setattr(ovp, "cpu_capabilities", lambda: ("FP32", "INT8"))
    with pytest.raises(OptionsError, match="'bf16' needs a CPU with bf16.*FP32, INT8"):
        Predictor.load(models["xml"], precision="bf16")


def test_bf16_runs_where_the_cpu_has_it_else_is_refused(models, images, tf_probs):
    if "BF16" in ovp.cpu_capabilities():
        p = Predictor.load(models["xml"], precision="bf16")
        assert p.precision == "bf16"
        np.testing.assert_allclose(p.predict(images), tf_probs, atol=0.05)
    else:  # this host: FP32 and INT8 only
        with pytest.raises(OptionsError, match="bf16"):
            Predictor.load(models["xml"], precision="bf16")


def test_cli_bf16_refusal_is_one_line_naming_the_flag(models, dataset_dir, monkeypatch, capsys):
    monkeypatch.setattr(ovp, "cpu_capabilities", lambda: ("FP32",))
    argv = ["infer", "--model", models["xml"], "--data", dataset_dir, "--precision", "bf16"]
    assert infer_mod.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--precision=f32" in err and "\n" not in err


def test_missing_openvino_is_one_line_naming_the_install(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` fails
    for load in (
        lambda: Predictor.load(models["saved_model"], runtime="openvino"),
        lambda: Predictor.load(models["xml"]),
    ):
        with pytest.raises(MissingDependencyError) as e:
            load()
        assert str(e.value) == (
            "OpenVINO is not installed: pip install 'tfclassify[openvino]' "
            "(or pip install openvino)"
        )


def test_a_model_with_two_inputs_is_refused(tmp_path):
    import keras

    a, b = keras.Input((8, 8, 3), name="a"), keras.Input((8, 8, 3), name="b")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a, b]))
    keras.Model([a, b], keras.layers.Dense(3)(x)).export(str(tmp_path / "two"), verbose=False)
    with pytest.raises(InputError, match="2 inputs and 1 outputs; tfclassify needs one image"):
        Predictor.load(str(tmp_path / "two"), runtime="openvino")


def test_unknown_signature_is_named(models):
    with pytest.raises(InputError, match="no signature 'nope'.*serving_default"):
        Predictor.load(models["saved_model"], runtime="openvino", signature="nope")


def test_an_ir_without_its_weights_is_one_clear_error(models, tmp_path):
    xml = tmp_path / "lonely.xml"
    shutil.copy(models["xml"], xml)  # no .bin beside it
    with pytest.raises(InputError, match="cannot read OpenVINO model .*lonely.xml"):
        Predictor.load(str(xml))


@pytest.mark.parametrize("runtime", ["tensorflow", "auto"])
def test_precision_with_a_tf_runtime_is_refused(models, runtime):
    with pytest.raises(OptionsError, match="precision applies to the OpenVINO runtime"):
        Predictor.load(models["saved_model"], runtime=runtime, precision="f32")


def test_a_tflite_file_on_openvino_is_refused(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"not read: the runtime is refused first")
    with pytest.raises(OptionsError, match="a tflite model runs on litert, not openvino"):
        Predictor.load(str(path), runtime="openvino")


def test_a_gpu_device_is_refused(models):
    with pytest.raises(OptionsError, match="openvino runtime runs on the CPU"):
        Predictor.load(models["xml"], device="gpu")

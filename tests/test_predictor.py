"""Predictor: one interface over SavedModel and .keras, same probabilities from both."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tfclassify.core.errors import InputError, OptionsError
from tfclassify.models import predictor as pred
from tfclassify.models.predictor import Predictor

LABELS = ("cat", "dog", "fish")


def _tiny_model(activation: str | None):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    name = "probabilities" if activation == "softmax" else "scores_out"
    out = keras.layers.Dense(3, activation=activation, name=name)(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """A softmax model (model dir with saved_model/, model.keras, labels.txt) and a logits one."""
    root = tmp_path_factory.mktemp("models")
    probs = _tiny_model("softmax")
    model_dir = root / "model"
    os.makedirs(model_dir)
    probs.export(str(model_dir / "saved_model"), verbose=False)
    probs.save(str(model_dir / "model.keras"))
    (model_dir / "labels.txt").write_text("".join(f"{t}\n" for t in LABELS))
    logits = _tiny_model(None)
    logits.export(str(root / "logits_sm"), verbose=False)
    return {
        "dir": str(model_dir),
        "saved_model": str(model_dir / "saved_model"),
        "keras": str(model_dir / "model.keras"),
        "logits": str(root / "logits_sm"),
        "logits_model": logits,
        "root": str(root),
    }


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((5, 8, 8, 3), dtype=np.float32)


def test_saved_model_and_keras_give_same_probabilities(models, images):
    sm = Predictor.load(models["saved_model"])
    kr = Predictor.load(models["keras"])
    assert sm.kind == "saved_model" and kr.kind == "keras"
    a, b = sm.predict(images), kr.predict(images)
    assert a.shape == (5, 3) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)
    assert sm.outputs == kr.outputs == "probabilities"
    assert sm.input_name == kr.input_name == "image"
    assert (sm.output_name, kr.output_name) == ("output_0", "probabilities")


def test_properties_and_labels(models):
    p = Predictor.load(models["saved_model"])
    assert p.input_shape == (8, 8, 3)
    assert p.input_dtype == "float32"
    assert not p.expects_channels_first and p.data_format == "NHWC"
    assert p.image_size == (8, 8)
    assert p.num_classes == 3
    assert p.labels == LABELS  # labels.txt beside the SavedModel dir
    assert Predictor.load(models["keras"]).labels == LABELS
    assert Predictor.load(models["logits"]).labels is None
    assert p.device == "/CPU:0" or "GPU" in p.device


def test_model_dir_resolves_to_its_saved_model(models, monkeypatch):
    from tfclassify.models import runtime

    asked = []
    monkeypatch.setattr(runtime, "prefer_onednn", lambda: asked.append(1))
    p = Predictor.load(models["dir"])
    assert p.path == models["saved_model"] and p.kind == "saved_model"
    assert asked == [1]  # oneDNN asked for before the load (see test_runtime)


@pytest.mark.parametrize("freeze", [True, False])
def test_traced_once_for_any_batch_size(models, images, freeze):
    p = Predictor.load(models["keras"], freeze=freeze)
    # Counted on the call that runs: freezing traced the model's own function already.
    assert p.trace_count == 0
    for n in (1, 5, 2):
        p.predict(images[:n])
    single = p.predict(images[0])  # one image without batch dim
    assert single.shape == (1, 3)
    assert p.trace_count == 1 == p._call.experimental_get_tracing_count()


@pytest.mark.parametrize("kind", ["saved_model", "keras"])
def test_frozen_call_matches_the_model_as_saved(models, images, kind):
    frozen = Predictor.load(models[kind])
    plain = Predictor.load(models[kind], freeze=False)
    np.testing.assert_allclose(frozen.predict(images), plain.predict(images), atol=1e-6)
    # Frozen: the weights are constants in the graph, no variable is read.
    ops = {op.type for op in frozen._frozen.graph.get_operations()}
    assert "ReadVariableOp" not in ops and "VarHandleOp" not in ops
    assert plain._call is plain._fn and frozen.trace_count == plain.trace_count == 1


def test_a_model_that_cannot_be_frozen_runs_as_saved(models, images, monkeypatch):
    from tensorflow.python.framework import convert_to_constants

    def refuse(fn):
        raise ValueError("cannot convert a HashTable")

    monkeypatch.setattr(convert_to_constants, "convert_variables_to_constants_v2", refuse)
    p = Predictor.load(models["keras"])
    assert not p.freeze and p._call is p._fn
    want = Predictor.load(models["keras"], freeze=False).predict(images)
    np.testing.assert_allclose(p.predict(images), want, atol=1e-6)


def test_sequential_keras_model(tmp_path, images):
    import keras

    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax", name="probs"),
        ]
    )
    path = str(tmp_path / "seq.keras")
    model.save(path)
    p = Predictor.load(path)
    assert (p.output_name, p.outputs, p.num_classes) == ("probs", "probabilities", 3)
    np.testing.assert_allclose(p.predict(images), model(images).numpy(), atol=1e-6)
    assert "output probs: [?, 3] float32" in pred.describe(path)


def test_uint8_input_is_cast(models, images):
    p = Predictor.load(models["saved_model"])
    u8 = (images * 255).astype(np.uint8)
    np.testing.assert_allclose(p.predict(u8), p.predict(u8.astype(np.float32)), atol=1e-6)


def test_wrong_shape_is_input_error(models):
    p = Predictor.load(models["saved_model"])
    with pytest.raises(InputError, match=r"\[batch, 8, 8, 3\]"):
        p.predict(np.zeros((2, 9, 8, 3), np.float32))


def test_logits_get_softmax(models, images):
    raw = models["logits_model"].predict(images, verbose=0)
    expected = pred.softmax(raw)
    auto = Predictor.load(models["logits"])
    np.testing.assert_allclose(auto.predict(images), expected, atol=1e-5)
    assert auto.outputs == "logits"
    explicit = Predictor.load(models["logits"], outputs="logits")
    np.testing.assert_allclose(explicit.predict(images), expected, atol=1e-5)
    as_is = Predictor.load(models["logits"], outputs="probabilities")
    np.testing.assert_allclose(as_is.predict(images), raw, atol=1e-5)


def test_wrong_signature_lists_available(models):
    with pytest.raises(InputError, match="serving_default") as e:
        Predictor.load(models["saved_model"], signature="nope")
    assert "'nope'" in str(e.value)


def test_missing_and_unsupported_paths(models, tmp_path):
    with pytest.raises(InputError, match="not found"):
        Predictor.load(str(tmp_path / "missing"))
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(b"TFL3")
    with pytest.raises(InputError, match="cannot load LiteRT model .*m.tflite"):
        Predictor.load(str(tfl))
    other = tmp_path / "m.onnx"
    other.write_bytes(b"x")
    with pytest.raises(InputError, match="unknown model format"):
        Predictor.load(str(other))
    with pytest.raises(InputError, match="saved_model.pb"):
        Predictor.load(str(tmp_path))
    with pytest.raises(OptionsError, match="outputs"):
        Predictor.load(models["saved_model"], outputs="maybe")


def test_labels_count_must_match(models, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(models["saved_model"], d / "saved_model")
    (d / "labels.txt").write_text("a\nb\n")
    with pytest.raises(InputError, match="2 labels"):
        Predictor.load(str(d))


def test_describe_lists_signatures_and_io(models):
    text = pred.describe(models["saved_model"])
    assert "serving_default" in text and "input  image: [?, 8, 8, 3] float32" in text
    assert "[?, 3] float32" in text and "labels (3): cat, dog, fish" in text
    text = Predictor.load(models["keras"]).describe()
    assert "(keras)" in text and "image" in text and "probabilities" in text


def test_helpers():
    assert pred._channels_first((3, 224, 224))
    assert not pred._channels_first((224, 224, 3))
    assert pred.looks_like_probabilities(np.array([[0.2, 0.8]]))
    assert not pred.looks_like_probabilities(np.array([[2.0, -1.0]]))
    np.testing.assert_allclose(pred.softmax(np.array([[0.0, 0.0]])), [[0.5, 0.5]])


def test_labels_that_are_not_utf8_are_one_input_error(models, tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "labels.txt").write_bytes(b"circle\n\xff\xfesquare\n")
    with pytest.raises(InputError, match=r"labels.txt is not UTF-8"):
        pred.read_labels(str(d))


def test_a_keras_file_that_is_not_one_is_named_as_such(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip archive")
    # Keras itself says "File not found" although the file is there.
    with pytest.raises(InputError, match=f"^not a valid .keras file: {bad}$"):
        Predictor.load(str(bad))
    with pytest.raises(InputError, match="not a valid .keras file"):
        pred.describe(str(bad))

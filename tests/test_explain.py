"""Grad-CAM explanations (`tfclassify.explain`): heat-maps, the grid picture, the command.

The model is built, not trained: its conv layer `bright` lights up where the image is
bright, and its dense layer adds up the left half's light for class `left` and the
right half's for `right`. On images of one bright patch, the predicted class depends
on where the patch is, and Grad-CAM must point at the patch.
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest
from PIL import Image

from tfclassify import testing
from tfclassify.core.errors import InputError, MissingDependencyError, OptionsError
from tfclassify.core.options import InferOptions, ReadOptions
from tfclassify.inference.explanation import (
    CELL_INCHES,
    DPI,
    Explanation,
    draw_explanation,
    explain,
)
from tfclassify.models.gradcam import GradCam, heatmaps
from tfclassify.models.predictor import Predictor

explain_mod = importlib.import_module("tfclassify.explain")

SIZE = 32
PATCH = 8
LABELS = ("left", "right")
PER_CLASS = 4


def _patch_model():
    import keras

    inp = keras.Input((SIZE, SIZE, 3), name="image")
    bright = keras.layers.Conv2D(2, 3, strides=2, padding="same", activation="relu", name="bright")(
        inp
    )
    x = keras.layers.Flatten(name="flatten")(bright)
    out = keras.layers.Dense(2, activation="softmax", name="probabilities")(x)
    model = keras.Model(inp, out)
    # Both channels: mean brightness of the 3x3 window above one half (unit pixels).
    kernel = np.full((3, 3, 3, 2), 1 / 27, np.float32)
    model.get_layer("bright").set_weights([kernel, np.full(2, -0.5, np.float32)])
    side = SIZE // 2
    dense = np.zeros((side, side, 2, 2), np.float32)  # [y, x, channel, class]
    dense[:, : side // 2, 0, 0] = 1.0  # channel 0 on the left half -> "left"
    dense[:, side // 2 :, 1, 1] = 1.0  # channel 1 on the right half -> "right"
    model.get_layer("probabilities").set_weights([dense.reshape(-1, 2), np.zeros(2, np.float32)])
    return model


def _patch_images(root: str) -> None:
    """PER_CLASS images a class: dark noise, one bright square in the class's half."""
    rng = np.random.default_rng(0)
    for label, (low, high) in zip(LABELS, ((4, 7), (18, 21)), strict=True):
        for i in range(PER_CLASS):
            pixels = rng.integers(0, 40, (SIZE, SIZE, 3), dtype=np.uint8)
            y, x = rng.integers(4, SIZE - PATCH - 4), rng.integers(low, high)
            pixels[y : y + PATCH, x : x + PATCH] = rng.integers(230, 256, (PATCH, PATCH, 3))
            testing.write_image(f"{root}/{label}/{i}.png", Image.fromarray(pixels), "PNG")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """The patch model as a .keras file and as both kinds of SavedModel."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    d = tmp_path_factory.mktemp("explain_models")
    model = _patch_model()
    paths = {
        "keras": str(d / "model.keras"),
        "export": str(d / "exported"),
        "tf_saved_model": str(d / "tf_saved"),
    }
    model.save(paths["keras"])
    model.export(paths["export"], verbose=False)
    tf.saved_model.save(model, paths["tf_saved_model"])
    (d / "labels.txt").write_text("".join(f"{t}\n" for t in LABELS))
    return paths


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    from tfclassify.convert import convert
    from tfclassify.core.options import ConvertOptions

    root = tmp_path_factory.mktemp("explain_data")
    _patch_images(str(root / "images"))
    out = str(root / "converted")
    convert(ConvertOptions(input_dir=str(root / "images"), output_dir=out, quiet=True))
    return out


def _assert_points_at_the_patch(result) -> None:
    n = PER_CLASS * len(LABELS)
    assert result.heatmaps.shape == (n, SIZE, SIZE) == result.images.shape[:3]
    assert result.heatmaps.dtype == np.float32
    assert result.heatmaps.min() >= 0 and result.heatmaps.max() <= 1
    # The model is right on every image: the class follows the patch.
    assert result.predicted_labels == result.true_labels and not result.wrong.any()
    for image, heat in zip(result.images, result.heatmaps, strict=True):
        assert heat.std() > 0.05  # not constant
        patch = image.mean(axis=-1) > 0.6  # as the model saw it: resized and cropped
        ys, xs = np.nonzero(patch)
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        # The peak sits on the patch (a pixel of slack: the map is half the image's size).
        assert ys.min() - 1 <= y <= ys.max() + 1 and xs.min() - 1 <= x <= xs.max() + 1
        assert heat[patch].mean() > 4 * heat[~patch].mean()


@pytest.mark.parametrize("kind", ["keras", "export", "tf_saved_model"])
def test_the_heatmap_points_at_what_drives_the_prediction(models, data, kind):
    """The same for a .keras file and for SavedModels written by `model.export` and by
    `tf.saved_model.save`: neither keeps Keras layers; the graph gives the layer."""
    result = explain(models[kind], data, n=PER_CLASS * len(LABELS))
    assert result.layer == "bright" and result.layer_size == (SIZE // 2, SIZE // 2)
    assert result.split == "train" and len(result.keys) == PER_CLASS * len(LABELS)
    _assert_points_at_the_patch(result)
    assert "WRONG" not in str(result) and "layer bright (16x16)" in str(result)


def test_images_are_read_as_infer_reads_them(models, data):
    """Another normalization reaches the model (its predictions are infer's), and the
    images shown are the same pixels."""
    from tfclassify.infer import infer

    symmetric = InferOptions(read=ReadOptions(normalize="symmetric"))
    result = explain(models["keras"], data, n=5, options=symmetric)
    ran = infer(models["keras"], data, symmetric)
    by_key = dict(zip(ran.keys, ran.topk_probs[:, 0], strict=True))
    np.testing.assert_allclose(result.scores, [by_key[k] for k in result.keys], rtol=1e-5)
    unit = explain(models["keras"], data, n=5)
    assert unit.keys == result.keys
    np.testing.assert_allclose(unit.images, result.images, atol=1e-5)
    assert unit.images.min() >= 0 and unit.images.max() <= 1
    assert not np.allclose(unit.scores, result.scores)  # the model did see other values


def test_a_seed_draws_the_same_sample_each_time(models, data):
    first = explain(models["keras"], data, n=3, seed=5)
    assert explain(models["keras"], data, n=3, seed=5).keys == first.keys
    assert sorted(explain(models["keras"], data, n=3, seed=6).keys) != sorted(first.keys)


def test_heatmaps_weigh_the_maps_by_their_mean_gradient():
    acts = np.zeros((2, 4, 4, 2), np.float32)
    acts[0, 1, 2, 0] = 1.0  # channel 0 fires at (1, 2); channel 1 everywhere
    acts[:, :, :, 1] = 0.5
    grads = np.zeros_like(acts)
    grads[0, :, :, 0] = 1.0  # only channel 0 raises image 0's score
    grads[1, :, :, 1] = -1.0  # image 1: its only active channel lowers it
    maps = heatmaps(acts, grads, (8, 8))
    assert maps.shape == (2, 8, 8) and maps.dtype == np.float32
    assert maps[0].max() == 1.0 and np.unravel_index(np.argmax(maps[0]), (8, 8)) in {
        (y, x) for y in (2, 3) for x in (4, 5)
    }
    assert not maps[1].any()  # nothing positive: all zero, not divided by zero


def test_layers_are_named_as_keras_named_them_also_in_a_nested_model(tmp_path):
    import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="act")(x)
    x = keras.layers.DepthwiseConv2D(3, name="c2")(x)
    backbone = keras.Model(inp, x, name="backbone")
    outer_in = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(outer_in))
    model = keras.Model(outer_in, keras.layers.Dense(3, name="head")(pooled))
    model.save(tmp_path / "nested.keras")
    p = Predictor.load(str(tmp_path / "nested.keras"))
    cam = GradCam(p)
    assert [x.name for x in cam.layers] == ["c1", "c2"] and cam.layer.name == "c2"
    first = GradCam(p, "c1").layer
    # Its activations: after the batch norm and the activation that follow it.
    assert first.size == (14, 14) and "act" in first.tensor
    images = np.random.default_rng(0).random((3, 16, 16, 3), dtype=np.float32)
    assert GradCam(p, "c1").heatmaps(images, [0, 1, 2]).shape == (3, 16, 16)


def test_a_wrong_layer_name_lists_the_conv_layers(models, data):
    with pytest.raises(InputError, match=r"has no conv layer 'dense'; its conv layers: bright$"):
        explain(models["keras"], data, n=2, layer="dense")


def test_a_model_without_a_conv_layer_is_one_clear_error(tmp_path, data):
    import keras

    inp = keras.Input((SIZE, SIZE, 3))
    flat = keras.layers.Flatten()(inp)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(flat))
    model.save(tmp_path / "dense.keras")
    with pytest.raises(InputError, match=r"dense\.keras has no convolution layer"):
        explain(str(tmp_path / "dense.keras"), data, n=2)


@pytest.fixture(scope="module")
def tflite(models, tmp_path_factory) -> str:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(models["export"])
    path = tmp_path_factory.mktemp("tflite") / "model.tflite"
    path.write_bytes(converter.convert())
    return str(path)


def test_litert_and_openvino_models_are_one_clear_error(tflite, data, tmp_path, models):
    with pytest.raises(InputError, match=r"model\.tflite is a LiteRT model.*\.keras file"):
        explain(tflite, data)
    with pytest.raises(InputError, match="LiteRT model, which gives no gradients"):
        explain(Predictor.load(tflite), data)  # loaded
    # Refused by its kind before it is loaded: this file is not even a model.
    xml = tmp_path / "model.xml"
    xml.write_text("<net/>")
    with pytest.raises(InputError, match=r"model\.xml is an OpenVINO model.*SavedModel"):
        explain(str(xml), data)
    with pytest.raises(OptionsError, match="runs the model on TensorFlow"):
        explain(models["keras"], data, options=InferOptions(runtime="openvino"))


@pytest.mark.parametrize("bad", [{"n": 0}, {"n": 2.5}, {"seed": -1}, {"layer": 3}])
def test_bad_arguments_are_options_errors(models, data, bad):
    with pytest.raises(OptionsError):
        explain(models["keras"], data, **bad)


def _fake_explanation(n: int) -> Explanation:
    """An explanation of random images, predicted left, right, left...; all labelled left."""
    rng = np.random.default_rng(0)
    return Explanation(
        model="model.keras",
        data="data",
        split="train",
        layer="bright",
        layer_size=(16, 16),
        keys=[f"k{i}" for i in range(n)],
        images=rng.random((n, SIZE, SIZE, 3), dtype=np.float32),
        heatmaps=rng.random((n, SIZE, SIZE), dtype=np.float32),
        class_names=LABELS,
        predicted=np.arange(n, dtype=np.int64) % 2,
        scores=np.full(n, 0.9, np.float32),
        true_ids=np.zeros(n, np.int64),
        true_labels=["left"] * n,
    )


@pytest.mark.parametrize("n, columns, grid", [(6, None, (4, 2)), (3, 2, (2, 2)), (1, None, (1, 1))])
def test_the_picture_is_a_real_png_of_the_grid_size(tmp_path, n, columns, grid):
    result = _fake_explanation(n)
    out = tmp_path / "cam.png"
    fig = draw_explanation(result, str(out), columns=columns)
    with Image.open(out) as png:
        assert png.format == "PNG"
        cols, rows = grid
        assert png.size == (round(cols * CELL_INCHES[0] * DPI), round(rows * CELL_INCHES[1] * DPI))
        pixels = np.asarray(png.convert("RGB"), np.float32)
    assert pixels.std() > 20  # images and heat-maps, not a blank page
    titles = [ax.get_title() for ax in fig.axes[:n]]
    assert titles[0] == "left 0.90\ntrue: left"
    if n > 1:  # predicted "right" where the label is "left": marked
        assert titles[1] == "✗ right 0.90\ntrue: left"
        assert fig.axes[1].title.get_color() == "red"
    assert not [name for name in os.listdir(tmp_path) if name != "cam.png"]  # no temporary left


def test_drawing_options_are_checked(tmp_path):
    result = _fake_explanation(2)
    with pytest.raises(OptionsError, match=r"end its name in one of .*\.png"):
        draw_explanation(result, str(tmp_path / "cam.txt"))
    with pytest.raises(OptionsError, match="alpha"):
        draw_explanation(result, alpha=1.5)
    with pytest.raises(OptionsError, match="unknown colormap 'nope'"):
        draw_explanation(result, colormap="nope")


def test_cli_draws_the_picture(models, data, tmp_path, capsys):
    out = tmp_path / "cam.png"
    argv = ["explain", "--model", models["export"], "--data", data, "--n", "3", "--output"]
    assert explain_mod.main([*argv, str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"3 images of {data} (train), Grad-CAM of layer bright (16x16)")
    assert printed.endswith(f"picture: {out}\n")
    with Image.open(out) as png:
        assert png.size == (round(3 * CELL_INCHES[0] * DPI), round(CELL_INCHES[1] * DPI))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_cli_errors_are_one_line(models, data, tmp_path, capsys, tflite):
    out = str(tmp_path / "cam.png")
    base = ["explain", "--data", data, "--output", out]
    assert explain_mod.main([*base, "--model", models["keras"], "--layer", "nope"]) == 2
    assert "its conv layers: bright" in _one_error_line(capsys)
    assert explain_mod.main([*base, "--model", tflite]) == 2
    assert "is a LiteRT model" in _one_error_line(capsys)
    assert explain_mod.main(["explain", "--model", models["keras"], "--data", data]) == 2
    assert "--output is required" in _one_error_line(capsys)
    assert not os.path.exists(out)


def test_cli_checks_matplotlib_and_the_picture_before_loading_the_model(
    tmp_path, data, capsys, monkeypatch
):
    missing = str(tmp_path / "no_such_model.keras")  # loading it would fail otherwise
    argv = ["explain", "--model", missing, "--data", data, "--output"]
    assert explain_mod.main([*argv, str(tmp_path / "cam.txt")]) == 2
    assert "end its name in one of" in _one_error_line(capsys)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert explain_mod.main([*argv, str(tmp_path / "cam.png")]) == 2
    assert "pip install 'tfclassify[plot]'" in _one_error_line(capsys)
    with pytest.raises(MissingDependencyError, match=r"tfclassify\[plot\]"):
        draw_explanation(_fake_explanation(1))


def test_the_score_is_the_logit_so_a_saturated_softmax_still_explains(tmp_path):
    """Probabilities of exactly 1 have no gradient; the logit under the softmax has."""
    model = _patch_model()
    dense = model.get_layer("probabilities")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 1000, bias])
    model.save(tmp_path / "saturated.keras")
    p = Predictor.load(str(tmp_path / "saturated.keras"))
    image = np.zeros((1, SIZE, SIZE, 3), np.float32)
    image[0, 10 : 10 + PATCH, 4 : 4 + PATCH] = 1.0
    assert p.predict(image)[0, 0] == 1.0
    heat = GradCam(p).heatmaps(image, [0])[0]
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert 9 <= y <= 10 + PATCH and 3 <= x <= 4 + PATCH

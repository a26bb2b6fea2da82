"""quantize: LiteRT and OpenVINO variants of a trained model, measured, one selected."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import io
import json
import os
import shutil

import numpy as np
import pytest
from commands import Terminal, last_lines

from tfclassify.core import metadata
from tfclassify.core.errors import InputError, MissingDependencyError, OptionsError, OutputError
from tfclassify.core.options import InferOptions, QuantizeOptions, TrainOptions
from tfclassify.infer import infer
from tfclassify.inference.variants import Contender, quantize, select_fastest
from tfclassify.models import quantization
from tfclassify.models.predictor import Predictor, describe

quantize_mod = importlib.import_module("tfclassify.quantize")

LABELS = ("circle", "cross")
SIZE = 32
LITERT = ("fp32", "dynamic-range", "float16", "int8")
# What Predictor reports each LiteRT variant computes in.
PRECISIONS = {"fp32": "f32", "dynamic-range": "dynamic-range", "float16": "float16", "int8": "int8"}
MODES = ("sequential", "batch", "pipelined")
HAS_OPENVINO_BACKEND = importlib.util.find_spec("tfclassify.models.openvino") is not None
NO_BACKEND = "tfclassify.models.openvino (the OpenVINO Predictor backend) is not in this tree"


@pytest.fixture(scope="module")
def data(converted_shapes) -> str:
    return converted_shapes(LABELS, {"train": 40, "validation": 30})


@pytest.fixture(scope="module")
def model(data, tmp_path_factory) -> str:
    """small_cnn trained to ~0.95 held-out accuracy: confident enough that quantizing it
    should not flip its predictions."""
    from tfclassify.models.training import train

    out = str(tmp_path_factory.mktemp("trained") / "model")
    options = TrainOptions(data=data, output=out, epochs=8, image_size=SIZE, batch_size=16)
    return train(dataclasses.replace(options, verbose=0))


@pytest.fixture(scope="module")
def quantized(model, data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("quantized") / "q")
    options = QuantizeOptions(output_dir=out, variants=LITERT, representative_samples=16)
    return quantize(model, data, options)


def _small(out, **kw) -> QuantizeOptions:
    """Two variants on a few images: for tests of the run's logic, not of the variants."""
    base = {"variants": ("fp32", "int8"), "representative_samples": 8, "max_images": 20}
    return QuantizeOptions(output_dir=str(out), **{**base, **kw})


# ---------------------------------------------------------------- the variants


def test_every_litert_variant_predicts_through_predictor_and_each_mode(quantized, data):
    images = np.random.default_rng(0).random((3, SIZE, SIZE, 3), dtype=np.float32)
    for v in quantized.variants:
        p = Predictor.load(v.path)
        assert (p.runtime, p.precision, v.precision) == ("litert", *[PRECISIONS[v.name]] * 2)
        assert p.labels == LABELS and p.input_shape == (SIZE, SIZE, 3)
        probs = p.predict(images)
        assert probs.shape == (3, 2)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.02)
        options = InferOptions(batch_size=8, max_images=12)
        runs = [infer(p, data, dataclasses.replace(options, mode=m)) for m in MODES]
        for r in runs[1:]:
            assert r.keys == runs[0].keys and r.runtime == "litert"
            np.testing.assert_array_equal(r.topk_ids, runs[0].topk_ids)
            np.testing.assert_allclose(r.probabilities, runs[0].probabilities, atol=1e-5)


def test_variants_agree_with_the_trained_float_model(quantized):
    assert quantized.float_model.top1_accuracy >= 0.85  # the model learned something
    assert quantized.float_model.count == 2 * 30
    for v in quantized.variants:
        assert v.count == quantized.float_model.count
        assert v.agreement >= 0.98, (v.name, v.agreement)
    sizes = {v.name: v.size_bytes for v in quantized.variants}
    assert sizes["int8"] < sizes["float16"] < sizes["fp32"]


def test_int8_input_quantization_round_trips(quantized):
    import tensorflow as tf

    int8 = next(v for v in quantized.variants if v.name == "int8")
    q = Predictor.load(int8.path).input_quantization
    assert q is not None and q.dtype == "int8"
    low, high = (-128 - q.zero_point) * q.scale, (127 - q.zero_point) * q.scale
    x = np.random.default_rng(1).uniform(low, high, (4, SIZE, SIZE, 3)).astype(np.float32)
    qx = q.quantize(x)
    assert qx.dtype == np.int8
    assert np.max(np.abs(q.dequantize(qx) - x)) <= q.scale / 2 * (1 + 1e-5)
    np.testing.assert_array_equal(q.quantize(tf.constant(x)).numpy(), qx)  # in-graph alike


def test_report_json_and_the_output_dir_as_a_model(quantized, data):
    out = quantized.output_dir
    with open(quantized.path, encoding="utf-8") as f:
        report = json.load(f)
    assert sorted(os.listdir(out)) == sorted(
        ["labels.txt", "report.json", *(f"{n}.tflite" for n in LITERT)]
    )
    assert [v["name"] for v in report["variants"]] == list(LITERT)
    for v in report["variants"]:
        assert v["size_bytes"] == os.path.getsize(v["path"]) and v["images_per_sec"] > 0
        assert 0 <= v["agreement"] <= 1 and v["verdict"]
    assert report["float_model"]["runtime"] == "tensorflow"
    assert set(report["cpu"]["flags"]) <= set(report["cpu"]["checked"])
    assert "amx_int8" in report["cpu"]["checked"]
    chosen = report["selected"]
    assert chosen["name"] == quantized.selected
    assert sum(c.verdict == "selected" for c in quantized.contenders) == 1
    want = quantized.selected_contender.path
    assert Predictor.load(out).path == want
    assert describe(out).startswith(want)
    r = infer(out, data, InferOptions(max_images=8))
    assert r.model == want and r.class_names == LABELS
    assert "report -> " in str(quantized) and "agree" in quantized.table()


# ---------------------------------------------------------------- selection


def _faked(seconds: dict[str, float], wrong: tuple[str, ...] = ()):
    """`measure` that runs `infer`, then says each model took `seconds[name]` and that
    the models in `wrong` got every labelled image wrong."""

    def measure(model, data, options):
        r = infer(model, data, options)
        name = os.path.basename(model)
        r.seconds = seconds.get(name, seconds["float"])
        if name in wrong:
            r.topk_ids = ((r.true_ids + 1) % len(LABELS))[:, None]
        return r

    return measure


def test_select_auto_picks_the_fastest_variant_within_budget(model, data, tmp_path):
    timing = _faked({"float": 1.0, "fp32.tflite": 0.5, "int8.tflite": 0.25})
    report = quantize(model, data, _small(tmp_path / "q", max_accuracy_drop=0.5), measure=timing)
    assert report.selected == "int8"
    verdicts = {c.name: c.verdict for c in report.contenders}
    assert verdicts["int8"] == "selected"
    assert verdicts["float"].startswith("slower than int8 (20.0 vs 80.0 images/s)")
    assert verdicts["fp32"].startswith("slower than int8")
    saved = json.loads((tmp_path / "q" / "report.json").read_text())
    assert saved["selected"] == {"name": "int8", "path": "int8.tflite", "precision": None}
    assert Predictor.load(str(tmp_path / "q")).path == str(tmp_path / "q" / "int8.tflite")


def test_select_auto_keeps_the_float_model_when_faster_ones_are_over_budget(model, data, tmp_path):
    timing = _faked(
        {"float": 1.0, "fp32.tflite": 0.5, "int8.tflite": 0.25},
        wrong=("fp32.tflite", "int8.tflite"),
    )
    report = quantize(model, data, _small(tmp_path / "q"), measure=timing)
    assert report.selected == "float"
    for v in report.variants:
        assert v.verdict.startswith("accuracy drop ") and v.verdict.endswith("over budget 0.01")
    out = str(tmp_path / "q")
    float_path = os.path.join(os.path.abspath(model), "saved_model")
    assert json.loads((tmp_path / "q" / "report.json").read_text())["selected"]["path"] == (
        float_path
    )
    p = Predictor.load(out)
    assert p.path == float_path and p.runtime == "tensorflow"


def _row(name: str, ips: float, acc: float | None, agreement: float = 1.0) -> Contender:
    return Contender(name, "litert", "f32", name, 1, 10, 10 / ips, ips, acc, agreement)


def test_select_fastest_rules():
    base = _row("float", 100, 0.90)
    rows = [_row("a", 150, 0.895), _row("b", 300, 0.85), _row("c", 150, 0.95)]
    assert select_fastest(base, rows, 0.01).name == "a"  # the first of a tie of a and c
    assert rows[1].verdict == "accuracy drop 0.0500 over budget 0.01"
    assert rows[2].verdict == "slower than a (150.0 vs 150.0 images/s)"
    # No faster variant: the float model; a tie with it goes to it too.
    assert select_fastest(_row("float", 150, 0.9), [_row("a", 150, 0.9)], 0.01).name == "float"
    # Without labels, disagreement with the float model is the budget's measure.
    base, rows = _row("float", 100, None), [_row("a", 200, None, 0.95), _row("b", 150, None)]
    assert select_fastest(base, rows, 0.01).name == "b"
    assert rows[0].verdict == "disagreement (no labels) 0.0500 over budget 0.01"


# ---------------------------------------------------------------- errors


def test_unknown_variant_lists_the_known_ones(tmp_path):
    with pytest.raises(OptionsError, match=r"unknown variant 'int4' in variants; known: fp32, "):
        QuantizeOptions(output_dir=str(tmp_path), variants=("fp32", "int4"))
    with pytest.raises(OptionsError, match=r"unknown variant 'int4'; known: fp32, dynamic-range"):
        quantization.check_variant("int4")
    with pytest.raises(OptionsError, match="lists int8 more than once"):
        QuantizeOptions(output_dir=str(tmp_path), variants=("int8", "int8"))
    with pytest.raises(OptionsError, match="^variants must be a non-empty list"):
        QuantizeOptions(output_dir=str(tmp_path), variants="fp32")


def test_empty_representative_set(model, data, tmp_path):
    copy = str(tmp_path / "data")
    shutil.copytree(data, copy)
    info = metadata.load(copy)
    splits = {**info.splits, "train": metadata.SplitInfo("train", ())}
    dataclasses.replace(info, splits=splits).save()
    with pytest.raises(InputError, match=r"no representative images: split 'train' .* 0 images"):
        quantize(model, copy, _small(tmp_path / "q"))
    assert not (tmp_path / "q").exists()


def test_a_model_of_any_image_size_needs_image_size(data, tmp_path):
    import keras

    inp = keras.Input((None, None, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    path = str(tmp_path / "any_size.keras")
    keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x)).save(path)
    with pytest.raises(OptionsError, match="accepts any image size; pass image_size"):
        quantize(path, data, _small(tmp_path / "q", variants=("fp32",)))
    report = quantize(path, data, _small(tmp_path / "q2", variants=("fp32",), image_size=20))
    assert report.image_size == (20, 20)
    assert Predictor.load(report.variants[0].path).input_shape == (20, 20, 3)


def test_a_tflite_with_two_inputs_is_refused(tmp_path):
    import tensorflow as tf

    spec = tf.TensorSpec([1, 8, 8, 3], tf.float32)

    @tf.function(input_signature=[spec, spec])
    def two(a, b):
        return tf.reduce_mean(a + b, axis=[1, 2])

    path = tmp_path / "two.tflite"
    converter = tf.lite.TFLiteConverter.from_concrete_functions([two.get_concrete_function()], two)
    path.write_bytes(converter.convert())
    with pytest.raises(InputError, match=r"two.tflite: LiteRT model has 2 inputs"):
        Predictor.load(str(path))


def test_a_missing_runtime_is_one_line_naming_the_install(monkeypatch):
    installed = quantization._installed
    without_litert = lambda m: m != "ai_edge_litert" and installed(m)  # noqa: E731
    monkeypatch.setattr(quantization, "_installed", without_litert)
    with pytest.raises(MissingDependencyError, match=r"pip install 'tfclassify\[litert\]'"):
        quantization.check_variant("int8")
    assert "LiteRT is not installed" in quantization.available_variants()["fp32"]
    monkeypatch.setattr(quantization, "_installed", lambda m: m != "nncf")
    with pytest.raises(MissingDependencyError, match=r"pip install 'tfclassify\[nncf\]'"):
        quantization.check_variant("openvino-int8")


def test_bf16_on_a_cpu_without_it(monkeypatch, data, tmp_path):
    pytest.importorskip("openvino")
    monkeypatch.setattr(quantization, "openvino_capabilities", lambda: ("FP32", "INT8"))
    with pytest.raises(OptionsError, match="openvino-bf16 needs a CPU with bf16 .* FP32, INT8"):
        quantization.check_variant("openvino-bf16")
    assert "needs a CPU with bf16" in quantization.available_variants()["openvino-bf16"]
    with pytest.raises(OptionsError, match="openvino-bf16 needs a CPU with bf16"):
        quantize("any", data, _small(tmp_path / "q", variants=("openvino-bf16",)))
    monkeypatch.setattr(quantization, "openvino_capabilities", lambda: ("FP32", "BF16"))
    assert quantization.available_variants()["openvino-bf16"] is None


def test_output_dir_errors(model, data, tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="holds no tfclassify.quantize output"):
        quantize(model, data, _small(theirs))
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "report.json").write_text("{}")
    (ours / "int8.tflite").write_bytes(b"old")
    with pytest.raises(OutputError, match=r"pass overwrite=True$"):
        quantize(model, data, _small(ours))
    with pytest.raises(InputError, match="data must be a converted dataset directory"):
        quantize(model, [data], _small(ours))


def test_an_output_that_selected_nothing_is_not_a_model(model, data, tmp_path):
    out = tmp_path / "q"
    report = quantize(model, data, _small(out, variants=("fp32",), select="none"))
    assert report.selected is None and all(c.verdict == "" for c in report.contenders)
    with pytest.raises(InputError, match="selected no variant"):
        Predictor.load(str(out))
    # overwrite replaces it, and leaves no file of the earlier run behind.
    report = quantize(model, data, _small(out, variants=("int8",), overwrite=True))
    assert sorted(os.listdir(out)) == ["int8.tflite", "labels.txt", "report.json"]


# ---------------------------------------------------------------- OpenVINO


def test_openvino_variants_are_written_atomically(model, tmp_path):
    ov = pytest.importorskip("openvino")
    float_model = Predictor.load(model, runtime="tensorflow", freeze=False)
    graph = quantization.FloatGraph(float_model)
    images = np.random.default_rng(2).random((4, SIZE, SIZE, 3), dtype=np.float32)
    want = float_model.predict(images)
    samples = [images[i : i + 1] for i in range(4)]
    names = ["openvino-f32"]
    if importlib.util.find_spec("nncf") is not None:
        names.append("openvino-int8")
    for name in names:
        xml = quantization.write_variant(name, graph, str(tmp_path), representative=lambda: samples)
        assert os.path.isfile(xml) and os.path.isfile(xml[: -len(".xml")] + ".bin")
        ir = ov.Core().read_model(xml)
        assert [str(d) for d in ir.inputs[0].get_partial_shape()] == ["?", "32", "32", "3"]
        got = ov.Core().compile_model(ir, "CPU")(images)[0]
        np.testing.assert_allclose(got, want, atol=1e-5 if name == "openvino-f32" else 0.1)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]


@pytest.mark.skipif(not HAS_OPENVINO_BACKEND, reason=NO_BACKEND)
def test_openvino_variants_are_measured_through_infer(model, data, tmp_path):
    names = tuple(n for n, why in quantization.available_variants().items() if why is None)
    names = tuple(n for n in names if n.startswith("openvino"))
    if not names:
        pytest.skip("OpenVINO is not installed")
    options = _small(tmp_path / "q", variants=names, representative_samples=40, max_images=None)
    report = quantize(model, data, options)
    for v in report.variants:
        assert v.runtime == "openvino" and v.agreement >= 0.98, (v.name, v.agreement)
        options = InferOptions(batch_size=8, max_images=20)
        runs = [infer(v.path, data, dataclasses.replace(options, mode=m)) for m in MODES]
        for r in runs[1:]:
            np.testing.assert_array_equal(r.topk_ids, runs[0].topk_ids)
    precisions = {v.name: v.precision for v in report.variants}
    assert precisions.get("openvino-f32", "f32") == "f32"
    assert precisions.get("openvino-int8", "int8") == "int8"


# ---------------------------------------------------------------- the command


def test_cli_quantizes_and_prints_the_table(model, data, tmp_path, capsys):
    out = str(tmp_path / "q")
    argv = ["quantize", "--model", model, "--data", data, "--output_dir", out]
    rest = ["--variants", "fp32", "--representative_samples", "4", "--max_images", "8"]
    assert quantize_mod.main([*argv, *rest, "--image_size", f"{SIZE}x{SIZE}", "--quiet"]) == 0
    text, err = capsys.readouterr()
    assert "measure" not in err and "img" not in err  # --quiet: no progress
    assert "variant" in text and "fp32" in text and "float" in text
    assert f"report -> {out}/report.json" in text
    assert f"python -m tfclassify.infer --model {out}" in text
    assert quantize_mod.main([*argv, *rest]) == 2
    assert capsys.readouterr().err.strip().endswith("pass --overwrite")
    assert quantize_mod.main([*argv, "--variants", "fp32,int4"]) == 2
    assert "unknown variant 'int4'" in capsys.readouterr().err
    assert quantize_mod.main([*argv, "--image_size", "big"]) == 2
    assert "--image_size must be N or HxW, got 'big'" in capsys.readouterr().err
    assert quantize_mod.main(["quantize", "--model", model]) == 2
    assert "--data is required" in capsys.readouterr().err


def test_each_pass_shows_its_progress_and_quiet_shows_none(model, data, tmp_path):
    options = _small(tmp_path / "q", max_images=8)
    with contextlib.redirect_stderr(io.StringIO()) as err:  # a log: its last lines, once
        report = quantize(model, data, options)
    n = report.float_model.count
    for desc, done in [
        ("calibration images", "8/8 img"),
        ("write variants", "2/2 variant"),
        ("measure float", f"{n}/{n} img"),
        ("measure fp32", f"{n}/{n} img"),
        ("measure int8", f"{n}/{n} img"),
    ]:
        lines = last_lines(err.getvalue(), desc)
        assert len(lines) == 1 and lines[0].startswith(f"{desc}: {done}, "), err.getvalue()
    quiet = _small(tmp_path / "q2", variants=("int8",), max_images=8, quiet=True)
    with contextlib.redirect_stderr(Terminal()) as err:
        quantize(model, data, quiet)
    assert "measure" not in err.getvalue() and "img" not in err.getvalue()


def test_cli_lists_the_variants(capsys):
    assert quantize_mod.main(["quantize", "--list_variants"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == list(quantization.VARIANTS)
    assert "fp32: available" in lines

"""`python -m tfclassify.bench` runs every contender and reports every figure."""

from __future__ import annotations

import math
import os

import pytest

from tfclassify import bench
from tfclassify.models import openvino


def test_bench_smoke(tmp_path, capfd):
    cfg = bench.BenchConfig(
        workdir=str(tmp_path),
        num_images=24,
        models=("small_cnn",),
        batch_size=8,
        repeats=1,
        sequential_images=8,
        min_decode_images=24,
        variants=("int8", "openvino-f32", "openvino-bf16"),
        representative_samples=4,
    )
    figures = bench.run(cfg)
    progress = capfd.readouterr().err
    assert "[small_cnn] pipelined@int8 warm-up: " in progress
    assert "[small_cnn] keras_baseline run 1: " in progress
    for runtime in ("int8", "openvino-f32"):
        at = f"@{runtime}[small_cnn]"
        for name in ("model_only", "pipelined", "pipelined_preresized", "combined_ceiling"):
            assert figures[f"{name}{at}"] > 0, name + at
        own = figures[f"pipelined_preresized_vs_own_ceiling{at}"]
        assert math.isclose(
            own,
            figures[f"pipelined_preresized{at}"] / figures[f"combined_ceiling_preresized{at}"],
            rel_tol=0.05,
        )
    if "BF16" in openvino.cpu_capabilities():
        assert figures["model_only@openvino-bf16[small_cnn]"] > 0
    else:  # named on stderr, not timed
        assert "openvino-bf16 skipped: " in progress
        assert "model_only@openvino-bf16[small_cnn]" not in figures
    # The best runtime is the fastest on pre-resized shards, TF fp32 included.
    best = figures["best_runtime[small_cnn]"]
    at = "" if best == "tensorflow" else f"@{best}"
    assert figures["best_preresized_vs_tf[small_cnn]"] >= 1.0
    assert figures[f"pipelined_preresized{at}[small_cnn]"] == max(
        v for k, v in figures.items() if k.startswith("pipelined_preresized") and "_vs_" not in k
    )
    assert set(figures["cpu"]["flags"]) <= set(figures["cpu"]["checked"])
    for name in (
        "decode_only",
        "decode_only_preresized",
        "model_only",
        "sequential",
        "batch",
        "pipelined",
        "pipelined_preresized",
        "keras_baseline",
        "keras_per_image",
        "combined_ceiling",
    ):
        value = figures[f"{name}[small_cnn]"]
        assert math.isfinite(value) and value > 0, name
    for ratio in bench.TARGETS:
        assert figures[f"{ratio.split('[')[0]}[small_cnn]"] > 0
    c = figures["combined_ceiling[small_cnn]"]
    # Figures are printed rounded: compare loosely.
    assert math.isclose(
        figures["ceiling_vs_keras[small_cnn]"],
        c / figures["keras_baseline[small_cnn]"],
        rel_tol=0.05,
    )
    assert figures["ceiling_vs_sequential[small_cnn]"] > 0
    assert math.isclose(
        figures["pipelined_preresized_vs_keras[small_cnn]"],
        figures["pipelined_preresized[small_cnn]"] / figures["keras_baseline[small_cnn]"],
        rel_tol=0.05,
    )
    assert figures["threads"]["onednn"] in (True, False)
    text = bench.report(figures)
    assert "pipelined_vs_combined_ceiling[small_cnn]" in text and "target >=" in text


def test_workdir_with_another_corpus_size_is_refused(tmp_path):
    """Shards, Keras subsets and models in a workdir belong to its corpus: reusing it
    with another --num_images would silently measure the old corpus."""
    from tfclassify import testing

    testing.make_photo_corpus(str(tmp_path / "images"), num_images=6)
    with pytest.raises(SystemExit, match="holds a corpus of 6 images, not 8"):
        bench._prepare(bench.BenchConfig(workdir=str(tmp_path), num_images=8))


def test_keras_subset_holds_the_images_the_modes_read(tmp_path):
    """Keras must decode the images the tfclassify modes read (the reader's first
    records), not the first files by name, which are mostly one class."""
    import tfclassify
    from tfclassify import testing
    from tfclassify.core import metadata
    from tfclassify.core.options import ConvertOptions, InferOptions

    images, full = str(tmp_path / "images"), str(tmp_path / "full")
    testing.make_photo_corpus(images, num_images=12, width=96, height=72)
    tfclassify.convert(ConvertOptions(input_dir=images, output_dir=full, quiet=True))
    model = bench._save_model("small_cnn", 64, metadata.load(full).labels, str(tmp_path / "m"))
    predictor = tfclassify.Predictor.load(model)
    root = tmp_path / "keras"
    (root / "stale").mkdir(parents=True)  # what an earlier run left is replaced

    files = bench._keras_subset(predictor, {"images": images, "full": full}, str(root), 5, 4)
    read = tfclassify.infer(predictor, full, InferOptions(mode="sequential", max_images=5)).keys
    assert [os.path.relpath(f, root) for f in files] == read
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg")) == sorted(read)
    assert not (root / "stale").exists()
    assert all(
        os.path.samefile(f, os.path.join(images, k)) for f, k in zip(files, read, strict=True)
    )


def test_targets_are_found_by_name_without_runtime_or_model():
    assert bench._target("pipelined_preresized_vs_own_ceiling@int8[mobilenet_v2]") == 0.85
    assert bench._target("pipelined_preresized_vs_own_ceiling[mobilenet_v2]") == 0.85
    assert bench._target("pipelined_preresized_vs_own_ceiling@int8[small_cnn]") is None
    assert bench._target("pipelined_vs_combined_ceiling[small_cnn]") == 0.90
    assert bench._target("best_preresized_vs_tf[small_cnn]") is None
    text = bench.report({"best_preresized_vs_tf[mobilenet_v2]": 2.0, "model_only[x]": 5.0})
    assert text.splitlines() == [
        "best_preresized_vs_tf[mobilenet_v2]: 2.0  (target >= 2.5: MISS)",
        "model_only[x]: 5.0 images/s",
    ]

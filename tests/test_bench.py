"""`python -m tfclassify.bench` runs every contender and reports every figure."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys

import numpy as np
import pytest
from commands import Terminal

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
    stream = io.StringIO()
    figures = bench.run(cfg, out=stream)
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
    # Printed as the run went, each figure once: the report, line for line.
    assert stream.getvalue().splitlines() == text.splitlines()


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


def _figures(**changes: float) -> dict:
    """A run's figures for one model (`m`), TF and one other runtime, as `run` names them."""
    fig = {
        "decode_only": 800.0,
        "decode_only_preresized": 2400.0,
        "sequential": 40.0,
        "batch": 80.0,
        "model_only": 100.0,
        "pipelined": 85.0,
        "pipelined_preresized": 95.0,
        "model_only@int8": 200.0,
        "pipelined@int8": 150.0,
        "pipelined_preresized@int8": 180.0,
        "keras_baseline": 75.0,
        "keras_per_image": 9.0,
    }
    fig.update(changes)
    for at in ("", "@int8"):
        model = fig[f"model_only{at}"]
        fig[f"combined_ceiling{at}"] = 1 / (1 / fig["decode_only"] + 1 / model)
        fig[f"combined_ceiling_preresized{at}"] = 1 / (
            1 / fig["decode_only_preresized"] + 1 / model
        )
    return fig


def test_each_ratio_has_its_ceiling_among_the_figures():
    fig = _figures()
    ratios = bench._ratios("m", fig)
    for ratio, ceiling in bench.CEILINGS.items():
        assert ratio in ratios or f"{ratio}@int8" in ratios, ratio
        assert isinstance(ceiling, float) or ceiling in ratios, ceiling
    best_ceiling = fig["combined_ceiling_preresized@int8"]  # int8's model is the faster
    assert ratios["best_ceiling_vs_tf"] == round(best_ceiling / fig["pipelined_preresized"], 3)
    assert ratios["ceiling_vs_keras_per_image"] == round(
        fig["combined_ceiling"] / fig["keras_per_image"], 3
    )
    assert ratios["ceiling_preresized_vs_keras"] == round(
        fig["combined_ceiling_preresized"] / fig["keras_baseline"], 3
    )


def test_a_target_above_its_ratios_ceiling_is_out_of_reach():
    """best_preresized_vs_tf (target 2.5) cannot pass when the best runtime's combined
    ceiling is only 2x TF's measured rate; a reachable target missed is a MISS."""
    figures = {
        "best_preresized_vs_tf[mobilenet_v2]": 1.8,
        "best_ceiling_vs_tf[mobilenet_v2]": 1.996,
        "best_preresized_vs_keras[mobilenet_v2]": 2.2,
        "best_ceiling_vs_keras[mobilenet_v2]": 3.1,
        "pipelined_preresized_vs_own_ceiling@int8[mobilenet_v2]": 0.8,
        "pipelined_vs_keras_per_image[small_cnn]": 60.0,
        "ceiling_vs_keras_per_image[small_cnn]": 40.0,
    }
    assert bench.report(figures).splitlines() == [
        "best_preresized_vs_tf[mobilenet_v2]: 1.8  (target >= 2.5: out of reach here: "
        "ceiling 2.0x)",
        "best_ceiling_vs_tf[mobilenet_v2]: 1.996",
        "best_preresized_vs_keras[mobilenet_v2]: 2.2  (target >= 2.5: MISS)",
        "best_ceiling_vs_keras[mobilenet_v2]: 3.1",
        "pipelined_preresized_vs_own_ceiling@int8[mobilenet_v2]: 0.8  (target >= 0.85: MISS)",
        # Met despite its ceiling (noise): the measurement wins.
        "pipelined_vs_keras_per_image[small_cnn]: 60.0  (target >= 50.0: PASS)",
        "ceiling_vs_keras_per_image[small_cnn]: 40.0",
    ]
    # Another script's table: a ceiling given as a figure name without a model.
    line = bench.line(
        "a_vs_b", 1.0, {"c_vs_b": 1.5}, targets={"a_vs_b": 2.0}, ceilings={"a_vs_b": "c_vs_b"}
    )
    assert line == "a_vs_b: 1.0  (target >= 2.0: out of reach here: ceiling 1.5x)"


def test_round_robin_reports_each_median_after_the_contenders_last_run():
    events = []

    def contender(name: str, seconds: list[float]):
        runs = iter(seconds)

        def run() -> tuple[int, float]:
            events.append(("run", name))
            return 10, next(runs)

        return run

    medians = bench.round_robin(
        {"a": contender("a", [9, 1, 2, 4]), "b": contender("b", [9, 5, 5, 10])},
        repeats=3,
        done=lambda name, median: events.append(("done", name, median)),
    )
    assert medians == {"a": 5.0, "b": 2.0}
    assert events[-4:] == [("run", "a"), ("done", "a", 5.0), ("run", "b"), ("done", "b", 2.0)]
    assert [e for e in events if e[0] == "done"] == events[-3:-2] + events[-1:]


def test_each_run_draws_a_bar_that_goes_when_it_ends(tmp_path, converted_shapes):
    """At a terminal, a contender's run draws a bar its line replaces; --quiet leaves
    the runs' lines alone (as a log does: such a bar prints no last line)."""
    import tfclassify
    from tfclassify.core import metadata
    from tfclassify.core.options import ReadOptions

    data = converted_shapes(("circle", "square"), {"train": 4})
    labels = metadata.load(data).labels
    model = bench._save_model("small_cnn", 64, labels, str(tmp_path / "m"))
    predictor = tfclassify.Predictor.load(model)

    def run(runs: bench.Runs, stderr: io.StringIO) -> str:
        contenders = {
            "decode_only": bench._decode_only(
                data, ReadOptions(image_size=64, batch_size=4), 8, runs
            ),
            "model_only": bench._model_only(predictor, 64, 8, 4, runs),
            "pipelined": bench._mode(predictor, "pipelined", data, 8, 4, runs),
        }
        with contextlib.redirect_stderr(stderr):
            bench.round_robin(contenders, 1, runs.progress, start=runs.start)
        return stderr.getvalue()

    drawn = run(bench.Runs("small_cnn"), Terminal())
    for name in ("decode_only", "model_only", "pipelined"):
        assert f"[small_cnn] {name} warm-up:" in drawn and f"[small_cnn] {name} run 1" in drawn
    assert "img/s" in drawn and "/8 " in drawn  # each bar's total: the run's images
    lines = run(bench.Runs("small_cnn", quiet=True), Terminal()).splitlines()
    assert len(lines) == 6 and all(line.startswith("  [small_cnn] ") for line in lines)
    assert all(line.endswith(" images/s") for line in lines)


def _png(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("L"), dtype=np.float32)


def test_chart_draws_every_contender_with_the_ceilings(tmp_path):
    pytest.importorskip("matplotlib")
    figures = {"cpus": 2, "batch_size": 32}
    # The tiny CNN's model is fast: its reader's full-size ceiling falls among the bars.
    models = {"small_cnn": _figures(model_only=2000.0), "mobilenet_v2": _figures()}
    for model, fig in models.items():
        figures.update({f"{k}[{model}]": round(v, 1) for k, v in fig.items()})
        figures.update({f"{k}[{model}]": v for k, v in bench._ratios(model, fig).items()})
    path = tmp_path / "bench.png"

    drawn = bench.chart(figures, str(path))

    pixels = _png(path)
    width, height = (drawn.get_size_inches() * drawn.dpi).round().astype(int)
    assert pixels.shape == (height, width) and width == 1100
    assert pixels.std() > 20  # bars, text and lines, not a blank page
    for ax, model in zip(drawn.axes, ("small_cnn", "mobilenet_v2"), strict=True):
        assert ax.get_title(loc="left") == model
        assert [t.get_text() for t in ax.get_yticklabels()] == [
            "tensorflow: sequential",
            "tensorflow: batch",
            "tensorflow: pipelined",
            "tensorflow: pipelined_preresized",
            "int8: pipelined",
            "int8: pipelined_preresized",
            "keras: keras_baseline",
            "keras: keras_per_image",
        ]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[:2] == ["combined_ceiling (per bar)", "model_only (per runtime)"]
        # A reader's ceiling far beyond every bar and model ceiling is named, not drawn.
        assert (
            legend[2:]
            == {
                "small_cnn": ["decode_only 800", "decode_only_preresized 2,400 (off scale)"],
                "mobilenet_v2": [
                    "decode_only 800 (off scale)",
                    "decode_only_preresized 2,400 (off scale)",
                ],
            }[model]
        )
    with pytest.raises(bench.InputError, match="no images/s figures"):
        bench.chart({"cpus": 2})


def _fake_run(figures: dict):
    def run(cfg, out=None):
        assert cfg.models == ("small_cnn",)
        bench.Report(out).add(figures)
        return figures

    return run


def test_bench_prints_where_its_figures_went_and_draws_them(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    figures = {f"{k}[small_cnn]": round(v, 1) for k, v in _figures().items()}
    monkeypatch.setattr(bench, "run", _fake_run(figures))
    out, png = tmp_path / "figures.json", tmp_path / "chart.png"

    args = ["bench", "--models=small_cnn", f"--json={out}", f"--chart={png}"]
    assert bench.main(args) == 0

    printed = capsys.readouterr()
    assert f"figures go to {out}" in printed.err  # before the run: it takes minutes
    assert printed.out.splitlines()[-2:] == [
        f"figures written to {out}",
        f"chart written to {png}",
    ]
    assert printed.out.count("pipelined[small_cnn]: 85.0 images/s\n") == 1
    assert json.loads(out.read_text()) == figures
    assert _png(png).std() > 20

    # An earlier run's figures, printed and drawn again: nothing runs.
    monkeypatch.setattr(bench, "run", None)
    again = tmp_path / "again.png"
    assert bench.main(["bench", f"--from_json={out}", f"--chart={again}"]) == 0
    printed = capsys.readouterr().out
    assert printed == bench.report(figures) + f"\nchart written to {again}\n"
    assert _png(again).shape == _png(png).shape


def test_bench_refuses_before_running_what_it_could_not_write(tmp_path, capsys, monkeypatch):
    """A missing matplotlib or output folder is said at once, not after the run."""
    monkeypatch.setattr(bench, "run", None)  # calling it would fail
    missing = tmp_path / "no" / "bench.json"
    assert bench.main(["bench", f"--json={missing}"]) == 2
    assert capsys.readouterr().err == (
        f"error: --json: no folder {str(missing.parent)!r} to write {str(missing)!r} in\n"
    )
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails, as when not installed
    assert bench.main(["bench", f"--chart={tmp_path / 'c.png'}"]) == 2
    assert capsys.readouterr().err == (
        "error: matplotlib is not installed: pip install 'tfclassify[plot]' "
        "(or pip install matplotlib)\n"
    )
    assert bench.main(["bench", f"--from_json={tmp_path / 'none.json'}"]) == 2
    assert "no figures file" in capsys.readouterr().err

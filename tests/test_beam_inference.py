"""Batch inference on Beam (tfclassify.beam.inference, converters/beam_infer.py): the
rows `python -m tfclassify.infer` writes, bad records in the dead letters, the summary."""

from __future__ import annotations

import csv
import glob
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import recordlib
from commands import last_lines

pytest.importorskip("apache_beam")

import test_infer  # noqa: E402
from test_infer import LABELS, PER_SHARD, SHARDS  # noqa: E402

from tfclassify.core import metadata  # noqa: E402
from tfclassify.core.errors import OptionsError, OutputError  # noqa: E402
from tfclassify.core.options import InferOptions  # noqa: E402

infer_command = importlib.import_module("tfclassify.infer")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "converters"))
import beam_infer  # noqa: E402

from tfclassify.beam import inference as beam_inference  # noqa: E402

# The tiny model and the 3-shard dataset (a bad record on demand) of infer's tests.
model_dir = test_infer.model_dir
sharded = test_infer.sharded
TOP_K = 2
MULTI_THREADED = ["--direct_num_workers=2", "--direct_running_mode=multi_threading"]
MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def _run_job(model: str, data: str, output: str, *beam_args: str) -> dict:
    argv = ["beam_infer", "--model", model, "--data", data, "--output", output]
    assert beam_infer.main([*argv, "--top_k", str(TOP_K), *beam_args]) == 0
    with open(os.path.join(os.path.dirname(output), "summary.json")) as f:
        return json.load(f)


def _rows(paths: list[str]) -> dict[str, tuple]:
    """key -> (true label, top-k labels, top-k probabilities) of CSV or JSONL files."""
    rows = {}
    for path in paths:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            if path.endswith(".csv"):
                for r in csv.DictReader(f):
                    labels = [r[f"top{i}_label"] for i in range(1, TOP_K + 1)]
                    probs = [float(r[f"top{i}_prob"]) for i in range(1, TOP_K + 1)]
                    rows[r["key"]] = (r["true_label"] or None, labels, probs)
            else:
                for line in f:
                    r = json.loads(line)
                    top = r["top_k"]
                    rows[r["key"]] = (
                        r["true_label"],
                        [t["label"] for t in top],
                        [t["prob"] for t in top],
                    )
    return rows


def _assert_same_rows(beam_rows: dict, local_rows: dict) -> None:
    assert beam_rows.keys() == local_rows.keys()
    for key, (true, labels, probs) in local_rows.items():
        assert beam_rows[key][:2] == (true, labels), key
        np.testing.assert_allclose(beam_rows[key][2], probs, atol=1e-5)


@pytest.fixture(scope="module")
def local(model_dir, sharded, tmp_path_factory):
    """What `python -m tfclassify.infer` writes for the clean 3-shard dataset, per format."""
    made = {}

    def run(ext: str) -> tuple[dict, dict]:
        if ext not in made:
            out = str(tmp_path_factory.mktemp("local") / f"preds{ext}")
            argv = ["infer", "--model", model_dir, "--data", sharded()[0], "--output", out]
            assert infer_command.main([*argv, "--top_k", str(TOP_K)]) == 0
            with open(os.path.join(os.path.dirname(out), "summary.json")) as f:
                made[ext] = _rows([out]), json.load(f)
        return made[ext]

    return run


def _files(output: str) -> list[str]:
    root, ext = os.path.splitext(output)
    return sorted(glob.glob(f"{root}-*-of-*{ext}"))


@pytest.mark.parametrize(
    "ext, beam_args",
    [(".csv", []), (".jsonl", MULTI_THREADED)],
    ids=["csv-in_process", "jsonl-multi_threaded"],
)
def test_rows_and_summary_equal_infers(model_dir, sharded, local, tmp_path, ext, beam_args, capsys):
    out = str(tmp_path / f"preds{ext}")
    summary = _run_job(model_dir, sharded()[0], out, *beam_args)
    # The images predicted, as infer shows them (stderr is not a terminal: one line).
    n = SHARDS * PER_SHARD
    lines = last_lines(capsys.readouterr().err, "infer pipelined")
    assert len(lines) == 1 and lines[0].startswith(f"infer pipelined: {n}/{n} img, ")
    local_rows, local_summary = local(ext)
    files = _files(out)
    _assert_same_rows(_rows(files), local_rows)
    assert summary["output_files"] == files
    assert summary["dead_letter_files"] == [] and summary["dead_letter_records"] == 0
    assert (summary["count"], summary["shards"]) == (SHARDS * PER_SHARD, SHARDS)
    for k in ("num_labeled", "top1_accuracy", "topk_accuracy", "top_k", "num_classes", "split"):
        assert summary[k] == local_summary[k], k
    assert summary["images_per_sec"] > 0 and summary["failed_shards"] == 0
    if ext == ".csv":  # each file starts with infer's header, in infer's bytes
        with open(files[0], "rb") as f, open(local_summary["output"], "rb") as g:
            assert f.readline() == g.readline()


# Each of the two worker processes starts Python and TF: 14-24 s. The default run keeps
# the two-worker test above (threads sharing one model).
@pytest.mark.slow
def test_rows_equal_infers_with_worker_processes(model_dir, sharded, local, tmp_path):
    out = str(tmp_path / "preds.csv")
    summary = _run_job(model_dir, sharded()[0], out, *MULTI_PROCESS)
    _assert_same_rows(_rows(_files(out)), local(".csv")[0])
    assert summary["count"] == SHARDS * PER_SHARD


def _dead_letters(summary: dict) -> list[dict]:
    lines = []
    for path in summary["dead_letter_files"]:
        with open(path, encoding="utf-8") as f:
            lines += [json.loads(line) for line in f]
    return sorted(lines, key=lambda d: d["shard"])


def test_bad_records_and_an_unreadable_shard_go_to_the_dead_letters(model_dir, sharded, tmp_path):
    """A record that fails its CRC in shard 1, a shard cut short (2) and a shard that is
    gone (0): the rest of the rows come out, each loss is a dead letter, no crash."""
    data = shutil.copytree(sharded("crc")[0], tmp_path / "data").as_posix()
    shards = metadata.load(data).shard_paths("validation")
    os.remove(shards[0])
    recordlib.damage(shards[2], "cut", at=15)  # 15 records left, 5 missing
    out = str(tmp_path / "out" / "preds.csv")
    summary = _run_job(model_dir, data, out)

    assert len(_rows(_files(out))) == summary["count"] == (PER_SHARD - 1) + 15
    dead = _dead_letters(summary)
    assert [(d["shard"], d["index"], d["count"]) for d in dead] == [
        (shards[0], None, PER_SHARD),  # dataset.json's count for the missing shard
        (shards[1], 5, 1),
        (shards[2], None, 5),
    ]
    assert dead[0]["error"].startswith("shard not read: ") and shards[0] in dead[0]["error"]
    assert "CRC" in dead[1]["error"]
    assert (summary["failed_shards"], summary["dead_letter_records"]) == (1, 1 + 5 + PER_SHARD)
    assert summary["skipped_records"] == 1 + 5 + PER_SHARD
    assert summary["count"] + summary["skipped_records"] == SHARDS * PER_SHARD


def test_summary_without_shards(model_dir, sharded, tmp_path):
    """No shard: no rows, one (header-only) CSV file, counts of zero, no accuracy."""
    import apache_beam as beam

    predict = beam_inference.PredictShards(model_dir, InferOptions(top_k=TOP_K), labels=LABELS)
    out = str(tmp_path / "preds.csv")
    with beam.Pipeline(options=beam_inference.pipeline_options()) as p:
        _ = (
            p
            | beam.Create([]).with_output_types(str)
            | predict
            | beam_inference.WritePredictions(out, predict.top_k)
        )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["count"], summary["shards"], summary["top1_accuracy"]) == (0, 0, None)
    assert summary["images_per_sec"] is None  # NaN in strict JSON
    assert [os.path.basename(p) for p in summary["output_files"]] == ["preds-00000-of-00001.csv"]


def test_files_of_an_earlier_run_are_refused_not_replaced(tmp_path):
    for name in (
        "preds-00000-of-00003.csv",
        "preds-dead_letter-00000-of-00001.jsonl",
        "summary.json",
    ):
        (tmp_path / name).write_text("mine")
        with pytest.raises(OutputError, match=name):
            beam_inference.WritePredictions(str(tmp_path / "preds.csv"), TOP_K)
        os.remove(tmp_path / name)
    # Other files, and other outputs' files, stay out of it.
    (tmp_path / "preds.csv").write_text("mine")
    (tmp_path / "other-00000-of-00001.csv").write_text("mine")
    beam_inference.WritePredictions(str(tmp_path / "preds.csv"), TOP_K)


def test_options_a_beam_job_refuses(model_dir, tmp_path):
    with pytest.raises(OptionsError, match="max_images=5"):
        beam_inference.PredictShards(model_dir, InferOptions(max_images=5))
    with pytest.raises(OptionsError, match="must end in .csv or .jsonl"):
        beam_inference.WritePredictions(str(tmp_path / "preds.txt"), TOP_K)


def test_job_user_errors_are_one_line(model_dir, sharded, tmp_path, capsys):
    base = ["beam_infer", "--model", model_dir, "--data", sharded()[0]]
    assert beam_infer.main(base) == 2
    assert capsys.readouterr().err == "error: --output is required\n"
    argv = [*base, "--output", str(tmp_path / "p.csv"), "--max_images", "3"]
    assert beam_infer.main(argv) == 2
    assert "max_images=3 does not apply" in capsys.readouterr().err
    argv = ["beam_infer", "--model", str(tmp_path / "none"), "--data", sharded()[0]]
    assert beam_infer.main([*argv, "--output", str(tmp_path / "p.csv")]) == 2
    assert capsys.readouterr().err.startswith("error: model not found: ")


def test_the_default_runner_is_local_and_downloads_nothing(caplog):
    """Beam's DirectRunner first tries to fetch the Prism runner: the default is the
    engine it falls back to, named, so nothing is fetched."""
    import logging

    from apache_beam.options.pipeline_options import StandardOptions

    assert beam_inference.pipeline_options([]).view_as(StandardOptions).runner == "FnApiRunner"
    options = beam_inference.pipeline_options(["--runner", "DataflowRunner", "--project", "p"])
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    import apache_beam as beam

    with (
        caplog.at_level(logging.INFO),
        beam.Pipeline(options=beam_inference.pipeline_options()) as p,
    ):
        _ = p | beam.Create([1, 2]) | beam.Map(lambda x: x + 1)
    assert not [r for r in caplog.records if "prism" in r.getMessage().lower()]


def test_the_library_imports_and_runs_without_beam(sharded):
    """`import tfclassify` and the local commands do not need Beam; tfclassify.beam says
    how to install it."""
    code = f"""
import sys
sys.modules["apache_beam"] = None  # any import of it now fails
import tfclassify, tfclassify.infer, tfclassify.beam
assert tfclassify.load_dataset_info({sharded()[0]!r}).labels == {LABELS!r}
assert tfclassify.InferOptions(top_k=1).top_k == 1
try:
    tfclassify.beam.PredictShards
except tfclassify.InputError as e:
    print(e)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Apache Beam is not installed: pip install 'tfclassify[beam]'")


# A MobileNetV2 built and saved; three conversions, two Beam pipelines and two infers, twice.
@pytest.mark.slow
def test_beam_bench_smoke(tmp_path):
    """`benchmarks/beam_bench.py` runs end to end on small flags and reports its figures
    (the Beam conversions' output the local converter's, byte for byte);
    without tensorflow_hub it says how to get the stock contender, and runs the rest."""
    from commands import run_script_in_process

    out = tmp_path / "figures.json"
    args = ["--num_images=8", "--image_size=32", "--repeats=1", "--shard_size_mb=0.1"]
    proc = run_script_in_process(
        os.path.join(ROOT, "benchmarks", "beam_bench.py"),
        *args,
        f"--workdir={tmp_path / 'work'}",
        f"--json={out}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["num_images"] == 8 and figures["shards"] > 1
    for name in ("decode_only", "model_only", "predict_shards", "tf_data"):
        assert figures[f"{name}_images_per_s"] > 0, name
    assert figures["predict_shards_vs_tf_data"] > 0
    for name in ("convert_beam", "convert_beam_multi_process"):
        assert figures[f"{name}_identical_to_local"] is True, name
        assert figures[f"{name}_vs_local"] > 0
    if importlib.util.find_spec("tensorflow_hub") is None:
        assert "stock RunInference: skipped" in proc.stdout and "tensorflow-hub" in proc.stdout
    else:
        assert figures["predict_shards_vs_stock"] > 0

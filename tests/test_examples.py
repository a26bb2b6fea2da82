"""Every example runs end to end on the data it generates, and does what it says.

Each runs as a script (`__main__`, its WORKDIR argument) in this interpreter: a new
one per example would pay TensorFlow's import each time for nothing it checks. The
quickstart runs on its small data (QUICKSTART_QUICK=1); tests/test_notebook.py runs
it as a notebook.
"""

import csv
import glob
import json
import os
import runpy
import sys

import numpy as np
import pytest
from PIL import Image

from tfclassify.core import metadata
from tfclassify.verify import verify

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))


def check_convert_folder(workdir: str, out: str) -> None:
    info = metadata.load(os.path.join(workdir, "shards"))
    odd = os.listdir(os.path.join(workdir, "images", "dog", "odd"))
    assert info.labels == ("bird", "cat", "dog")
    assert info.files_found == 3 * 20 + len(odd)
    assert info.accepted + info.skipped == info.files_found and info.skipped > 0
    assert info.splits["validation"].num_examples > 0
    assert len(info.splits["train"].shards) >= 2  # shard_size_mb=0.5
    assert verify(info.directory).accepted == info.accepted
    assert f"labels: {info.labels}" in out and "verify: ok" in out


def check_convert_manifest(workdir: str, out: str) -> None:
    info = metadata.load(os.path.join(workdir, "shards"))
    with open(os.path.join(workdir, "labels.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    wanted = {s: sum(r["split"] == s for r in rows) for s in ("train", "test")}
    assert wanted["test"] > 0
    assert {s: info.splits[s].num_examples for s in info.splits} == wanted
    assert info.labels == tuple(sorted({r["label"] for r in rows})) and info.skipped == 0
    for name in ("dataset.json", "labels.txt", "skipped.csv"):
        assert os.path.isfile(os.path.join(info.directory, name)), name
    assert f"test: {wanted['test']} images" in out


def check_bring_your_own_model(workdir: str, out: str) -> None:
    info = metadata.load(os.path.join(workdir, "shards"))
    held_out = info.splits["validation"].num_examples
    with open(os.path.join(workdir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    assert (summary["mode"], summary["count"], summary["top_k"]) == ("pipelined", held_out, 2)
    # The model learned: two balanced classes, chance is 0.5.
    assert summary["top1_accuracy"] > 0.6, summary
    with open(os.path.join(workdir, "predictions.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == held_out
    for row in rows:
        assert row["true_label"] in info.labels
        assert sorted(p["label"] for p in row["top_k"]) == sorted(info.labels)
    assert os.path.isfile(os.path.join(workdir, "model.keras"))
    assert f"{held_out} held-out images, top-1 accuracy" in out


def check_quickstart(workdir: str, out: str) -> None:
    info = metadata.load(os.path.join(workdir, "shards"))
    held_out = info.splits["validation"].num_examples
    assert info.labels == ("circle", "square", "triangle") and held_out > 0
    with open(os.path.join(workdir, "predictions.csv"), encoding="utf-8", newline="") as f:
        assert len(list(csv.DictReader(f))) == held_out
    assert f"{held_out} images, top-1 accuracy" in out
    with open(os.path.join(workdir, "quantized", "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    assert [v["name"] for v in report["variants"]] == ["fp32", "int8"]
    assert report["float_model"]["count"] == held_out
    for name in ("grid.png", "predictions.png", "explain.png", "bench.png"):
        with Image.open(os.path.join(workdir, name)) as picture:
            assert picture.format == "PNG", name
            assert np.asarray(picture.convert("L")).std() > 10, f"{name} is blank"


CHECKS = {
    "convert_folder.py": check_convert_folder,
    "convert_manifest.py": check_convert_manifest,
    "bring_your_own_model.py": check_bring_your_own_model,
    "quickstart.py": check_quickstart,
}


def test_every_example_has_its_check():
    assert EXAMPLES and sorted(map(os.path.basename, EXAMPLES)) == sorted(CHECKS)


@pytest.mark.parametrize("script", EXAMPLES, ids=os.path.basename)
def test_example_runs(script, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, str(tmp_path)])
    monkeypatch.setenv("QUICKSTART_QUICK", "1")
    # The quickstart sets it when unset (the value it would set): undone after the test.
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"))
    runpy.run_path(script, run_name="__main__")  # an error escapes: the test fails
    CHECKS[os.path.basename(script)](str(tmp_path), capsys.readouterr().out)

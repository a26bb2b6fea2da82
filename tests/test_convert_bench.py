"""`benchmarks/convert_bench.py` and `benchmarks/convert_scale.py` run end to end and
report every figure they promise."""

from __future__ import annotations

import json
import os

import pytest
from commands import run_script_in_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_convert_bench_smoke(tmp_path):
    out = tmp_path / "figures.json"
    proc = run_script_in_process(
        os.path.join(ROOT, "benchmarks", "convert_bench.py"),
        "--num_images=12",
        "--repeats=1",
        f"--corpus={tmp_path / 'corpus'}",
        f"--json={out}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["num_images"] == 12
    for name in ("copy", "durable_copy", "convert_header", "decode_only", "convert_full"):
        assert figures[f"{name}_images_per_s"] > 0, name
    for ratio in ("header_vs_copy", "header_vs_durable_copy", "full_vs_decode"):
        assert figures[ratio] > 0 and f"{ratio}: " in proc.stdout, ratio
    assert "header_vs_durable_copy: " in proc.stdout and "(target >= 0.85" in proc.stdout


@pytest.mark.slow  # three new processes, each importing TensorFlow
def test_convert_scale_smoke(tmp_path):
    out = tmp_path / "figures.json"
    args = ["--sizes=30,90", "--classes=3", "--files_per_folder=7", f"--workdir={tmp_path}"]
    proc = run_script_in_process(
        os.path.join(ROOT, "benchmarks", "convert_scale.py"), *args, f"--json={out}"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["baseline_rss_mib"] > 0
    for n in (30, 90):
        assert figures[f"files_per_s_{n}"] > 0 and f"peak_rss_mib_{n}: " in proc.stdout
        assert figures[f"peak_rss_mib_{n}"] >= figures["baseline_rss_mib"] / 2
    for key in ("kb_per_file", "kb_per_file_beyond_record_cache"):
        assert key in figures and f"{key} (30 -> 90 files): " in proc.stdout
    # The corpus is kept for the next run; the outputs are not.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("corpus_")) == [
        "corpus_30_3_7",
        "corpus_30_3_7.complete",
        "corpus_90_3_7",
        "corpus_90_3_7.complete",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("out_")]

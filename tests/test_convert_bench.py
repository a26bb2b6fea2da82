"""`benchmarks/convert_bench.py` runs end to end and reports every figure it promises."""

from __future__ import annotations

import json
import os

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

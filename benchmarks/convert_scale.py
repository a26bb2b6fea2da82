"""The local converter's memory and throughput as the corpus grows.

Converts generated corpora of tiny JPEGs (64x48, the same few encoded images under
many names, spread over a few classes and many folders) with `tfclassify.convert`
(validate=full, default options otherwise), each conversion in a fresh process so
that its peak RSS is its own. Reports, per size, files/s and peak RSS; across the
two largest sizes, the resident bytes per file (the slope), also net of the record
cache (serialized records kept for the write pass, at most a fixed size); and the
peak RSS of a process that only imports tfclassify and TensorFlow.

Corpora are generated once and kept in --workdir. Prints one line per figure and
writes them to --json.

  python benchmarks/convert_scale.py [--sizes 50000,200000] [--workdir /tmp/convert_scale]
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

from absl import app, flags

flags.DEFINE_list("sizes", ["50000", "200000"], "Corpus sizes (files) to convert.")
flags.DEFINE_string("workdir", "/tmp/convert_scale", "Corpora (kept) and outputs (removed).")
flags.DEFINE_integer("classes", 4, "Class folders per corpus.")
flags.DEFINE_integer("files_per_folder", 500, "Files per subfolder of a class.")
flags.DEFINE_integer("repeats", 1, "Conversions per size (median files/s, max peak RSS).")
flags.DEFINE_integer("num_workers", None, "Converter workers (default: all cores).")
flags.DEFINE_string("json", "convert_scale.json", "Where to write the figures.")
# Internal: what a child process does ("import" or "convert") and on what.
flags.DEFINE_enum("child", None, ["import", "convert"], "Internal: run as a measured child.")
flags.DEFINE_string("corpus", None, "Internal: the child's input folder.")
flags.DEFINE_string("output", None, "Internal: the child's output folder.")
FLAGS = flags.FLAGS

_VARIANTS = 8  # distinct encoded images; every file is a copy of one


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _child() -> None:
    """Runs in a fresh process: one measurement, printed as a JSON line."""
    import tensorflow as tf  # noqa: F401  (the baseline holds TF's import)

    import tfclassify

    figures: dict = {}
    if FLAGS.child == "convert":
        from tfclassify.conversion import scan

        start = time.perf_counter()
        info = tfclassify.convert(
            tfclassify.ConvertOptions(
                input_dir=FLAGS.corpus,
                output_dir=FLAGS.output,
                validate="full",
                num_workers=FLAGS.num_workers,
                quiet=True,
            )
        )
        seconds = time.perf_counter() - start
        shards = [s for split in info.splits.values() for s in split.shards]
        # Serialized records without their TFRecord framing: what the scan holds in
        # memory for the write pass, up to its cap.
        records = sum(s.num_bytes for s in shards) - 16 * info.accepted
        figures = {
            "files": info.files_found,
            "accepted": info.accepted,
            "seconds": seconds,
            "record_cache_bytes": min(records, scan._HOLD_BYTES),
        }
    figures["peak_rss_bytes"] = _peak_rss_bytes()
    print(json.dumps(figures))


def _measure(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _variants() -> list[bytes]:
    import numpy as np

    from tfclassify import testing

    rng = np.random.default_rng(0)
    out = []
    for _ in range(_VARIANTS):
        buf = io.BytesIO()
        testing.photo_like(64, 48, rng).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _corpus(n: int) -> str:
    """A corpus of `n` files, generated on first use and kept: `{class}/{folder}/{file}`."""
    corpus = os.path.join(FLAGS.workdir, f"corpus_{n}_{FLAGS.classes}_{FLAGS.files_per_folder}")
    done = corpus + ".complete"  # beside the corpus, not an input
    if os.path.exists(done):
        return corpus
    shutil.rmtree(corpus, ignore_errors=True)
    images = _variants()
    made: set[str] = set()
    for i in range(n):
        label, rank = i % FLAGS.classes, i // FLAGS.classes
        folder = os.path.join(corpus, f"class{label}", f"d{rank // FLAGS.files_per_folder:05d}")
        if folder not in made:
            os.makedirs(folder)
            made.add(folder)
        with open(os.path.join(folder, f"img{i:08d}.jpg"), "wb") as f:
            f.write(images[i % len(images)])
    open(done, "w").close()
    return corpus


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.child:
        _child()
        return
    sizes = sorted(int(s) for s in FLAGS.sizes)
    os.makedirs(FLAGS.workdir, exist_ok=True)
    baseline = _measure("--child=import")["peak_rss_bytes"]
    figures: dict = {"cores": os.cpu_count(), "baseline_rss_mib": round(baseline / 2**20, 1)}
    print(f"baseline_rss_mib (import tfclassify + tensorflow): {figures['baseline_rss_mib']}")
    runs: dict[int, dict] = {}
    for n in sizes:
        corpus = _corpus(n)
        output = os.path.join(FLAGS.workdir, f"out_{n}")
        rates, peaks = [], []
        for _ in range(FLAGS.repeats):
            shutil.rmtree(output, ignore_errors=True)
            os.sync()  # the previous run's writeback is not this run's to pay
            run = _measure(
                "--child=convert",
                f"--corpus={corpus}",
                f"--output={output}",
                *([f"--num_workers={FLAGS.num_workers}"] if FLAGS.num_workers else []),
            )
            if run["files"] != n or run["accepted"] != n:
                raise RuntimeError(f"expected {n} accepted files, got {run}")
            rates.append(n / run["seconds"])
            peaks.append(run["peak_rss_bytes"])
        shutil.rmtree(output, ignore_errors=True)
        runs[n] = {
            "files_per_s": statistics.median(rates),
            "peak_rss_bytes": max(peaks),
            "record_cache_bytes": run["record_cache_bytes"],
        }
        for key, value in (
            (f"files_per_s_{n}", round(runs[n]["files_per_s"])),
            (f"peak_rss_mib_{n}", round(runs[n]["peak_rss_bytes"] / 2**20, 1)),
            (f"record_cache_mib_{n}", round(runs[n]["record_cache_bytes"] / 2**20, 1)),
        ):
            figures[key] = value
            print(f"{key}: {value}")
    if len(sizes) >= 2:
        small, large = runs[sizes[-2]], runs[sizes[-1]]
        files = sizes[-1] - sizes[-2]
        grown = large["peak_rss_bytes"] - small["peak_rss_bytes"]
        cache = large["record_cache_bytes"] - small["record_cache_bytes"]
        figures["kb_per_file"] = round(grown / files / 1000, 3)
        figures["kb_per_file_beyond_record_cache"] = round((grown - cache) / files / 1000, 3)
        for key in ("kb_per_file", "kb_per_file_beyond_record_cache"):
            print(f"{key} ({sizes[-2]} -> {sizes[-1]} files): {figures[key]}")
    with open(FLAGS.json, "w", encoding="utf-8") as f:
        json.dump(figures, f, indent=2)


if __name__ == "__main__":
    app.run(main)

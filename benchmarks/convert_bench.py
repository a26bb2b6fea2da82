"""Converter throughput against its two ceilings, measured side by side in one run.

  converter --validate=header  vs  a durable copy of the same files      (target >= 0.85)
  converter --validate=full    vs  tf.io.decode_jpeg over all files      (target >= 0.90)

The durable copy is a byte copy followed by a sync: the durability the converter
gives (it fsyncs every shard before renaming it). The plain copy, which leaves its
data in the page cache, is reported for reference.

Every contender runs on the same files after a warm-up pass (page cache filled,
tf.function traced), then --repeats times round-robin (tfclassify.bench.round_robin),
median reported. Prints each figure on a line as soon as it is known (each run's
rate on stderr) and writes them all to --json. Absolute numbers drift on shared
machines; the ratios are the result.

  python benchmarks/convert_bench.py [--num_images 1000] [--corpus DIR] [--json out.json]
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable

from absl import app, flags

flags.DEFINE_integer("num_images", 1000, "Photo-like JPEGs to generate (~50 KB each).")
flags.DEFINE_string("corpus", None, "Reuse/generate the corpus here (default: a temp dir).")
flags.DEFINE_integer("repeats", 5, "Timed repetitions per contender (median reported).")
flags.DEFINE_integer("num_workers", None, "Converter workers (default: all cores).")
flags.DEFINE_string("json", "convert_bench.json", "Where to write the figures.")
FLAGS = flags.FLAGS

TARGETS = {"header_vs_durable_copy": 0.85, "full_vs_decode": 0.90}


def _files(root: str) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


def _synced(fn: Callable[[], None], n: int) -> Callable[[], tuple[int, float]]:
    """fn timed from a clean page-cache writeback state: otherwise a contender pays for
    flushing the previous one's output, and its rate swings with the writeback."""

    def run() -> tuple[int, float]:
        os.sync()
        start = time.perf_counter()
        fn()
        return n, time.perf_counter() - start

    return run


def main(argv: list[str]) -> None:
    del argv
    import tensorflow as tf

    import tfclassify
    from tfclassify import bench, testing
    from tfclassify.core import tfdata
    from tfclassify.core.options import ReadOptions

    scratch = tempfile.mkdtemp(prefix="convert_bench_")
    corpus = FLAGS.corpus or os.path.join(scratch, "corpus")
    files = _files(corpus) if os.path.isdir(corpus) else []
    if len(files) < FLAGS.num_images:
        shutil.rmtree(corpus, ignore_errors=True)
        testing.make_photo_corpus(corpus, num_images=FLAGS.num_images)
        files = _files(corpus)
    total_mb = sum(os.path.getsize(f) for f in files) / 1e6
    n = len(files)

    copies = itertools.count()  # a fresh output dir per run

    def copy() -> None:
        # A fresh destination each time: deleting the last copy's 1000 files is not
        # part of copying (old copies are removed with the scratch dir at the end).
        dst = os.path.join(scratch, f"copy{next(copies)}")
        for f in files:
            target = os.path.join(dst, os.path.relpath(f, corpus))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(f, target)

    def durable_copy() -> None:
        # The converter fsyncs each shard before its rename: the same durability.
        copy()
        os.sync()

    def decode_only() -> None:
        ds = tf.data.Dataset.from_tensor_slices(files).map(
            lambda p: tf.shape(tf.io.decode_jpeg(tf.io.read_file(p), channels=3))[0],
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        # As tfclassify's reader runs (ReadOptions.autotune): with tf.data's autotuning
        # thread, a pass can end late, waiting for that thread's next wake-up.
        ds = ds.batch(256).prefetch(1).with_options(tfdata.tf_data_options(ReadOptions()))
        count = 0
        for _ in ds:
            count += 1
        assert count > 0

    def converter(validate: str):
        def run() -> None:
            # A fresh output dir, as for the copy: deleting the previous run's output
            # (what --overwrite does) is not converting.
            info = tfclassify.convert(
                tfclassify.ConvertOptions(
                    input_dir=corpus,
                    output_dir=os.path.join(scratch, f"out_{validate}{next(copies)}"),
                    validate=validate,
                    num_workers=FLAGS.num_workers,
                    quiet=True,
                )
            )
            assert info.accepted == n, info.skipped_by_reason

        return run

    # Each figure is printed as soon as it is known: a contender's after its last run.
    # No ratio here has a ceiling measured in the run.
    results = bench.Report(sys.stdout, TARGETS, ceilings={})
    results.add({"num_images": n, "corpus_mb": round(total_mb, 1), "cores": os.cpu_count()})

    def done(name: str, rate: float) -> None:
        results.add(
            {
                f"{name}_images_per_s": round(rate, 1),
                f"{name}_mb_per_s": round(rate * total_mb / n, 1),
            }
        )

    rates = bench.round_robin(
        {
            "copy": _synced(copy, n),
            "durable_copy": _synced(durable_copy, n),
            "convert_header": _synced(converter("header"), n),
            "decode_only": _synced(decode_only, n),
            "convert_full": _synced(converter("full"), n),
        },
        FLAGS.repeats,
        bench.Runs().progress,
        done,
    )
    results.add(
        {
            "header_vs_copy": round(rates["convert_header"] / rates["copy"], 3),
            "header_vs_durable_copy": round(rates["convert_header"] / rates["durable_copy"], 3),
            "full_vs_decode": round(rates["convert_full"] / rates["decode_only"], 3),
        }
    )
    bench.write_json(results.figures, FLAGS.json)
    shutil.rmtree(scratch, ignore_errors=True)  # a --corpus outside it is kept
    sys.exit(0)


if __name__ == "__main__":
    app.run(main)

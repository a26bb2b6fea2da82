"""`python -m tfclassify.demo`: the whole product on built-in data, no arguments needed.

generate a learnable synthetic corpus → convert to TFRecord shards → verify →
train the small CNN → infer on the held-out split in all three modes → print a
table of accuracy and images/s per mode, with each stage's progress bars on
stderr (--quiet: none). Everything is written under
--output_dir (default ./tfclassify_demo), which is replaced on each run; each
mode's rows and summary go to predictions/<mode>/ (predictions.csv, summary.json).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Any

from tfclassify import cli
from tfclassify.core.errors import OptionsError, OutputError

_MARKER = ".tfclassify-demo"


def _flags() -> Any:
    fv, (string, integer, _, boolean) = cli.new_flags()
    string("output_dir", "tfclassify_demo", "Where the demo writes everything.")
    integer("per_class", 500, "Images per class in the generated corpus.")
    integer("seed", 0, "Seed for the corpus, the split and training.")
    integer("epochs", 12, "Training epochs for the small CNN.")
    boolean("quiet", False, cli.QUIET_HELP + " Keras's training bar too.")
    return fv


def _fresh_dir(path: str) -> None:
    """Replaces `path` only if an earlier demo made it: never delete a user's folder."""
    if os.path.exists(path):
        if not os.path.isfile(os.path.join(path, _MARKER)):
            raise OutputError(
                f"{path} exists and was not made by the demo (it has no {_MARKER}); "
                "choose another --output_dir"
            )
        shutil.rmtree(path)
    os.makedirs(path)
    open(os.path.join(path, _MARKER), "w").close()


def run(
    output_dir: str, per_class: int = 500, seed: int = 0, epochs: int = 12, quiet: bool = False
) -> dict:
    """Runs every demo stage; returns the figures it printed (`quiet`: no progress bars).

    Raises:
      OptionsError: settings the demo cannot run with, before anything is written.
      OutputError: `output_dir` exists and is not a folder an earlier demo made.
    """
    # A fifth of each class is held out: 5 images per class leave one to evaluate.
    if per_class < 5:
        raise OptionsError(f"per_class must be >= 5 (a fifth is held out), got {per_class}")
    if epochs < 1:
        raise OptionsError(f"epochs must be >= 1, got {epochs}")
    from tfclassify.core.options import ThreadOptions
    from tfclassify.models import runtime

    runtime.apply_threads(ThreadOptions())  # before TF is imported: oneDNN's switch
    import tensorflow as tf  # noqa: F401  (imported up front so no stage's timing pays for it)

    import tfclassify
    from tfclassify import testing
    from tfclassify.reading.verification import verify

    _fresh_dir(output_dir)
    images_dir = os.path.join(output_dir, "images")
    data_dir = os.path.join(output_dir, "data")
    figures: dict = {}

    t = time.perf_counter()
    files = testing.make_shapes_corpus(images_dir, per_class=per_class, seed=seed)
    print(f"[1/5] generated {len(files)} images in {images_dir} ({time.perf_counter() - t:.1f}s)")

    t = time.perf_counter()
    info = tfclassify.convert(
        tfclassify.ConvertOptions(
            input_dir=images_dir,
            output_dir=data_dir,
            validation_fraction=0.2,
            seed=seed,
            shard_size_mb=2,
            quiet=quiet,
        )
    )
    elapsed = time.perf_counter() - t
    splits = ", ".join(f"{k}: {v.num_examples}" for k, v in sorted(info.splits.items()))
    shards = sum(len(s.shards) for s in info.splits.values())
    print(
        f"[2/5] converted {cli.plural(info.accepted, 'image')} ({splits}) into "
        f"{cli.plural(shards, 'shard')} in {data_dir} ({info.accepted / elapsed:.0f} images/s)"
    )
    figures["convert_images_per_s"] = info.accepted / elapsed

    verify(data_dir)
    print(f"[3/5] verified every shard against {data_dir}/dataset.json")
    figures["accepted"] = info.accepted

    from tfclassify.core.options import InferOptions, TrainOptions

    model_dir = os.path.join(output_dir, "model")
    t = time.perf_counter()
    # Keras's bar (on stdout) where it redraws in place; else its lines would crowd the demo's.
    verbose = 0 if quiet or not sys.stdout.isatty() else 1
    tfclassify.train(
        TrainOptions(data=data_dir, output=model_dir, epochs=epochs, seed=seed, verbose=verbose)
    )
    print(
        f"[4/5] trained the small CNN for {epochs} epochs -> {model_dir} "
        f"({time.perf_counter() - t:.0f}s)"
    )

    predictor = tfclassify.Predictor.load(model_dir)
    rows = []
    for mode in ("sequential", "batch", "pipelined"):
        # A folder per mode: summary.json goes beside the predictions file, so modes
        # sharing a folder would each overwrite the last one's summary.
        out = os.path.join(output_dir, "predictions", mode, "predictions.csv")
        options = InferOptions(mode=mode, split="validation", output=out, top_k=2, quiet=quiet)
        r = tfclassify.infer(predictor, data_dir, options)
        rows.append((mode, r.count, r.top1_accuracy, r.images_per_sec))
        figures[f"{mode}_accuracy"] = r.top1_accuracy
        figures[f"{mode}_images_per_s"] = r.images_per_sec
    print(
        f"[5/5] inference on the held-out split ({rows[0][1]} images), predictions and "
        f"summary in {output_dir}/predictions/<mode>/:"
    )
    print(f"{'mode':<12}{'top-1 accuracy':>16}{'images/s':>12}{'vs sequential':>16}")
    for mode, _, acc, ips in rows:
        print(f"{mode:<12}{acc:>16.3f}{ips:>12.0f}{ips / rows[0][3]:>15.1f}x")
    return figures


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.demo`; returns the exit status (2 for user errors)."""

    def body(fv: Any) -> None:
        run(fv.output_dir, fv.per_class, fv.seed, fv.epochs, fv.quiet)

    return cli.run("tfclassify.demo", __doc__, _flags(), argv, body)


if __name__ == "__main__":
    sys.exit(main())

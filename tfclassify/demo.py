"""`python -m tfclassify.demo`: the whole product on built-in data, no arguments needed.

generate a learnable synthetic corpus → convert to TFRecord shards → verify
(→ train → infer in every mode, once those stages exist). Everything is written
under --output_dir (default ./tfclassify_demo), which is replaced on each run.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from absl import app, flags

flags.DEFINE_string("output_dir", "tfclassify_demo", "Where the demo writes everything.")
flags.DEFINE_integer("per_class", 250, "Images per class in the generated corpus.")
flags.DEFINE_integer("seed", 0, "Seed for the corpus, the split and training.")
FLAGS = flags.FLAGS

_MARKER = ".tfclassify-demo"


def _fresh_dir(path: str) -> None:
    """Replaces `path` only if an earlier demo made it: never delete a user's folder."""
    if os.path.exists(path):
        if not os.path.isfile(os.path.join(path, _MARKER)):
            raise SystemExit(
                f"error: {path} exists and was not made by the demo; pass --output_dir"
            )
        shutil.rmtree(path)
    os.makedirs(path)
    open(os.path.join(path, _MARKER), "w").close()


def run(output_dir: str, per_class: int = 250, seed: int = 0) -> dict:
    """Runs every demo stage; returns the figures it printed."""
    import tensorflow as tf  # noqa: F401  (imported up front so no stage's timing pays for it)

    import tfclassify
    from tfclassify import testing
    from tfclassify.verify import verify

    _fresh_dir(output_dir)
    images_dir = os.path.join(output_dir, "images")
    data_dir = os.path.join(output_dir, "data")
    figures: dict = {}

    t = time.perf_counter()
    files = testing.make_shapes_corpus(images_dir, per_class=per_class, seed=seed)
    print(f"[1/3] generated {len(files)} images in {images_dir} ({time.perf_counter() - t:.1f}s)")

    t = time.perf_counter()
    info = tfclassify.convert(
        tfclassify.ConvertOptions(
            input_dir=images_dir,
            output_dir=data_dir,
            validation_fraction=0.2,
            seed=seed,
            shard_size_mb=2,
            quiet=True,
        )
    )
    elapsed = time.perf_counter() - t
    splits = ", ".join(f"{k}: {v.num_examples}" for k, v in sorted(info.splits.items()))
    print(
        f"[2/3] converted {info.accepted} images ({splits}) into "
        f"{sum(len(s.shards) for s in info.splits.values())} shards in {data_dir} "
        f"({info.accepted / elapsed:.0f} images/s)"
    )
    figures["convert_images_per_s"] = info.accepted / elapsed

    verify(data_dir)
    print(f"[3/3] verified every shard against {data_dir}/dataset.json")
    figures["accepted"] = info.accepted
    return figures


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"error: unexpected arguments {argv[1:]}")
    run(FLAGS.output_dir, FLAGS.per_class, FLAGS.seed)
    sys.exit(0)


if __name__ == "__main__":
    app.run(main)

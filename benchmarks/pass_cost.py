"""The fixed cost of a pass over a small dataset: make_dataset against a plain tf.data line.

On the same shards (a generated shapes corpus, 192 training images by default), the
time of one pass over the training split, each from a fresh iterator as Keras's `fit`
starts one every epoch:

  plain           TFRecordDataset -> map(parse, decode, resize) -> batch -> prefetch
  make_dataset    the reader's default path
  one_iterator    make_dataset under repeat(): one iterator for every pass
  cached          make_dataset().cache(), after the pass that fills the cache

and the seconds per epoch of `tfclassify.train` (small_cnn, validation included),
from runs of 1 and 1 + --epochs epochs. Every figure is CPU time of the whole
process (all threads), which other work on a shared machine disturbs far less than
wall time; passes are timed round-robin (tfclassify.bench.round_robin), medians.
Prints one line per figure and writes them to --json.

  python benchmarks/pass_cost.py [--per_class 64] [--json pass_cost.json]
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator

from absl import app, flags

flags.DEFINE_integer("per_class", 64, "Training images per class (3 classes).")
flags.DEFINE_integer("image_size", 64, "Side images are resized to.")
flags.DEFINE_integer("repeats", 15, "Timed passes per contender (median reported).")
flags.DEFINE_integer("epochs", 4, "Extra epochs timed for the per-epoch training cost.")
flags.DEFINE_string("json", "pass_cost.json", "Where to write the figures.")
FLAGS = flags.FLAGS


def _dataset(root: str) -> str:
    from tfclassify import convert, testing
    from tfclassify.core.options import ConvertOptions

    per_class = {"train": FLAGS.per_class, "validation": max(1, FLAGS.per_class // 4)}
    testing.make_shapes_corpus(
        os.path.join(root, "images"), classes=("circle", "square", "triangle"), splits=per_class
    )
    out = os.path.join(root, "shards")
    convert(ConvertOptions(input_dir=os.path.join(root, "images"), output_dir=out, quiet=True))
    return out


def _plain(directory: str, size: int, batch: int):
    import tensorflow as tf

    from tfclassify.core import metadata, schema

    spec = schema.feature_spec(with_label=True)

    def decode(record):
        f = tf.io.parse_single_example(record, spec)
        image = tf.io.decode_image(f[schema.ENCODED], channels=3, expand_animations=False)
        return tf.image.resize(image, (size, size)) / 255.0, f[schema.LABEL]

    paths = metadata.load(directory).shard_paths("train")
    ds = tf.data.TFRecordDataset(paths).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)


def _pass(ds) -> Callable[[], tuple[int, float]]:
    def run() -> tuple[int, float]:
        start = time.process_time()
        n = sum(int(images.shape[0]) for images, _ in ds)
        return n, time.process_time() - start

    return run


def _passes(it: Iterator, batches: int) -> Callable[[], tuple[int, float]]:
    def run() -> tuple[int, float]:
        start = time.process_time()
        n = sum(int(next(it)[0].shape[0]) for _ in range(batches))
        return n, time.process_time() - start

    return run


def _train_seconds(directory: str, out: str, epochs: int) -> float:
    from tfclassify.core.options import TrainOptions
    from tfclassify.train import train

    options = TrainOptions(
        data=directory,
        output=out,
        epochs=epochs,
        image_size=FLAGS.image_size,
        overwrite=True,
        verbose=0,
    )
    start = time.process_time()
    train(options)
    return time.process_time() - start


def main(argv: list[str]) -> None:
    del argv
    from tfclassify.bench import round_robin
    from tfclassify.core.options import ReadOptions
    from tfclassify.reading.dataset import make_dataset

    with tempfile.TemporaryDirectory() as root:
        directory = _dataset(root)
        size, batch = FLAGS.image_size, 32
        read = ReadOptions(image_size=size, batch_size=batch)
        reader = make_dataset(directory, read).map(lambda b: (b["image"], b["label"]))
        batches = sum(1 for _ in reader)
        cached = reader.cache()
        contenders = {
            "plain": _pass(_plain(directory, size, batch)),
            "make_dataset": _pass(reader),
            "one_iterator": _passes(iter(reader.repeat()), batches),
            "cached": _pass(cached),
        }
        rates = round_robin(contenders, FLAGS.repeats)
        images = contenders["plain"]()[0]
        figures = {f"{k}_cpu_ms_per_pass": 1000 * images / v for k, v in rates.items()}
        model = os.path.join(root, "model")
        _train_seconds(directory, model, 1)  # warm-up: traces, page cache
        one = _train_seconds(directory, model, 1)
        more = _train_seconds(directory, model, 1 + FLAGS.epochs)
        figures["train_cpu_s_per_epoch"] = (more - one) / FLAGS.epochs
    figures["train_images"] = images
    for k, v in figures.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    with open(FLAGS.json, "w", encoding="utf-8") as f:
        json.dump(figures, f, indent=2)


if __name__ == "__main__":
    app.run(main)

"""A small trainer for the examples and the demo (users bring their own models).

`python -m tfclassify.train --data DIR --output MODEL_DIR` fits a model on a
converted dataset, read through the same `make_dataset` that inference uses (so
preprocessing at training and inference time cannot drift apart), and writes:

  MODEL_DIR/saved_model/   `model.export()`: signature `serving_default`, input "image"
  MODEL_DIR/model.keras    the Keras model
  MODEL_DIR/labels.txt     class names, one per line, in output order

`Predictor.load(MODEL_DIR)` picks up the SavedModel and the labels.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import warnings
from typing import Any

from tfclassify import _callable, cli, fileio, metadata, runtime
from tfclassify.errors import OptionsError, OutputError
from tfclassify.options import TRAIN_ARCHS, TrainOptions

__all__ = ["TrainOptions", "build_model", "main", "train"]

SAVED_MODEL_DIR = "saved_model"
KERAS_FILE = "model.keras"
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
_OURS = (SAVED_MODEL_DIR, KERAS_FILE, metadata.LABELS_FILE)


def build_model(arch: str, image_size: tuple[int, int], num_classes: int) -> Any:
    """An uncompiled Keras classifier: input "image" [H, W, 3], softmax "probabilities".

    Args:
      arch: `small_cnn` (two conv + pooling blocks, a dense layer: the classic
        tutorial model, seconds per epoch on a CPU) or `mobilenet_v2` (randomly
        initialised; no weights are downloaded).
      image_size: (height, width).
      num_classes: output units.

    Raises:
      OptionsError: unknown arch, fewer than 2 classes, or an image size MobileNetV2
        cannot take.
    """
    import keras

    if num_classes < 2:
        raise OptionsError(f"training needs at least 2 classes, got {num_classes}")
    h, w = image_size
    inputs = keras.Input(shape=(h, w, 3), name=INPUT_NAME)
    if arch == "small_cnn":
        x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
        x = keras.layers.MaxPooling2D(name="pool1")(x)
        x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
        # A wide last pool: the flattened map stays small (3x3x64 at 64x64 input), so
        # the dense layer learns shapes anywhere in the image instead of memorising
        # positions (held-out 0.94 vs 0.80 with a 2x2 pool on the demo corpus).
        x = keras.layers.MaxPooling2D(pool_size=4, name="pool2")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dropout(0.5, name="dropout")(x)
        x = keras.layers.Dense(64, activation="relu", name="dense")(x)
    elif arch == "mobilenet_v2":
        if min(h, w) < 32:
            raise OptionsError(f"mobilenet_v2 needs image_size >= 32, got {image_size}")
        base = keras.applications.MobileNetV2(
            input_shape=(h, w, 3), include_top=False, weights=None, pooling="avg"
        )
        x = base(inputs)
    else:
        raise OptionsError(f"arch must be one of {TRAIN_ARCHS}, got {arch!r}")
    # float32 output even under mixed precision: softmax in float16 loses the small
    # probabilities and top-k order.
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=OUTPUT_NAME
    )(x)
    return keras.Model(inputs, outputs, name=arch)


def _read_options(options: TrainOptions, split: str, train: bool) -> Any:
    from tfclassify.options import ReadOptions

    base = options.read or ReadOptions()
    return dataclasses.replace(
        base,
        split=split,
        image_size=options.image_size,
        batch_size=options.batch_size,
        data_format="NHWC",  # the models built here are channels-last
        dtype="float32",
        with_labels=True,
        # Training sees shards and records in a fresh seeded order every epoch;
        # evaluation reads in file order.
        shuffle_files=train,
        shuffle_buffer=max(base.shuffle_buffer, 1024) if train else 0,
        seed=options.seed,
        private_threadpool_size=options.threads.tf_data_threads or base.private_threadpool_size,
    )


def _check_output(options: TrainOptions) -> None:
    """Refuses an output the model must not go into, before anything is written.

    A non-empty folder that holds none of the trainer's artifacts is a user's folder:
    the model is not mixed into their files, with or without `overwrite`.
    """
    out = options.output
    if not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise OutputError(f"output {out} exists and is not a directory")
    present = [n for n in _OURS if os.path.exists(os.path.join(out, n))]
    if present and not options.overwrite:
        raise OutputError(f"{out} already holds {present}; pass overwrite=True (--overwrite)")
    others = [n for n in os.listdir(out) if not n.startswith(fileio.TMP_PREFIX)]
    if others and not present:
        raise OutputError(
            f"output {out} is not empty and holds no model from tfclassify.train; "
            "choose a new or empty folder"
        )


def _make_output(out: str) -> list[str]:
    """Creates `out` (and missing parents); returns the folders created, deepest first."""
    created = []
    path = os.path.abspath(out)
    while not os.path.exists(path):
        created.append(path)
        path = os.path.dirname(path)
    os.makedirs(out, exist_ok=True)
    return created


def _remove_if_empty(created: list[str]) -> None:
    """Undoes `_make_output` after a failed run: a folder it made that is still empty
    is removed (deepest first), so a failed run leaves nothing behind; one that holds
    anything is kept."""
    for path in created:
        try:
            os.rmdir(path)
        except OSError:
            return


def save_model(model: Any, labels: tuple[str, ...], out: str) -> None:
    """Writes all three artifacts; each appears under its final name only when complete."""
    tmp_dir = tempfile.mkdtemp(prefix=fileio.TMP_PREFIX, dir=out)
    try:
        sm_tmp = os.path.join(tmp_dir, SAVED_MODEL_DIR)
        model.export(sm_tmp, verbose=False)
        keras_tmp = os.path.join(tmp_dir, KERAS_FILE)  # Keras insists on the .keras suffix
        model.save(keras_tmp)
        final_sm = os.path.join(out, SAVED_MODEL_DIR)
        if os.path.isdir(final_sm):
            shutil.rmtree(final_sm)
        os.replace(sm_tmp, final_sm)
        os.replace(keras_tmp, os.path.join(out, KERAS_FILE))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    fileio.atomic_write_text(
        os.path.join(out, metadata.LABELS_FILE), "".join(f"{t}\n" for t in labels)
    )


def train(options: TrainOptions) -> str:
    """Fits a model on a converted dataset and saves it.

    Args:
      options: what to train; see `TrainOptions`.

    Returns:
      The model directory (`options.output`), loadable with `Predictor.load`.

    Raises:
      InputError: `options.data` is not a converted dataset, or lacks the split, or
        the split has no records.
      DataError: a shard is corrupt or holds a bad record.
      OptionsError: bad threads/device combination (e.g. TF already initialised).
      OutputError: the output already holds a model and `overwrite` is off, or is a
        non-empty folder that holds no model from this trainer.
    """
    # Threads first: TF fixes its pools at the first op.
    runtime.apply_threads(options.threads)
    info = metadata.load(options.data)
    info.split(options.train_split)  # clear error naming the available splits
    val_split = options.validation_split
    if val_split is None and "validation" in info.splits and options.train_split != "validation":
        val_split = "validation"
    if val_split is not None:
        info.split(val_split)
    device = runtime.resolve_device(options.device)
    _check_output(options)

    import tensorflow as tf

    from tfclassify import data
    from tfclassify.infer import read_error

    # A split with no records is refused before the output folder is made.
    for split in (options.train_split, val_split):
        if split is not None:
            data.resolve_shards(options.data, split)
    created = _make_output(options.output)
    try:
        _fit_and_save(options, info, val_split, device)
    except tf.errors.OpError as e:
        _remove_if_empty(created)
        # A read error (corrupt shard, bad record) surfaces inside fit as a graph
        # error at the input iterator: one line, as infer reports it. Others are bugs.
        text = str(e)
        if "tfclassify:" not in text and "IteratorGetNext" not in text:
            raise
        raise read_error(e, options.data) from e
    except BaseException:
        _remove_if_empty(created)
        raise
    return options.output


def _fit_and_save(
    options: TrainOptions, info: metadata.DatasetInfo, val_split: str | None, device: str
) -> None:
    """The run itself, into an output folder that exists (kept apart so `train` can
    undo the folder's creation if any of it fails)."""
    import keras
    import tensorflow as tf

    from tfclassify import data

    if options.mixed_precision:
        runtime.enable_mixed_precision(device)
    keras.utils.set_random_seed(options.seed)

    def xy(split: str, train: bool) -> Any:
        ds = data.make_dataset(options.data, _read_options(options, split, train))
        return runtime.configure_dataset(ds.map(lambda e: (e["image"], e["label"])))

    train_ds = xy(options.train_split, True)
    val_ds = xy(val_split, False) if val_split is not None else None
    with tf.device(device):
        model = build_model(options.arch, options.image_size, len(info.labels))
        model.compile(
            optimizer=keras.optimizers.Adam(options.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        with warnings.catch_warnings():
            # tf.data reports no cardinality here (interleave), so Keras warns that the
            # first epoch "ran out of data" when it simply ends; nothing is lost.
            warnings.filterwarnings("ignore", message=".*ran out of data.*")
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=options.epochs,
                shuffle=False,  # make_dataset shuffles (seeded); Keras cannot shuffle tf.data
                verbose=options.verbose,
            )
    save_model(model, info.labels, options.output)


# ---------------------------------------------------------------- command line


def _flags() -> Any:
    from absl import flags

    d = {f.name: f.default for f in dataclasses.fields(TrainOptions)}
    fv = flags.FlagValues()
    flags.DEFINE_string(
        "data", None, "Converted dataset directory (has dataset.json).", flag_values=fv
    )
    flags.DEFINE_string("output", None, "Model directory to write.", flag_values=fv)
    flags.DEFINE_string("arch", d["arch"], f"One of {', '.join(TRAIN_ARCHS)}.", flag_values=fv)
    flags.DEFINE_integer("epochs", d["epochs"], "Passes over the training split.", flag_values=fv)
    flags.DEFINE_integer("image_size", d["image_size"], "Square input side.", flag_values=fv)
    flags.DEFINE_integer("batch_size", d["batch_size"], "Images per step.", flag_values=fv)
    flags.DEFINE_float("learning_rate", d["learning_rate"], "Adam learning rate.", flag_values=fv)
    flags.DEFINE_integer("seed", d["seed"], "Initialisation / shuffle seed.", flag_values=fv)
    flags.DEFINE_string("train_split", d["train_split"], "Split to fit on.", flag_values=fv)
    flags.DEFINE_string(
        "validation_split",
        None,
        "Split to evaluate (default: validation if present).",
        flag_values=fv,
    )
    flags.DEFINE_string("device", d["device"], "auto, cpu or gpu.", flag_values=fv)
    cli.define_runtime_flags(fv)
    flags.DEFINE_bool("mixed_precision", False, "float16 compute (GPU only).", flag_values=fv)
    flags.DEFINE_bool("overwrite", False, "Replace a model already in --output.", flag_values=fv)
    flags.DEFINE_integer("verbose", d["verbose"], "Keras fit verbosity 0-2.", flag_values=fv)
    return fv


def main(argv: list[str] | None = None) -> int:
    """`python -m tfclassify.train`; returns the exit status (2 for user errors)."""

    def body(fv: Any) -> int:
        cli.require(fv, ("data", "output"))
        options = TrainOptions(
            data=fv.data,
            output=fv.output,
            arch=fv.arch,
            epochs=fv.epochs,
            image_size=fv.image_size,
            batch_size=fv.batch_size,
            learning_rate=fv.learning_rate,
            seed=fv.seed,
            train_split=fv.train_split,
            validation_split=fv.validation_split,
            device=fv.device,
            threads=cli.thread_options(fv),
            mixed_precision=fv.mixed_precision,
            overwrite=fv.overwrite,
            verbose=fv.verbose,
        )
        path = train(options)
        print(f"model -> {path} ({SAVED_MODEL_DIR}/, {KERAS_FILE}, {metadata.LABELS_FILE})")
        return 0

    return cli.run("tfclassify.train", _flags(), argv, body)


_callable.forward_calls(__name__, "train")

if __name__ == "__main__":
    sys.exit(main())

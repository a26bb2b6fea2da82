"""A small trainer for the examples and the demo (users bring their own models).

`train(options)` fits a model on a converted dataset, read through the same
`make_dataset` that inference uses (so preprocessing at training and inference time
cannot drift apart), and writes a model directory (see `architectures`):
`Predictor.load(MODEL_DIR)` picks up the SavedModel and the labels.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

from tfclassify.core import fileio, metadata
from tfclassify.core.errors import OutputError
from tfclassify.core.options import TrainOptions
from tfclassify.models import runtime
from tfclassify.models.architectures import KERAS_FILE, SAVED_MODEL_DIR, build_model, save_model

__all__ = ["train"]

_OURS = (SAVED_MODEL_DIR, KERAS_FILE, metadata.LABELS_FILE)


def _read_options(options: TrainOptions, split: str, train: bool) -> Any:
    from tfclassify.core.options import ReadOptions

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
        shuffle_files=train and options.shuffle_buffer > 0,
        shuffle_buffer=options.shuffle_buffer if train else 0,
        seed=options.seed,
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
        raise OutputError(
            f"{out} already holds {present}; pass overwrite=True", settings={"overwrite": True}
        )
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

    from tfclassify.reading.dataset import read_error, resolve_shards

    # A split with no records is refused before the output folder is made.
    for split in (options.train_split, val_split):
        if split is not None:
            resolve_shards(options.data, split)
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

    from tfclassify.reading.dataset import make_dataset

    if options.mixed_precision:
        runtime.enable_mixed_precision(device)
    keras.utils.set_random_seed(options.seed)

    def xy(split: str, train: bool) -> Any:
        return make_dataset(options.data, _read_options(options, split, train), as_supervised=True)

    train_ds = xy(options.train_split, True)
    steps = int(train_ds.cardinality())
    if steps > 0:
        # One iterator for all epochs: Keras starts a new one each epoch for a finite
        # dataset, and starting the reader's pipeline is a fixed cost per pass.
        train_ds = train_ds.repeat()
    else:
        steps = None  # unknown (skip_errors): each epoch reads to the end
    val_ds = xy(val_split, False) if val_split is not None else None
    with tf.device(device):
        model = build_model(options.arch, options.image_size, len(info.labels))
        model.compile(
            optimizer=keras.optimizers.Adam(options.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        with warnings.catch_warnings():
            # Without a known batch count Keras warns that the first epoch "ran out of
            # data" when it simply ends; nothing is lost.
            warnings.filterwarnings("ignore", message=".*ran out of data.*")
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=options.epochs,
                steps_per_epoch=steps,
                shuffle=False,  # make_dataset shuffles (seeded); Keras cannot shuffle tf.data
                verbose=options.verbose,
            )
    save_model(model, info.labels, options.output)

"""A grid of sample images as the reader gives them: `show_examples`.

The images are a batch of `make_dataset` over a converted dataset, letterboxed
(`resize="pad"`) so that no border is cropped away, in a seeded random sample of a
split; each is titled with its label. Given a model, the same records are read
again as `infer` reads them for it, and each title adds the model's prediction;
wrong ones are red, with a red frame.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfclassify.core import plotting
from tfclassify.core.errors import OptionsError
from tfclassify.core.options import SHUFFLE_BUFFER, InferOptions, ReadOptions
from tfclassify.inference import modes
from tfclassify.models.predictor import Predictor

__all__ = ["MAX_EXAMPLES", "Example", "draw_examples", "sample_examples", "show_examples"]

MAX_EXAMPLES = 1024  # more than anyone can look at in one picture
_CELL_INCHES = 1.8
_TITLE_INCHES = (0.25, 0.45)  # a title of one line (label), of two (and a prediction)
_LABEL_CHARS = 24


@dataclasses.dataclass(frozen=True, eq=False)
class Example:
    """One image of the grid.

    Attributes:
      key: the record's image/filename.
      image: uint8 [height, width, 3], letterboxed to the cell size.
      label: the class text ("" for a record without a label).
      predicted: the model's top class, or None without a model.
      confidence: its probability, or None without a model.
    """

    key: str
    image: np.ndarray
    label: str
    predicted: str | None = None
    confidence: float | None = None

    @property
    def wrong(self) -> bool:
        """A prediction that is not the record's label."""
        return self.predicted is not None and bool(self.label) and self.predicted != self.label


def sample_examples(
    directory: str | os.PathLike,
    n: int = 16,
    *,
    split: str | None = None,
    model: str | Predictor | None = None,
    seed: int | None = 0,
    image_size: int | tuple[int, int] = 160,
    infer_options: InferOptions | None = None,
) -> list[Example]:
    """`n` records of `split`, read back through `make_dataset` (see `show_examples`)."""
    _check_count("n", n, MAX_EXAMPLES)
    info, split = modes.open_dataset(directory, split)
    infer_options = infer_options or InferOptions()
    base = infer_options.read or ReadOptions()
    # The same sample and order for the pictures and for the model's read.
    sample = {
        "split": split,
        "batch_size": n,
        "shuffle_files": True,
        "shuffle_buffer": base.shuffle_buffer or SHUFFLE_BUFFER,
        "seed": seed,
    }
    shown = dataclasses.replace(
        base,
        **sample,
        image_size=image_size,
        resize="pad",  # letterboxed: the whole stored image, borders included
        antialias=True,
        normalize="none",
        dtype="uint8",
        data_format="NHWC",
        with_labels=True,
        drop_remainder=False,
    )
    prepared = None
    if model is not None:
        # First: its thread settings apply before anything starts TF's runtime.
        run = dataclasses.replace(
            infer_options, mode="batch", batch_size=n, read=dataclasses.replace(base, **sample)
        )
        prepared = modes.prepare(model, run, dataset_labels=info.labels)
    batch = _first_batch(directory, shown)
    keys = [k.decode("utf-8", "surrogateescape") for k in batch["key"].tolist()]
    labels = [info.labels[i] if 0 <= i < info.num_classes else "" for i in batch["label"].tolist()]
    examples = [
        Example(key, image, label)
        for key, image, label in zip(keys, batch["image"], labels, strict=True)
    ]
    if prepared is None:
        return examples
    read = _first_batch(directory, prepared.read_options(split))
    probs = prepared.predictor.predict(read["image"])
    by_key = {k.decode("utf-8", "surrogateescape"): i for i, k in enumerate(read["key"].tolist())}
    if set(by_key) != set(keys):
        raise RuntimeError(f"the model's read of {directory} gave other records than the grid's")
    rows = [by_key[k] for k in keys]
    top = np.argmax(probs[rows], axis=1)
    return [
        dataclasses.replace(ex, predicted=prepared.class_names[t], confidence=float(probs[row, t]))
        for ex, row, t in zip(examples, rows, top.tolist(), strict=True)
    ]


def _first_batch(directory: str | os.PathLike, options: ReadOptions) -> dict[str, np.ndarray]:
    """The first batch `make_dataset` gives, as numpy; a read error as a DataError."""
    import tensorflow as tf

    from tfclassify.reading.dataset import make_dataset, read_error

    try:
        batch = next(iter(make_dataset(directory, options)))
    except tf.errors.OpError as e:
        raise read_error(e, os.fspath(directory)) from None
    return {k: v.numpy() for k, v in batch.items()}


def _check_count(name: str, value: Any, most: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not 1 <= value <= most:
        raise OptionsError(f"{name} must be an integer in [1, {most}], got {value!r}")


def _short(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 3] + "..."


def draw_examples(examples: Sequence[Example], columns: int | None = None) -> Any:
    """A matplotlib Figure with one cell per example: the image, titled with its label
    (and the prediction, red and framed in red where it is wrong).

    Each axes' artist label (`ax.get_label()`) is the record's key.

    Raises:
      MissingDependencyError: matplotlib is not installed.
      OptionsError: no examples, or a bad `columns`.
    """
    if not examples:
        raise OptionsError("no examples to draw")
    if columns is not None:
        _check_count("columns", columns, MAX_EXAMPLES)
    columns = min(columns or math.ceil(math.sqrt(len(examples))), len(examples))
    rows = math.ceil(len(examples) / columns)
    predicted = any(ex.predicted is not None for ex in examples)
    title = _TITLE_INCHES[predicted]
    figure = plotting.new_figure(columns * _CELL_INCHES, rows * (_CELL_INCHES + title))
    for i, ex in enumerate(examples):
        ax = figure.add_subplot(rows, columns, i + 1, label=ex.key)
        ax.imshow(ex.image, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        text, colour = _short(ex.label) or "(no label)", "black"
        if ex.predicted is not None:
            text += f"\nmodel: {_short(ex.predicted)} {ex.confidence:.0%}"
            colour = "red" if ex.wrong else "darkgreen"
        ax.set_title(text, fontsize=8, color=colour)
        if ex.wrong:
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(2.5)
    figure.tight_layout(pad=0.4)
    return figure


def show_examples(
    directory: str | os.PathLike,
    n: int = 16,
    *,
    split: str | None = None,
    model: str | Predictor | None = None,
    seed: int | None = 0,
    image_size: int | tuple[int, int] = 160,
    columns: int | None = None,
    infer_options: InferOptions | None = None,
) -> Any:
    """A grid of `n` sample images of a converted dataset, read back through the reader.

    The images are what `make_dataset` yields, letterboxed into `image_size` cells
    (`resize="pad"`), titled with their labels. With a model, each title adds its
    prediction, read and run as `infer` does; wrong ones are red.

        fig = tfclassify.show_examples("shards/", n=16, model="model/")
        fig.savefig("grid.png")  # in a notebook, the figure shows itself

    Args:
      directory: a converted dataset (holds dataset.json).
      n: images shown (fewer if the split holds fewer).
      split: the split sampled; None: `validation` if present, else `train`.
      model: a model path (see `Predictor.load`) or a loaded `Predictor`.
      seed: which sample (the same seed, the same images); None: a new one each call.
      image_size: each cell's size in pixels: an int (square) or (height, width).
      columns: images per row; None: a square-ish grid.
      infer_options: how the model is loaded and its images read (runtime, device,
        `read` preprocessing), as for `infer`; its mode and batch size are the grid's.

    Returns:
      A matplotlib `Figure` (Agg canvas).

    Raises:
      MissingDependencyError: matplotlib is not installed
        (`pip install 'tfclassify[plot]'`).
      InputError: no dataset at `directory`, no such split, or an unusable model.
      OptionsError: a bad `n`, `seed`, `image_size` or `columns`.
      DataError: a damaged shard or record.
    """
    plotting.require_matplotlib()  # before reading anything
    examples = sample_examples(
        directory,
        n,
        split=split,
        model=model,
        seed=seed,
        image_size=image_size,
        infer_options=infer_options,
    )
    return draw_examples(examples, columns)

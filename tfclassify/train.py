"""`python -m tfclassify.train --data DIR --output MODEL_DIR`: fit a small classifier.

For the examples and the demo (users bring their own models): trains on a converted
dataset and writes MODEL_DIR/saved_model/, model.keras and labels.txt, which
`Predictor.load(MODEL_DIR)` reads. From Python: `tfclassify.train(TrainOptions(...))`.
"""

from __future__ import annotations

import sys
from typing import Any

from tfclassify import _callable, cli
from tfclassify.core import metadata
from tfclassify.core.options import TRAIN_ARCHS, TrainOptions
from tfclassify.models.architectures import KERAS_FILE, SAVED_MODEL_DIR, build_model
from tfclassify.models.training import train

__all__ = ["TrainOptions", "build_model", "main", "train"]

_DOC = __doc__  # --help's text; forward_calls adds the function's to __doc__


def _flags() -> Any:
    fv, (string, integer, real, boolean) = cli.new_flags()
    d = cli.defaults(TrainOptions)
    string("data", None, "Converted dataset directory (has dataset.json).")
    string("output", None, "Model directory to write.")
    string("arch", d["arch"], f"One of {', '.join(TRAIN_ARCHS)}.")
    integer("epochs", d["epochs"], "Passes over the training split.")
    integer("image_size", d["image_size"], "Square input side.")
    integer("batch_size", d["batch_size"], "Images per step.")
    real("learning_rate", d["learning_rate"], "Adam learning rate.")
    integer("seed", d["seed"], "Initialisation / shuffle seed.")
    string("train_split", d["train_split"], "Split to fit on.")
    string("validation_split", None, "Split to evaluate (default: validation if present).")
    string("device", d["device"], "auto, cpu or gpu.")
    cli.define_runtime_flags(fv)
    boolean("mixed_precision", False, "float16 compute (GPU only).")
    boolean("overwrite", False, "Replace a model already in --output.")
    integer("verbose", d["verbose"], "Keras fit verbosity 0-2.")
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

    return cli.run("tfclassify.train", _DOC, _flags(), argv, body)


_callable.forward_calls(__name__, "train")

if __name__ == "__main__":
    sys.exit(main())

"""The classifiers tfclassify trains, and the model directory they are saved as.

A model directory (what `save_model` writes and `Predictor.load` reads):

  MODEL_DIR/saved_model/   `model.export()`: signature `serving_default`, input "image"
  MODEL_DIR/model.keras    the Keras model
  MODEL_DIR/labels.txt     class names, one per line, in output order
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from tfclassify.core import fileio, metadata
from tfclassify.core.errors import OptionsError
from tfclassify.core.options import TRAIN_ARCHS

__all__ = [
    "INPUT_NAME",
    "KERAS_FILE",
    "OUTPUT_NAME",
    "SAVED_MODEL_DIR",
    "build_model",
    "save_model",
]

SAVED_MODEL_DIR = "saved_model"
KERAS_FILE = "model.keras"
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


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
        # positions (a 2x2 pool generalised worse on the demo corpus: benchmarks/NOTES.md).
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

"""Read converted shards with `make_dataset`, fit your own Keras model, run inference.

    python examples/bring_your_own_model.py [WORKDIR]

tfclassify does not own your model: any Keras model (or SavedModel) that takes an
image batch works. This example builds one inline, trains it briefly on the reader's
batches, saves it as `.keras`, and runs `tfclassify.infer` on the held-out split in
pipelined mode, writing JSONL predictions with the top-2 labels.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import tfclassify
from tfclassify import InferOptions, ReadOptions, testing

SIZE = 48


def main(workdir: str) -> None:
    images = os.path.join(workdir, "images")
    testing.make_shapes_corpus(images, classes=("circle", "square"), per_class=100, seed=0)
    info = tfclassify.convert(
        tfclassify.ConvertOptions(
            input_dir=images,
            output_dir=os.path.join(workdir, "shards"),
            validation_fraction=0.25,
            quiet=True,
        )
    )

    import keras

    keras.utils.set_random_seed(0)
    # Your model: anything with one image input and one class-score output.
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3), name="image"),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(4),
            keras.layers.Flatten(),
            keras.layers.Dense(len(info.labels), activation="softmax", name="probabilities"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    # (image, label) batches, as Keras fit takes them; the dataset knows its length,
    # and reshuffles its images every epoch itself (Keras cannot shuffle a dataset).
    read = ReadOptions(image_size=SIZE, resize="squash", batch_size=16, shuffle_buffer=256, seed=0)
    train = tfclassify.make_dataset(info.directory, read, as_supervised=True)
    model.fit(train, epochs=25, shuffle=False, verbose=0)
    model_path = os.path.join(workdir, "model.keras")
    model.save(model_path)
    with open(os.path.join(workdir, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{label}\n" for label in info.labels))  # labels beside the model

    preds = os.path.join(workdir, "predictions.jsonl")
    result = tfclassify.infer(
        model_path,
        info.directory,
        InferOptions(
            mode="pipelined",
            split="validation",
            top_k=2,
            output=preds,
            # Preprocess exactly as in training: the squash resize, not center_crop.
            read=ReadOptions(resize="squash"),
        ),
    )
    print(f"{result.count} held-out images, top-1 accuracy {result.top1_accuracy:.3f}")
    with open(preds, encoding="utf-8") as f:
        first = json.loads(f.readline())
    print(f"first prediction: {first['key']} -> {first['top_k'][0]}")
    print(f"predictions: {preds}; summary: {os.path.join(workdir, 'summary.json')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="tfclassify_example_"))

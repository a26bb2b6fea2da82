"""The quickstart: every step of tfclassify on data it generates, as a script.

    python examples/quickstart.py [WORKDIR]

examples/quickstart.ipynb is made from this file, a cell per `# %%` block
(`python tests/notebooks.py` writes it; a test checks that the two agree): edit
here. QUICKSTART_QUICK=1 runs each step on less data (the test suite's setting).
"""

# %% [markdown]
# # tfclassify quickstart
#
# Every step on a small corpus this notebook generates: convert image files to
# TFRecord shards, look at what was converted, train a Keras model on the reader's
# batches, run it over the held-out split, quantize it, see where it looks, and
# time the reader and the model side by side. A minute or two on a laptop CPU.

# %%
import os
import sys
import tempfile

import tfclassify
from tfclassify import bench, testing

# Threads and oneDNN's CPU kernels (TF turns them on by itself only on recent Intel
# CPUs), as the commands set them: before TensorFlow starts, which reads them once.
tfclassify.apply_threads(tfclassify.ThreadOptions())

import keras  # noqa: E402

try:
    from IPython.display import display  # in a notebook: tables and pictures
except ImportError:
    display = print

# Images per class, training epochs, images per bench pass and per one-at-a-time
# pass; QUICKSTART_QUICK=1: every step on less data, as the test suite runs it.
QUICK = os.environ.get("QUICKSTART_QUICK") == "1"
PER_CLASS, EPOCHS, BENCH_IMAGES, ONE_BY_ONE = (20, 1, 32, 8) if QUICK else (250, 12, 256, 32)
SIZE = 64  # the model's input: height and width in pixels

# Everything goes to the script's argument, else (and in a notebook) a new temporary folder.
as_script = "__file__" in globals()
WORKDIR = sys.argv[1] if as_script and len(sys.argv) > 1 else tempfile.mkdtemp()
print(f"working in {WORKDIR}")


def show(figure, name):
    """Saves `figure` as WORKDIR/name; returns it, so that a notebook shows it."""
    figure.savefig(os.path.join(WORKDIR, name))
    return figure


# %% [markdown]
# ## Convert
#
# A folder per class, as most image corpora arrive; `convert` packs them into
# shards, holds a quarter of each class out for validation, and writes
# `dataset.json` (label map, class counts, shard sizes and hashes) last.

# %%
images = os.path.join(WORKDIR, "images")
testing.make_shapes_corpus(images, classes=("circle", "square", "triangle"), per_class=PER_CLASS)

shards = os.path.join(WORKDIR, "shards")
info = tfclassify.convert(
    tfclassify.ConvertOptions(input_dir=images, output_dir=shards, validation_fraction=0.25)
)
print(info.labels, {name: split.num_examples for name, split in info.splits.items()})

# %% [markdown]
# ## Inspect
#
# Images per class and split, shards, skipped inputs, and images stored twice
# (under different labels: label noise). The same as `tfclassify inspect shards/`.

# %%
display(tfclassify.inspect_dataset(info.directory))

# %% [markdown]
# Sample images read back through the reader (`make_dataset`), letterboxed so that
# nothing is cropped away, with their labels: `tfclassify inspect shards/ --grid grid.png`.

# %%
show(tfclassify.show_examples(info.directory, n=12, split="train"), "grid.png")

# %% [markdown]
# ## Train with Keras
#
# `as_supervised=True` gives `(image, label)` batches, and the dataset knows its
# length, so `model.fit` takes it as it is. The training split is reshuffled each
# epoch; any Keras model with one image input works.

# %%
read = {"image_size": SIZE, "batch_size": 32, "as_supervised": True}
train, ds_info = tfclassify.make_dataset(
    info.directory, split="train", seed=0, with_info=True, **read
)
validation = tfclassify.make_dataset(info.directory, split="validation", **read)

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(ds_info.num_classes, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
# shuffle=False: the reader already shuffles (Keras's own shuffle skips tf.data, with a warning).
model.fit(train, validation_data=validation, epochs=EPOCHS, shuffle=False, verbose=2)
model_path = os.path.join(WORKDIR, "model.keras")
model.save(model_path)

# %% [markdown]
# ## Infer
#
# `infer` reads the shards as the model needs them (its input size, the same
# preprocessing as above) and runs it, the next batch decoded while this one
# computes. The dataset's labels name the model's classes.

# %%
result = tfclassify.infer(
    model_path,
    info.directory,
    tfclassify.InferOptions(split="validation", output=os.path.join(WORKDIR, "predictions.csv")),
)
print(f"{result.count} images, top-1 accuracy {result.top1_accuracy:.2f}")
print(result.rows[0])

# %% [markdown]
# The same grid with the model's predictions: wrong ones in red.

# %%
show(tfclassify.show_examples(info.directory, n=12, model=model_path), "predictions.png")

# %% [markdown]
# ## Quantize
#
# LiteRT float32 and full-integer int8 variants of the model, each measured end to
# end on the validation split; `select` picks the fastest within the accuracy budget
# (`Predictor.load` of the output folder then runs that one).

# %%
report = tfclassify.quantize(
    model_path,
    info.directory,
    tfclassify.QuantizeOptions(
        output_dir=os.path.join(WORKDIR, "quantized"),
        variants=("fp32", "int8"),
        representative_samples=64,
    ),
)
print(report)

# %% [markdown]
# ## Explain
#
# Grad-CAM: where in each image the predicted class's score came from (the last
# conv layer's view), the predicted and the true label above each image.

# %%
explanation = tfclassify.explain(model_path, info.directory, n=8)
show(tfclassify.draw_explanation(explanation), "explain.png")

# %% [markdown]
# ## Measure
#
# A small run of `tfclassify bench`: the reader alone (decode-only), the model alone,
# the three inference modes, pre-resized shards and Keras's own reader, side by side
# on photo-sized JPEGs it generates. A short run measures start-up as much as speed;
# the README has a full one.

# %%
figures = bench.run(
    bench.BenchConfig(
        workdir=os.path.join(WORKDIR, "bench"),
        num_images=BENCH_IMAGES,
        models=("small_cnn",),
        repeats=1,
        sequential_images=ONE_BY_ONE,
        min_decode_images=BENCH_IMAGES,
        variants=(),
    )
)
show(bench.chart(figures), "bench.png")

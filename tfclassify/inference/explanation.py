"""`explain`: Grad-CAM heat-maps over sample images of a converted dataset.

The images are read as `infer` reads them for the model (`prepare`, then its read
options: the same size, layout, pixel type and normalization), the model predicts
them as `infer` does, and `tfclassify.models.gradcam` shows where each predicted
class came from. `explain` returns numpy arrays; `draw_explanation` draws them, a
grid of the images with their heat-maps over them, with matplotlib (the `plot`
extra), apart from the computation.

Usage:
  result = explain("model.keras", "shards/", n=8)
  result.heatmaps                    # [8, H, W] in [0, 1], one per image
  draw_explanation(result, "cam.png")
  python -m tfclassify.explain --model model.keras --data shards/ --output cam.png
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np

from tfclassify.core import plotting
from tfclassify.core.errors import InputError, OptionsError
from tfclassify.core.options import SHUFFLE_BUFFER, InferOptions, ReadOptions
from tfclassify.inference import modes
from tfclassify.models.gradcam import GradCam
from tfclassify.models.predictor import Predictor, model_kind, resolve_model_path

__all__ = ["CELL_INCHES", "DPI", "MAX_IMAGES", "Explanation", "draw_explanation", "explain"]

MAX_IMAGES = 256  # images one explanation reads and draws at most
# One grid cell: the image, and its title above it.
CELL_INCHES = (2.5, 2.9)
DPI = 100
_RUNTIME_NAMES = {"tflite": "a LiteRT", "openvino": "an OpenVINO"}


@dataclasses.dataclass
class Explanation:
    """Grad-CAM heat-maps of sample images, for their predicted classes.

    Attributes:
      model / data / split: what was explained, on what.
      layer: the conv layer the maps come from; layer_size: its maps' (h, w).
      keys: each image's `image/filename`.
      images: float32 [N, H, W, 3] in [0, 1]: the images as the model saw them
        (resized), the normalization undone.
      heatmaps: float32 [N, H, W] in [0, 1], one per image, the images' size.
      class_names: the model's classes by output index.
      predicted: int64 [N] predicted class index; scores: float32 [N] its probability.
      true_ids: int64 [N] the true class as a model index, -1 when unknown.
      true_labels: the dataset's label of each image, None when it has none.
    """

    model: str
    data: str
    split: str
    layer: str
    layer_size: tuple[int | None, int | None]
    keys: list[str]
    images: np.ndarray
    heatmaps: np.ndarray
    class_names: tuple[str, ...]
    predicted: np.ndarray
    scores: np.ndarray
    true_ids: np.ndarray
    true_labels: list[str | None]

    @property
    def wrong(self) -> np.ndarray:
        """bool [N]: the prediction is not the image's known label."""
        return (self.true_ids >= 0) & (self.true_ids != self.predicted)

    @property
    def predicted_labels(self) -> list[str]:
        return [self.class_names[i] for i in self.predicted]

    def __len__(self) -> int:
        return len(self.keys)

    def __str__(self) -> str:
        size = "x".join("?" if d is None else str(d) for d in self.layer_size)
        lines = [
            f"{len(self)} images of {self.data} ({self.split}), Grad-CAM of layer "
            f"{self.layer} ({size}) of {self.model}"
        ]
        for i, key in enumerate(self.keys):
            line = f"  {key}: {self.predicted_labels[i]} {self.scores[i]:.2f}"
            if self.wrong[i]:
                line += f" WRONG (true: {self.true_labels[i]})"
            lines.append(line)
        return "\n".join(lines)


def _check_int(name: str, value: Any, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionsError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise OptionsError(f"{name} must be {bounds}, got {value}")


def _refuse_graphless(path: str, kind: str) -> None:
    """Grad-CAM needs gradients through the model's TF graph: LiteRT and OpenVINO
    models have none to give."""
    if kind in _RUNTIME_NAMES:
        raise InputError(
            f"{path} is {_RUNTIME_NAMES[kind]} model, which gives no gradients to explain: "
            "pass the SavedModel or .keras file it was made from"
        )


def _sample(
    prepared: modes.PreparedModel, data: str, split: str, n: int, seed: int | None
) -> tuple[dict[str, Any], ReadOptions]:
    """The first batch of `n` images of `split`, read as `infer` reads them for the
    model; a random sample of the split with `seed`, else the first `n` in file order."""
    from tfclassify.reading.dataset import make_dataset

    shuffle = seed is not None
    read = dataclasses.replace(
        prepared.read_options(split),
        batch_size=n,
        shuffle_files=shuffle,
        shuffle_buffer=SHUFFLE_BUFFER if shuffle else 0,
        seed=seed,
    )
    ds = make_dataset(data, read).take(1)
    return next(modes._checked(iter(ds), data)), read


def explain(
    model: str | Predictor,
    data: str | os.PathLike,
    *,
    n: int = 8,
    split: str | None = None,
    seed: int | None = None,
    layer: str | None = None,
    options: InferOptions | None = None,
) -> Explanation:
    """Grad-CAM heat-maps over `n` images of a converted dataset, for the classes the
    model predicts for them.

    Args:
      model: a `.keras`/`.h5` file, a SavedModel directory or a tfclassify model dir
        (see `Predictor.load`), or a loaded `Predictor` running on TensorFlow.
      data: a converted dataset directory.
      n: images explained.
      split: the split they come from; None: validation if the dataset has one,
        else train.
      seed: draw a random sample with this seed; None: the split's first `n` images.
      layer: the conv layer to explain, by name; None: the model's last conv layer.
      options: how `infer` would read and run the model (image size, signature,
        device, threads, `read` preprocessing); its mode, batch size and output do
        not apply.

    Returns:
      An `Explanation`: the images, their heat-maps and predictions.

    Raises:
      InputError: a LiteRT or OpenVINO model, a model without a conv layer or
        without one called `layer` (the message lists them), a missing dataset or
        split.
      OptionsError: a bad `n` or `seed`, or options the model cannot take.
      DataError: a damaged shard or record among those read.
    """
    _check_int("n", n, 1, MAX_IMAGES)
    if seed is not None:
        _check_int("seed", seed, 0, None)
    if layer is not None and not isinstance(layer, str):
        raise OptionsError(f"layer must be a layer name, got {layer!r}")
    options = options or InferOptions()
    if options.runtime not in ("auto", "tensorflow"):
        raise OptionsError(f"explain runs the model on TensorFlow, not runtime={options.runtime!r}")
    info, split = modes.open_dataset(data, split or options.split)  # fails fast, without TF
    if isinstance(model, Predictor):
        _refuse_graphless(model.path, model.kind)
    else:
        path = resolve_model_path(os.fspath(model))
        _refuse_graphless(path, model_kind(path))  # before a load that cannot help
    prepared = modes.prepare(model, options, info.labels)
    predictor = prepared.predictor
    cam = GradCam(predictor, layer)  # a wrong layer fails before anything is read
    batch, read = _sample(prepared, info.directory, split, n, seed)

    from tfclassify.reading.preprocess import to_pixels

    images = batch["image"].numpy()
    probs = predictor.predict(images)
    predicted = np.argmax(probs, axis=1).astype(np.int64)
    heatmaps = cam.heatmaps(images, predicted)
    shown = images.transpose(0, 2, 3, 1) if read.data_format == "NCHW" else images
    labels = batch["label"].numpy().astype(np.int64)
    return Explanation(
        model=predictor.path,
        data=info.directory,
        split=split,
        layer=cam.layer.name,
        layer_size=cam.layer.size,
        keys=[k.decode("utf-8", "surrogateescape") for k in batch["key"].numpy()],
        images=to_pixels(shown, read.normalize) / 255,
        heatmaps=heatmaps,
        class_names=prepared.class_names,
        predicted=predicted,
        scores=np.take_along_axis(probs, predicted[:, None], axis=1)[:, 0],
        true_ids=prepared.model_ids(labels),
        true_labels=[info.labels[i] if 0 <= i < len(info.labels) else None for i in labels],
    )


def check_drawing(
    output: str | os.PathLike | None, alpha: float, colormap: str, columns: int | None = None
) -> None:
    """Checks what `draw_explanation` takes, before the slow work that precedes it.

    Raises:
      MissingDependencyError: no matplotlib (`pip install 'tfclassify[plot]'`).
      OptionsError: an output suffix matplotlib cannot write, an alpha outside
        [0, 1], an unknown colormap, columns below 1.
    """
    plotting.require_matplotlib()
    if columns is not None:
        _check_int("columns", columns, 1, MAX_IMAGES)
    if output is not None:
        plotting.picture_format(output)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise OptionsError(f"alpha must be a number in [0, 1], got {alpha!r}")
    import matplotlib

    if colormap not in matplotlib.colormaps:
        raise OptionsError(
            f"unknown colormap {colormap!r}; e.g. jet, inferno, viridis, turbo "
            "(matplotlib.colormaps lists them)"
        )


def draw_explanation(
    explanation: Explanation,
    output: str | os.PathLike | None = None,
    *,
    alpha: float = 0.4,
    colormap: str = "jet",
    columns: int | None = None,
) -> Any:
    """A grid picture of an explanation: each image with its heat-map over it, titled
    with the predicted label and its probability, and the true label when the
    dataset has one; a wrong prediction is marked (✗, in red).

    Args:
      explanation: from `explain`.
      output: where to save it (`.png`, `.svg`, `.pdf`, ...); None: not saved.
      alpha: the heat-map's opacity over the image.
      colormap: a matplotlib colormap name.
      columns: images per row; None: up to 4.

    Returns:
      The `matplotlib.figure.Figure`, `CELL_INCHES` a cell at `DPI` (a notebook shows it).

    Raises:
      MissingDependencyError: no matplotlib (`pip install 'tfclassify[plot]'`).
      OptionsError: a bad output suffix, alpha, colormap or columns.
    """
    check_drawing(output, alpha, colormap, columns)
    count = len(explanation)
    cols = max(1, min(columns or 4, count))
    rows = max(1, math.ceil(count / cols))
    fig = plotting.new_figure(cols * CELL_INCHES[0], rows * CELL_INCHES[1], DPI)
    wrong = explanation.wrong
    names = explanation.predicted_labels
    for i in range(rows * cols):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_axis_off()
        if i >= count:
            continue
        ax.imshow(explanation.images[i], interpolation="nearest")
        ax.imshow(explanation.heatmaps[i], cmap=colormap, alpha=alpha, vmin=0, vmax=1)
        title = f"{names[i]} {explanation.scores[i]:.2f}"
        if explanation.true_labels[i] is not None:
            title += f"\ntrue: {explanation.true_labels[i]}"
        if wrong[i]:
            title = f"✗ {title}"
        ax.set_title(title, fontsize=9, color="red" if wrong[i] else "black")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.92, wspace=0.08, hspace=0.3)
    if output is not None:
        plotting.save_figure(fig, output)
    return fig

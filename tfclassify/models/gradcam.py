"""Grad-CAM: where in an image a classifier's class score comes from.

Grad-CAM (Selvaraju et al., 2017) weighs each activation map of a convolution layer
by the mean gradient of the class score over that map, sums the weighted maps and
keeps the positive part: a coarse map, scaled up to the image, that is high where
the layer saw what raised the score.

It is read from the model's frozen TF graph (`Predictor.frozen_graph`), not from
Keras layers, so one code path serves a `.keras` file, a SavedModel written by
`model.export` or `tf.saved_model.save` (which keep no Keras layers to restore),
and a model nested in a model (a MobileNetV2 base inside a classifier). A layer is
a convolution op's name scope, named as Keras named the layer. Its activations are
the convolution's output after the element-wise ops that follow it (bias, batch
norm, activation), as in Keras's Grad-CAM example, which takes the last conv
layer's activated output. The score is the class's logit: the input of a softmax
at the end of the model, else the model's output.

Usage:
  cam = GradCam(Predictor.load("model.keras"))          # the last conv layer
  maps = cam.heatmaps(images, classes)                  # [N, H, W] in [0, 1]
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfclassify.core.errors import InputError
from tfclassify.models.predictor import Predictor

__all__ = ["ConvLayer", "GradCam", "conv_layers", "heatmaps"]

# Ops whose output is a convolution layer's activation maps.
_CONV_OPS = ("Conv2D", "DepthwiseConv2dNative", "Conv2DBackpropInput")
# Element-wise ops that belong to a convolution block when they follow it: bias, batch
# norm (plain or fused), activations, casts.
_FOLLOW_OPS = frozenset(
    {
        "BiasAdd",
        "Add",
        "AddV2",
        "Sub",
        "Mul",
        "RealDiv",
        "Maximum",
        "Minimum",
        "Relu",
        "Relu6",
        "Elu",
        "Selu",
        "LeakyRelu",
        "Sigmoid",
        "Tanh",
        "Softplus",
        "Identity",
        "Cast",
        "FusedBatchNorm",
        "FusedBatchNormV2",
        "FusedBatchNormV3",
    }
)
# Keras opens a layer's name scope twice per call, so its graph scope is the layer's
# name with a suffix: `conv1` -> `conv1_1`.
_KERAS_SUFFIX = re.compile(r"_\d+$")
# Images whose maps are computed at once.
_CHUNK = 32
# Conv layers an error lists at most (the last ones: the deepest, most often picked).
_LISTED = 20


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """A convolution layer as found in a model's graph.

    Attributes:
      name: the layer's name (as Keras named it).
      scope: its name scope in the graph.
      tensor: the graph tensor read as its activation maps.
      channels_first: the maps are [B, C, h, w] (else [B, h, w, C]).
      size: (h, w) of the maps, None where the graph leaves them open.
    """

    name: str
    scope: str
    tensor: str
    channels_first: bool
    size: tuple[int | None, int | None]


def _tf():
    import tensorflow as tf

    return tf


def _activated(tensor: Any) -> Any:
    """The last tensor of the element-wise chain that follows `tensor` alone: each op
    its only consumer, of the same shape, whose other inputs are constants (bias,
    batch-norm scale); a residual add of two activations ends the chain."""
    while True:
        consumers = tensor.consumers()
        if len(consumers) != 1:
            return tensor
        op = consumers[0]
        if op.type not in _FOLLOW_OPS or not op.outputs:
            return tensor
        out = op.outputs[0]
        others = [t for t in op.inputs if t is not tensor]
        # A data tensor has an open batch dimension; a constant is fully static.
        if out.shape != tensor.shape or any(t.shape.num_elements() is None for t in others):
            return tensor
        tensor = out


def conv_layers(graph: Any) -> list[ConvLayer]:
    """The convolution layers of a frozen model graph, in graph order.

    Args:
      graph: a `tf.Graph` (`Predictor.frozen_graph().graph`).

    Returns:
      One entry per name scope that holds a 2-D convolution (plain, depthwise or
      transposed); a scope with several (a separable convolution) is its last.
    """
    found: dict[str, Any] = {}
    for op in graph.get_operations():
        if op.type in _CONV_OPS and op.outputs[0].shape.rank == 4:
            scope = op.name.rpartition("/")[0] or op.name
            found.pop(scope, None)  # keeps graph order: the scope's last conv counts
            found[scope] = op
    # Keras's suffix is stripped only when every scope has one: a graph that another
    # tool wrote keeps its names as they are.
    leaves = [scope.rpartition("/")[2] for scope in found]
    keras = bool(leaves) and all(_KERAS_SUFFIX.search(leaf) for leaf in leaves)
    layers = []
    for (scope, op), leaf in zip(found.items(), leaves, strict=True):
        channels_first = op.get_attr("data_format") == b"NCHW"
        tensor = _activated(op.outputs[0])
        dims = tensor.shape.as_list()
        size = (dims[2], dims[3]) if channels_first else (dims[1], dims[2])
        name = _KERAS_SUFFIX.sub("", leaf) if keras else leaf
        layers.append(ConvLayer(name, scope, tensor.name, channels_first, size))
    return layers


def _pick(layers: Sequence[ConvLayer], name: str | None, path: str) -> ConvLayer:
    """The layer called `name` (its Keras name, graph scope or scope's last part; the
    last such), or the last layer when `name` is None."""
    if not layers:
        raise InputError(
            f"{path} has no convolution layer: Grad-CAM explains convolutional image "
            "classifiers (a model with a 2-D conv layer)"
        )
    if name is None:
        return layers[-1]
    hits = [x for x in layers if name in (x.name, x.scope, x.scope.rpartition("/")[2])]
    if not hits:
        names = list(dict.fromkeys(x.name for x in layers))
        shown = ", ".join(names[-_LISTED:])
        if len(names) > _LISTED:
            shown = f"{shown} (the last {_LISTED} of {len(names)})"
        raise InputError(f"{path} has no conv layer {name!r}; its conv layers: {shown}")
    return hits[-1]


def _logits(output: Any) -> Any:
    """The input of the softmax that ends the model (through identities), else `output`."""
    tensor = output
    while tensor.op.type == "Identity":
        tensor = tensor.op.inputs[0]
    return tensor.op.inputs[0] if tensor.op.type == "Softmax" else output


def heatmaps(activations: np.ndarray, gradients: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grad-CAM maps from a layer's activations and the class score's gradients.

    Args:
      activations: [N, h, w, C] activation maps.
      gradients: [N, h, w, C] gradients of each image's class score with respect to them.
      size: (height, width) of the images.

    Returns:
      float32 [N, height, width] in [0, 1]: each map scaled by its maximum (bilinear
      up-sampling); all zero where no position raised the score.
    """
    tf = _tf()
    weights = gradients.astype(np.float64).mean(axis=(1, 2))  # [N, C]
    maps = np.einsum("nhwc,nc->nhw", activations.astype(np.float64), weights)
    maps = np.maximum(maps, 0).astype(np.float32)
    maps = tf.image.resize(maps[..., None], size, method="bilinear").numpy()[..., 0]
    peak = maps.reshape(len(maps), -1).max(axis=1, initial=0.0)[:, None, None]
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0).astype(np.float32)


class GradCam:
    """Grad-CAM of one conv layer of a TensorFlow model.

    Attributes:
      layer: the conv layer explained.
      layers: every conv layer of the model, in graph order.
    """

    def __init__(self, predictor: Predictor, layer: str | None = None) -> None:
        """Finds the layer in the model's graph and builds the gradient function.

        Args:
          predictor: a model on TensorFlow (a SavedModel or a Keras file).
          layer: the conv layer's name; None: the last one.

        Raises:
          InputError: a model without a TF graph (LiteRT, OpenVINO), without a conv
            layer, or without one called `layer` (the message lists them); a layer
            the class scores do not depend on.
        """
        tf = _tf()
        self._predictor = predictor
        frozen = predictor.frozen_graph()
        graph = frozen.graph
        self.layers = conv_layers(graph)
        self.layer = _pick(self.layers, layer, predictor.path)
        graph_def = graph.as_graph_def()
        image_input = frozen.inputs[0]
        spec = tf.TensorSpec([None, *image_input.shape[1:]], image_input.dtype)
        wanted = [self.layer.tensor, _logits(frozen.outputs[0]).name]
        path, name = predictor.path, self.layer.name

        # The model's graph imported into a function of its own, with the gradient
        # ops added there: the predictor's graph is left as it is.
        @tf.function(input_signature=[spec, tf.TensorSpec([None], tf.int64)], autograph=False)
        def run(images: Any, classes: Any) -> tuple[Any, Any]:
            maps, scores = tf.graph_util.import_graph_def(
                graph_def, input_map={image_input.name: images}, return_elements=wanted
            )
            target = tf.gather(scores, classes, axis=1, batch_dims=1)
            grads = tf.gradients(target, maps)[0]
            if grads is None:
                raise InputError(
                    f"{path}: the class scores do not depend on conv layer {name!r}; "
                    "pick another layer"
                )
            return maps, grads

        run.get_concrete_function()  # traced now: a layer off the scores' path fails here
        self._run = run

    def heatmaps(self, images: Any, classes: Sequence[int] | np.ndarray) -> np.ndarray:
        """Grad-CAM maps of `classes` over `images`.

        Args:
          images: [N, *input_shape], preprocessed as the model takes them.
          classes: the class each image's map explains (its predicted class, say).

        Returns:
          float32 [N, H, W] in [0, 1], H x W the images' size.
        """
        x = np.asarray(images).astype(self._predictor.input_dtype, copy=False)
        classes = np.asarray(classes, np.int64)
        h, w = x.shape[2:4] if self._predictor.expects_channels_first else x.shape[1:3]
        out = []
        # A chunk at a time: a layer's activations and gradients for a large batch of
        # large images would hold gigabytes at once.
        for start in range(0, len(x), _CHUNK):
            chunk = slice(start, start + _CHUNK)
            maps, grads = (t.numpy() for t in self._run(x[chunk], classes[chunk]))
            if self.layer.channels_first:
                maps, grads = maps.transpose(0, 2, 3, 1), grads.transpose(0, 2, 3, 1)
            out.append(heatmaps(maps, grads, (int(h), int(w))))
        return np.concatenate(out) if out else np.zeros((0, h, w), np.float32)

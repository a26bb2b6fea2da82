"""A float model's LiteRT and OpenVINO variants, each written atomically.

Variants (names are `QUANTIZE_VARIANTS`; the file each one writes in brackets):

* `fp32` [fp32.tflite]: LiteRT, float32 as the model was trained.
* `dynamic-range` [dynamic-range.tflite]: LiteRT, int8 weights, float activations
  (small weight tensors stay float).
* `float16` [float16.tflite]: LiteRT, float16 weights.
* `int8` [int8.tflite]: LiteRT full integer: int8 weights, activations, input and
  output, calibrated on a representative set. The input and output scale and zero
  point are in the file; `Predictor` applies them, so callers pass the same float
  images as to the float model.
* `openvino-f32` [openvino.xml + .bin]: the model as an OpenVINO IR with float32
  weights, run at f32 precision.
* `openvino-bf16` [openvino.xml + .bin]: the same IR, run at bf16 precision; only on
  a CPU whose OpenVINO plugin lists BF16 (AVX-512 BF16 or AMX).
* `openvino-int8` [openvino-int8.xml + .bin]: the IR quantized by NNCF post-training
  quantization on the same representative set (needs `nncf`).

Every variant takes float32 images [batch, H, W, C] (the model's own layout and
size, batch dimension free) preprocessed as for the float model, and outputs class
probabilities: a float model whose `Predictor` has told that it outputs logits gets
its softmax inside the variant.

Usage:
  graph = FloatGraph(Predictor.load("model/", runtime="tensorflow"))
  write_variant("int8", graph, "q/", representative=lambda: iter(images))
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from tfclassify.core import fileio
from tfclassify.core.errors import InputError, MissingDependencyError, OptionsError
from tfclassify.core.options import QUANTIZE_VARIANTS
from tfclassify.models.predictor import Predictor

__all__ = [
    "VARIANTS",
    "FloatGraph",
    "Variant",
    "available_variants",
    "check_variant",
    "openvino_capabilities",
    "write_variant",
]

# A callable giving a fresh iterator of float32 images [1, H, W, C], each preprocessed
# as inference preprocesses them for the float model.
Representative = Callable[[], Iterable[Any]]

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of running the float model.

    Attributes:
      name: as in `QUANTIZE_VARIANTS`.
      runtime: `litert` or `openvino` (what `Predictor.load` runs the file on).
      file: the file written in the output dir (an IR's .bin goes beside its .xml).
      precision: OpenVINO's inference precision to run it at (`Predictor.load`'s
        `precision`); None for LiteRT and for the int8 IR, whose layers are int8.
      calibrated: needs a representative set.
    """

    name: str
    runtime: str
    file: str
    precision: str | None = None
    calibrated: bool = False

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the variant writes: an IR is an .xml and a .bin."""
        if self.file.endswith(".xml"):
            return (self.file, self.file[: -len(".xml")] + ".bin")
        return (self.file,)


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("fp32", "litert", "fp32.tflite"),
        Variant("dynamic-range", "litert", "dynamic-range.tflite"),
        Variant("float16", "litert", "float16.tflite"),
        Variant("int8", "litert", "int8.tflite", calibrated=True),
        Variant("openvino-f32", "openvino", "openvino.xml", precision="f32"),
        Variant("openvino-bf16", "openvino", "openvino.xml", precision="bf16"),
        Variant("openvino-int8", "openvino", "openvino-int8.xml", calibrated=True),
    )
}
if tuple(VARIANTS) != QUANTIZE_VARIANTS:  # the options list the names; this module the rest
    raise ImportError("tfclassify.models.quantization.VARIANTS and QUANTIZE_VARIANTS differ")

# Module -> (what it is, the tfclassify extra, the pip package): the runtimes variants need.
_RUNTIME_PACKAGES = {
    "ai_edge_litert": ("LiteRT", "litert", "ai-edge-litert"),
    "openvino": ("OpenVINO", "openvino", "openvino"),
    "nncf": ("NNCF", "nncf", "nncf"),
}
_NEEDS = {"litert": ("ai_edge_litert",), "openvino": ("openvino",)}


def _needed_modules(variant: Variant) -> tuple[str, ...]:
    extra = ("nncf",) if variant.name == "openvino-int8" else ()
    return _NEEDS[variant.runtime] + extra


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def openvino_capabilities() -> tuple[str, ...]:
    """What OpenVINO's CPU plugin can compute in here (`FP32`, `INT8`, `BF16`, ...)."""
    from tfclassify.models import openvino

    return openvino.cpu_capabilities()


def check_variant(name: str) -> Variant:
    """The variant `name`, checked to be writable and runnable here.

    Raises:
      OptionsError: an unknown name (the message lists the known ones), or
        `openvino-bf16` on a CPU without bf16.
      MissingDependencyError: its runtime (or NNCF) is not installed.
    """
    if name not in VARIANTS:
        raise OptionsError(f"unknown variant {name!r}; known: {', '.join(QUANTIZE_VARIANTS)}")
    variant = VARIANTS[name]
    for module in _needed_modules(variant):
        if not _installed(module):
            raise MissingDependencyError(*_RUNTIME_PACKAGES[module])
    if variant.precision == "bf16":
        caps = openvino_capabilities()
        if "BF16" not in caps:
            raise OptionsError(
                f"variant {name} needs a CPU with bf16 (AVX-512 BF16 or AMX); OpenVINO "
                f"lists only {', '.join(caps) or 'nothing'} for this one"
            )
    return variant


def available_variants() -> dict[str, str | None]:
    """Each variant name -> None if it can be written and run here, else why not."""
    found: dict[str, str | None] = {}
    for name in QUANTIZE_VARIANTS:
        try:
            check_variant(name)
        except (MissingDependencyError, OptionsError) as e:
            found[name] = str(e)
        else:
            found[name] = None
    return found


class FloatGraph:
    """A float model as the one graph every variant is converted from.

    A TF concrete function: float32 images [None, H, W, C] (or [None, C, H, W] for a
    channels-first model) -> {"probabilities": [None, num_classes]}.

    Args:
      predictor: the float model, loaded on TensorFlow (a SavedModel or `.keras`).
        If it is known to output logits (`outputs`), the graph applies the softmax.
      image_size: (height, width) for a model that accepts any size; must match a
        model that has one.

    Raises:
      InputError: not a TensorFlow model, or one with integer input.
      OptionsError: no image size known, or one the model does not take.
    """

    def __init__(self, predictor: Predictor, image_size: tuple[int, int] | None = None) -> None:
        import tensorflow as tf

        if predictor.runtime != "tensorflow":
            raise InputError(
                f"{predictor.path} runs on {predictor.runtime}: quantize starts from a float "
                "SavedModel or .keras model on TensorFlow"
            )
        if not tf.as_dtype(predictor.input_dtype).is_floating:
            raise InputError(
                f"{predictor.path} takes {predictor.input_dtype} input: quantize needs a "
                "model with float input"
            )
        size = predictor.image_size
        if image_size is not None and size is not None and tuple(image_size) != size:
            raise OptionsError(
                f"image_size {tuple(image_size)} requested but {predictor.path} takes "
                f"{size[0]}x{size[1]} images"
            )
        size = size or image_size
        if size is None:
            raise OptionsError(f"{predictor.path} accepts any image size; pass image_size")
        shape = list(predictor.input_shape)
        axes = (1, 2) if predictor.expects_channels_first else (0, 1)
        for axis, side in zip(axes, size, strict=True):
            shape[axis] = int(side)
        self.path = predictor.path
        self.image_size = (int(size[0]), int(size[1]))
        self.input_shape = tuple(shape)
        self.predictor = predictor  # keeps the model's variables alive
        call = predictor._fn  # the model's own call: one tf.function, batch dim free
        dtype = predictor.input_dtype
        softmax = predictor.outputs == "logits"

        @tf.function(
            input_signature=[tf.TensorSpec([None, *shape], tf.float32, name=INPUT_NAME)],
            autograph=False,
        )
        def serve(images: Any) -> dict[str, Any]:
            scores = call(tf.cast(images, dtype))
            return {OUTPUT_NAME: tf.nn.softmax(scores) if softmax else scores}

        self.function = serve.get_concrete_function()
        # What the LiteRT converter keeps alive while it freezes the variables.
        self.module = tf.Module()
        self.module.serve = serve


def write_variant(
    name: str,
    model: FloatGraph,
    output_dir: str,
    *,
    representative: Representative | None = None,
) -> str:
    """Writes variant `name` of `model` into `output_dir`, atomically.

    Args:
      name: one of `QUANTIZE_VARIANTS`.
      model: the float model's graph.
      output_dir: an existing directory.
      representative: calibration images for `int8` and `openvino-int8`.

    Returns:
      The path of the file to load (`.tflite`, or the IR's `.xml` with its `.bin`
      beside it).

    Raises:
      OptionsError: unknown variant, bf16 on a CPU without it.
      MissingDependencyError: its runtime is not installed.
      InputError: no representative images for a calibrated variant, or a model the
        converter cannot convert.
    """
    variant = check_variant(name)
    samples: list[Any] = []
    if variant.calibrated:
        samples = list(representative()) if representative is not None else []
        if not samples:
            raise InputError(f"variant {name} needs representative images; got none")
    path = os.path.join(output_dir, variant.file)
    if variant.runtime == "litert":
        fileio.atomic_write_bytes(path, _tflite_bytes(name, model, samples))
    else:
        _save_ir(_openvino_model(name, model, samples), path)
    return path


def _tflite_bytes(name: str, model: FloatGraph, samples: list[Any]) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.function], model.module)
    if name != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if name == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif name == "int8":
        converter.representative_dataset = lambda: ([x] for x in samples)
        # Full integer: every op int8 (conversion fails rather than leaving a float op),
        # the input and output too.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with warnings.catch_warnings():
            # Said of every int8 input calibrated through `representative_dataset`.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            return converter.convert()
    except Exception as e:  # its ConverterError (naming the op) has no public base class
        raise InputError(f"cannot convert {model.path} to LiteRT {name}: {e}") from e


def _openvino_model(name: str, model: FloatGraph, samples: list[Any]) -> Any:
    import openvino as ov

    try:
        converted = ov.convert_model(model.function)
    except Exception as e:  # its OpConversionFailure (naming the op) is not public either
        raise InputError(f"cannot convert {model.path} to OpenVINO: {e}") from e
    if name != "openvino-int8":
        return converted
    import nncf

    # NNCF draws a progress bar on stdout: not part of a command's output.
    with contextlib.redirect_stdout(io.StringIO()):
        return nncf.quantize(converted, nncf.Dataset(samples), subset_size=len(samples))


def _save_ir(model: Any, path: str) -> None:
    """An IR as `path` (.xml) and its .bin, each renamed into place when complete: the
    .bin first, so that an .xml is never seen without its weights."""
    import openvino as ov

    directory = os.path.dirname(os.path.abspath(path))
    tmp = tempfile.mkdtemp(prefix=fileio.TMP_PREFIX, dir=directory)
    try:
        xml = os.path.join(tmp, os.path.basename(path))
        ov.save_model(model, xml, compress_to_fp16=False)
        pairs = [(xml[: -len(".xml")] + ".bin", path[: -len(".xml")] + ".bin"), (xml, path)]
        for src, dst in pairs:
            with open(src, "rb") as f:
                os.fsync(f.fileno())
            with fileio.naming(dst):
                os.replace(src, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
